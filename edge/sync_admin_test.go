package edge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// mustPendingOutbox returns every outbox row of the store, oldest first.
func mustOutbox(tb testing.TB, s *edge.Store) []edge.OutboxItem {
	tb.Helper()
	items, err := s.OutboxItems(context.Background(), edge.OutboxFilter{Limit: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	return items
}

func syncq() context.Context {
	return edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorSystem, ID: "syncq"})
}

func TestStore_SettleOutbox(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Ensure delivered, quarantined and failed outcomes are recorded in
		// one go, with receipts, audit entries and the run's counters.
		path := filepath.Join(t.TempDir(), edge.DBFileName)
		s := edgetest.MustOpenStoreAt(t, path)
		p := MustCreatePatient(t, s, "Sunita Devi")
		if err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(p.ID)); err != nil {
			t.Fatal(err)
		}
		items := mustOutbox(t, s) // OPConsult, Prescription, Wellness
		run, err := s.StartSyncRun(syncq(), edge.SyncTriggerAuto, "https://hub.example/fhir")
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		next := at.Add(time.Minute)
		skipped, err := s.SettleOutbox(syncq(), run, []edge.OutboxOutcome{
			{ID: items[0].ID, State: edge.OutboxDelivered, Receipt: edge.Receipt{Upstream: "https://hub.example/fhir", RemoteID: "Bundle/b1", RemoteVersion: "1", At: at}},
			{ID: items[1].ID, State: edge.OutboxQuarantined, Reason: "HTTP 422: error required: Composition.title is required"},
			{ID: items[2].ID, State: edge.OutboxPending, Reason: "HTTP 503", Next: next},
		}, edge.SyncUsage{Attempted: 3, BytesOut: 1000, BytesIn: 500, LastError: "HTTP 503"})
		if err != nil || skipped != 0 {
			t.Fatalf("SettleOutbox: skipped=%d err=%v", skipped, err)
		}
		got := mustOutbox(t, s)
		if g, w := got[0].State, edge.OutboxDelivered; g != w {
			t.Fatalf("state=%s, want %s", g, w)
		}
		if g, w := got[1].State, edge.OutboxQuarantined; g != w || !strings.Contains(got[1].LastError, "title") {
			t.Fatalf("state=%s (%q), want %s with the server's reason", g, got[1].LastError, w)
		}
		if g := got[2]; g.State != edge.OutboxPending || g.Attempts != 1 || g.NextAttemptAt.UnixMilli() != next.UnixMilli() {
			t.Fatalf("failed row=%+v, want pending, 1 attempt, next at %v", g, next)
		}
		del, err := s.DeliveredItems(context.Background(), at.Add(-time.Second), at.Add(time.Second))
		if err != nil || len(del) != 1 || del[0].RemoteID != "Bundle/b1" || del[0].RemoteVersion != "1" {
			t.Fatalf("DeliveredItems=%+v, %v", del, err)
		}
		raw := edgetest.MustRawDB(t, path)
		if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE action = 'outbox.deliver' AND actor = 'system:syncq' AND patient_id = ?`, p.ID); g != 1 {
			t.Fatalf("delivery audit entries=%d, want 1", g)
		}
		if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE action = 'outbox.quarantine'`); g != 1 {
			t.Fatalf("quarantine audit entries=%d, want 1", g)
		}
		if err := s.FinishSyncRun(syncq(), run, ""); err != nil {
			t.Fatal(err)
		}
		runs, err := s.SyncRuns(context.Background(), 0)
		if err != nil || len(runs) != 1 {
			t.Fatalf("SyncRuns=%v, %v", runs, err)
		}
		r := runs[0]
		if r.Attempted != 3 || r.Delivered != 1 || r.Quarantined != 1 || r.Failed != 1 || r.BytesOut != 1000 || r.LastError != "HTTP 503" || r.EndedAt.IsZero() {
			t.Fatalf("run=%+v", r)
		}
		if n, err := s.SyncBytesSince(context.Background(), at.Add(-time.Hour)); err != nil || n != 1500 {
			t.Fatalf("SyncBytesSince=%d, %v; want 1500", n, err)
		}
		if last, err := s.LastSyncError(context.Background()); err != nil || last.ID != run {
			t.Fatalf("LastSyncError=%+v, %v", last, err)
		}
		if rep, err := s.VerifyAudit(context.Background()); err != nil || !rep.OK() {
			t.Fatalf("audit: %+v %v", rep, err)
		}
	})

	t.Run("SkipsRowsSettledElsewhere", func(t *testing.T) {
		// Ensure a row another process delivered first is left alone and
		// counted as skipped, not an error.
		s := edgetest.MustOpenStore(t)
		p := MustCreatePatient(t, s, "Sunita Devi")
		if err := s.CreateEncounter(edgetest.Clerk(), &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal}); err != nil {
			t.Fatal(err)
		}
		it := mustOutbox(t, s)[0]
		rc := edge.Receipt{Upstream: "u", RemoteID: "Bundle/x", RemoteVersion: "1", At: time.Now()}
		if err := s.MarkDelivered(context.Background(), it.ID, rc); err != nil {
			t.Fatal(err)
		}
		skipped, err := s.SettleOutbox(syncq(), 0, []edge.OutboxOutcome{
			{ID: it.ID, State: edge.OutboxPending, Reason: "HTTP 503", Next: time.Now()},
		}, edge.SyncUsage{})
		if err != nil || skipped != 1 {
			t.Fatalf("skipped=%d err=%v, want 1 and nil", skipped, err)
		}
		if g := mustOutbox(t, s)[0].State; g != edge.OutboxDelivered {
			t.Fatalf("state=%s, want delivered", g)
		}
	})

	t.Run("ErrUnknownOutcome", func(t *testing.T) {
		// Ensure a nonsense outcome changes nothing.
		s := edgetest.MustOpenStore(t)
		if _, err := s.SettleOutbox(syncq(), 0, []edge.OutboxOutcome{{ID: 1, State: "lost"}}, edge.SyncUsage{}); err == nil {
			t.Fatal("no error for an unknown outcome")
		}
	})
}

