package edge_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func worker(i int) context.Context {
	return edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: fmt.Sprintf("worker-%02d", i)})
}

// mustVisits registers n patients with a finalized OPD visit each, with
// one pending lab test.
func mustVisits(t *testing.T, s *edge.Store, n int) ([]*edge.Patient, []*edge.Encounter) {
	t.Helper()
	var ps []*edge.Patient
	var es []*edge.Encounter
	for i := range n {
		p := MustCreatePatient(t, s, fmt.Sprintf("Sunita Devi %d", i))
		e := OPDVisit(p.ID)
		e.LabOrders = []edge.LabOrder{{Test: "malaria_rdt", Status: edge.LabOrdered}}
		if err := s.CreateEncounter(edgetest.Clerk(), e); err != nil {
			t.Fatal(err)
		}
		ps, es = append(ps, p), append(es, e)
	}
	return ps, es
}

func mustIntactAudit(t *testing.T, s *edge.Store) edge.AuditReport {
	t.Helper()
	rep, err := s.VerifyAudit(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("VerifyAudit=%+v, %v", rep, err)
	}
	return rep
}

func TestStore_AuditedReads_Concurrent(t *testing.T) {
	// Ensure reads by many users at once, whose entries share transactions,
	// leave a chain VerifyAudit accepts, with every read in it exactly once
	// and under the user who made it.
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	raw := edgetest.MustRawDB(t, path)
	patients, encs := mustVisits(t, s, 4)
	before := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`)
	st0 := s.WriteStats()

	type entry struct{ actor, action, entityID, detail string }
	var mu sync.Mutex
	want := map[entry]int{}
	const workers, rounds = 24, 14
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := worker(w)
			actor := fmt.Sprintf("user:worker-%02d", w)
			for r := range rounds {
				p, e := patients[(w+r)%len(patients)], encs[(w+r)%len(encs)]
				var got entry
				var err error
				var gotPatient string
				switch r % 7 {
				case 0:
					var rp edge.Patient
					rp, err = s.Patient(ctx, p.ID)
					got, gotPatient = entry{actor, edge.ActionPatientRead, p.ID, ""}, rp.ID
				case 1:
					var re edge.Encounter
					re, err = s.Encounter(ctx, e.ID)
					got, gotPatient = entry{actor, edge.ActionEncounterRead, e.ID, ""}, re.PatientID
				case 2:
					var re edge.Encounter
					re, err = s.EncounterVersion(ctx, e.ID, 1)
					got, gotPatient = entry{actor, edge.ActionEncounterRead, e.ID, "version=1"}, re.PatientID
				case 3:
					var h []edge.EncounterHistoryEntry
					h, err = s.EncounterHistory(ctx, e.ID)
					got, gotPatient = entry{actor, edge.ActionEncounterHistory, e.ID, ""}, p.ID
					if err == nil && len(h) != 1 {
						t.Errorf("history of %s has %d versions, want 1", e.ID, len(h))
					}
				case 4:
					var rec edge.PatientRecord
					rec, err = s.PatientRecord(ctx, p.ID, []string{"8480-6"})
					got, gotPatient = entry{actor, edge.ActionPatientRead, p.ID, "record"}, rec.Patient.ID
				case 6:
					var o edge.LabOrder
					o, err = s.LabOrder(ctx, e.LabOrders[0].ID)
					got, gotPatient = entry{actor, edge.ActionLabRead, e.LabOrders[0].ID, ""}, o.PatientID
				case 5:
					detail := fmt.Sprintf("round=%d", r)
					err = s.Audit(ctx, "encounter.print", "encounter", e.ID, p.ID, detail)
					got, gotPatient = entry{actor, "encounter.print", e.ID, detail}, p.ID
				}
				if err != nil {
					t.Errorf("%s round %d: %v", actor, r, err)
					return
				}
				if gotPatient != p.ID {
					t.Errorf("%s round %d read patient %q, want %q", actor, r, gotPatient, p.ID)
				}
				mu.Lock()
				want[got]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	rep := mustIntactAudit(t, s)
	if g, w := rep.Entries, int64(before+workers*rounds); g != w {
		t.Fatalf("%d audit entries, want %d", g, w)
	}
	rows, err := raw.Query(`SELECT actor, action, entity_id, detail, count(*) FROM audit_log WHERE seq > ?
		GROUP BY actor, action, entity_id, detail`, before)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[entry]int{}
	for rows.Next() {
		var e entry
		var n int
		if err := rows.Scan(&e.actor, &e.action, &e.entityID, &e.detail, &n); err != nil {
			t.Fatal(err)
		}
		got[e] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for e, n := range want {
		if got[e] != n {
			t.Errorf("%+v: %d entries, want %d", e, got[e], n)
		}
	}
	for e, n := range got {
		if want[e] == 0 {
			t.Errorf("%+v: %d entries that no read made", e, n)
		}
	}
	// Node sequence numbers rise with the chain, across the shared transactions.
	if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log a JOIN audit_log b ON b.seq = a.seq + 1
		WHERE b.node_seq <= a.node_seq`); n != 0 {
		t.Fatalf("%d entries whose node_seq does not rise", n)
	}
	// Every write in that time was a read-audit transaction, holding all the entries.
	st := s.WriteStats()
	batches := st.ReadAuditBatches - st0.ReadAuditBatches
	if g, w := st.ReadAudits-st0.ReadAudits, int64(workers*rounds); g != w {
		t.Fatalf("ReadAudits grew by %d, want %d", g, w)
	}
	if g := st.Transactions - st0.Transactions; g != batches || batches < 1 || batches > workers*rounds {
		t.Fatalf("%d write transactions for %d read-audit batches", g, batches)
	}
	t.Logf("%d audited reads in %d transactions", workers*rounds, batches)
}

