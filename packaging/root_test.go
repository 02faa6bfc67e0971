package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// root is a throw-away copy of this machine to install packages into: an
// overlay of / whose changes land in a tmpfs and vanish with the test, with
// /dev and /proc mounted and an empty /run and /tmp. Commands run in it with
// chroot, so dpkg, adduser and the maintainer scripts do exactly what they do
// on a technician's machine, while the machine itself, and any healthpost
// installed on it, are never touched. No systemd runs in it (as in a chroot
// or a container) unless the test fakes one (fakeSystemd).
type root struct {
	t   *testing.T
	dir string
}

// chrootEnv is the environment dpkg runs with, as under sudo.
var chrootEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8", "HOME=/root", "TERM=dumb", "DEBIAN_FRONTEND=noninteractive",
}

// MustRoot mounts a throw-away root for the test and unmounts it at the end.
func MustRoot(t *testing.T) *root {
	t.Helper()
	mustBeRoot(t)
	mustHaveTool(t, "dpkg", "dpkg")
	base := t.TempDir()
	mount := func(src, target, fstype string, flags uintptr, data string) {
		t.Helper()
		if err := syscall.Mount(src, target, fstype, flags, data); err != nil {
			t.Fatalf("mount %s on %s: %v", src, target, err)
		}
		t.Cleanup(func() {
			if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", target, err)
			}
		})
	}
	mount("tmpfs", base, "tmpfs", 0, "size=2g,mode=0755")
	// Nothing mounted below base propagates anywhere else.
	if err := syscall.Mount("", base, "", syscall.MS_PRIVATE|syscall.MS_REC, ""); err != nil {
		t.Fatalf("make %s private: %v", base, err)
	}
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := &root{t: t, dir: filepath.Join(base, "root")}
	mount("overlay", r.dir, "overlay", 0, fmt.Sprintf("lowerdir=/,upperdir=%s,workdir=%s", filepath.Join(base, "upper"), filepath.Join(base, "work")))
	mount("/dev", r.path("/dev"), "", syscall.MS_BIND|syscall.MS_REC, "")
	mount("proc", r.path("/proc"), "proc", 0, "")
	mount("tmpfs", r.path("/run"), "tmpfs", 0, "mode=0755")
	mount("tmpfs", r.path("/tmp"), "tmpfs", 0, "mode=1777")

	// Start from a machine without healthpost, whatever this one has.
	if r.run("dpkg-query", "--show", "healthpost").code == 0 {
		r.mustRun("dpkg", "--purge", "healthpost")
	}
	for _, p := range []string{"/var/lib/healthpost", "/etc/healthpost"} {
		os.RemoveAll(r.path(p))
	}
	if r.run("getent", "passwd", "healthpost").code == 0 {
		r.mustRun("userdel", "healthpost")
	}
	if r.run("getent", "group", "healthpost").code == 0 {
		r.mustRun("groupdel", "healthpost")
	}
	r.mustRun("sh", "-c", "dpkg-statoverride --list /var/lib/healthpost >/dev/null && dpkg-statoverride --remove /var/lib/healthpost || true")
	// man-db would rebuild its index at every install; that is slow and not ours to test.
	os.Remove(r.path("/var/lib/man-db/auto-update"))
	return r
}

// path is the host path of p inside the root.
func (r *root) path(p string) string { return filepath.Join(r.dir, p) }

// command is a command to run inside the root.
func (r *root) command(args ...string) *exec.Cmd {
	cmd := exec.Command("/usr/bin/env", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: r.dir}
	cmd.Dir = "/"
	cmd.Env = chrootEnv
	return cmd
}

func (r *root) run(args ...string) result {
	r.t.Helper()
	return runCmd(r.t, r.command(args...))
}

func (r *root) mustRun(args ...string) string {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("in the root: %s: exit %d\n%s", strings.Join(args, " "), res.code, res.out)
	}
	return res.out
}

// asNode runs the installed healthpost as the service's user, with env added.
func (r *root) asNode(env []string, args ...string) result {
	r.t.Helper()
	return r.run(append(append(append([]string{"runuser", "-u", "healthpost", "--", "env"}, env...), "healthpost"), args...)...)
}