func TestStore_RetryAndDiscardOutbox(t *testing.T) {
	setup := func(t *testing.T) (*edge.Store, string, []edge.OutboxItem) {
		path := filepath.Join(t.TempDir(), edge.DBFileName)
		s := edgetest.MustOpenStoreAt(t, path)
		p := MustCreatePatient(t, s, "Sunita Devi")
		if err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(p.ID)); err != nil {
			t.Fatal(err)
		}
		items := mustOutbox(t, s)
		if err := s.Quarantine(context.Background(), items[0].ID, "HTTP 422: refused"); err != nil {
			t.Fatal(err)
		}
		return s, path, items
	}

	t.Run("Retry", func(t *testing.T) {
		// Ensure a quarantined row goes back in line, wakes the engine, and
		// the retry is audited with who did it.
		s, path, items := setup(t)
		changed := s.OutboxChanged()
		if err := s.RetryOutbox(edgetest.Clerk(), items[0].ID); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		default:
			t.Fatal("OutboxChanged not signalled after a retry")
		}
		due, err := s.DueOutbox(context.Background(), time.Now().Add(time.Second), 10)
		if err != nil || len(due) != 1 || due[0].ID != items[0].ID {
			t.Fatalf("due=%v %v, want the retried row", due, err)
		}
		if g := edgetest.MustCount(t, edgetest.MustRawDB(t, path), `SELECT count(*) FROM audit_log WHERE action = 'outbox.retry' AND actor = 'user:clerk-1'`); g != 1 {
			t.Fatalf("retry audit entries=%d, want 1", g)
		}
	})

	t.Run("Discard", func(t *testing.T) {
		// Ensure discarding needs a reason, is audited with it, and lets
		// the patient's next document go.
		s, path, items := setup(t)
		var fe edge.FieldErrors
		if err := s.DiscardOutbox(edgetest.Clerk(), items[0].ID, "  "); !errors.As(err, &fe) {
			t.Fatalf("discard without reason: %v, want FieldErrors", err)
		}
		if err := s.DiscardOutbox(edgetest.Clerk(), items[0].ID, "duplicate of a paper record"); err != nil {
			t.Fatal(err)
		}
		if g := mustOutbox(t, s)[0].State; g != edge.OutboxDiscarded {
			t.Fatalf("state=%s, want discarded", g)
		}
		if g := edgetest.MustCount(t, edgetest.MustRawDB(t, path), `SELECT count(*) FROM audit_log WHERE action = 'outbox.discard'
			AND actor = 'user:clerk-1' AND detail = 'duplicate of a paper record'`); g != 1 {
			t.Fatalf("discard audit entries=%d, want 1", g)
		}
		if err := s.RetryOutbox(edgetest.Clerk(), items[0].ID); !errors.Is(err, edge.ErrOutboxState) {
			t.Fatalf("retry of a discarded row: %v, want ErrOutboxState", err)
		}
		if err := s.DiscardOutbox(edgetest.Clerk(), items[0].ID, "again"); !errors.Is(err, edge.ErrOutboxState) {
			t.Fatalf("second discard: %v, want ErrOutboxState", err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		// Ensure unknown rows, delivered rows and missing actors are refused.
		s, _, items := setup(t)
		if err := s.RetryOutbox(edgetest.Clerk(), 9999); !errors.Is(err, edge.ErrNotFound) {
			t.Fatalf("retry unknown: %v, want ErrNotFound", err)
		}
		if err := s.DiscardOutbox(edgetest.Clerk(), 9999, "x"); !errors.Is(err, edge.ErrNotFound) {
			t.Fatalf("discard unknown: %v, want ErrNotFound", err)
		}
		if err := s.RetryOutbox(context.Background(), items[0].ID); !errors.Is(err, edge.ErrNoActor) {
			t.Fatalf("retry without actor: %v, want ErrNoActor", err)
		}
		if err := s.MarkDelivered(context.Background(), items[1].ID, edge.Receipt{At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := s.RetryOutbox(edgetest.Clerk(), items[1].ID); !errors.Is(err, edge.ErrOutboxState) {
			t.Fatalf("retry delivered: %v, want ErrOutboxState", err)
		}
	})
}

func TestStore_NextOutboxDue(t *testing.T) {
	// Ensure the next due time follows the earliest pending row, expediting
	// makes every waiting row due now, and an empty queue is ErrNotFound.
	s := edgetest.MustOpenStore(t)
	if _, err := s.NextOutboxDue(context.Background()); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("empty outbox: %v, want ErrNotFound", err)
	}
	p := MustCreatePatient(t, s, "Sunita Devi")
	if err := s.CreateEncounter(edgetest.Clerk(), &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal}); err != nil {
		t.Fatal(err)
	}
	it := mustOutbox(t, s)[0]
	later := time.Now().Add(time.Hour)
	if err := s.MarkFailed(context.Background(), it.ID, "HTTP 503", later); err != nil {
		t.Fatal(err)
	}
	next, err := s.NextOutboxDue(context.Background())
	if err != nil || next.UnixMilli() != later.UnixMilli() {
		t.Fatalf("NextOutboxDue=%v %v, want %v", next, err, later)
	}
	now := time.Now()
	if n, err := s.ExpediteOutbox(context.Background(), now); err != nil || n != 1 {
		t.Fatalf("ExpediteOutbox=%d %v, want 1", n, err)
	}
	if next, _ := s.NextOutboxDue(context.Background()); next.UnixMilli() != now.UnixMilli() {
		t.Fatalf("after expedite next=%v, want %v", next, now)
	}
	pending := edge.OutboxPending
	if items, err := s.OutboxItems(context.Background(), edge.OutboxFilter{State: &pending}); err != nil || len(items) != 1 {
		t.Fatalf("OutboxItems(pending)=%v %v", items, err)
	}
}

func TestConfig_Upstream(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Ensure the [upstream] section reads from the file and the
		// environment, a duration included, and the token stays masked.
		dir := t.TempDir()
		ca := filepath.Join(dir, "ca.pem")
		os.WriteFile(ca, []byte("-"), 0o600)
		file := filepath.Join(dir, "healthpost.toml")
		os.WriteFile(file, []byte(`[upstream]
url = "https://hub.district.example/fhir"
token = "hpn_secret"
ca_file = "`+ca+`"
timeout = "45s"
windows = "22:00-06:00, 13:00-14:00"
daily_budget_mb = 50
`), 0o600)
		cfg, err := edge.LoadConfig(edge.LoadOptions{Path: file, Env: []string{"HEALTHPOST_UPSTREAM_BATCH=5"}})
		if err != nil {
			t.Fatal(err)
		}
		u := cfg.Upstream
		if u.URL != "https://hub.district.example/fhir" || u.Timeout != 45*time.Second || u.Batch != 5 || u.DailyBudgetMB != 50 {
			t.Fatalf("upstream=%+v", u)
		}
		if err := cfg.ValidateUpstream(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(cfg.TOML(), "hpn_secret") {
			t.Fatal("the upstream token is shown by config show")
		}
	})

	for _, tc := range []struct {
		key, env, value string
	}{
		{"upstream.url", "HEALTHPOST_UPSTREAM_URL", "ftp://hub"},
		{"upstream.url", "HEALTHPOST_UPSTREAM_URL", "https://hub/fhir?x=1"},
		{"upstream.mode", "HEALTHPOST_UPSTREAM_MODE", "post"},
		{"upstream.batch", "HEALTHPOST_UPSTREAM_BATCH", "1000"},
		{"upstream.workers", "HEALTHPOST_UPSTREAM_WORKERS", "-1"},
		{"upstream.windows", "HEALTHPOST_UPSTREAM_WINDOWS", "10pm-6am"},
		{"upstream.windows", "HEALTHPOST_UPSTREAM_WINDOWS", "22:00-25:00"},
		{"upstream.daily_budget_mb", "HEALTHPOST_UPSTREAM_DAILY_BUDGET_MB", "-5"},
		{"upstream.ca_file", "HEALTHPOST_UPSTREAM_CA_FILE", "/nonexistent/ca.pem"},
		{"upstream.key_file", "HEALTHPOST_UPSTREAM_CERT_FILE", "/etc/hostname"},
	} {
		t.Run("Err/"+tc.env+"="+tc.value, func(t *testing.T) {
			// Ensure a bad upstream value names its key and where it came from.
			empty := filepath.Join(t.TempDir(), "healthpost.toml")
			os.WriteFile(empty, nil, 0o600)
			cfg, err := edge.LoadConfig(edge.LoadOptions{Path: empty, Env: []string{tc.env + "=" + tc.value}})
			if err == nil {
				err = cfg.ValidateUpstream()
			}
			var ce *edge.ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("err=%v, want a ConfigError about %s", err, tc.key)
			}
		})
	}
}
