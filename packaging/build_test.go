package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"1.0.0", "1.3.0~rc1", "1.2.0+git5.gabcdef123456", "0.0.0+git42.gabc.dirty", "2"} {
		// Ensure versions dpkg reads as native versions pass.
		if err := checkVersion(v); err != nil {
			t.Errorf("checkVersion(%q)=%v, want nil", v, err)
		}
	}
	for _, v := range []string{"", "v1.0.0", "1.0.0-1", "1.0 beta", "1:1.0.0", "1.0.0_rc1", "~1"} {
		// Ensure a version dpkg would misread is refused with the rule spelled out.
		err := checkVersion(v)
		if err == nil || !strings.Contains(err.Error(), "starting with a digit") {
			t.Errorf("checkVersion(%q)=%v, want the rule", v, err)
		}
	}
}

func TestVersionFromDescribe(t *testing.T) {
	cases := []struct{ describe, want string }{
		{"v1.2.0-0-gabcdef123456", "1.2.0"},
		{"v1.2.0-5-gabcdef123456", "1.2.0+git5.gabcdef123456"},
		{"v1.3.0-rc1-0-gabcdef123456", "1.3.0~rc1"},
		{"v1.3.0-rc.1-2-gabcdef123456", "1.3.0~rc.1+git2.gabcdef123456"},
	}
	for _, tc := range cases {
		// Ensure tags become Debian versions that sort as the commits were made.
		got, err := versionFromDescribe(tc.describe)
		if err != nil || got != tc.want {
			t.Errorf("versionFromDescribe(%q)=%q, %v; want %q", tc.describe, got, err, tc.want)
		}
	}
	// Ensure pre-releases sort before their release and commits after it, as dpkg sees it.
	order := []string{"1.2.0", "1.2.0+git5.gabcdef123456", "1.3.0~rc1", "1.3.0~rc1+git2.gabc", "1.3.0"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg does not sort %s before %s", order[i-1], order[i])
		}
	}
	for _, bad := range []string{"release-1", "v1.2.0", "v1.2.0-x-gabc"} {
		// Ensure output that is not a v* tag is refused, not guessed at.
		if _, err := versionFromDescribe(bad); err == nil {
			t.Errorf("versionFromDescribe(%q) accepted", bad)
		}
	}
}