func TestStore_AuditRead_GroupCommit(t *testing.T) {
	// Ensure entries queued while the writer is busy commit together, in
	// the order they were handed in, each under its own user.
	s := edgetest.MustOpenStore(t)
	st0 := s.WriteStats()
	release := s.HoldWriter()
	const n = 40
	var waits []func() error
	for i := range n {
		wait, err := s.QueueAudit(worker(i), edge.ActionPatientSearch, "patient", "", "", fmt.Sprintf("n=%d", i))
		if err != nil {
			release()
			t.Fatal(err)
		}
		waits = append(waits, wait)
	}
	release()
	for i, wait := range waits {
		if err := wait(); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	// The writer takes the entries once it holds the lock: all of them, at once.
	st := s.WriteStats()
	if g := st.ReadAuditBatches - st0.ReadAuditBatches; g != 1 {
		t.Fatalf("%d entries in %d transactions, want 1", n, g)
	}
	if g, w := st.Transactions-st0.Transactions, st.ReadAuditBatches-st0.ReadAuditBatches; g != w {
		t.Fatalf("%d write transactions, want %d", g, w)
	}
	mustIntactAudit(t, s)
	db := edgetest.MustRawDB(t, s.Path)
	rows, err := db.Query(`SELECT actor, detail FROM audit_log WHERE action = ? ORDER BY seq`, edge.ActionPatientSearch)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var actor, detail string
		if err := rows.Scan(&actor, &detail); err != nil {
			t.Fatal(err)
		}
		if w := fmt.Sprintf("user:worker-%02d n=%d", i, i); actor+" "+detail != w {
			t.Fatalf("entry %d is %q, want %q", i, actor+" "+detail, w)
		}
	}
	if i != n {
		t.Fatalf("%d entries, want %d", i, n)
	}
}

func TestStore_AuditedRead_FailedAuditShowsNothing(t *testing.T) {
	// Ensure that when the audit entry cannot be committed, the read
	// returns the error and none of the data.
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	raw := edgetest.MustRawDB(t, path)
	patients, encs := mustVisits(t, s, 1)
	p, e := patients[0], encs[0]
	auditBefore := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`)
	failOn(t, path, "audit_log")
	ctx := edgetest.Clerk()

	injected := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Errorf("%s: err=%v, want the audit's failure", what, err)
		}
	}
	rp, err := s.Patient(ctx, p.ID)
	injected("Patient", err)
	if rp.ID != "" || rp.Name != "" {
		t.Errorf("Patient returned %q despite the failed audit", rp.Name)
	}
	re, err := s.Encounter(ctx, e.ID)
	injected("Encounter", err)
	if re.ID != "" || re.Complaint != "" || len(re.Observations) != 0 {
		t.Errorf("Encounter returned %+v despite the failed audit", re)
	}
	rv, err := s.EncounterVersion(ctx, e.ID, 1)
	injected("EncounterVersion", err)
	if rv.ID != "" || rv.Complaint != "" {
		t.Errorf("EncounterVersion returned %+v despite the failed audit", rv)
	}
	h, err := s.EncounterHistory(ctx, e.ID)
	injected("EncounterHistory", err)
	if h != nil {
		t.Errorf("EncounterHistory returned %+v despite the failed audit", h)
	}
	rec, err := s.PatientRecord(ctx, p.ID, []string{"8480-6"})
	injected("PatientRecord", err)
	if rec.Patient.ID != "" || rec.Encounters != nil || rec.Vitals != nil {
		t.Errorf("PatientRecord returned %+v despite the failed audit", rec)
	}
	o, err := s.LabOrder(ctx, e.LabOrders[0].ID)
	injected("LabOrder", err)
	if o.ID != "" || o.Test != "" {
		t.Errorf("LabOrder returned %+v despite the failed audit", o)
	}
	found, _, err := s.SearchPatients(ctx, "Sunita", 10)
	injected("SearchPatients", err)
	if found != nil {
		t.Errorf("SearchPatients returned %d patients despite the failed audit", len(found))
	}
	injected("Audit", s.Audit(ctx, "encounter.print", "encounter", e.ID, p.ID, ""))

	// Ensure a failed transaction fails every read whose entry it held.
	release := s.HoldWriter()
	var waits []func() error
	for i := range 10 {
		wait, err := s.QueueAudit(worker(i), edge.ActionPatientRead, "patient", p.ID, p.ID, "")
		if err != nil {
			release()
			t.Fatal(err)
		}
		waits = append(waits, wait)
	}
	release()
	for i, wait := range waits {
		injected(fmt.Sprintf("queued read %d", i), wait())
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`); g != auditBefore {
		t.Fatalf("audit_log has %d rows, want %d", g, auditBefore)
	}

	// Ensure reads work again once entries can be written, on an intact chain.
	if _, err := raw.Exec(`DROP TRIGGER fail_audit_log`); err != nil {
		t.Fatal(err)
	}
	if rp, err := s.Patient(ctx, p.ID); err != nil || rp.ID != p.ID {
		t.Fatalf("Patient=%q, %v", rp.ID, err)
	}
	if rep := mustIntactAudit(t, s); rep.Entries != int64(auditBefore+1) {
		t.Fatalf("%d entries, want %d", rep.Entries, auditBefore+1)
	}
}

