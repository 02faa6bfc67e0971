package edge_test

import (
	"errors"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func TestStore_SaveEncounter(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	p := MustCreatePatient(t, s, "Sunita Devi")
	dev := MustCreateDevice(t, s, "BP 1")
	db := edgetest.MustRawDB(t, s.Path)

	// A device reading arrives for the patient during the visit.
	if err := s.BindDevice(ctx, dev.ID, p.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	r := &edge.Reading{DeviceID: dev.ID, LOINC: "8480-6", Value: 131, Unit: "mm[Hg]", EffectiveAt: time.Now()}
	if err := s.SaveReading(ctx, r); err != nil {
		t.Fatal(err)
	}

	// Ensure a draft is created with no outbox rows.
	e := &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Complaint: "cough",
		Observations: []edge.Observation{{LOINC: "8310-5", Value: 37.2, Unit: "Cel"}}}
	if err := s.SaveEncounter(ctx, e, nil, false); err != nil {
		t.Fatal(err)
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM outbox WHERE entity = 'encounter'`); n != 0 {
		t.Fatalf("draft outbox rows=%d", n)
	}

	// Ensure saving again replaces the draft's parts and attaches the device observation.
	e.Complaint = "cough and fever"
	e.Observations = []edge.Observation{{LOINC: "8310-5", Value: 38.1, Unit: "Cel"}}
	e.Diagnoses = []edge.Diagnosis{{Code: "J06.9", Display: "Acute upper respiratory infection"}}
	e.Prescriptions = []edge.Prescription{{Drug: "Paracetamol", Strength: "500 mg", DurationDays: 3}}
	if err := s.SaveEncounter(ctx, e, []string{r.ObservationID, "not-an-observation"}, true); err != nil {
		t.Fatal(err)
	}
	got, err := s.Encounter(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != edge.EncounterFinal || got.Complaint != "cough and fever" || len(got.Observations) != 2 ||
		len(got.Diagnoses) != 1 || len(got.Prescriptions) != 1 {
		t.Fatalf("saved encounter=%+v", got)
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM outbox WHERE entity = 'encounter' AND entity_id = ?`, e.ID); n != 3 {
		t.Fatalf("final outbox rows=%d, want 3 (OP consult, prescription, wellness)", n)
	}

	// Ensure a final encounter is never edited in place.
	e.Complaint = "changed"
	var ee *edge.Error
	if err := s.SaveEncounter(ctx, e, nil, false); !errors.As(err, &ee) || ee.Code != "encounter_final" {
		t.Fatalf("saving a final encounter: %v", err)
	}

	// Ensure another patient's draft cannot be written through this one.
	other := MustCreatePatient(t, s, "Ram Lal")
	e2 := &edge.Encounter{PatientID: other.ID, Type: edge.EncounterOPD}
	if err := s.SaveEncounter(ctx, e2, nil, false); err != nil {
		t.Fatal(err)
	}
	e2.PatientID = p.ID
	if err := s.SaveEncounter(ctx, e2, nil, false); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("cross-patient save: %v", err)
	}
}

func TestStore_PatientRecord(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	p := &edge.Patient{Name: "Ram Lal", Gender: "M", StatedAge: 60}
	if err := s.RegisterPatient(ctx, p, []edge.Allergy{{Substance: "Penicillin", Reaction: "rash"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e := OPDVisit(p.ID)
		e.StartedAt = time.Now().Add(time.Duration(i-3) * 24 * time.Hour)
		if err := s.CreateEncounter(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := s.PatientRecord(ctx, p.ID, []string{"8480-6", "29463-7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Allergies) != 1 || rec.Allergies[0].Substance != "Penicillin" {
		t.Fatalf("allergies=%+v", rec.Allergies)
	}
	if len(rec.Encounters) != 3 || !rec.Encounters[0].StartedAt.After(rec.Encounters[2].StartedAt) ||
		len(rec.Encounters[0].Diagnoses) != 1 || rec.Encounters[0].Prescriptions != 1 {
		t.Fatalf("encounters=%+v", rec.Encounters)
	}
	// Paracetamol for 3 days: the courses begun 1 and 2 days ago are still running.
	if len(rec.ActivePrescriptions) != 2 {
		t.Fatalf("active prescriptions=%+v", rec.ActivePrescriptions)
	}
	if pts := rec.Vitals["8480-6"]; len(pts) != 3 || !pts[0].At.Before(pts[2].At) {
		t.Fatalf("systolic series=%+v", pts)
	}
	if _, ok := rec.Vitals["29463-7"]; ok {
		t.Fatal("empty series present")
	}
	db := edgetest.MustRawDB(t, s.Path)
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM audit_log WHERE action = 'patient.read' AND patient_id = ?`, p.ID); n != 1 {
		t.Fatalf("record read audit entries=%d", n)
	}
	if _, err := s.PatientRecord(t.Context(), p.ID, nil); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("no actor: %v", err)
	}
	if _, err := s.PatientRecord(ctx, "nobody", nil); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("unknown patient: %v", err)
	}
	if err := s.AddAllergy(ctx, p.ID, &edge.Allergy{Substance: " "}); err == nil {
		t.Fatal("empty allergy accepted")
	}
}

func TestStore_PatientReadings(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	p := MustCreatePatient(t, s, "Sunita Devi")
	dev := MustCreateDevice(t, s, "Oximeter")
	start := time.Now().Add(-time.Second)
	if err := s.BindDevice(ctx, dev.ID, p.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if bs, err := s.PatientBindings(ctx, p.ID); err != nil || len(bs) != 1 || bs[0].DeviceID != dev.ID {
		t.Fatalf("bindings=%+v, %v", bs, err)
	}
	changed := s.OutboxChanged()
	rs := []*edge.Reading{
		{DeviceID: dev.ID, LOINC: "2708-6", Value: 97, Unit: "%", EffectiveAt: time.Now()},
		{DeviceID: dev.ID, LOINC: "8867-4", Value: 0, Unit: "/min", EffectiveAt: time.Now(), Rejected: "no pulse"},
	}
	if err := s.SaveReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	<-changed // an assigned reading wakes listeners after commit
	got, err := s.PatientReadings(ctx, p.ID, 0, start, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("readings=%+v, %v", got, err)
	}
	if got[0].DeviceName != "Oximeter" {
		t.Fatalf("device name=%q", got[0].DeviceName)
	}
	states := map[string]bool{got[0].State: true, got[1].State: true}
	if !states["assigned"] || !states["rejected"] {
		t.Fatalf("states=%v", states)
	}
	if more, _ := s.PatientReadings(ctx, p.ID, max(got[0].Seq, got[1].Seq), start, 10); len(more) != 0 {
		t.Fatalf("after the last seq=%+v", more)
	}
	if _, err := s.PatientReadings(t.Context(), p.ID, 0, start, 10); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("no actor: %v", err)
	}
}
