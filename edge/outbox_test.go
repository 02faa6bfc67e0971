package edge_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func TestStore_CreateEncounter(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Ensure a final encounter commits with its parts, its outbox rows and its audit entry.
		path := filepath.Join(t.TempDir(), edge.DBFileName)
		s := edgetest.MustOpenStoreAt(t, path)
		p := MustCreatePatient(t, s, "Sunita Devi")
		changed := s.OutboxChanged()
		e := OPDVisit(p.ID)
		if err := s.CreateEncounter(edgetest.Clerk(), e); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		default:
			t.Fatal("OutboxChanged was not signalled after the commit")
		}
		got, err := s.Encounter(edgetest.Clerk(), e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := len(got.Observations), 5; g != w {
			t.Fatalf("Observations=%d, want %d", g, w)
		}
		if g, w := got.Observations[3].Value, 38.4; g != w {
			t.Fatalf("temperature=%v, want %v", g, w)
		}
		if g, w := got.Prescriptions[0].DurationDays, 3; g != w {
			t.Fatalf("DurationDays=%d, want %d", g, w)
		}
		due, err := s.DueOutbox(context.Background(), time.Now().Add(time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		// Per-patient order holds back all but the first document of the patient.
		if g, w := len(due), 1; g != w {
			t.Fatalf("due=%d, want %d", g, w)
		}
		if g, w := due[0].Document, edge.DocOPConsult; g != w {
			t.Fatalf("first document=%s, want %s", g, w)
		}
		raw := edgetest.MustRawDB(t, path)
		if g, w := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE entity_id = ?`, e.ID), 3; g != w {
			t.Fatalf("outbox rows=%d, want %d (OPConsult, Prescription, Wellness)", g, w)
		}
	})

	t.Run("ErrPatientNotFound", func(t *testing.T) {
		// Ensure an encounter for an unknown patient writes nothing at all.
		path := filepath.Join(t.TempDir(), edge.DBFileName)
		s := edgetest.MustOpenStoreAt(t, path)
		err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(edge.NewID()))
		var fe edge.FieldErrors
		if !errors.As(err, &fe) || fe["patient_id"] == "" {
			t.Fatalf("err=%v, want a patient_id field error", err)
		}
		raw := edgetest.MustRawDB(t, path)
		for _, table := range []string{"encounters", "observations", "outbox", "audit_log"} {
			if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM `+table); g != 0 {
				t.Fatalf("%s has %d rows after a failed write", table, g)
			}
		}
	})

	t.Run("ErrNoActor", func(t *testing.T) {
		// Ensure nobody can write patient data without saying who they are.
		s := edgetest.MustOpenStore(t)
		p := MustCreatePatient(t, s, "Sunita Devi")
		if err := s.CreateEncounter(context.Background(), OPDVisit(p.ID)); !errors.Is(err, edge.ErrNoActor) {
			t.Fatalf("err=%v, want ErrNoActor", err)
		}
	})

	t.Run("DraftThenFinalize", func(t *testing.T) {
		// Ensure a draft queues nothing and finalizing queues its documents once.
		s := edgetest.MustOpenStore(t)
		p := MustCreatePatient(t, s, "Sunita Devi")
		e := OPDVisit(p.ID)
		e.Status = edge.EncounterDraft
		if err := s.CreateEncounter(edgetest.Clerk(), e); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.DueOutbox(context.Background(), time.Now().Add(time.Second), 10); len(due) != 0 {
			t.Fatalf("draft queued %d documents", len(due))
		}
		if err := s.FinalizeEncounter(edgetest.Clerk(), e.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.FinalizeEncounter(edgetest.Clerk(), e.ID); err == nil {
			t.Fatal("finalizing twice succeeded")
		}
		st, _ := s.OutboxStats(context.Background())
		if g, w := st.Counts[0].Count, int64(3); g != w {
			t.Fatalf("pending=%d, want %d", g, w)
		}
	})
}

// failOn installs a trigger that makes every insert into table fail, to
// break a transaction part-way.
func failOn(tb testing.TB, path, table string) {
	tb.Helper()
	if _, err := edgetest.MustRawDB(tb, path).Exec(`CREATE TRIGGER fail_` + table + ` BEFORE INSERT ON ` + table +
		` BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		tb.Fatal(err)
	}
}

func TestOutbox_AtomicWithClinicalWrite(t *testing.T) {
	for _, table := range []string{"prescriptions", "outbox", "audit_log"} {
		t.Run("FailIn_"+table, func(t *testing.T) {
			// Ensure a failure anywhere in the transaction leaves neither the clinical rows nor the outbox rows.
			path := filepath.Join(t.TempDir(), edge.DBFileName)
			s := edgetest.MustOpenStoreAt(t, path)
			p := MustCreatePatient(t, s, "Sunita Devi")
			raw := edgetest.MustRawDB(t, path)
			auditBefore := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`)
			failOn(t, path, table)
			changed := s.OutboxChanged()
			if err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(p.ID)); err == nil {
				t.Fatal("CreateEncounter succeeded despite the injected failure")
			}
			for _, tbl := range []string{"encounters", "observations", "diagnoses", "prescriptions", "outbox"} {
				if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM `+tbl); g != 0 {
					t.Fatalf("%s has %d rows after the failed transaction", tbl, g)
				}
			}
			if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`); g != auditBefore {
				t.Fatalf("audit_log has %d rows, want %d", g, auditBefore)
			}
			select {
			case <-changed:
				t.Fatal("OutboxChanged signalled for a transaction that rolled back")
			default:
			}
			// The store still works afterwards, with an intact audit chain.
			if _, err := raw.Exec(`DROP TRIGGER fail_` + table); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(p.ID)); err != nil {
				t.Fatal(err)
			}
			if rep, err := s.VerifyAudit(context.Background()); err != nil || !rep.OK() {
				t.Fatalf("VerifyAudit=%+v, %v", rep, err)
			}
		})
	}
}