func TestGitVersion(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2026-11-02T10:00:00Z", "GIT_AUTHOR_DATE=2026-11-02T10:00:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	commit := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "f")
		git("commit", "-q", "-m", content)
	}
	ctx := context.Background()
	git("init", "-q")
	commit("one")
	commit("two")
	check := func(want string) {
		t.Helper()
		got, err := gitVersion(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile("^" + want + "$").MatchString(got) {
			t.Fatalf("gitVersion=%q, want %s", got, want)
		}
	}
	// Ensure an untagged history numbers its commits.
	check(`0\.0\.0\+git2\.g[0-9a-f]{12}`)
	// Ensure a tag on HEAD is the version, and commits after it count up.
	git("tag", "v1.2.0")
	check(`1\.2\.0`)
	commit("three")
	check(`1\.2\.0\+git1\.g[0-9a-f]{12}`)
	// Ensure uncommitted changes are named, not hidden.
	os.WriteFile(filepath.Join(dir, "f"), []byte("edited"), 0o644)
	check(`1\.2\.0\+git1\.g[0-9a-f]{12}\.dirty`)

	// Ensure the commit time is the default build time, and SOURCE_DATE_EPOCH wins.
	if got, err := sourceDateEpoch(ctx, dir, ""); err != nil || !got.Equal(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("sourceDateEpoch=%v, %v", got, err)
	}
	if got, err := sourceDateEpoch(ctx, dir, "1795000000"); err != nil || got.Unix() != 1795000000 {
		t.Fatalf("sourceDateEpoch(SOURCE_DATE_EPOCH)=%v, %v", got, err)
	}
	if _, err := sourceDateEpoch(ctx, dir, "yesterday"); err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Fatalf("bad SOURCE_DATE_EPOCH: %v", err)
	}
	// Ensure outside git the error says what to do instead.
	if _, err := sourceDateEpoch(ctx, t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "Try: SOURCE_DATE_EPOCH=") {
		t.Fatalf("no git: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		// Ensure no flags build every architecture into dist/.
		opts, err := parseFlags(nil, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if opts.Out != "dist" || !slices.Equal(opts.Arches, DefaultArches) || opts.Version != "" {
			t.Fatalf("defaults=%+v", opts)
		}
	})
	t.Run("OK", func(t *testing.T) {
		opts, err := parseFlags([]string{"--version", "1.2.0", "--out", "/tmp/x", "--arch", "armhf, arm64"}, io.Discard)
		if err != nil || opts.Version != "1.2.0" || opts.Out != "/tmp/x" || !slices.Equal(opts.Arches, []string{"armhf", "arm64"}) {
			t.Fatalf("opts=%+v, %v", opts, err)
		}
	})
	t.Run("ErrExtraArgument", func(t *testing.T) {
		// Ensure a stray argument says what to type.
		if _, err := parseFlags([]string{"1.2.0"}, io.Discard); err == nil || !strings.Contains(err.Error(), "Try: go run ./packaging --version") {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("ErrBadInput", func(t *testing.T) {
		// Ensure a bad architecture or version stops before anything is built.
		out := t.TempDir()
		for _, opts := range []Options{
			{Version: "1.0.0", Arches: []string{"i386"}, Out: out},
			{Version: "1.0 beta", Arches: []string{"amd64"}, Out: out, ModuleDir: MustModuleDir(t)},
		} {
			if _, err := Build(context.Background(), opts); err == nil {
				t.Fatalf("Build(%+v) succeeded", opts)
			}
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Fatalf("a refused build wrote %d files", len(entries))
		}
	})
}

// wantFiles is every entry of the package: mode and owner as dpkg-deb lists them.
var wantFiles = map[string]string{
	"./":                               "drwxr-xr-x root/root",
	"./etc/":                           "drwxr-xr-x root/root",
	"./etc/healthpost/":                "drwxr-xr-x root/root",
	"./etc/healthpost/healthpost.toml": "-rw-r--r-- root/root",
	"./lib/":                           "drwxr-xr-x root/root",
	"./lib/systemd/":                   "drwxr-xr-x root/root",
	"./lib/systemd/system/":            "drwxr-xr-x root/root",
	"./lib/systemd/system/healthpost.service": "-rw-r--r-- root/root",
	"./lib/udev/":         "drwxr-xr-x root/root",
	"./lib/udev/rules.d/": "drwxr-xr-x root/root",
	"./lib/udev/rules.d/60-healthpost-serial.rules": "-rw-r--r-- root/root",
	"./usr/":                       "drwxr-xr-x root/root",
	"./usr/bin/":                   "drwxr-xr-x root/root",
	"./usr/bin/healthpost":         "-rwxr-xr-x root/root",
	"./usr/share/":                 "drwxr-xr-x root/root",
	"./usr/share/bash-completion/": "drwxr-xr-x root/root",
	"./usr/share/bash-completion/completions/":           "drwxr-xr-x root/root",
	"./usr/share/bash-completion/completions/healthpost": "-rw-r--r-- root/root",
	"./usr/share/doc/":                         "drwxr-xr-x root/root",
	"./usr/share/doc/healthpost/":              "drwxr-xr-x root/root",
	"./usr/share/doc/healthpost/README.md.gz":  "-rw-r--r-- root/root",
	"./usr/share/doc/healthpost/changelog.gz":  "-rw-r--r-- root/root",
	"./usr/share/doc/healthpost/copyright":     "-rw-r--r-- root/root",
	"./usr/share/lintian/":                     "drwxr-xr-x root/root",
	"./usr/share/lintian/overrides/":           "drwxr-xr-x root/root",
	"./usr/share/lintian/overrides/healthpost": "-rw-r--r-- root/root",
	"./usr/share/man/":                         "drwxr-xr-x root/root",
	"./usr/share/man/man1/":                    "drwxr-xr-x root/root",
	"./usr/share/man/man1/healthpost.1.gz":     "-rw-r--r-- root/root",
	"./var/":                                   "drwxr-xr-x root/root",
	"./var/lib/":                               "drwxr-xr-x root/root",
	"./var/lib/healthpost/":                    "drwxr-x--- root/root",
}

// elfMachine is the ELF machine of each architecture's binary.
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}

func TestPackage_Contents(t *testing.T) {
	mustHaveTool(t, "dpkg-deb", "dpkg")
	for _, arch := range DefaultArches {
		t.Run(arch, func(t *testing.T) {
			deb := MustOldPackages(t)[arch].Path
			// Ensure the name is what apt and technicians expect.
			if got, want := filepath.Base(deb), "healthpost_"+oldVersion+"_"+arch+".deb"; got != want {
				t.Fatalf("file=%s, want %s", got, want)
			}

			// Ensure the control fields.
			fields := map[string]string{
				"Package": "healthpost", "Version": oldVersion, "Architecture": arch, "Maintainer": Maintainer,
				"Depends": "adduser, init-system-helpers (>= 1.54~)", "Section": "misc", "Priority": "optional",
				"Homepage": Homepage,
			}
			for k, want := range fields {
				if got := strings.TrimSpace(MustRun(t, "dpkg-deb", "--field", deb, k)); got != want {
					t.Errorf("%s=%q, want %q", k, got, want)
				}
			}
			if desc := MustRun(t, "dpkg-deb", "--field", deb, "Description"); !strings.HasPrefix(desc, "edge node for rural primary health centres\n ") {
				t.Errorf("Description=%q", desc)
			}

			// Ensure every file, with its mode and owner, and nothing else.
			got := map[string]string{}
			for line := range strings.Lines(MustRun(t, "dpkg-deb", "--contents", deb)) {
				f := strings.Fields(line)
				got[f[5]] = f[0] + " " + f[1]
			}
			for path, want := range wantFiles {
				if got[path] != want {
					t.Errorf("%s: %q, want %q", path, got[path], want)
				}
			}
			for path := range got {
				if _, ok := wantFiles[path]; !ok {
					t.Errorf("unexpected %s in the package", path)
				}
			}

			// Ensure the control area: the conffile, and executable maintainer scripts.
			ctrl := t.TempDir()
			MustRun(t, "dpkg-deb", "--control", deb, ctrl)
			if b, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); string(b) != "/etc/healthpost/healthpost.toml\n" {
				t.Errorf("conffiles=%q", b)
			}
			for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
				fi, err := os.Stat(filepath.Join(ctrl, s))
				if err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("%s: %v %v, want mode 0755", s, fi.Mode(), err)
					continue
				}
				b, _ := os.ReadFile(filepath.Join(ctrl, s))
				if !bytes.HasPrefix(b, []byte("#!/bin/sh\n")) || bytes.Contains(b, []byte("@COMMON@")) || bytes.Contains(b, []byte("@VERSION@")) || bytes.Contains(b, []byte("@SCHEMA@")) {
					t.Errorf("%s is not a complete /bin/sh script", s)
				}
			}

			// Ensure the binary: this architecture, static, version and build time stamped.
			fsys := t.TempDir()
			MustRun(t, "dpkg-deb", "--extract", deb, fsys)
			bin := filepath.Join(fsys, "usr/bin/healthpost")
			ef, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer ef.Close()
			if ef.Machine != elfMachine[arch] {
				t.Errorf("ELF machine=%v, want %v", ef.Machine, elfMachine[arch])
			}
			for _, p := range ef.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("the binary asks for a dynamic loader; it must be static")
				}
			}
			info, err := buildinfo.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			settings := map[string]string{}
			for _, s := range info.Settings {
				settings[s.Key] = s.Value
			}
			if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
				t.Errorf("build settings %v, want CGO_ENABLED=0 and -trimpath", settings)
			}
			// (-trimpath keeps -ldflags out of the build info, so look for the stamped strings.)
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(testEpoch.Format(time.RFC3339))) {
				t.Errorf("build time %s not stamped into the binary", testEpoch.Format(time.RFC3339))
			}
			if arch == hostArch() {
				var v struct {
					Version   string `json:"version"`
					BuildTime string `json:"build_time"`
				}
				out := MustRun(t, bin, "version", "--json")
				if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version != oldVersion || v.BuildTime != testEpoch.Format(time.RFC3339) {
					t.Errorf("healthpost version --json=%s, want version %s built %s", out, oldVersion, testEpoch.Format(time.RFC3339))
				}
			}
			if arch == "armhf" && settings["GOARM"] != "7" {
				t.Errorf("GOARM=%q, want 7", settings["GOARM"])
			}

			// Ensure every file carries the build's time, not the time it was built.
			for line := range strings.Lines(MustRun(t, "dpkg-deb", "--contents", deb)) {
				if f := strings.Fields(line); f[3]+" "+f[4] != testEpoch.Local().Format("2006-01-02 15:04") {
					t.Errorf("%s dated %s %s", f[5], f[3], f[4])
				}
			}
		})
	}
}

