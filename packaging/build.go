package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
)

// Package metadata.
const (
	PackageName = "healthpost"
	Maintainer  = "healthpost maintainers <maintainers@healthpost.invalid>"
	Homepage    = "https://github.com/healthpost/healthpost"
	edgePackage = "github.com/healthpost/healthpost/edge"
	mainPackage = "./cmd/healthpost"

	description = `edge node for rural primary health centres
 healthpost runs a primary health centre's records on one small computer
 (a Raspberry Pi or a small PC). Health workers register patients and record
 visits from tablets on the centre's Wi-Fi; medical devices send readings over
 serial cables and MQTT; everything is saved in one SQLite file first, so the
 centre keeps working offline for weeks, and records are delivered to the
 district and to ABDM whenever a link is there.
 .
 The package runs the node as the systemd service healthpost, as the system
 user healthpost, with its data in /var/lib/healthpost.`
)

// DefaultArches are the Debian architectures a release is built for: PCs,
// 64-bit Raspberry Pi OS, and 32-bit Raspberry Pi OS (Pi 2 or newer).
var DefaultArches = []string{"amd64", "arm64", "armhf"}

// goTarget is how one Debian architecture is built. Every knob that changes
// the code generated is pinned, so the environment cannot change the bytes.
type goTarget struct {
	goarch string
	env    []string
}

var goTargets = map[string]goTarget{
	"amd64": {goarch: "amd64", env: []string{"GOAMD64=v1"}},
	"arm64": {goarch: "arm64", env: []string{"GOARM64=v8.0"}},
	"armhf": {goarch: "arm", env: []string{"GOARM=7"}},
}

//go:embed files
var assets embed.FS

// Options are the inputs of Build. Zero values take the defaults.
type Options struct {
	// Version is the Debian version; "" derives it from git (see gitVersion).
	Version string
	// Out is the directory the .deb files are written to; default "dist".
	Out string
	// Arches are Debian architectures; default DefaultArches.
	Arches []string
	// Epoch is the time stamped on every file and on the binary as its
	// build time; zero takes SOURCE_DATE_EPOCH, else HEAD's commit time.
	Epoch time.Time
	// GoOverlay is passed to 'go build -overlay'. Tests use it to build a
	// later version with more schema migrations without touching edge/.
	GoOverlay string
	// ModuleDir is the healthpost module; "" finds it from the working directory.
	ModuleDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Package is one .deb written by Build.
type Package struct {
	Arch    string
	Version string
	Path    string
}

// Build cross-builds the binary for each architecture and packs each into a
// .deb in opts.Out. A package is written under a temporary name and renamed
// when complete, so a file named *.deb in Out is always whole.
func Build(ctx context.Context, opts Options) ([]Package, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Out == "" {
		opts.Out = "dist"
	}
	if len(opts.Arches) == 0 {
		opts.Arches = DefaultArches
	}
	for _, a := range opts.Arches {
		if _, ok := goTargets[a]; !ok {
			return nil, fmt.Errorf("unknown architecture %q: use amd64, arm64 or armhf", a)
		}
	}
	if opts.ModuleDir == "" {
		dir, err := moduleDir(ctx)
		if err != nil {
			return nil, err
		}
		opts.ModuleDir = dir
	}
	if opts.Version == "" {
		v, err := gitVersion(ctx, opts.ModuleDir)
		if err != nil {
			return nil, err
		}
		opts.Version = v
	}
	if err := checkVersion(opts.Version); err != nil {
		return nil, err
	}
	if opts.Epoch.IsZero() {
		t, err := sourceDateEpoch(ctx, opts.ModuleDir, os.Getenv("SOURCE_DATE_EPOCH"))
		if err != nil {
			return nil, err
		}
		opts.Epoch = t
	}
	opts.Epoch = opts.Epoch.UTC().Truncate(time.Second)
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}

	stage, err := os.MkdirTemp("", "healthpost-packaging-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	fmt.Fprintf(opts.Log, "healthpost %s, files dated %s\n", opts.Version, opts.Epoch.Format(time.RFC3339))

	// Cross-build first: one of the binaries usually runs here, and the man
	// page and shell completion come from its own help, so they always
	// match the binary.
	bins := map[string]string{}
	for _, arch := range opts.Arches {
		t := goTargets[arch]
		bins[arch] = filepath.Join(stage, arch, "healthpost")
		if err := goBuild(ctx, opts, t.goarch, t.env, bins[arch]); err != nil {
			return nil, err
		}
	}
	host, ok := bins[hostArch()]
	if !ok || runtime.GOOS != "linux" {
		host = filepath.Join(stage, "host", "healthpost")
		if err := goBuild(ctx, opts, runtime.GOARCH, nil, host); err != nil {
			return nil, err
		}
	}
	common, err := stageCommon(ctx, opts, host, filepath.Join(stage, "common"))
	if err != nil {
		return nil, err
	}

	var out []Package
	for _, arch := range opts.Arches {
		p, err := writeDeb(opts, arch, bins[arch], common)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", arch, err)
		}
		fmt.Fprintf(opts.Log, "built %s\n", p.Path)
		out = append(out, p)
	}
	return out, nil
}

