package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// These tests build real packages and install them as a technician would,
// with dpkg, into a throw-away copy of this machine (see MustRoot). They run
// as root, with dpkg-deb and lintian installed (.ci/run installs them).

// Versions the tests build: the release a centre runs, and the next one,
// which brings two more schema migrations.
const (
	oldVersion  = "1.0.0"
	nextVersion = "1.1.0"
)

// testEpoch is the time stamped on the test packages. It lies before any
// real clock the tests run under, so the node's clock check passes.
var testEpoch = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

var tmpRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "healthpost-packaging-test-")
	if err != nil {
		panic(err)
	}
	tmpRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mustBeRoot stops a test that needs root with the way to run it.
func mustBeRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("this test installs packages and mounts file systems, so it needs root: run bash .ci/run")
	}
}

// mustHaveTool stops a test whose tool is missing, naming the package.
func mustHaveTool(tb testing.TB, tool, pkg string) {
	tb.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		tb.Fatalf("%s is not installed: apt-get install %s (bash .ci/run installs it)", tool, pkg)
	}
}

// result is a finished command.
type result struct {
	out  string // stdout and stderr, interleaved as written
	code int
}

// runCmd runs cmd to completion and returns its output and exit code.
func runCmd(tb testing.TB, cmd *exec.Cmd) result {
	tb.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			tb.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{out: out.String(), code: code}
}

// MustRun runs a host command and returns its output, failing on a non-zero exit.
func MustRun(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	r := runCmd(tb, exec.Command(name, args...))
	if r.code != 0 {
		tb.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), r.code, r.out)
	}
	return r.out
}

// builds holds the packages the tests share, each built once.
var builds struct {
	sync.Mutex
	module string
	old    map[string]Package // oldVersion, every architecture
	next   Package            // nextVersion, amd64, two more migrations
	host   string             // a healthpost binary for this machine
}

// MustModuleDir returns the healthpost module the tests build: a snapshot
// of this work tree taken once, so that every package of a test run comes
// from the same sources even while people edit the tree. (Builds use
// -trimpath, so the Go build cache serves the snapshot as it serves the tree.)
func MustModuleDir(tb testing.TB) string {
	tb.Helper()
	builds.Lock()
	defer builds.Unlock()
	if builds.module == "" {
		dir, err := moduleDir(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		snapshot := filepath.Join(tmpRoot, "src", "healthpost")
		mustCopySource(tb, dir, snapshot)
		builds.module = snapshot
	}
	return builds.module
}

// MustBuild builds packages with the test's fixed time into a new directory.
func MustBuild(tb testing.TB, opts Options) []Package {
	tb.Helper()
	if opts.ModuleDir == "" {
		opts.ModuleDir = MustModuleDir(tb)
	}
	if opts.Out == "" {
		dir, err := os.MkdirTemp(tmpRoot, "dist-")
		if err != nil {
			tb.Fatal(err)
		}
		opts.Out = dir
	}
	if opts.Epoch.IsZero() {
		opts.Epoch = testEpoch
	}
	var log bytes.Buffer
	opts.Log = &log
	pkgs, err := Build(context.Background(), opts)
	if err != nil {
		tb.Fatalf("build packages: %v\n%s", err, log.String())
	}
	return pkgs
}

// MustOldPackages returns the packages of oldVersion for every architecture.
func MustOldPackages(tb testing.TB) map[string]Package {
	tb.Helper()
	MustModuleDir(tb)
	builds.Lock()
	defer builds.Unlock()
	if builds.old == nil {
		builds.old = map[string]Package{}
		for _, p := range MustBuild(tb, Options{Version: oldVersion, ModuleDir: builds.module}) {
			builds.old[p.Arch] = p
		}
	}
	return builds.old
}

// nextMigrations are the migrations nextVersion adds on top of the tree's,
// numbered after them. The first reads existing records, as a real upgrade's
// migration would; the second fails when the database already holds a table
// named packaging_probe_conflict, which is how a test injects a failure.
func nextMigrations() map[int]string {
	v := edge.SchemaVersion()
	return map[int]string{
		v + 1: "-- packaging tests only: reads every patient, as a real migration might\n" +
			"CREATE TABLE packaging_probe_patients (patient_id TEXT PRIMARY KEY) STRICT;\n" +
			"INSERT INTO packaging_probe_patients (patient_id) SELECT id FROM patients;\n",
		v + 2: "-- packaging tests only: fails if the table exists already\n" +
			"CREATE TABLE packaging_probe_conflict (id INTEGER PRIMARY KEY) STRICT;\n",
	}
}

// MustNextPackage returns the amd64 package of nextVersion: the same tree
// built with two more migrations, added with 'go build -overlay' so that
// nothing in edge/ changes.
func MustNextPackage(tb testing.TB) Package {
	tb.Helper()
	module := MustModuleDir(tb)
	builds.Lock()
	defer builds.Unlock()
	if builds.next.Path == "" {
		dir, err := os.MkdirTemp(tmpRoot, "overlay-")
		if err != nil {
			tb.Fatal(err)
		}
		replace := map[string]string{}
		for v, sql := range nextMigrations() {
			name := fmt.Sprintf("%04d_packaging_probe.sql", v)
			src := filepath.Join(dir, name)
			if err := os.WriteFile(src, []byte(sql), 0o644); err != nil {
				tb.Fatal(err)
			}
			replace[filepath.Join(module, "edge", "migrations", name)] = src
		}
		b, _ := json.Marshal(map[string]any{"Replace": replace})
		overlay := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(overlay, b, 0o644); err != nil {
			tb.Fatal(err)
		}
		builds.next = MustBuild(tb, Options{Version: nextVersion, Arches: []string{"amd64"}, GoOverlay: overlay, ModuleDir: module})[0]
	}
	return builds.next
}

// MustHostBinary returns a healthpost binary for this machine, built as the
// packages build it.
func MustHostBinary(tb testing.TB) string {
	tb.Helper()
	module := MustModuleDir(tb)
	builds.Lock()
	defer builds.Unlock()
	if builds.host == "" {
		dir, err := os.MkdirTemp(tmpRoot, "host-")
		if err != nil {
			tb.Fatal(err)
		}
		bin := filepath.Join(dir, "healthpost")
		opts := Options{Version: oldVersion, Epoch: testEpoch, ModuleDir: module}
		if err := goBuild(context.Background(), opts, runtime.GOARCH, nil, bin); err != nil {
			tb.Fatal(err)
		}
		builds.host = bin
	}
	return builds.host
}

// sha256File is the hex SHA-256 of a file.
func sha256File(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
