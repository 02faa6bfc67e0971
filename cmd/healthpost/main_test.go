package main_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/devices/mllp"
	"github.com/healthpost/healthpost/edge"
)

// binary is the healthpost command built once for these tests; the tests
// run it as a technician would.
var (
	binary     string
	buildFlags []string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "healthpost-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "healthpost")
	args := append([]string{"build", "-o", binary}, buildFlags...)
	build := exec.Command("go", append(args, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build healthpost:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is a data directory and the environment the commands get.
type node struct {
	t       testing.TB
	dir     string // working directory
	dataDir string
	env     []string
}

func newNode(t testing.TB) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, dir: dir, dataDir: filepath.Join(dir, "data")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HEALTHPOST_") {
			n.env = append(n.env, kv)
		}
	}
	// Ports the doctor checks are left to the kernel, so tests never collide.
	// No mDNS: its multicast would leave this machine.
	n.env = append(n.env, "HEALTHPOST_DATA_DIR="+n.dataDir, "HEALTHPOST_HTTP_LISTEN=127.0.0.1:0", "HEALTHPOST_MQTT_LISTEN=127.0.0.1:0",
		"HEALTHPOST_HTTP_MDNS=false")
	return n
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs a command to completion.
func (n *node) run(stdin string, args ...string) result {
	n.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env = n.dir, n.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func (n *node) mustRun(args ...string) string {
	n.t.Helper()
	r := n.run("", args...)
	if r.code != 0 {
		n.t.Fatalf("healthpost %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// server is a running `healthpost serve`.
type server struct {
	cmd      *exec.Cmd
	url      string
	password string // printed on first start, if it was
	stdout   []string
	stderr   *bytes.Buffer
	exited   chan struct{} // closed when the process has exited
	exitErr  error
}

// serve starts the node and returns once it prints that it is listening.
func (n *node) serve() *server {
	n.t.Helper()
	return n.start("serve")
}

// start runs a long-lived command (serve, hub) and returns once it prints
// that it is listening.
func (n *node) start(args ...string) *server {
	n.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env = n.dir, n.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	srv := &server{cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = srv.stderr
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { cmd.Process.Kill(); <-srv.exited })
	sc := bufio.NewScanner(stdout)
	expectPassword := false
	for sc.Scan() {
		line := sc.Text()
		srv.stdout = append(srv.stdout, line)
		if strings.Contains(line, "created the account 'admin'") {
			expectPassword = true
		} else if expectPassword && strings.TrimSpace(line) != "" {
			srv.password, expectPassword = strings.TrimSpace(line), false
		}
		if _, u, ok := strings.Cut(line, "listening on "); ok {
			srv.url = u
			break
		}
	}
	go func() { io.Copy(io.Discard, stdout); srv.exitErr = cmd.Wait(); close(srv.exited) }()
	if srv.url == "" {
		<-srv.exited
		n.t.Fatalf("%s exited before listening (%v):\n%s\n%s", args[0], srv.exitErr, strings.Join(srv.stdout, "\n"), srv.stderr)
	}
	return srv
}

// stop sends SIGTERM and returns the exit code.
func (s *server) stop(t testing.TB) int {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if ee, ok := s.exitErr.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of SIGTERM")
		return -1
	}
}

func TestServe_FirstStartServesAndStopsGracefully(t *testing.T) {
	n := newNode(t)
	srv := n.serve()
	// Ensure the first start prints a usable one-time admin password.
	if len(srv.password) != 19 {
		t.Fatalf("first admin password %q not printed:\n%s", srv.password, strings.Join(srv.stdout, "\n"))
	}
	resp, err := http.Get(srv.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health map[string]any
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != 200 || health["status"] != "ok" || health["storage"] != "ok" {
		t.Fatalf("healthz %d %v", resp.StatusCode, health)
	}
	// Ensure everything else needs a sign-in: refused, or sent to the sign-in page.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(srv.url + "/patients")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusUnauthorized && !strings.Contains(loc, "login") {
		t.Fatalf("GET /patients=%d (Location %q), want 401 or a redirect to sign-in", resp.StatusCode, loc)
	}

	// Ensure one-off commands work against the running node, and restore and migrate refuse.
	if out := n.mustRun("user", "list"); !strings.Contains(out, "admin") {
		t.Fatalf("user list:\n%s", out)
	}
	backup := filepath.Join(n.dir, "live-backup.db")
	n.mustRun("backup", backup)
	for _, args := range [][]string{{"restore", backup}, {"migrate"}} {
		r := n.run("", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "is running on") || !strings.Contains(r.stderr, "systemctl stop healthpost") {
			t.Fatalf("%s while serving: exit %d, %q", args[0], r.code, r.stderr)
		}
	}

	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exit=%d after SIGTERM\n%s", code, srv.stderr)
	}
	if !strings.Contains(srv.stderr.String(), "msg=stopped") {
		t.Fatalf("no clean stop in the log:\n%s", srv.stderr)
	}

	// Ensure the password printed is the admin's, and a second start prints none.
	db, err := sql.Open("sqlite", filepath.Join(n.dataDir, "healthpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	var hash string
	db.QueryRow(`SELECT password_hash FROM users WHERE username = 'admin'`).Scan(&hash)
	db.Close()
	if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, srv.password) {
		t.Fatalf("admin password stored as %q", hash)
	}
	again := n.serve()
	if again.password != "" {
		t.Fatal("a second start printed an admin password again")
	}
	again.stop(t)
	// The log never holds the password.
	if strings.Contains(srv.stderr.String(), srv.password) {
		t.Fatal("the admin password is in the log")
	}
}

func TestCLI_UsageErrors(t *testing.T) {
	n := newNode(t)
	cases := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"backup"}, 2, []string{"backup file required", "Try: healthpost backup"}},
		{[]string{"restore"}, 2, []string{"backup file required", "Try: healthpost restore"}},
		{[]string{"user", "add"}, 2, []string{"username required", "Try: healthpost user add"}},
		{[]string{"user", "add", "bob"}, 2, []string{"--role required"}},
		{[]string{"user", "add", "bob", "--role", "king"}, 2, []string{"role: must be health-worker, doctor, admin or technician"}},
		{[]string{"user", "disable", "nobody"}, 1, []string{`no user "nobody"`}},
		{[]string{"restore", "/nonexistent/backup.db"}, 1, []string{"/nonexistent/backup.db"}},
		{[]string{"frobnicate"}, 1, []string{"unknown command"}},
	}
	for _, tc := range cases {
		r := n.run("", tc.args...)
		if r.code != tc.code {
			t.Errorf("healthpost %s: exit %d, want %d (%s)", strings.Join(tc.args, " "), r.code, tc.code, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("healthpost %s: stderr %q lacks %q", strings.Join(tc.args, " "), r.stderr, w)
			}
		}
	}
}

func TestCLI_BadConfigAndDataDir(t *testing.T) {
	n := newNode(t)
	os.WriteFile(filepath.Join(n.dir, "healthpost.toml"), []byte("[facility]\nhfr_id = \"IN0910034387\"\nnmae = \"PHC\"\n"), 0o600)
	// Ensure ./healthpost.toml is found, and its typo stops start-up naming key and file.
	r := n.run("", "serve")
	if r.code != 1 || !strings.Contains(r.stderr, "healthpost.toml: facility.nmae: unknown key") {
		t.Fatalf("serve with a typo: exit %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(n.dataDir); err == nil {
		t.Fatal("serve created the data directory despite a bad config")
	}
	os.Remove(filepath.Join(n.dir, "healthpost.toml"))

	// A data dir where a file stands.
	blocker := filepath.Join(n.dir, "afile")
	os.WriteFile(blocker, nil, 0o600)
	r = n.run("", "serve", "--data-dir", filepath.Join(blocker, "data"))
	if r.code != 1 || !strings.Contains(r.stderr, "cannot create data directory") || !strings.Contains(r.stderr, "--data-dir") {
		t.Fatalf("serve on an impossible data dir: exit %d, %q", r.code, r.stderr)
	}

	// A read-only filesystem (root ignores file modes, so mount one).
	ro := filepath.Join(n.dir, "ro")
	os.Mkdir(ro, 0o755)
	if err := syscall.Mount("tmpfs", ro, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
		t.Fatalf("mount a read-only tmpfs (these tests need root, as .ci/run has): %v", err)
	}
	defer syscall.Unmount(ro, syscall.MNT_DETACH)
	r = n.run("", "user", "list", "--data-dir", ro)
	if r.code != 1 || !strings.Contains(r.stderr, "not writable") {
		t.Fatalf("user list on a read-only data dir: exit %d, %q", r.code, r.stderr)
	}
}

func TestCLI_UsersBackupRestoreAudit(t *testing.T) {
	n := newNode(t)
	r := n.run("s3cure-pass\n", "user", "add", "asha.kumari", "--role", "health-worker", "--name", "Asha Kumari", "--password-stdin")
	if r.code != 0 || strings.Contains(r.stdout, "s3cure-pass") {
		t.Fatalf("user add: %+v", r)
	}
	out := n.mustRun("user", "add", "dr.meena", "--role", "doctor", "--hpr-id", "71-2665-5777-1234")
	if !strings.Contains(out, "Password: ") {
		t.Fatalf("generated password not shown:\n%s", out)
	}
	backup := filepath.Join(n.dir, "usb", "hp.db")
	os.MkdirAll(filepath.Dir(backup), 0o755)
	if out := n.mustRun("backup", backup); !strings.Contains(out, "checked") {
		t.Fatalf("backup: %s", out)
	}
	n.mustRun("user", "disable", "asha.kumari")

	var users []struct {
		Username string
		Role     string
		Disabled bool
	}
	json.Unmarshal([]byte(n.mustRun("user", "list", "--json")), &users)
	if len(users) != 2 || users[0].Username != "asha.kumari" || !users[0].Disabled || users[1].Role != "doctor" {
		t.Fatalf("users=%+v", users)
	}

	// Ensure restore brings back the state of the backup and keeps what it replaced.
	out = n.mustRun("restore", backup)
	if !strings.Contains(out, "kept as") {
		t.Fatalf("restore: %s", out)
	}
	json.Unmarshal([]byte(n.mustRun("user", "list", "--json")), &users)
	if users[0].Disabled {
		t.Fatal("restore did not bring back the backup's state")
	}
	if out := n.mustRun("audit", "verify"); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s", out)
	}

	// Ensure tampering is named by audit verify and by the doctor.
	db, _ := sql.Open("sqlite", filepath.Join(n.dataDir, "healthpost.db"))
	if _, err := db.Exec(`DROP TRIGGER audit_log_no_update; UPDATE audit_log SET detail = 'role=admin' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r = n.run("", "audit", "verify")
	if r.code != 3 || !strings.Contains(r.stdout, "entry 2: entry 2 was altered") {
		t.Fatalf("audit verify after tampering: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = n.run("", "doctor")
	if r.code != 3 || !strings.Contains(r.stdout, "FAIL  audit log") {
		t.Fatalf("doctor after tampering: exit %d\n%s", r.code, r.stdout)
	}
}

func TestCLI_DoctorVersionConfig(t *testing.T) {
	n := newNode(t)
	r := n.run("", "doctor", "--json")
	var rep struct {
		Healthy bool
		Checks  []struct{ Name, Status, Detail string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
	}
	names := map[string]string{}
	for _, c := range rep.Checks {
		names[c.Name] = c.Status
	}
	for _, want := range []string{"database", "disk", "clock", "fsync", "http port", "mqtt port", "serial ports", "audit log", "outbox"} {
		if _, ok := names[want]; !ok {
			t.Errorf("doctor has no %q check", want)
		}
	}
	if !rep.Healthy || r.code != 0 {
		t.Fatalf("fresh node unhealthy: exit %d %+v", r.code, rep)
	}

	// Ensure a damaged database makes the doctor fail and say so.
	dbPath := filepath.Join(n.dataDir, "healthpost.db")
	os.WriteFile(dbPath, []byte("this is not a database at all, it is a shopping list"), 0o600)
	r = n.run("", "doctor")
	if r.code != 3 || !strings.Contains(r.stdout, "FAIL  database") || !strings.Contains(r.stdout, "restore") {
		t.Fatalf("doctor on a damaged database: exit %d\n%s", r.code, r.stdout)
	}
	os.Remove(dbPath)

	var v map[string]any
	json.Unmarshal([]byte(n.mustRun("version", "--json")), &v)
	if v["schema_version"] != float64(edge.SchemaVersion()) || v["version"] == "" {
		t.Fatalf("version=%v", v)
	}

	n.env = append(n.env, "HEALTHPOST_MQTT_PASSWORD=topsecret")
	out := n.mustRun("config", "show")
	if strings.Contains(out, "topsecret") || !strings.Contains(out, "env HEALTHPOST_MQTT_PASSWORD") {
		t.Fatalf("config show:\n%s", out)
	}
}

func TestCLI_Devices(t *testing.T) {
	n := newNode(t)
	out := n.mustRun("device", "add", "Oximeter 2", "--kind", "pulse-oximeter", "--transport", "mqtt", "--codec", "json")
	if !strings.Contains(out, "MQTT password: ") {
		t.Fatalf("no MQTT password shown:\n%s", out)
	}
	n.mustRun("device", "add", "Scale 1", "--kind", "scale", "--transport", "serial", "--codec", "line", "--port", "/dev/ttyUSB7",
		"--pattern", `WT:\s*(?P<value>[0-9.]+)\s*(?P<unit>kg|lb)`, "--code", "29463-7")
	// Ensure bad registrations are refused with the fix named, and store nothing.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"device", "add", "Scale 2", "--kind", "scale", "--transport", "serial", "--codec", "line", "--port", "/dev/ttyUSB8"}, `no "pattern"`},
		{[]string{"device", "add", "Scale 3", "--kind", "scale", "--transport", "serial"}, `set "port"`},
		{[]string{"device", "add", "Monitor", "--kind", "monitor", "--transport", "mllp"}, `set "listen"`},
		{[]string{"device", "add", "Toaster", "--kind", "toaster", "--transport", "mqtt"}, "kind"},
		{[]string{"device", "add", "Analyzer", "--kind", "analyzer", "--transport", "serial", "--port", "/dev/x", "--codes", "GLU=1234-5"}, "code table"},
	} {
		r := n.run("", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 mentioning %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	var list []struct {
		Name    string
		Enabled bool
	}
	json.Unmarshal([]byte(n.mustRun("device", "list", "--json")), &list)
	if len(list) != 2 {
		t.Fatalf("devices=%+v, want the 2 good ones", list)
	}
	// Ensure the test names a missing port with the fix, and fails.
	r := n.run("", "device", "test", "Scale 1")
	if r.code != 3 || !strings.Contains(r.stdout, "/dev/ttyUSB7 is not there; plug in the cable") {
		t.Fatalf("device test: exit %d\n%s", r.code, r.stdout)
	}
	n.mustRun("device", "remove", "Scale 1")
	if r := n.run("", "device", "remove", "Scale 1"); r.code != 1 || !strings.Contains(r.stderr, "no device") {
		t.Fatalf("second remove: exit %d %q", r.code, r.stderr)
	}
}

func TestServe_StoresHL7FromAMonitorOverMLLP(t *testing.T) {
	n := newNode(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	n.mustRun("device", "add", "Ward monitor", "--kind", "monitor", "--transport", "mllp", "--codec", "hl7", "--listen", addr)
	srv := n.serve()

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the node does not listen for the monitor on %s: %v\n%s", addr, err, srv.stderr)
	}
	defer conn.Close()
	msg, err := os.ReadFile("../../testdata/hl7/pcd01_monitor.hl7")
	if err != nil {
		t.Fatal(err)
	}
	reply, err := mllp.NewClient(conn).Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	// Ensure the monitor's ACK is AA and the readings are there once it arrives.
	if reply.Code != hl7.AckAccept || reply.ControlID != "MON-000123" {
		t.Fatalf("ACK %s for %q (%s)", reply.Code, reply.ControlID, reply.Text)
	}
	db, err := sql.Open("sqlite", filepath.Join(n.dataDir, "healthpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var readings int
	db.QueryRow(`SELECT count(*) FROM readings WHERE message_id LIKE 'MON-000123%'`).Scan(&readings)
	if readings == 0 {
		t.Fatal("ACK AA sent but no reading stored")
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exit %d\n%s", code, srv.stderr)
	}
	var frames int
	db.QueryRow(`SELECT frames FROM devices WHERE name = 'Ward monitor'`).Scan(&frames)
	if frames != 1 {
		t.Fatalf("device frames=%d after stop, want 1 (counters flushed on close)", frames)
	}
}

func TestSync_NodeDeliversToHub(t *testing.T) {
	hub := newNode(t)
	out := hub.mustRun("hub", "token", "add", "phc-rampur")
	token := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.TrimSpace(line); len(f) > 20 && !strings.Contains(f, " ") {
			token = f
		}
	}
	if token == "" {
		t.Fatalf("no token printed:\n%s", out)
	}
	h := hub.start("hub", "--listen", "127.0.0.1:0")

	n := newNode(t)
	n.env = append(n.env, "HEALTHPOST_UPSTREAM_URL="+h.url, "HEALTHPOST_UPSTREAM_TOKEN="+token,
		"HEALTHPOST_FACILITY_HFR_ID=IN0910034387", "HEALTHPOST_FACILITY_NAME=PHC Rampur")
	n.mustRun("migrate")
	s := edge.NewStore(filepath.Join(n.dataDir, edge.DBFileName))
	s.DiskCheckPeriod = 0
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "nurse"})
	if err := s.SetFacility(ctx, edge.FacilityConfig{Name: "PHC Rampur", HFRID: "IN0910034387"}); err != nil {
		t.Fatal(err)
	}
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 34, ABHANumber: "91-2666-2007-2857"}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	e := &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal, Complaint: "fever",
		Observations:  []edge.Observation{{LOINC: "8480-6", Value: 128, Unit: "mm[Hg]"}, {LOINC: "8462-4", Value: 84, Unit: "mm[Hg]"}},
		Prescriptions: []edge.Prescription{{Drug: "Paracetamol", Strength: "500 mg", Dose: "1 tablet", Frequency: "TDS", DurationDays: 3}}}
	if err := s.CreateEncounter(ctx, e); err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())

	// Ensure `sync now --wait` delivers every document of the visit, and a second run sends nothing again.
	if out := n.mustRun("sync", "now", "--wait", "--timeout", "60s"); !strings.Contains(strings.ToLower(out), "deliver") {
		t.Fatalf("sync now:\n%s", out)
	}
	var st struct {
		Counts []edge.OutboxCount
	}
	if err := json.Unmarshal([]byte(n.mustRun("sync", "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, c := range st.Counts {
		if c.State == edge.OutboxDelivered {
			delivered += int(c.Count)
		} else if c.Count > 0 {
			t.Fatalf("after sync now: %d documents %s", c.Count, c.State)
		}
	}
	if delivered != 3 {
		t.Fatalf("delivered=%d, want 3 (OPConsult, Prescription, Wellness)", delivered)
	}
	req, _ := http.NewRequest("GET", h.url+"/Bundle?identifier=", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct{ Total int }
	json.NewDecoder(resp.Body).Decode(&bundle)
	resp.Body.Close()
	if resp.StatusCode != 200 || bundle.Total != 3 {
		t.Fatalf("hub search answered %d with %d bundles, want 3", resp.StatusCode, bundle.Total)
	}
	n.mustRun("sync", "now")
	h.stop(t)
}

// A technician who runs a newer healthpost's backup before the upgrade has
// started gets the database as it was: backup never migrates.
func TestCLI_BackupOfAnEarlierSchemaDoesNotMigrate(t *testing.T) {
	n := newNode(t)
	dbPath := filepath.Join(n.dataDir, edge.DBFileName)
	old := edge.NewStore(dbPath)
	old.MaxSchemaVersion = 3
	if err := old.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	old.Close(context.Background())

	backup := filepath.Join(n.dir, "usb", "before-upgrade.db")
	os.MkdirAll(filepath.Dir(backup), 0o755)
	out := n.mustRun("backup", backup)
	if !strings.Contains(out, "schema version 3") || !strings.Contains(out, "copied as it is") {
		t.Fatalf("backup of a version-3 database says:\n%s", out)
	}
	for _, p := range []string{dbPath, backup} {
		if v, err := edge.DatabaseFileVersion(context.Background(), p); err != nil || v != 3 {
			t.Fatalf("%s: schema version %d (%v) after backup, want 3 untouched", p, v, err)
		}
	}

	// A missing database is a clear error, not an empty backup.
	r := n.run("", "backup", filepath.Join(n.dir, "x.db"), "--data-dir", filepath.Join(n.dir, "nowhere"))
	if r.code == 0 || !strings.Contains(r.stderr, "there is no database") {
		t.Fatalf("backup without a database: exit %d, %q", r.code, r.stderr)
	}
}