// install copies the package into the root and installs it with dpkg -i.
func (r *root) install(p Package) result {
	r.t.Helper()
	dst := "/tmp/" + filepath.Base(p.Path)
	if _, err := os.Stat(r.path(dst)); err != nil {
		b, err := os.ReadFile(p.Path)
		if err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(r.path(dst), b, 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	return r.run("dpkg", "-i", dst)
}

func (r *root) mustInstall(p Package) string {
	r.t.Helper()
	res := r.install(p)
	if res.code != 0 {
		r.t.Fatalf("dpkg -i %s: exit %d\n%s", filepath.Base(p.Path), res.code, res.out)
	}
	return res.out
}

// status is dpkg's word on the package: "install ok installed 1.0.0".
func (r *root) status() string {
	r.t.Helper()
	res := r.run("dpkg-query", "--show", "--showformat", "${Status} ${Version}", "healthpost")
	return strings.TrimSpace(res.out)
}

// owner is "user:group mode" of p inside the root.
func (r *root) owner(p string) string {
	r.t.Helper()
	return strings.TrimSpace(r.mustRun("stat", "-c", "%U:%G %a", p))
}

// fixOwners gives the data directory back to the node after the test wrote
// to it as root, as the unit's ExecStartPre does before each start.
func (r *root) fixOwners() {
	r.t.Helper()
	r.mustRun("chown", "-R", "--no-dereference", "healthpost:healthpost", "/var/lib/healthpost")
}

// fakeSystemd makes the root look as if systemd ran it: /run/systemd/system
// exists and systemctl is a stand-in that records each call (also on
// stdout, so the order shows among dpkg's messages), keeps units' state in
// /run/fake-systemd, and honours the unit's ConditionPathExists= blocker.
func (r *root) fakeSystemd() {
	r.t.Helper()
	for _, d := range []string{"/run/systemd/system", "/run/fake-systemd"} {
		if err := os.MkdirAll(r.path(d), 0o755); err != nil {
			r.t.Fatal(err)
		}
	}
	script := `#!/bin/sh
# systemctl stand-in for the healthpost packaging tests.
state=/run/fake-systemd
echo "systemctl $*" >>$state/calls
verb= unit=
for a in "$@"; do
	case "$a" in
	--*) ;;
	*) if [ -z "$verb" ]; then verb=$a; else unit=$a; fi ;;
	esac
done
wants=/etc/systemd/system/multi-user.target.wants
case "$verb" in
daemon-reload) ;;
preset | enable)
	mkdir -p $wants
	ln -sf "/lib/systemd/system/$unit" "$wants/$unit" ;;
disable) rm -f "$wants/$unit" ;;
is-enabled)
	if [ -e "$wants/$unit" ]; then echo enabled; else echo disabled; exit 1; fi ;;
is-active) [ -e "$state/active-$unit" ] ;;
start | restart)
	echo "fake-systemctl: $verb $unit"
	if [ -e /var/lib/healthpost/UPGRADE-FAILED ]; then echo "fake-systemctl: condition failed, $unit not started"; exit 0; fi
	if [ -e "$state/fail-start" ]; then echo "Job for $unit failed." >&2; exit 1; fi
	touch "$state/active-$unit" ;;
stop)
	echo "fake-systemctl: stop $unit"
	rm -f "$state/active-$unit" ;;
*) ;;
esac
`
	if err := os.WriteFile(r.path("/usr/local/bin/systemctl"), []byte(script), 0o755); err != nil {
		r.t.Fatal(err)
	}
	// A machine that boots with systemd lets packages start services.
	r.allowStarts()
}

// denyStarts installs a policy-rc.d that forbids starting services, as
// container images and image builders do; allowStarts removes it.
func (r *root) denyStarts() {
	r.t.Helper()
	if err := os.WriteFile(r.path("/usr/sbin/policy-rc.d"), []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		r.t.Fatal(err)
	}
}

func (r *root) allowStarts() {
	r.t.Helper()
	if err := os.Remove(r.path("/usr/sbin/policy-rc.d")); err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
}

// active reports whether the fake systemd runs the node.
func (r *root) active() bool {
	_, err := os.Stat(r.path("/run/fake-systemd/active-healthpost.service"))
	return err == nil
}

// dbPath is the host path of the installed node's database.
func (r *root) dbPath() string { return r.path("/var/lib/healthpost/" + edge.DBFileName) }

// records are the rows of every table, each row rendered as text, sorted.
type records map[string][]string

func (rs records) count() int {
	n := 0
	for _, rows := range rs {
		n += len(rows)
	}
	return n
}

// dumpDB reads every row of every table of the database at path.
func dumpDB(tb testing.TB, path string) records {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		tb.Fatalf("list tables of %s: %v", path, err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	out := records{}
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			tb.Fatalf("read %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		lines := []string{}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			if table == "meta" && fmt.Sprintf("%s", vals[0]) == "clock_high_water" {
				continue // the latest time the node has seen: every write moves it on
			}
			lines = append(lines, fmt.Sprintf("%q", vals))
		}
		rows.Close()
		slices.Sort(lines)
		out[table] = lines
	}
	return out
}

// userVersion is the schema version recorded in the database at path.
func userVersion(tb testing.TB, path string) int {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		tb.Fatalf("user_version of %s: %v", path, err)
	}
	return v
}