// hostArch is the Debian architecture of this machine's binaries.
func hostArch() string {
	if runtime.GOARCH == "arm" {
		return "armhf"
	}
	return runtime.GOARCH
}

// goBuild builds the static healthpost binary for goarch into dst.
func goBuild(ctx context.Context, opts Options, goarch string, extraEnv []string, dst string) error {
	ldflags := fmt.Sprintf("-s -w -X %s.version=%s -X %s.buildTime=%s",
		edgePackage, opts.Version, edgePackage, opts.Epoch.Format(time.RFC3339))
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags}
	if opts.GoOverlay != "" {
		overlay, err := filepath.Abs(opts.GoOverlay)
		if err != nil {
			return err
		}
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "-o", dst, mainPackage)
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = opts.ModuleDir
	cmd.Env = append(buildEnv(os.Environ()), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	cmd.Env = append(cmd.Env, extraEnv...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for linux/%s: %w\n%s", goarch, err, stderr.String())
	}
	return nil
}

// buildEnv drops from env every variable that would change what the Go
// toolchain generates, so only Build's own settings decide it.
func buildEnv(env []string) []string {
	drop := []string{"GOOS", "GOARCH", "GOARM", "GOARM64", "GOAMD64", "GO386", "CGO_ENABLED", "GOFLAGS", "GOEXPERIMENT", "GOROOT_FINAL"}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(drop, k) {
			out = append(out, kv)
		}
	}
	return out
}

// goTool is the go command: the one on PATH, else the one that built us.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// moduleDir finds the healthpost module from the working directory.
func moduleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the healthpost module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the healthpost module\nTry: cd to the repository, then go run ./packaging")
	}
	return filepath.Dir(gomod), nil
}

// staged are the files every architecture's package shares, written once.
type staged struct {
	dir     string
	scripts nfpm.Scripts
}

// stageCommon writes the shared files into dir: the assets, the generated
// man page, completion, changelog and copyright, and the maintainer scripts
// with the version filled in.
func stageCommon(ctx context.Context, opts Options, host, dir string) (*staged, error) {
	s := &staged{dir: dir}
	// The schema version the binary migrates to: preinst refuses, before
	// touching anything, a database that is already newer.
	var ver struct {
		Schema int `json:"schema_version"`
	}
	if out, err := exec.CommandContext(ctx, host, "version", "--json").Output(); err != nil {
		return nil, fmt.Errorf("ask the binary its schema version: %w", err)
	} else if err := json.Unmarshal(out, &ver); err != nil || ver.Schema < 1 {
		return nil, fmt.Errorf("healthpost version --json said %q: no schema version", out)
	}
	write := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	// Assets, with @VERSION@ filled in where a file names it.
	err := fs.WalkDir(assets, "files", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(path, "files/scripts/") {
			common, err := assets.ReadFile("files/scripts/common.sh")
			if err != nil {
				return err
			}
			b = bytes.Replace(b, []byte("@COMMON@\n"), common, 1)
		}
		b = bytes.ReplaceAll(b, []byte("@VERSION@"), []byte(opts.Version))
		b = bytes.ReplaceAll(b, []byte("@SCHEMA@"), []byte(strconv.Itoa(ver.Schema)))
		return write(strings.TrimPrefix(path, "files/"), b)
	})
	if err != nil {
		return nil, fmt.Errorf("stage files: %w", err)
	}
	guide, err := os.ReadFile(filepath.Join(opts.ModuleDir, "packaging", "README.md"))
	if err != nil {
		return nil, fmt.Errorf("read the technician's guide: %w", err)
	}
	man, err := manPage(ctx, host, opts.Version, opts.Epoch)
	if err != nil {
		return nil, err
	}
	completion, err := exec.CommandContext(ctx, host, "completion", "bash").Output()
	if err != nil {
		return nil, fmt.Errorf("generate bash completion: %w", err)
	}
	for name, data := range map[string][]byte{
		"healthpost.1.gz": gzipBytes(man),
		"README.md.gz":    gzipBytes(guide),
		"changelog.gz":    gzipBytes(changelog(opts.Version, opts.Epoch)),
		"bash-completion": completion,
		"copyright":       copyright(opts.Epoch),
	} {
		if err := write(name, data); err != nil {
			return nil, err
		}
	}
	s.scripts = nfpm.Scripts{
		PreInstall:  filepath.Join(dir, "scripts", "preinst"),
		PostInstall: filepath.Join(dir, "scripts", "postinst"),
		PreRemove:   filepath.Join(dir, "scripts", "prerm"),
		PostRemove:  filepath.Join(dir, "scripts", "postrm"),
	}
	return s, nil
}

