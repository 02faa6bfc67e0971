package edge_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// MustOpenStore opens a store on a new file in a temporary directory, with
// background checks off, and closes it when the test ends.
func MustOpenStore(tb testing.TB) *edge.Store {
	tb.Helper()
	return MustOpenStoreAt(tb, filepath.Join(tb.TempDir(), edge.DBFileName))
}

// MustOpenStoreAt opens the store at path.
func MustOpenStoreAt(tb testing.TB, path string) *edge.Store {
	tb.Helper()
	s := NewTestStore(path)
	if err := s.Open(context.Background()); err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return s
}

// NewTestStore returns an unopened store with test settings: no background
// disk check and a watermark that a test machine's disk passes.
func NewTestStore(path string) *edge.Store {
	s := edge.NewStore(path)
	s.DiskCheckPeriod = 0
	s.LowFreeBytes = 64 << 20
	s.CriticalFreeBytes = 16 << 20
	return s
}

// Clerk is the context of a logged-in health worker.
func Clerk() context.Context {
	return edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "clerk-1"})
}

// MustCreatePatient registers a patient with plausible details.
func MustCreatePatient(tb testing.TB, s *edge.Store, name string) *edge.Patient {
	tb.Helper()
	p := &edge.Patient{Name: name, Gender: "F", BirthDate: "1990-04-12", Village: "Rampur"}
	if err := s.CreatePatient(Clerk(), p); err != nil {
		tb.Fatalf("create patient: %v", err)
	}
	return p
}

// MustCreateDevice registers a device.
func MustCreateDevice(tb testing.TB, s *edge.Store, name string) *edge.Device {
	tb.Helper()
	d := &edge.Device{Name: name, Kind: "bp-monitor", Transport: "mqtt"}
	if err := s.CreateDevice(Clerk(), d); err != nil {
		tb.Fatalf("create device: %v", err)
	}
	return d
}

// OPDVisit is a final OPD encounter with five vitals, a diagnosis and a
// prescription.
func OPDVisit(patientID string) *edge.Encounter {
	now := time.Now()
	return &edge.Encounter{
		PatientID: patientID, Type: edge.EncounterOPD, Status: edge.EncounterFinal,
		Complaint: "fever for 3 days",
		Observations: []edge.Observation{
			{LOINC: "8480-6", Value: 128, Unit: "mm[Hg]", EffectiveAt: now},
			{LOINC: "8462-4", Value: 84, Unit: "mm[Hg]", EffectiveAt: now},
			{LOINC: "8867-4", Value: 92, Unit: "/min", EffectiveAt: now},
			{LOINC: "8310-5", Value: 38.4, Unit: "Cel", EffectiveAt: now},
			{LOINC: "59408-5", Value: 97, Unit: "%", EffectiveAt: now},
		},
		Diagnoses:     []edge.Diagnosis{{Code: "A01.0", Display: "Typhoid fever"}},
		Prescriptions: []edge.Prescription{{Drug: "Paracetamol", Strength: "500 mg", Dose: "1 tablet", Frequency: "TDS", DurationDays: 3}},
	}
}

// MustRawDB opens the store's file with a plain SQLite connection, for tests
// that look under the store or damage it on purpose.
func MustRawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustCount returns the result of a count query.
func MustCount(tb testing.TB, db *sql.DB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}