func TestOutbox_DeliveryOrder(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := context.Background()
	a := MustCreatePatient(t, s, "Patient A")
	b := MustCreatePatient(t, s, "Patient B")
	var encA []*edge.Encounter
	for range 3 {
		e := &edge.Encounter{PatientID: a.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal}
		if err := s.CreateEncounter(edgetest.Clerk(), e); err != nil {
			t.Fatal(err)
		}
		encA = append(encA, e)
	}
	eb := &edge.Encounter{PatientID: b.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal}
	if err := s.CreateEncounter(edgetest.Clerk(), eb); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	due := func() []edge.OutboxItem {
		t.Helper()
		items, err := s.DueOutbox(ctx, now, 100)
		if err != nil {
			t.Fatal(err)
		}
		return items
	}

	// Ensure only the oldest document of each patient is due.
	items := due()
	if g, w := len(items), 2; g != w {
		t.Fatalf("due=%d, want %d", g, w)
	}
	if items[0].EntityID != encA[0].ID || items[1].EntityID != eb.ID {
		t.Fatalf("due=%v,%v, want A's first then B's", items[0].EntityID, items[1].EntityID)
	}
	first := items[0]

	// Ensure a failed attempt in backoff keeps holding back the same patient's later documents, not others'.
	if err := s.MarkFailed(ctx, first.ID, "connection refused", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	items = due()
	if g, w := len(items), 1; g != w || items[0].EntityID != eb.ID {
		t.Fatalf("due after failure=%v, want only B's", items)
	}
	// Ensure, once both are due again, the one due longer goes first: a
	// retry does not overtake a document that has waited longer.
	if later, err := s.DueOutbox(ctx, now.Add(2*time.Hour), 100); err != nil {
		t.Fatal(err)
	} else if len(later) != 2 || later[0].EntityID != eb.ID || later[1].ID != first.ID {
		t.Fatalf("due after the backoff=%v, want B's then A's retry", later)
	}
	it, _ := s.OutboxItem(ctx, first.ID)
	if g, w := it.Attempts, 1; g != w {
		t.Fatalf("Attempts=%d, want %d", g, w)
	}
	if g, w := it.LastError, "connection refused"; g != w {
		t.Fatalf("LastError=%q, want %q", g, w)
	}

	// Ensure delivering it releases the next one of the same patient.
	if err := s.MarkDelivered(ctx, first.ID, edge.Receipt{Upstream: "hub", RemoteID: "b1", RemoteVersion: "1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	items = due()
	if g, w := items[0].EntityID, encA[1].ID; g != w {
		t.Fatalf("next due=%s, want A's second encounter", g)
	}
	// Ensure a quarantined document does not hold back the rest.
	if err := s.Quarantine(ctx, items[0].ID, "HTTP 422: Patient.identifier invalid"); err != nil {
		t.Fatal(err)
	}
	items = due()
	found := false
	for _, it := range items {
		found = found || it.EntityID == encA[2].ID
	}
	if !found {
		t.Fatal("a quarantined document held back the patient's next document")
	}

	// Ensure terminal states cannot be delivered again, and unknown rows say so.
	if err := s.MarkDelivered(ctx, first.ID, edge.Receipt{At: time.Now()}); err == nil {
		t.Fatal("delivering a delivered row twice succeeded")
	}
	if err := s.MarkFailed(ctx, 99999, "x", now); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("MarkFailed(unknown) err=%v, want ErrNotFound", err)
	}
}

func TestOutbox_LanesPutClinicalBeforeBulk(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := context.Background()
	a := MustCreatePatient(t, s, "Patient A")
	b := MustCreatePatient(t, s, "Patient B")
	d := MustCreateDevice(t, s, "Oximeter")
	// A device reading (bulk lane) for A is written before B's encounter (clinical lane).
	if err := s.SaveReading(ctx, &edge.Reading{DeviceID: d.ID, PatientID: a.ID, LOINC: "59408-5", Value: 97, Unit: "%", EffectiveAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEncounter(edgetest.Clerk(), &edge.Encounter{PatientID: b.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal}); err != nil {
		t.Fatal(err)
	}
	items, err := s.DueOutbox(ctx, time.Now().Add(time.Second), 10)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := len(items), 2; g != w {
		t.Fatalf("due=%d, want %d", g, w)
	}
	if g, w := items[0].Lane, edge.LaneClinical; g != w {
		t.Fatalf("first lane=%d, want clinical (%d)", g, w)
	}
	if g, w := items[0].Key, items[0].Document+"/encounter/"+items[0].EntityID+"/v1"; g != w {
		t.Fatalf("Key=%q, want %q", g, w)
	}
}