// MustFillRecords writes what a day at a health centre leaves in the
// installed node's database: patients with a visit each (vitals, diagnosis,
// prescription), a device and its readings, some waiting to be assigned.
// It goes through the store, so every write also adds its outbox and audit
// rows. It returns the patients' count.
func MustFillRecords(t *testing.T, r *root, patients int) {
	t.Helper()
	s := edge.NewStore(r.dbPath())
	s.DiskCheckPeriod = 0
	s.LowFreeBytes, s.CriticalFreeBytes = 32<<20, 8<<20
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "packaging-test"})
	if err := s.Open(ctx); err != nil {
		t.Fatalf("open the installed database: %v", err)
	}
	defer func() {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		r.fixOwners()
	}()
	d := &edge.Device{Name: fmt.Sprintf("bp-%d", time.Now().UnixNano()), Kind: "bp-monitor", Transport: "mqtt"}
	if err := s.CreateDevice(ctx, d); err != nil {
		t.Fatalf("create device: %v", err)
	}
	now := time.Now()
	for i := range patients {
		p := &edge.Patient{Name: "Patient " + strconv.Itoa(i), Gender: "F", BirthDate: "1990-04-12", Village: "Rampur"}
		if err := s.CreatePatient(ctx, p); err != nil {
			t.Fatalf("create patient: %v", err)
		}
		e := &edge.Encounter{
			PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal, Complaint: "fever for 3 days",
			Observations: []edge.Observation{
				{LOINC: "8480-6", Value: 128, Unit: "mm[Hg]", EffectiveAt: now},
				{LOINC: "8462-4", Value: 84, Unit: "mm[Hg]", EffectiveAt: now},
				{LOINC: "8310-5", Value: 38.4, Unit: "Cel", EffectiveAt: now},
			},
			Diagnoses:     []edge.Diagnosis{{Code: "A01.0", Display: "Typhoid fever"}},
			Prescriptions: []edge.Prescription{{Drug: "Paracetamol", Strength: "500 mg", Dose: "1 tablet", Frequency: "TDS", DurationDays: 3}},
		}
		if err := s.CreateEncounter(ctx, e); err != nil {
			t.Fatalf("create encounter: %v", err)
		}
		var rs []*edge.Reading
		for j, v := range []float64{120 + float64(i%20), 80, 72} {
			rs = append(rs, &edge.Reading{DeviceID: d.ID, MessageID: fmt.Sprintf("%s-%d-%d", d.Name, i, j),
				LOINC: []string{"8480-6", "8462-4", "8867-4"}[j], Value: v, Unit: []string{"mm[Hg]", "mm[Hg]", "/min"}[j],
				EffectiveAt: now, PatientRef: "unknown-" + strconv.Itoa(i)})
		}
		if err := s.SaveReadings(ctx, rs); err != nil {
			t.Fatalf("save readings: %v", err)
		}
	}
}

// calls are the fake systemctl's recorded calls.
func (r *root) calls() []string {
	f, err := os.Open(r.path("/run/fake-systemd/calls"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// MustRawSQL opens the database at path with plain SQLite, for a test that
// changes it behind the node's back.
func MustRawSQL(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// mustKeepRecords fails unless every row of before is in after, unchanged,
// and no table lost or gained rows, naming what differs.
func mustKeepRecords(tb testing.TB, before, after records) {
	tb.Helper()
	for table, rows := range before {
		got := after[table]
		if slices.Equal(rows, got) {
			continue
		}
		var gone []string
		for _, row := range rows {
			if !slices.Contains(got, row) {
				gone = append(gone, row)
			}
		}
		tb.Errorf("table %s: %d rows before, %d after; missing or changed: %.400q", table, len(rows), len(got), gone)
	}
}
