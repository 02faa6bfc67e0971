package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	_ "modernc.org/sqlite"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/synctest"
)

// cliResult is what one command printed and its exit code.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runSyncCLI runs the sync and hub commands as the root command would, with
// env as the environment; stdout, when not nil, receives the output as it
// is written.
func runSyncCLI(ctx context.Context, env []string, stdout io.Writer, args ...string) cliResult {
	var out, errb bytes.Buffer
	w := io.Writer(&out)
	if stdout != nil {
		w = io.MultiWriter(&out, stdout)
	}
	a := &app{stdout: w, stderr: &errb, stdin: strings.NewReader(""), env: env}
	root := &cobra.Command{Use: "healthpost", SilenceUsage: true, SilenceErrors: true}
	root.SetOut(w)
	root.SetErr(&errb)
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "")
	pf.StringVar(&a.dataDir, "data-dir", "", "")
	pf.BoolVar(&a.json, "json", false, "")
	root.AddCommand(a.syncCommand(), a.hubCommand())
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := exitCode(&errb, err)
	return cliResult{out.String(), errb.String(), code}
}

// mustSeedNode creates a node database in dataDir with patients and final
// encounters, and returns how many documents they make.
func mustSeedNode(t *testing.T, dataDir string, patients, encounters int) int {
	t.Helper()
	s := edge.NewStore(filepath.Join(dataDir, edge.DBFileName))
	s.DiskCheckPeriod, s.LowFreeBytes, s.CriticalFreeBytes = 0, 64<<20, 16<<20
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "clerk-1"})
	var ids []string
	for i := range patients {
		p := &edge.Patient{Name: "Patient " + strconv.Itoa(i), Gender: "F", BirthDate: "1990-04-12"}
		if err := s.CreatePatient(ctx, p); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	for i := range encounters {
		e := &edge.Encounter{PatientID: ids[i%patients], Type: edge.EncounterOPD, Status: edge.EncounterFinal}
		if err := s.CreateEncounter(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return encounters
}

// useMapper makes `sync now` build documents with m for the test.
func useMapper(t *testing.T, m syncq.Mapper) {
	old := syncMapper
	syncMapper = func(*edge.Store, *edge.Config) (syncq.Mapper, error) { return m, nil }
	t.Cleanup(func() { syncMapper = old })
}

// startHubCLI runs `healthpost hub` until the test ends and returns its URL.
func startHubCLI(t *testing.T, env []string, db string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan cliResult, 1)
	go func() {
		done <- runSyncCLI(ctx, env, pw, "hub", "--listen", "127.0.0.1:0", "--db", db)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var url string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "hub listening on "); ok {
			url = u
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if url == "" {
		r := <-done
		t.Fatalf("hub did not start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() {
		cancel()
		if r := <-done; r.code != 0 {
			t.Errorf("hub stopped with exit %d: %s", r.code, r.stderr)
		}
	})
	return url
}

func TestSyncAndHubCommands(t *testing.T) {
	dir := t.TempDir()
	hubDB := filepath.Join(dir, "hub", "hub.db")
	base := []string{"HEALTHPOST_DATA_DIR=" + filepath.Join(dir, "node")}
	ctx := context.Background()
	docs := mustSeedNode(t, filepath.Join(dir, "node"), 3, 6)

	// Ensure the hub issues a token once, lists and revokes nodes, and
	// names the fix for a bad name.
	r := runSyncCLI(ctx, base, nil, "hub", "token", "add", "phc-rampur", "--db", hubDB, "--json")
	var tok map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &tok) != nil || !strings.HasPrefix(tok["token"], "hpn_") {
		t.Fatalf("hub token add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runSyncCLI(ctx, base, nil, "hub", "token", "add", "Bad Name", "--db", hubDB); r.code != 2 || !strings.Contains(r.stderr, "Try: healthpost hub token add") {
		t.Fatalf("bad node name: exit %d %s", r.code, r.stderr)
	}
	runSyncCLI(ctx, base, nil, "hub", "token", "add", "phc-old", "--db", hubDB)
	if r := runSyncCLI(ctx, base, nil, "hub", "token", "revoke", "phc-old", "--db", hubDB); r.code != 0 {
		t.Fatalf("revoke: exit %d %s", r.code, r.stderr)
	}
	if r := runSyncCLI(ctx, base, nil, "hub", "token", "revoke", "phc-old", "--db", hubDB); r.code != 1 || !strings.Contains(r.stderr, "no active node") {
		t.Fatalf("second revoke: exit %d %s", r.code, r.stderr)
	}
	if r := runSyncCLI(ctx, base, nil, "hub", "token", "list", "--db", hubDB); !strings.Contains(r.stdout, "phc-rampur") || !strings.Contains(r.stdout, "revoked") {
		t.Fatalf("token list:\n%s", r.stdout)
	}
	url := startHubCLI(t, base, hubDB)

	// Ensure status and now explain a node with no upstream.
	if r := runSyncCLI(ctx, base, nil, "sync", "status"); r.code != 0 || !strings.Contains(r.stdout, "none: delivery is off") || !strings.Contains(r.stdout, "pending") {
		t.Fatalf("status without upstream: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runSyncCLI(ctx, base, nil, "sync", "now"); r.code != 1 || !strings.Contains(r.stderr, "upstream.url") {
		t.Fatalf("now without upstream: exit %d %s", r.code, r.stderr)
	}

	env := append(base, "HEALTHPOST_UPSTREAM_URL="+url, "HEALTHPOST_UPSTREAM_TOKEN="+tok["token"])
	if r := runSyncCLI(ctx, env, nil, "sync", "now"); r.code != 1 || !strings.Contains(r.stderr, "facility.hfr_id") {
		t.Fatalf("now without the facility's HFR ID: exit %d %s", r.code, r.stderr)
	}

	// Ensure `sync now` delivers with progress, and a document the hub
	// refuses is shown with the hub's reason.
	var broken bool
	first := int64(1)
	useMapper(t, syncq.MapperFunc(func(ctx context.Context, it edge.OutboxItem) (string, []byte, error) {
		id, b := synctest.Document(it)
		if broken && it.ID == first {
			b = bytes.Replace(b, []byte(`"title":"OPConsultRecord"`), []byte(`"title":""`), 1)
		}
		return id, b, nil
	}))
	wrong := append(base, "HEALTHPOST_UPSTREAM_URL="+url, "HEALTHPOST_UPSTREAM_TOKEN=hpn_wrong")
	if r := runSyncCLI(ctx, wrong, nil, "sync", "now"); r.code != 1 || !strings.Contains(r.stderr, "check upstream.token") {
		t.Fatalf("now with a wrong token: exit %d %s", r.code, r.stderr)
	}
	broken = true
	r = runSyncCLI(ctx, env, nil, "sync", "now")
	if r.code != 0 || !strings.Contains(r.stdout, "Delivered "+strconv.Itoa(docs-1)+" documents") || !strings.Contains(r.stdout, "1 refused") {
		t.Fatalf("sync now: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "[########################]") || !strings.Contains(r.stderr, "delivered") {
		t.Fatalf("no progress bar:\n%s", r.stderr)
	}
	r = runSyncCLI(ctx, env, nil, "sync", "status")
	if !strings.Contains(r.stdout, "Refused by the upstream (1)") || !strings.Contains(r.stdout, "Composition.title is required") ||
		!strings.Contains(r.stdout, "Recent runs:") {
		t.Fatalf("status:\n%s", r.stdout)
	}
	var st syncStatus
	r = runSyncCLI(ctx, env, nil, "sync", "status", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Quarantined) != 1 || len(st.Runs) != 2 || st.LastDelivered.IsZero() {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st.Runs[0].Trigger != edge.SyncTriggerCLI || st.Runs[0].Delivered != int64(docs-1) {
		t.Fatalf("run=%+v", st.Runs[0])
	}

	// Ensure retry and discard name their mistakes.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sync", "retry"}, 2, "Try: healthpost sync retry 42"},
		{[]string{"sync", "retry", "abc"}, 2, `"abc" is not an outbox item ID`},
		{[]string{"sync", "retry", "9999"}, 1, "no outbox item 9999"},
		{[]string{"sync", "discard", "1"}, 2, "--reason required"},
		{[]string{"sync", "discard", "2", "--reason", "x"}, 1, "is delivered and cannot be discarded"},
	} {
		if r := runSyncCLI(ctx, env, nil, tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}

	// Ensure a retried document goes once the record is fixed.
	broken = false
	if r := runSyncCLI(ctx, env, nil, "sync", "retry", "1"); r.code != 0 {
		t.Fatalf("retry: exit %d %s", r.code, r.stderr)
	}
	if r := runSyncCLI(ctx, env, nil, "sync", "now", "--wait", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"pending": 0`) {
		t.Fatalf("now --wait: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Ensure a discard is audited with the operator's reason.
	mustSeedMore := func() {
		s := edge.NewStore(filepath.Join(dir, "node", edge.DBFileName))
		s.DiskCheckPeriod, s.LowFreeBytes, s.CriticalFreeBytes = 0, 64<<20, 16<<20
		s.Open(ctx)
		p := &edge.Patient{Name: "Another", Gender: "M", BirthDate: "1980-01-01"}
		c := edge.WithActor(ctx, edge.Actor{Kind: edge.ActorUser, ID: "clerk-1"})
		s.CreatePatient(c, p)
		s.CreateEncounter(c, &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal})
		s.Close(ctx)
	}
	mustSeedMore()
	first, broken = int64(docs+1), true
	runSyncCLI(ctx, env, nil, "sync", "now")
	if r := runSyncCLI(ctx, env, nil, "sync", "discard", strconv.FormatInt(first, 10), "--reason", "entered twice"); r.code != 0 {
		t.Fatalf("discard: exit %d %s", r.code, r.stderr)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "node", edge.DBFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	db.QueryRow(`SELECT count(*) FROM audit_log WHERE action = 'outbox.discard' AND actor = 'system:cli' AND detail = 'entered twice'`).Scan(&n)
	if n != 1 {
		t.Fatalf("discard audit entries=%d, want 1", n)
	}
	db.QueryRow(`SELECT count(*) FROM outbox WHERE state = 'delivered'`).Scan(&n)
	if n != docs {
		t.Fatalf("delivered=%d, want %d", n, docs)
	}

	// Ensure a signed receipt report lists every delivery, verifies, and
	// is refused once changed.
	report := filepath.Join(dir, "receipts.json")
	if r := runSyncCLI(ctx, env, nil, "sync", "receipts"); r.code != 2 || !strings.Contains(r.stderr, "--out FILE required") {
		t.Fatalf("receipts without --out: exit %d %s", r.code, r.stderr)
	}
	tomorrow := time.Now().AddDate(0, 0, 1).Format(time.DateOnly)
	r = runSyncCLI(ctx, env, nil, "sync", "receipts", "--to", tomorrow, "--out", report)
	if r.code != 0 || !strings.Contains(r.stdout, "Wrote "+strconv.Itoa(docs)+" receipts") {
		t.Fatalf("receipts: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	fp := r.stdout[strings.Index(r.stdout, "SHA256:"):]
	fp = strings.TrimSuffix(strings.TrimSpace(fp), ".")
	if r := runSyncCLI(ctx, base, nil, "sync", "receipts", "verify", report); r.code != 0 || !strings.Contains(r.stdout, "Signature good: key "+fp) {
		t.Fatalf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	b, _ := os.ReadFile(report)
	if !bytes.Contains(b, []byte(`"remote_version": "1"`)) {
		t.Fatalf("report:\n%s", b)
	}
	os.WriteFile(report, bytes.Replace(b, []byte(`"remote_version": "1"`), []byte(`"remote_version": "7"`), 1), 0o644)
	if r := runSyncCLI(ctx, base, nil, "sync", "receipts", "verify", report); r.code != 3 || !strings.Contains(r.stderr, "does not match") {
		t.Fatalf("verify a changed report: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