func TestPackage_Lintian(t *testing.T) {
	mustHaveTool(t, "lintian", "lintian")
	pkgs := MustOldPackages(t)
	args := []string{"--display-info", "--fail-on", "error,warning", "--color", "never"}
	for _, arch := range DefaultArches {
		args = append(args, pkgs[arch].Path)
	}
	r := runCmd(t, exec.Command("lintian", args...))
	var bad, info []string
	for line := range strings.Lines(r.out) {
		switch {
		case strings.HasPrefix(line, "E: "), strings.HasPrefix(line, "W: "):
			bad = append(bad, strings.TrimSpace(line))
		case strings.HasPrefix(line, "I: "):
			info = append(info, strings.TrimSpace(line))
		}
	}
	// Ensure no errors and no warnings; each kept one is overridden, with its reason, in files/lintian-overrides.
	if len(bad) > 0 || r.code != 0 {
		t.Fatalf("lintian (exit %d):\n%s", r.code, r.out)
	}
	t.Logf("lintian: no errors, no warnings; %d informational tags:\n%s", len(info), strings.Join(info, "\n"))
}

func TestPackage_Reproducible(t *testing.T) {
	first := MustOldPackages(t)
	// Build again from a copy of the tree at another path, with another
	// umask and files of other ages: only the inputs that matter are the same.
	elsewhere := filepath.Join(t.TempDir(), "elsewhere", "src", "healthpost")
	mustCopySource(t, MustModuleDir(t), elsewhere)
	old := syscall.Umask(0o077)
	second := MustBuild(t, Options{Version: oldVersion, ModuleDir: elsewhere})
	syscall.Umask(old)

	for _, p := range second {
		// Ensure the same bytes.
		a, b := sha256File(t, first[p.Arch].Path), sha256File(t, p.Path)
		if a != b {
			t.Errorf("%s: first build %s, second build %s", p.Arch, a, b)
			continue
		}
		t.Logf("%s: both builds sha256 %s", filepath.Base(p.Path), a)
	}

	// Ensure the time is an input: another SOURCE_DATE_EPOCH gives other bytes.
	other := MustBuild(t, Options{Version: oldVersion, Arches: []string{"amd64"}, Epoch: testEpoch.Add(time.Hour), ModuleDir: elsewhere})
	if sha256File(t, other[0].Path) == sha256File(t, first["amd64"].Path) {
		t.Error("a different build time gave the same package: files are not dated from it")
	}
}