// gzipBytes compresses b the way Debian wants documentation compressed
// (gzip -9n): best compression, and no name or time in the header, so the
// bytes depend on b alone.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// File modes in the package.
const (
	modeExec   = 0o755
	modeFile   = 0o644
	modeDir    = 0o755
	modeData   = 0o750 // /var/lib/healthpost: health records, not for other users
	systemdDir = "/lib/systemd/system"
	udevDir    = "/lib/udev/rules.d"
	docDir     = "/usr/share/doc/healthpost"
)

// contents lists every file of the package for the binary bin. Owners are
// root: the data directory is handed to the healthpost user by postinst
// (dpkg-statoverride), because the user does not exist before then.
func contents(s *staged, bin string, mtime time.Time) files.Contents {
	f := func(src, dst string, mode os.FileMode, typ string) *files.Content {
		return &files.Content{Source: src, Destination: dst, Type: typ,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: mtime}}
	}
	st := func(name string) string { return filepath.Join(s.dir, name) }
	return files.Contents{
		f(bin, "/usr/bin/healthpost", modeExec, files.TypeFile),
		f(st("healthpost.service"), systemdDir+"/healthpost.service", modeFile, files.TypeFile),
		f(st("60-healthpost-serial.rules"), udevDir+"/60-healthpost-serial.rules", modeFile, files.TypeFile),
		f(st("healthpost.toml"), "/etc/healthpost/healthpost.toml", modeFile, files.TypeConfig),
		f(st("healthpost.1.gz"), "/usr/share/man/man1/healthpost.1.gz", modeFile, files.TypeFile),
		f(st("bash-completion"), "/usr/share/bash-completion/completions/healthpost", modeFile, files.TypeFile),
		f(st("README.md.gz"), docDir+"/README.md.gz", modeFile, files.TypeFile),
		f(st("changelog.gz"), docDir+"/changelog.gz", modeFile, files.TypeFile),
		f(st("copyright"), docDir+"/copyright", modeFile, files.TypeFile),
		f(st("lintian-overrides"), "/usr/share/lintian/overrides/healthpost", modeFile, files.TypeFile),
		f("", "/etc/healthpost", modeDir, files.TypeDir),
		f("", "/var/lib/healthpost", modeData, files.TypeDir),
	}
}

// writeDeb packs one architecture's package into opts.Out.
func writeDeb(opts Options, arch, bin string, s *staged) (Package, error) {
	info := &nfpm.Info{
		Name:          PackageName,
		Arch:          arch,
		Platform:      "linux",
		Version:       opts.Version,
		VersionSchema: "none", // checkVersion made it a Debian version already
		Section:       "misc",
		Priority:      "optional",
		Maintainer:    Maintainer,
		Description:   description,
		Homepage:      Homepage,
		License:       "MIT",
		MTime:         opts.Epoch,
		Overridables: nfpm.Overridables{
			// adduser creates the system user; init-system-helpers has
			// deb-systemd-helper and deb-systemd-invoke, which enable and
			// start the unit only where systemd runs.
			Depends:  []string{"adduser", "init-system-helpers (>= 1.54~)"},
			Contents: contents(s, bin, opts.Epoch),
			Umask:    0o022,
			Scripts:  s.scripts,
			Deb:      nfpm.Deb{Arch: arch},
		},
		DisableGlobbing: true,
	}
	info = nfpm.WithDefaults(info)
	// nfpm fills in defaults, adds the parent directories and sorts by path.
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return Package{}, err
	}
	name := fmt.Sprintf("%s_%s_%s.deb", PackageName, opts.Version, arch)
	dst := filepath.Join(opts.Out, name)
	tmp, err := os.CreateTemp(opts.Out, "."+name+".*")
	if err != nil {
		return Package{}, err
	}
	defer os.Remove(tmp.Name())
	if err := writeDebTo(tmp, info); err != nil {
		tmp.Close()
		return Package{}, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return Package{}, err
	}
	if err := tmp.Close(); err != nil {
		return Package{}, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return Package{}, err
	}
	return Package{Arch: arch, Version: opts.Version, Path: dst}, nil
}
