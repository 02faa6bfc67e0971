package edge_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// mustTickingStore opens a store whose clock moves on a millisecond every
// time it is read. A write transaction reads it once, at begin, so the
// audit entries of one transaction share their time and those of two
// transactions never do.
func mustTickingStore(t *testing.T) (*edge.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.NewTestStore(path)
	base := time.Now()
	var ticks atomic.Int64
	s.Now = func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Millisecond) }
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, path
}

// auditSince counts the audit entries after seq, the distinct times among
// them, and those not by system:syncq.
func auditSince(t *testing.T, path string, seq int) (entries, times, others int) {
	t.Helper()
	raw := edgetest.MustRawDB(t, path)
	if err := raw.QueryRow(`SELECT count(*), count(DISTINCT at), count(*) FILTER (WHERE actor != 'system:syncq')
		FROM audit_log WHERE seq > ?`, seq).Scan(&entries, &times, &others); err != nil {
		t.Fatal(err)
	}
	return entries, times, others
}

func lastAuditSeq(t *testing.T, path string) int {
	t.Helper()
	return edgetest.MustCount(t, edgetest.MustRawDB(t, path), `SELECT coalesce(max(seq), 0) FROM audit_log`)
}

func TestStore_ReadOutboxRecords(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Ensure the records of every kind of row are read as the one-record
		// reads read them (each encounter row at its own version), and that
		// the reads are audited once per record, in one transaction.
		s, path := mustTickingStore(t)
		doctor := MustCreateUser(t, s, "mo.sharma", edge.RoleDoctor)
		sunita, ravi := MustCreatePatient(t, s, "Sunita Devi"), MustCreatePatient(t, s, "Ravi Kumar")
		e1 := OPDVisit(sunita.ID)
		e1.PractitionerID = doctor.ID
		if err := s.CreateEncounter(edgetest.Clerk(), e1); err != nil {
			t.Fatal(err)
		}
		v2 := OPDVisit(sunita.ID)
		v2.ID, v2.Complaint, v2.Prescriptions = e1.ID, "fever for 5 days", nil
		if err := s.AmendEncounter(edgetest.Clerk(), v2, "complaint corrected", nil); err != nil {
			t.Fatal(err)
		}
		e2 := OPDVisit(ravi.ID)
		e2.LabOrders = []edge.LabOrder{{Test: "malaria_rdt", Status: edge.LabOrdered}}
		if err := s.CreateEncounter(edgetest.Clerk(), e2); err != nil {
			t.Fatal(err)
		}
		tech := MustCreateUser(t, s, "lt.verma", edge.RoleHealthWorker)
		techCtx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: tech.ID})
		if err := s.RecordLabResult(techCtx, e2.LabOrders[0].ID, &edge.LabResult{Answer: "pv"}); err != nil {
			t.Fatal(err)
		}
		d := MustCreateDevice(t, s, "BP monitor 1")
		if err := s.SaveReading(context.Background(), bp(d.ID, ravi.ID, "m-1", 131)); err != nil {
			t.Fatal(err)
		}
		items := mustOutbox(t, s) // e1 v1 (3), e1 v2 (3), e2 v1 (3), the lab result, the reading
		if len(items) != 11 {
			t.Fatalf("outbox rows=%d, want 11", len(items))
		}

		seq := lastAuditSeq(t, path)
		recs, err := s.ReadOutboxRecords(syncq(), items)
		if err != nil {
			t.Fatal(err)
		}
		// e1 v1, e1 v2, e2 v1, the lab order and e2 as it is now, the
		// observation, and the two patients.
		if entries, times, others := auditSince(t, path, seq); entries != 8 || times != 1 || others != 0 {
			t.Fatalf("audit entries=%d at %d times (%d not by syncq), want 8 in one transaction by syncq", entries, times, others)
		}
		if len(recs) != len(items) {
			t.Fatalf("records=%d for %d rows", len(recs), len(items))
		}
		for i, it := range items {
			rec := recs[i]
			if rec.Err != nil {
				t.Fatalf("%s: %v", it.Key, rec.Err)
			}
			var patientID string
			switch it.Entity {
			case edge.EntityEncounter:
				want, err := s.EncounterVersion(syncq(), it.EntityID, it.EntityVersion)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Encounter == nil || !reflect.DeepEqual(*rec.Encounter, want) {
					t.Fatalf("%s: encounter %+v, want %+v", it.Key, rec.Encounter, want)
				}
				if it.EntityID == e1.ID {
					u, err := s.UserByID(context.Background(), doctor.ID)
					if err != nil {
						t.Fatal(err)
					}
					if rec.Practitioner == nil || !reflect.DeepEqual(*rec.Practitioner, u) {
						t.Fatalf("%s: practitioner %+v, want %+v", it.Key, rec.Practitioner, u)
					}
				} else if rec.Practitioner != nil {
					t.Fatalf("%s: practitioner %+v, want none", it.Key, rec.Practitioner)
				}
				if rec.Observation != nil || rec.Devices != nil {
					t.Fatalf("%s: an encounter row with an observation or devices", it.Key)
				}
				patientID = want.PatientID
			case edge.EntityLabOrder:
				want, err := s.Encounter(syncq(), e2.ID)
				if err != nil {
					t.Fatal(err)
				}
				u, err := s.UserByID(context.Background(), tech.ID)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Encounter == nil || !reflect.DeepEqual(*rec.Encounter, want) || rec.Practitioner != nil ||
					rec.ResultedBy == nil || !reflect.DeepEqual(*rec.ResultedBy, u) {
					t.Fatalf("%s: encounter %+v resulted by %+v, want %+v by %+v", it.Key, rec.Encounter, rec.ResultedBy, want, u)
				}
				patientID = want.PatientID
			case edge.EntityObservation:
				o, pid, err := s.Observation(syncq(), it.EntityID)
				if err != nil {
					t.Fatal(err)
				}
				devs, err := s.Devices(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if rec.Observation == nil || !reflect.DeepEqual(*rec.Observation, o) || !reflect.DeepEqual(rec.Devices, devs) {
					t.Fatalf("%s: observation %+v devices %+v, want %+v and %+v", it.Key, rec.Observation, rec.Devices, o, devs)
				}
				patientID = pid
			default:
				t.Fatalf("unexpected row %s", it.Key)
			}
			p, err := s.Patient(syncq(), patientID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rec.Patient, p) {
				t.Fatalf("%s: patient %+v, want %+v", it.Key, rec.Patient, p)
			}
		}
		// Each encounter row carries its own version's content.
		for i, it := range items {
			if it.EntityID != e1.ID {
				continue
			}
			want := map[int]string{1: "fever for 3 days", 2: "fever for 5 days"}[it.EntityVersion]
			if got := recs[i].Encounter.Complaint; got != want || recs[i].Encounter.Version != it.EntityVersion {
				t.Fatalf("%s: version %d with complaint %q, want %q", it.Key, recs[i].Encounter.Version, got, want)
			}
		}
	})

	t.Run("ErrorsPerRow", func(t *testing.T) {
		// Ensure a row whose records are missing gets its own error, wrapping
		// ErrNotFound, while the other rows are read; only reads that
		// happened are audited.
		s, path := mustTickingStore(t)
		p := MustCreatePatient(t, s, "Sunita Devi")
		e := OPDVisit(p.ID)
		if err := s.CreateEncounter(edgetest.Clerk(), e); err != nil {
			t.Fatal(err)
		}
		good := mustOutbox(t, s)[0]
		noVersion, noObservation, noLabOrder, noEntity := good, good, good, good
		noVersion.EntityVersion = 7
		noObservation.Entity, noObservation.EntityID = edge.EntityObservation, edge.NewID()
		noLabOrder.Entity, noLabOrder.EntityID = edge.EntityLabOrder, edge.NewID()
		noEntity.Entity = "lab_result"
		seq := lastAuditSeq(t, path)
		recs, err := s.ReadOutboxRecords(syncq(), []edge.OutboxItem{noVersion, good, noObservation, noLabOrder, noEntity})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 2, 3, 4} {
			if !errors.Is(recs[i].Err, edge.ErrNotFound) || recs[i].Encounter != nil || recs[i].Observation != nil || recs[i].Patient.ID != "" {
				t.Fatalf("row %d: %+v, want only an error wrapping ErrNotFound", i, recs[i])
			}
		}
		if recs[1].Err != nil || recs[1].Encounter == nil || recs[1].Encounter.ID != e.ID || recs[1].Patient.ID != p.ID {
			t.Fatalf("good row: %+v", recs[1])
		}
		if entries, times, _ := auditSince(t, path, seq); entries != 2 || times != 1 {
			t.Fatalf("audit entries=%d at %d times, want the encounter and the patient, in one transaction", entries, times)
		}
	})

	t.Run("ErrNoActor", func(t *testing.T) {
		// Ensure nothing is read without an actor to audit the reads as.
		s, path := mustTickingStore(t)
		p := MustCreatePatient(t, s, "Sunita Devi")
		if err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(p.ID)); err != nil {
			t.Fatal(err)
		}
		seq := lastAuditSeq(t, path)
		if _, err := s.ReadOutboxRecords(context.Background(), mustOutbox(t, s)); !errors.Is(err, edge.ErrNoActor) {
			t.Fatalf("err=%v, want ErrNoActor", err)
		}
		if entries, _, _ := auditSince(t, path, seq); entries != 0 {
			t.Fatalf("audit entries=%d, want 0", entries)
		}
	})
}