// mustCopySource copies the module's files (tracked and new, not ignored,
// as git lists them; or all, from a copy) to dst, each with a fresh
// modification time.
func mustCopySource(tb testing.TB, module, dst string) {
	tb.Helper()
	var names []string
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = module
	if out, err := cmd.Output(); err == nil {
		names = strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	} else {
		filepath.WalkDir(module, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				rel, _ := filepath.Rel(module, path)
				names = append(names, rel)
			}
			return err
		})
	}
	for _, name := range names {
		src := filepath.Join(module, name)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or not a file
		}
		b, err := os.ReadFile(src)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, name)), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, fi.Mode().Perm()); err != nil {
			tb.Fatal(err)
		}
	}
}

// setting is one key of `healthpost config show --json`.
type setting struct {
	Key, Value, Source string
}

func configShow(tb testing.TB, bin string, args ...string) ([]setting, result) {
	tb.Helper()
	cmd := exec.Command(bin, append([]string{"config", "show", "--json"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = tb.TempDir()
	r := runCmd(tb, cmd)
	if r.code != 0 {
		return nil, r
	}
	var out struct{ Settings []setting }
	if err := json.Unmarshal([]byte(r.out), &out); err != nil {
		tb.Fatalf("config show --json: %v\n%s", err, r.out)
	}
	return out.Settings, r
}

// uncomment turns every commented "# key = value" line into a setting.
var commentedKeyRe = regexp.MustCompile(`(?m)^# ([a-z_]+) = (.*)$`)

func TestConfigFile(t *testing.T) {
	bin := MustHostBinary(t)
	shipped, err := os.ReadFile("files/healthpost.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Ensure the file as shipped loads, and changes nothing.
	defaults, r := configShow(t, bin)
	if r.code != 0 {
		t.Fatalf("defaults: %s", r.out)
	}
	asShipped, r := configShow(t, bin, "--config", write("shipped.toml", shipped))
	if r.code != 0 {
		t.Fatalf("the shipped healthpost.toml does not load:\n%s", r.out)
	}
	for i, s := range asShipped {
		if s.Value != defaults[i].Value {
			t.Errorf("%s=%q as shipped, default %q", s.Key, s.Value, defaults[i].Value)
		}
	}

	// Ensure every key of the binary is in the file, and every key in the file is the binary's.
	documented := map[string]bool{}
	section := ""
	for line := range strings.Lines(string(shipped)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]") + "."
		}
		if m := commentedKeyRe.FindStringSubmatch(line); m != nil {
			documented[strings.TrimPrefix(section+m[1], ".")] = true
		}
	}
	for _, s := range defaults {
		if !documented[s.Key] {
			t.Errorf("config key %s is missing from packaging/files/healthpost.toml: add it, commented, with its default and what it does", s.Key)
		}
		delete(documented, s.Key)
	}
	for k := range documented {
		t.Errorf("packaging/files/healthpost.toml documents %s, which the binary does not know: uncommenting it would stop the node", k)
	}

	// Ensure the commented values are the real defaults: with every line
	// uncommented the file loads, every key comes from it, and nothing changes.
	uncommented := commentedKeyRe.ReplaceAll(shipped, []byte("$1 = $2"))
	all, r := configShow(t, bin, "--config", write("uncommented.toml", uncommented))
	if r.code != 0 {
		t.Fatalf("healthpost.toml with every setting uncommented does not load:\n%s", r.out)
	}
	for i, s := range all {
		want := defaults[i].Value
		if s.Key == "data_dir" {
			want = "/var/lib/healthpost" // the default of an installed binary; this one is not installed
		}
		if s.Value != want || !strings.HasSuffix(s.Source, "uncommented.toml") {
			t.Errorf("uncommented %s=%q from %s, want the default %q from the file", s.Key, s.Value, s.Source, want)
		}
	}

	// Ensure a technician's typo stops with a message naming the key and the file.
	typo := bytes.Replace(shipped, []byte("[facility]\n"), []byte("[facility]\nnmae = \"PHC Rampur\"\n"), 1)
	path := write("typo.toml", typo)
	if _, r := configShow(t, bin, "--config", path); r.code == 0 || !strings.Contains(r.out, "facility.nmae") || !strings.Contains(r.out, path) || !strings.Contains(r.out, "unknown key") {
		t.Fatalf("a typo gave exit %d:\n%s", r.code, r.out)
	}
}

// unitDirectives reads a systemd unit: each directive with the comment lines
// right above it.
func unitDirectives(tb testing.TB, path string) (map[string][]string, map[string]string) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	values := map[string][]string{}
	comments := map[string]string{}
	var comment []string
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			comment = nil
		case strings.HasPrefix(line, "#"):
			comment = append(comment, line)
		case strings.HasPrefix(line, "["):
			section, comment = line, nil
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				tb.Fatalf("%s: not a directive: %q", path, line)
			}
			key := section + k
			values[key] = append(values[key], v)
			comments[key] = strings.Join(comment, "\n")
			comment = nil
		}
	}
	return values, comments
}

