package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

// mustContain fails unless out holds every one of want.
func mustContain(tb testing.TB, what, out string, want ...string) {
	tb.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			tb.Fatalf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

// doctorEnv keeps the doctor's port checks off ports this machine may be
// using for something else; everything else is the installed config.
var doctorEnv = []string{"HEALTHPOST_HTTP_LISTEN=127.0.0.1:0", "HEALTHPOST_MQTT_LISTEN=127.0.0.1:0"}

// mustHealthy runs the installed doctor and fails unless every check passes.
func mustHealthy(t *testing.T, r *root) {
	t.Helper()
	res := r.asNode(doctorEnv, "doctor", "--json")
	var rep struct {
		Healthy bool
		Checks  []edge.Check
	}
	if err := json.Unmarshal([]byte(res.out), &rep); err != nil {
		t.Fatalf("doctor --json (exit %d): %v\n%s", res.code, err, res.out)
	}
	if res.code != 0 || !rep.Healthy {
		t.Fatalf("doctor: exit %d, unhealthy:\n%s", res.code, res.out)
	}
}

// schemaRe reads the schema from `healthpost migrate`.
var schemaRe = regexp.MustCompile(`is at schema version (\d+)`)

func TestInstall(t *testing.T) {
	r := MustRoot(t)
	old := MustOldPackages(t)["amd64"]
	next := MustNextPackage(t)
	schema := edge.SchemaVersion()

	t.Run("FreshWithoutSystemd", func(t *testing.T) {
		out := r.mustInstall(old)
		// Ensure the technician is told where the node is and where the password is.
		mustContain(t, "install output", out,
			"created the system user healthpost",
			"created /etc/healthpost/secrets.env (mode 0600)",
			"systemd is not running here", "sudo -u healthpost healthpost serve",
			"tablets on this network open  http://",
			"sudo journalctl -u healthpost | grep -A 3 'First start'",
			fmt.Sprintf("at schema %d", schema))
		if got, want := r.status(), "install ok installed "+oldVersion; got != want {
			t.Fatalf("status=%q, want %q", got, want)
		}
		// Ensure the user: a system user without a login, in dialout for the serial ports.
		pw := strings.Split(strings.TrimSpace(r.mustRun("getent", "passwd", "healthpost")), ":")
		if uid := pw[2]; len(uid) > 3 || pw[5] != "/var/lib/healthpost" || !strings.HasSuffix(pw[6], "nologin") {
			t.Fatalf("passwd entry %q: want a system uid, home /var/lib/healthpost, no login shell", pw)
		}
		if groups := r.mustRun("id", "-nG", "healthpost"); !slices.Contains(strings.Fields(groups), "dialout") {
			t.Fatalf("healthpost is in %q, not dialout", groups)
		}
		// Ensure owners and modes: data for the node only, secrets for root only.
		for p, want := range map[string]string{
			"/var/lib/healthpost":               "healthpost:healthpost 750",
			"/var/lib/healthpost/backups":       "healthpost:healthpost 750",
			"/var/lib/healthpost/healthpost.db": "healthpost:healthpost 640",
			"/etc/healthpost/secrets.env":       "root:root 600",
			"/etc/healthpost/healthpost.toml":   "root:root 644",
			"/usr/bin/healthpost":               "root:root 755",
		} {
			if got := r.owner(p); got != want {
				t.Errorf("%s: %s, want %s", p, got, want)
			}
		}
		if out := r.mustRun("dpkg-statoverride", "--list", "/var/lib/healthpost"); strings.TrimSpace(out) != "healthpost healthpost 750 /var/lib/healthpost" {
			t.Errorf("statoverride %q", out)
		}
		// Ensure the service is enabled even here, so an image made in a chroot starts the node at boot.
		if _, err := os.Lstat(r.path("/etc/systemd/system/multi-user.target.wants/healthpost.service")); err != nil {
			t.Errorf("not enabled: %v", err)
		}
		if got := userVersion(t, r.dbPath()); got != schema {
			t.Errorf("new database at schema %d, want %d", got, schema)
		}
	})

	t.Run("InstalledBinary", func(t *testing.T) {
		// Ensure the binary is the package's, and the shipped config is what it loads.
		mustContain(t, "version", r.mustRun("healthpost", "version"), "healthpost "+oldVersion, fmt.Sprintf("schema %d", schema))
		var cfg struct {
			File     string
			Settings []setting
		}
		if err := json.Unmarshal([]byte(r.mustRun("healthpost", "config", "show", "--json")), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.File != "/etc/healthpost/healthpost.toml" {
			t.Fatalf("config file %q", cfg.File)
		}
		for _, s := range cfg.Settings {
			if s.Source != "default" && s.Source != "/etc/healthpost/healthpost.toml" {
				t.Errorf("%s from %s", s.Key, s.Source)
			}
			if s.Key == "data_dir" && s.Value != "/var/lib/healthpost" {
				t.Errorf("data_dir=%s", s.Value)
			}
		}
		// Ensure the commented values are an installed node's defaults, data_dir included.
		shipped, _ := os.ReadFile(r.path("/etc/healthpost/healthpost.toml"))
		os.WriteFile(r.path("/tmp/uncommented.toml"), commentedKeyRe.ReplaceAll(shipped, []byte("$1 = $2")), 0o644)
		var all struct{ Settings []setting }
		json.Unmarshal([]byte(r.mustRun("healthpost", "config", "show", "--json", "--config", "/tmp/uncommented.toml")), &all)
		for i, s := range all.Settings {
			if s.Value != cfg.Settings[i].Value || s.Source != "/tmp/uncommented.toml" {
				t.Errorf("uncommented %s=%q from %s, default %q", s.Key, s.Value, s.Source, cfg.Settings[i].Value)
			}
		}

		// Ensure migrate, user add and doctor work, as the node's user and as root with sudo.
		if m := schemaRe.FindStringSubmatch(r.asNode(nil, "migrate").out); m == nil || m[1] != fmt.Sprint(schema) {
			t.Fatalf("migrate did not report schema %d", schema)
		}
		out := r.mustRun("healthpost", "user", "add", "asha.kumari", "--role", "health-worker", "--name", "Asha Kumari")
		mustContain(t, "user add", out, "Added asha.kumari (health-worker)", "Password: ")
		if res := r.asNode(nil, "user", "add", "dr.rao", "--role", "doctor"); res.code != 0 {
			t.Fatalf("user add as the node's user: %s", res.out)
		}
		mustContain(t, "user list", r.mustRun("healthpost", "user", "list"), "asha.kumari", "dr.rao")
		mustHealthy(t, r)
		mustContain(t, "audit verify", r.asNode(nil, "audit", "verify").out, "intact")
		// Ensure root's commands left nothing the node could not open.
		if out := r.mustRun("find", "/var/lib/healthpost", "-not", "-user", "healthpost"); strings.TrimSpace(out) != "" {
			t.Errorf("files not the node's after sudo commands:\n%s", out)
		}
	})

	t.Run("Reinstall", func(t *testing.T) {
		MustFillRecords(t, r, 5)
		before := dumpDB(t, r.dbPath())
		// Ensure installing the same package again is an upgrade to itself: a copy, no change.
		out := r.mustInstall(old)
		mustContain(t, "reinstall output", out, "copied its database to /var/lib/healthpost/backups/pre-upgrade-")
		if strings.Contains(out, "created the system user") || strings.Contains(out, "First start") {
			t.Fatalf("a reinstall acted as a first install:\n%s", out)
		}
		after := dumpDB(t, r.dbPath())
		mustKeepRecords(t, before, after)
		if got := strings.Count("\n"+r.mustRun("getent", "passwd"), "\nhealthpost:"); got != 1 {
			t.Fatalf("%d users named healthpost", got)
		}
	})

	t.Run("UpgradeKeepsEveryRecord", func(t *testing.T) {
		MustFillRecords(t, r, 40)
		before := dumpDB(t, r.dbPath())
		sum := sha256File(t, r.dbPath())
		out := r.mustInstall(next)
		mustContain(t, "upgrade output", out,
			"copied its database to /var/lib/healthpost/backups/pre-upgrade-",
			fmt.Sprintf("version %s is installed; the database /var/lib/healthpost/healthpost.db is at schema %d", nextVersion, schema+2))
		if strings.Contains(out, "First start") {
			t.Error("an upgrade talks about the first start")
		}
		// Ensure every record of every table survived, unchanged.
		after := dumpDB(t, r.dbPath())
		mustKeepRecords(t, before, after)
		if got, want := len(after["packaging_probe_patients"]), len(before["patients"]); got != want {
			t.Errorf("the new migration saw %d patients, want %d", got, want)
		}
		if got := userVersion(t, r.dbPath()); got != schema+2 {
			t.Errorf("schema %d after upgrade, want %d", got, schema+2)
		}
		mustContain(t, "audit verify", r.asNode(nil, "audit", "verify").out, "intact")
		mustHealthy(t, r)
		// Ensure the pre-upgrade copy is the database exactly as it was.
		copies, _ := filepath.Glob(r.path("/var/lib/healthpost/backups/pre-upgrade-*-from-" + oldVersion + "/healthpost.db"))
		if len(copies) == 0 || sha256File(t, copies[len(copies)-1]) != sum {
			t.Fatalf("no byte-identical pre-upgrade copy among %q", copies)
		}
		t.Logf("upgrade %s -> %s: %d records in %d tables kept, schema %d -> %d", oldVersion, nextVersion, before.count(), len(before), schema, schema+2)
	})

	t.Run("RemoveKeepsData", func(t *testing.T) {
		sum := sha256File(t, r.dbPath())
		out := r.mustRun("dpkg", "--remove", "healthpost")
		mustContain(t, "remove output", out, "The records are kept in /var/lib/healthpost")
		if got := r.status(); !strings.HasPrefix(got, "deinstall ok config-files") {
			t.Fatalf("status=%q", got)
		}
		if _, err := os.Stat(r.path("/usr/bin/healthpost")); err == nil {
			t.Fatal("binary still there")
		}
		if sha256File(t, r.dbPath()) != sum {
			t.Fatal("remove changed the database")
		}
	})

	t.Run("PurgeKeepsDatabase", func(t *testing.T) {
		sum := sha256File(t, r.dbPath())
		out := r.mustRun("dpkg", "--purge", "healthpost")
		mustContain(t, "purge output", out, "The health records were NOT deleted", "/var/lib/healthpost/healthpost.db", "sudo rm -r /var/lib/healthpost")
		if sha256File(t, r.dbPath()) != sum {
			t.Fatal("purge changed the database")
		}
		for _, p := range []string{"/etc/healthpost/healthpost.toml", "/etc/healthpost/secrets.env"} {
			if _, err := os.Stat(r.path(p)); err == nil {
				t.Errorf("%s survived the purge", p)
			}
		}
		if r.run("getent", "passwd", "healthpost").code != 0 {
			t.Error("the user that owns the records was deleted")
		}
		if r.run("dpkg-statoverride", "--list", "/var/lib/healthpost").code == 0 {
			t.Error("statoverride left behind")
		}
	})

	t.Run("InstallAfterPurge", func(t *testing.T) {
		before := dumpDB(t, r.dbPath())
		// Ensure a new install carries on with the records the purge kept.
		out := r.mustInstall(next)
		mustContain(t, "install output", out, "copied its database to")
		after := dumpDB(t, r.dbPath())
		mustKeepRecords(t, before, after)
		mustHealthy(t, r)
	})
}

func TestInstall_WithSystemd(t *testing.T) {
	r := MustRoot(t)
	r.fakeSystemd()
	old := MustOldPackages(t)["amd64"]
	next := MustNextPackage(t)

	// Ensure where policy-rc.d forbids starts (a container), the node is enabled, not started, and that is said.
	r.denyStarts()
	out := r.mustInstall(old)
	mustContain(t, "install output", out, "policy-rc.d forbids starting services here, so the node was not started")
	if r.active() || strings.Contains(out, "the node is running") {
		t.Fatalf("started against policy-rc.d:\n%s", out)
	}
	r.allowStarts()

	// Ensure an install enables and starts the node.
	out = r.mustInstall(old)
	mustContain(t, "install output", out, "fake-systemctl: start healthpost.service", "the node is running")
	if !r.active() {
		t.Fatalf("not started; calls %q", r.calls())
	}

	// Ensure an upgrade stops the node before copying the database, and starts it after migrating.
	MustFillRecords(t, r, 3)
	out = r.mustInstall(next)
	stop := strings.Index(out, "fake-systemctl: stop healthpost.service")
	copied := strings.Index(out, "copied its database to")
	start := strings.LastIndex(out, "fake-systemctl: start healthpost.service")
	if stop < 0 || copied < stop || start < copied {
		t.Fatalf("want stop, copy, start in that order:\n%s", out)
	}
	if !r.active() {
		t.Fatal("not running after the upgrade")
	}

	// Ensure a node that fails to start is reported, and the install still completes.
	os.WriteFile(r.path("/run/fake-systemd/fail-start"), nil, 0o644)
	out = r.mustInstall(next)
	mustContain(t, "install output", out, "the node did not start", "sudo journalctl -u healthpost -n 50")
	os.Remove(r.path("/run/fake-systemd/fail-start"))

	// Ensure only the three newest pre-upgrade copies are kept.
	r.mustInstall(next)
	if copies, _ := filepath.Glob(r.path("/var/lib/healthpost/backups/pre-upgrade-*")); len(copies) != 3 {
		t.Fatalf("pre-upgrade copies after 4 upgrades: %q, want the newest 3", copies)
	}

	// Ensure remove stops the node.
	out = r.mustRun("dpkg", "--remove", "healthpost")
	mustContain(t, "remove output", out, "fake-systemctl: stop healthpost.service")
	if r.active() {
		t.Fatal("still running after remove")
	}
}

func TestUpgrade_FailedMigrationRollsBack(t *testing.T) {
	r := MustRoot(t)
	r.fakeSystemd()
	old := MustOldPackages(t)["amd64"]
	next := MustNextPackage(t)
	schema := edge.SchemaVersion()
	r.mustInstall(old)
	r.mustRun("healthpost", "user", "add", "asha.kumari", "--role", "health-worker")
	MustFillRecords(t, r, 25)

	// Inject the failure: the database already has the table the second new migration creates.
	db := MustRawSQL(t, r.dbPath())
	if _, err := db.Exec(`CREATE TABLE packaging_probe_conflict (x TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r.fixOwners()
	before := dumpDB(t, r.dbPath())
	sum := sha256File(t, r.dbPath())

	res := r.install(next)
	// Ensure dpkg reports the failure, with a message a technician can act on.
	if res.code == 0 {
		t.Fatalf("an upgrade whose migration failed succeeded:\n%s", res.out)
	}
	mustContain(t, "upgrade output", res.out,
		"THE UPGRADE TO "+nextVersion+" DID NOT COMPLETE. THE RECORDS ARE SAFE.",
		"table packaging_probe_conflict already exists",
		"/var/lib/healthpost/healthpost.db is back exactly as it was before the upgrade",
		"The half-upgraded database is kept for support in /var/lib/healthpost/backups/failed-upgrade-",
		"sudo apt install ./healthpost_"+oldVersion+"_amd64.deb")
	// Ensure the previous version's data is untouched: the same bytes.
	if sha256File(t, r.dbPath()) != sum {
		t.Fatal("the database differs from before the upgrade")
	}
	// Ensure the migration had really begun: the half-upgraded copy is one version further.
	failed, _ := filepath.Glob(r.path("/var/lib/healthpost/backups/failed-upgrade-*-to-" + nextVersion + "/healthpost.db"))
	if len(failed) != 1 {
		t.Fatalf("half-upgraded copies: %q", failed)
	}
	if got := userVersion(t, failed[0]); got != schema+1 {
		t.Fatalf("half-upgraded copy at schema %d, want %d", got, schema+1)
	}
	// Ensure systemd will not start this version on the old database, even at the next boot.
	if _, err := os.Stat(r.path("/var/lib/healthpost/UPGRADE-FAILED")); err != nil {
		t.Fatal("no blocker for the unit")
	}
	if r.active() {
		t.Fatal("the node runs the new version on the old database")
	}
	if got := r.status(); got != "install ok half-configured "+nextVersion {
		t.Fatalf("status=%q", got)
	}
	t.Logf("failed upgrade: %d records in %d tables back byte for byte (sha256 %s)", before.count(), len(before), sum)

	// Ensure going back to the previous version, as the message says, runs the centre again.
	out := r.mustInstall(old)
	mustContain(t, "reinstall output", out, "the node is running")
	if !r.active() {
		t.Fatal("the previous version is not running")
	}
	if _, err := os.Stat(r.path("/var/lib/healthpost/UPGRADE-FAILED")); err == nil {
		t.Fatal("blocker left after the previous version was reinstalled")
	}
	after := dumpDB(t, r.dbPath())
	mustKeepRecords(t, before, after)
	mustHealthy(t, r)

	// Ensure once the cause is gone the upgrade goes through.
	db = MustRawSQL(t, r.dbPath())
	db.Exec(`DROP TABLE packaging_probe_conflict`)
	db.Close()
	r.fixOwners()
	r.mustInstall(next)
	if got := userVersion(t, r.dbPath()); got != schema+2 {
		t.Fatalf("schema %d, want %d", got, schema+2)
	}
}

func TestInstall_OverNewerSchema(t *testing.T) {
	old := MustOldPackages(t)["amd64"]
	next := MustNextPackage(t)

	t.Run("RefusedBeforeAnythingChanges", func(t *testing.T) {
		r := MustRoot(t)
		r.fakeSystemd()
		r.mustInstall(old)
		MustFillRecords(t, r, 5)
		r.mustInstall(next)
		sum := sha256File(t, r.dbPath())

		res := r.install(old)
		// Ensure installing an older version over a newer database stops in
		// preinst: the newer node keeps running, nothing changes.
		if res.code == 0 {
			t.Fatalf("downgrade over a newer schema succeeded:\n%s", res.out)
		}
		mustContain(t, "downgrade output", res.out,
			fmt.Sprintf("/var/lib/healthpost/healthpost.db is at schema version %d, written by a newer healthpost", edge.SchemaVersion()+2),
			fmt.Sprintf("healthpost %s knows only up to version %d", oldVersion, edge.SchemaVersion()),
			"nothing was changed and the node keeps running version "+nextVersion)
		if sha256File(t, r.dbPath()) != sum {
			t.Fatal("the newer database was changed")
		}
		if got := r.status(); got != "install ok installed "+nextVersion {
			t.Fatalf("status=%q", got)
		}
		if !r.active() {
			t.Fatalf("the node was stopped; calls %q", r.calls())
		}
	})

	t.Run("NewerOnlyInTheWAL", func(t *testing.T) {
		// A newer node that crashed right after migrating leaves the new
		// schema version in the WAL, and the file's header still old: the
		// preinst check cannot see it, migrate must, and nothing may change.
		r := MustRoot(t)
		r.mustInstall(old)
		MustFillRecords(t, r, 5)
		db, err := sql.Open("sqlite", "file:"+r.dbPath()+"?_pragma=wal_autocheckpoint(0)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, edge.SchemaVersion()+1)); err != nil {
			t.Fatal(err)
		}
		crash := map[string][]byte{}
		for _, suffix := range []string{"", "-wal"} {
			b, err := os.ReadFile(r.dbPath() + suffix)
			if err != nil {
				t.Fatal(err)
			}
			crash[suffix] = b
		}
		db.Close()
		os.Remove(r.dbPath() + "-shm")
		for suffix, b := range crash {
			os.WriteFile(r.dbPath()+suffix, b, 0o640)
		}
		r.fixOwners()
		if got := hpDBSchemaHeader(t, r.dbPath()); got != edge.SchemaVersion() {
			t.Fatalf("header says %d; the test needs it to lag at %d", got, edge.SchemaVersion())
		}

		res := r.install(old)
		if res.code == 0 {
			t.Fatalf("install over a newer database succeeded:\n%s", res.out)
		}
		mustContain(t, "install output", res.out, "DID NOT COMPLETE. THE RECORDS ARE SAFE.",
			fmt.Sprintf("knows only up to %d", edge.SchemaVersion()))
		// Ensure the database and its WAL are back byte for byte.
		for suffix, b := range crash {
			got, _ := os.ReadFile(r.dbPath() + suffix)
			if !bytes.Equal(got, b) {
				t.Fatalf("healthpost.db%s changed", suffix)
			}
		}
		if got := userVersion(t, r.dbPath()); got != edge.SchemaVersion()+1 {
			t.Fatalf("schema %d, want the newer %d", got, edge.SchemaVersion()+1)
		}
	})
}

// hpDBSchemaHeader reads user_version from the file's header, as preinst does.
func hpDBSchemaHeader(tb testing.TB, path string) int {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4)
	if _, err := f.ReadAt(b, 60); err != nil {
		tb.Fatal(err)
	}
	return int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
}

func TestInstall_MissingDialoutGroup(t *testing.T) {
	r := MustRoot(t)
	r.mustRun("groupdel", "dialout")
	out := r.mustInstall(MustOldPackages(t)["amd64"])
	// Ensure the group is made, said, and the node's user is in it.
	mustContain(t, "install output", out, "created the group dialout")
	if groups := r.mustRun("id", "-nG", "healthpost"); !slices.Contains(strings.Fields(groups), "dialout") {
		t.Fatalf("healthpost is in %q", groups)
	}
	gr := strings.Split(strings.TrimSpace(r.mustRun("getent", "group", "dialout")), ":")
	if len(gr[2]) > 3 {
		t.Fatalf("dialout made with gid %s, not a system group", gr[2])
	}
}

func TestUpgrade_BadInput(t *testing.T) {
	r := MustRoot(t)
	r.fakeSystemd()
	old := MustOldPackages(t)["amd64"]
	next := MustNextPackage(t)
	r.mustInstall(old)
	MustFillRecords(t, r, 10)
	sum := sha256File(t, r.dbPath())
	unchanged := func(t *testing.T, res result, wantStopped bool) {
		t.Helper()
		if res.code == 0 {
			t.Fatalf("install succeeded:\n%s", res.out)
		}
		if got := r.status(); got != "install ok installed "+oldVersion {
			t.Fatalf("status=%q, want the old version still installed", got)
		}
		if sha256File(t, r.dbPath()) != sum {
			t.Fatal("the database changed")
		}
		if r.active() == wantStopped {
			t.Fatalf("node running=%v; calls %q", r.active(), r.calls())
		}
	}

	t.Run("ConfigTypo", func(t *testing.T) {
		path := r.path("/etc/healthpost/healthpost.toml")
		good, _ := os.ReadFile(path)
		typo := strings.Replace(string(good), "[facility]\n", "[facility]\nnmae = \"PHC Rampur\"\n", 1)
		os.WriteFile(path, []byte(typo), 0o644)
		defer os.WriteFile(path, good, 0o644)
		before := len(r.calls())
		res := r.install(next)
		// Ensure it stops before anything changes, names the key and the file, and leaves the node running.
		mustContain(t, "upgrade output", res.out, "the configuration does not load", "facility.nmae", "/etc/healthpost/healthpost.toml",
			"unknown key", "The running node was not stopped.")
		unchanged(t, res, false)
		for _, c := range r.calls()[before:] {
			if strings.Contains(c, "stop") {
				t.Fatalf("stopped the node: %q", c)
			}
		}
	})

	t.Run("NodeRunningByHand", func(t *testing.T) {
		// A node started by hand (not by systemd) holds the data directory's lock.
		lock, err := edge.LockDataDir(r.path("/var/lib/healthpost"))
		if err != nil {
			t.Fatal(err)
		}
		res := r.install(next)
		lock.Release()
		r.fixOwners()
		mustContain(t, "upgrade output", res.out, fmt.Sprintf("a healthpost process (process %d) is using /var/lib/healthpost", os.Getpid()),
			"Nothing was changed; the node is started again.")
		unchanged(t, res, false)
	})

	// The data partition: a small tmpfs over /var/lib/healthpost with the records copied in.
	data := r.path("/var/lib/healthpost")
	r.mustRun("mkdir", "/tmp/saved-data")
	r.mustRun("cp", "-a", "/var/lib/healthpost/.", "/tmp/saved-data/")
	size := func() int64 {
		fi, err := os.Stat(r.dbPath())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}()
	small := fmt.Sprintf("size=%d,mode=0750", size+32<<20)
	if err := syscall.Mount("tmpfs", data, "tmpfs", 0, small); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(data, syscall.MNT_DETACH) })
	r.mustRun("cp", "-a", "/tmp/saved-data/.", "/var/lib/healthpost/")
	r.fixOwners()

	t.Run("DataPartitionFull", func(t *testing.T) {
		res := r.install(next)
		// Ensure it refuses before stopping anything, with the sizes.
		mustContain(t, "upgrade output", res.out, "not enough free space on the data partition for a safe upgrade",
			"a copy of it and the upgrade need", "Nothing was changed; the node keeps running version "+oldVersion)
		unchanged(t, res, false)
	})

	t.Run("DataPartitionReadOnly", func(t *testing.T) {
		if err := syscall.Mount("tmpfs", data, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, small); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := syscall.Mount("tmpfs", data, "tmpfs", syscall.MS_REMOUNT, "size=1g,mode=0750"); err != nil {
				t.Fatal(err)
			}
		}()
		res := r.install(next)
		mustContain(t, "upgrade output", res.out, "the data directory /var/lib/healthpost cannot be written", "mounted read-only")
		unchanged(t, res, false)
	})

	t.Run("ThenTheUpgradeGoesThrough", func(t *testing.T) {
		before := dumpDB(t, r.dbPath())
		r.mustInstall(next)
		after := dumpDB(t, r.dbPath())
		mustKeepRecords(t, before, after)
		if !r.active() {
			t.Fatal("not running")
		}
	})
}
