package edge_test

import (
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// MustCreatePatient registers a patient with plausible details.
func MustCreatePatient(tb testing.TB, s *edge.Store, name string) *edge.Patient {
	tb.Helper()
	p := &edge.Patient{Name: name, Gender: "F", BirthDate: "1990-04-12", Village: "Rampur"}
	if err := s.CreatePatient(edgetest.Clerk(), p); err != nil {
		tb.Fatalf("create patient: %v", err)
	}
	return p
}

// MustCreateDevice registers a device.
func MustCreateDevice(tb testing.TB, s *edge.Store, name string) *edge.Device {
	tb.Helper()
	d := &edge.Device{Name: name, Kind: "bp-monitor", Transport: "mqtt"}
	if err := s.CreateDevice(edgetest.Clerk(), d); err != nil {
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