func TestUnitFile(t *testing.T) {
	values, comments := unitDirectives(t, "files/healthpost.service")
	want := map[string]string{
		"[Service]Type":                    "notify",
		"[Service]NotifyAccess":            "main",
		"[Service]ExecStart":               "/usr/bin/healthpost serve",
		"[Service]WatchdogSec":             "60s",
		"[Service]Restart":                 "on-failure",
		"[Service]User":                    "healthpost",
		"[Service]SupplementaryGroups":     "dialout",
		"[Service]ProtectSystem":           "strict",
		"[Service]ReadWritePaths":          "/var/lib/healthpost",
		"[Service]NoNewPrivileges":         "yes",
		"[Service]PrivateTmp":              "yes",
		"[Service]EnvironmentFile":         "-/etc/healthpost/secrets.env",
		"[Unit]ConditionPathExists":        "!/var/lib/healthpost/UPGRADE-FAILED",
		"[Install]WantedBy":                "multi-user.target",
		"[Unit]After":                      "network-online.target time-sync.target",
		"[Service]ExecStartPre":            "+/bin/chown -R --no-dereference healthpost:healthpost /var/lib/healthpost",
		"[Service]StartLimitBurst":         "",
		"[Service]PrivateDevices":          "",
		"[Service]DevicePolicy":            "",
		"[Service]DeviceAllow":             "",
		"[Service]ProtectClock":            "",
		"[Service]SystemCallFilter":        "",
		"[Service]ProtectKernelLogs":       "",
		"[Service]RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	}
	for k, v := range want {
		got := strings.Join(values[k], " ")
		// Ensure each directive the node depends on, and none that would close the serial ports.
		if got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	// Ensure every directive in [Service] says why it is there (the sandboxing above all).
	for k := range values {
		if strings.HasPrefix(k, "[Service]") && comments[k] == "" {
			t.Errorf("%s has no comment saying why", k)
		}
	}
	// Ensure the watchdog interval the node uses fits: it pings at half of WatchdogSec.
	if d, err := time.ParseDuration(values["[Service]WatchdogSec"][0]); err != nil || d < 20*time.Second {
		t.Errorf("WatchdogSec=%v: too short for an SD card's slow moments", d)
	}
}

// udevKeyRe is one key of a udev rule: KEY, KEY{attr}, then an operator and a quoted value.
var udevKeyRe = regexp.MustCompile(`^(ACTION|SUBSYSTEM|SUBSYSTEMS|KERNEL|KERNELS|DRIVERS|ENV\{[A-Za-z_.]+\}|ATTRS?\{[a-z_]+\}|IMPORT\{builtin\}|GROUP|MODE|SYMLINK|GOTO|LABEL)(==|!=|\+=|=)"([^"]*)"$`)

func TestUdevRules(t *testing.T) {
	b, err := os.ReadFile("files/60-healthpost-serial.rules")
	if err != nil {
		t.Fatal(err)
	}
	labels, gotos := map[string]bool{}, map[string]bool{}
	var symlinks []string
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Ensure each key parses as udev reads it (udevadm verify is newer than bookworm).
		for kv := range strings.SplitSeq(line, ", ") {
			m := udevKeyRe.FindStringSubmatch(kv)
			if m == nil {
				t.Errorf("line %d: %q is not KEY op \"value\"", n+1, kv)
				continue
			}
			switch m[1] {
			case "LABEL":
				labels[m[3]] = true
			case "GOTO":
				gotos[m[3]] = true
			case "SYMLINK":
				symlinks = append(symlinks, m[3])
				if m[2] != "+=" {
					t.Errorf("line %d: SYMLINK%s replaces other rules' links; use +=", n+1, m[2])
				}
			}
		}
	}
	for g := range gotos {
		if !labels[g] {
			t.Errorf("GOTO %q has no LABEL", g)
		}
	}
	// Ensure the names land in /dev/healthpost/, one per adapter and one per socket.
	if len(symlinks) != 2 {
		t.Fatalf("symlinks=%q", symlinks)
	}
	for _, s := range symlinks {
		if !strings.HasPrefix(s, "healthpost/") {
			t.Errorf("symlink %q is not under /dev/healthpost/", s)
		}
	}
	if !bytes.Contains(b, []byte(`GROUP="dialout", MODE="0660"`)) {
		t.Error("ports are not given to the group dialout")
	}
}

func TestManPage(t *testing.T) {
	mustHaveTool(t, "man", "man-db")
	page, err := manPage(context.Background(), MustHostBinary(t), oldVersion, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	// Ensure every command of the binary has its section, with its flags.
	pages, err := collectHelp(context.Background(), MustHostBinary(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 10 {
		t.Fatalf("only %d commands found in the help", len(pages))
	}
	for _, p := range pages[1:] {
		if !bytes.Contains(page, []byte(`.SS "healthpost `+strings.Join(p.path, " ")+`"`)) {
			t.Errorf("no section for healthpost %s", strings.Join(p.path, " "))
		}
	}
	for _, s := range []string{"\\-\\-data\\-dir", "journalctl \\-u healthpost", "/etc/healthpost/healthpost.toml", ".SH EXIT STATUS"} {
		if !bytes.Contains(page, []byte(s)) {
			t.Errorf("man page lacks %q", s)
		}
	}
	// Ensure man renders it without a single warning, as lintian checks too.
	path := filepath.Join(t.TempDir(), "healthpost.1")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path)
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("man: %v\n%s", err, stderr.String())
	}
	// Ensure the page in the package is the same, compressed.
	deb := MustOldPackages(t)["amd64"].Path
	fsys := t.TempDir()
	MustRun(t, "dpkg-deb", "--extract", deb, fsys)
	gz, err := os.Open(filepath.Join(fsys, "usr/share/man/man1/healthpost.1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	packaged, _ := io.ReadAll(zr)
	if !bytes.Equal(packaged, page) {
		t.Error("the packaged man page differs from the one generated from the binary's help")
	}
}

func TestScripts(t *testing.T) {
	mustHaveTool(t, "dash", "dash")
	stage := t.TempDir()
	s, err := stageCommon(context.Background(), Options{Version: oldVersion, Epoch: testEpoch, ModuleDir: MustModuleDir(t)}, MustHostBinary(t), stage)
	if err != nil {
		t.Fatal(err)
	}
	scripts := []string{s.scripts.PreInstall, s.scripts.PostInstall, s.scripts.PreRemove, s.scripts.PostRemove}
	sort.Strings(scripts)
	for _, path := range scripts {
		// Ensure each script is valid for dash, Debian's /bin/sh, and stands alone.
		if out, err := exec.Command("dash", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", filepath.Base(path), err, out)
		}
		b, _ := os.ReadFile(path)
		if !bytes.Contains(b, []byte("set -e\n")) {
			t.Errorf("%s does not stop at the first failure (set -e)", filepath.Base(path))
		}
	}
}
