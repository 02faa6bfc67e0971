package edge_test

import (
	"context"
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

func TestStore_Smoke(t *testing.T) {
	s := MustOpenStore(t)
	p := MustCreatePatient(t, s, "Sunita Devi")
	e := OPDVisit(p.ID)
	if err := s.CreateEncounter(Clerk(), e); err != nil {
		t.Fatal(err)
	}
	d := MustCreateDevice(t, s, "BP monitor 1")
	r := &edge.Reading{DeviceID: d.ID, MessageID: "m1", PatientID: p.ID, LOINC: "8480-6", Value: 120, Unit: "mm[Hg]", EffectiveAt: time.Now(), Raw: []byte("x")}
	if err := s.SaveReading(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	rep, err := s.VerifyAudit(context.Background())
	if err != nil || !rep.OK() {
		t.Fatal(rep, err)
	}
	t.Log(rep.Entries)
}