func TestStore_AuditedRead_WriterLockedOut(t *testing.T) {
	// Ensure that when another process holds the database's write lock
	// past the busy timeout, the audit's transaction cannot begin, the read
	// fails with nothing shown, and reads work again once the lock is gone.
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	p := MustCreatePatient(t, s, "Sunita Devi")
	conn, err := edgetest.MustRawDB(t, path).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	rp, err := s.Patient(edgetest.Clerk(), p.ID)
	if err == nil || !strings.Contains(err.Error(), "locked") || rp.ID != "" {
		t.Fatalf("Patient with the database locked = %q, %v; want nothing and the lock error", rp.ID, err)
	}
	if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if rp, err := s.Patient(edgetest.Clerk(), p.ID); err != nil || rp.ID != p.ID {
		t.Fatalf("Patient after the lock = %q, %v", rp.ID, err)
	}
	mustIntactAudit(t, s)
}

func TestStore_AuditedRead_NoActor(t *testing.T) {
	// Ensure a read without a user reads nothing and writes nothing.
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	_, encs := mustVisits(t, s, 1)
	st0 := s.WriteStats()
	if _, err := s.Encounter(context.Background(), encs[0].ID); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("Encounter without an actor: %v, want ErrNoActor", err)
	}
	if _, err := s.EncounterHistory(context.Background(), encs[0].ID); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("EncounterHistory without an actor: %v, want ErrNoActor", err)
	}
	if g := s.WriteStats().Transactions - st0.Transactions; g != 0 {
		t.Fatalf("%d write transactions for refused reads", g)
	}
}

func TestStore_Close_CommitsQueuedAudits(t *testing.T) {
	// Ensure entries handed in before Close are committed by it, and
	// entries handed in after it are refused.
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	raw := edgetest.MustRawDB(t, path)
	before := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`)
	release := s.HoldWriter()
	var waits []func() error
	queue := func(i int) error {
		wait, err := s.QueueAudit(worker(i%50), edge.ActionPatientSearch, "patient", "", "", fmt.Sprintf("n=%d", i))
		if err == nil {
			waits = append(waits, wait)
		}
		return err
	}
	for i := range 5 {
		if err := queue(i); err != nil {
			release()
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	// Keep handing entries in until Close refuses them: from then on the
	// queue is closed, its entries not yet committed behind the held lock.
	for i := 5; ; i++ {
		err := queue(i)
		if errors.Is(err, edge.ErrStopping) {
			break
		}
		if err != nil {
			release()
			t.Fatal(err)
		}
		runtime.Gosched()
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for i, wait := range waits {
		if err := wait(); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if g, w := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`), before+len(waits); g != w {
		t.Fatalf("%d audit entries after Close, want %d", g, w)
	}
	if err := s.Audit(edgetest.Clerk(), edge.ActionPatientSearch, "patient", "", "", ""); !errors.Is(err, edge.ErrStopping) {
		t.Fatalf("Audit after Close: %v, want ErrStopping", err)
	}
	mustIntactAudit(t, edgetest.MustOpenStoreAt(t, path))
}
