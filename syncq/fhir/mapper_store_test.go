package fhir_test

import (
	"context"
	"testing"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
)

// Ensure every document the node's mapper (syncq.FHIRMapper) builds from a
// real store for amended visits with lab orders, a referral and vaccines is
// valid FHIR R4 and meets the IG, with the status its version calls for:
// an antenatal visit whose Td dose is corrected and then removed (its
// ImmunizationRecord amended, then withdrawn), and an immunization visit
// whose referral is removed (its OPConsultRecord withdrawn). The test
// lives here, beside the schema and IG checkers, rather than in syncq.
func TestFHIRMapper_AmendedVisitsPassIG(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	nurse := &edge.User{Username: "anm.kavita", DisplayName: "Kavita (ANM)", Role: edge.RoleHealthWorker}
	if err := s.CreateUser(edgetest.Clerk(), nurse, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: nurse.ID})
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", BirthDate: "1990-04-12", Village: "Rampur"}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}

	anc := &edge.Encounter{PatientID: p.ID, Type: edge.EncounterANC, PractitionerID: nurse.ID, Complaint: "first antenatal visit",
		Notes: "Pallor. Iron and folic acid started.",
		LabOrders: []edge.LabOrder{
			{Test: "hb", Status: edge.LabOrdered},
			{Test: "upt", Status: edge.LabResulted, Result: &edge.LabResult{Answer: "pos"}},
		},
		Referral:      &edge.Referral{Facility: "CHC Sitapur", Reason: "anaemia", Urgency: edge.UrgencyRoutine},
		Immunizations: []edge.Immunization{{Vaccine: "TD", Dose: intp(1)}},
	}
	if err := s.SaveEncounter(ctx, anc, nil, true); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordLabResult(ctx, anc.LabOrders[0].ID, &edge.LabResult{Value: 8.9, ValueText: "8.9", Unit: "g/dL", Interpretation: edge.InterpLow}); err != nil {
		t.Fatal(err)
	}
	v2 := &edge.Encounter{ID: anc.ID, PatientID: p.ID, Type: anc.Type, Complaint: anc.Complaint, Notes: anc.Notes,
		LabOrders:     []edge.LabOrder{{Test: "malaria_rdt", Status: edge.LabResulted, Result: &edge.LabResult{Answer: "neg"}}},
		Referral:      anc.Referral,
		Immunizations: []edge.Immunization{{Vaccine: "TD", Dose: intp(2)}},
	}
	if err := s.AmendEncounter(ctx, v2, "it was the second Td dose; RDT done", nil); err != nil {
		t.Fatal(err)
	}
	v3 := &edge.Encounter{ID: anc.ID, PatientID: p.ID, Type: anc.Type, Complaint: anc.Complaint, Notes: anc.Notes}
	if err := s.AmendEncounter(ctx, v3, "Td was not given: out of stock; referral not needed", nil); err != nil {
		t.Fatal(err)
	}

	imm := &edge.Encounter{PatientID: p.ID, Type: edge.EncounterImmunization, PractitionerID: nurse.ID,
		Notes:         "Left thigh. Next due in 4 weeks.",
		Referral:      &edge.Referral{Facility: "District Hospital", Urgency: edge.UrgencyUrgent},
		Immunizations: []edge.Immunization{{Vaccine: "OPV", Dose: intp(1)}, {Vaccine: "PENTA", Dose: intp(1)}},
	}
	if err := s.SaveEncounter(ctx, imm, nil, true); err != nil {
		t.Fatal(err)
	}
	immV2 := &edge.Encounter{ID: imm.ID, PatientID: p.ID, Type: imm.Type, Notes: imm.Notes, Immunizations: imm.Immunizations}
	if err := s.AmendEncounter(ctx, immV2, "referral was for another child", nil); err != nil {
		t.Fatal(err)
	}

	m, err := syncq.NewFHIRMapper(s, facility())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"OPConsultRecord/encounter/" + anc.ID + "/v1":    "final",
		"ImmunizationRecord/encounter/" + anc.ID + "/v1": "final",
		"OPConsultRecord/encounter/" + anc.ID + "/v2":    "amended",
		"ImmunizationRecord/encounter/" + anc.ID + "/v2": "amended",
		"OPConsultRecord/encounter/" + anc.ID + "/v3":    "amended",
		"ImmunizationRecord/encounter/" + anc.ID + "/v3": "entered-in-error",
		"ImmunizationRecord/encounter/" + imm.ID + "/v1": "final",
		"OPConsultRecord/encounter/" + imm.ID + "/v1":    "final",
		"ImmunizationRecord/encounter/" + imm.ID + "/v2": "amended",
		"OPConsultRecord/encounter/" + imm.ID + "/v2":    "entered-in-error",
	}
	for _, o := range v3.LabOrders { // the haemoglobin, the pregnancy test and the RDT
		want["DiagnosticReportRecord/lab_order/"+o.ID+"/v1"] = "final"
	}
	n := edgetest.MustCount(t, edgetest.MustRawDB(t, s.Path), `SELECT count(*) FROM outbox`)
	if n != len(want) || len(want) != 13 {
		t.Fatalf("outbox rows=%d, want the %d documents %v", n, len(want), want)
	}
	for id := int64(1); id <= int64(n); id++ {
		it, err := s.OutboxItem(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		status, ok := want[it.Key]
		if !ok {
			t.Fatalf("unexpected outbox row %s", it.Key)
		}
		_, data, err := m.Document(context.Background(), it)
		if err != nil {
			t.Fatalf("%s: %v", it.Key, err)
		}
		MustPassSchema(t, data)
		MustPassIG(t, data)
		b := MustDecode(t, data)
		if g := str(b, "entry", "resource", "status"); g != status {
			t.Fatalf("%s: Composition.status=%q, want %q", it.Key, g, status)
		}
		// The withdrawn antenatal record carries the dose it last had.
		if it.Key == "ImmunizationRecord/encounter/"+anc.ID+"/v3" {
			ims := resources(b, "Immunization")
			if len(ims) != 1 || str(ims[0], "protocolApplied", "doseNumberPositiveInt") != "2" || str(ims[0], "status") != "entered-in-error" {
				t.Fatalf("withdrawn doses=%v, want Td 2 entered-in-error", ims)
			}
		}
		// The consultation of version 3 orders what the visit kept, and
		// refers nowhere.
		if it.Key == "OPConsultRecord/encounter/"+anc.ID+"/v3" {
			if g := len(resources(b, "ServiceRequest")); g != 3 {
				t.Fatalf("version 3 ServiceRequests=%d, want the 3 resulted orders and no referral", g)
			}
		}
	}
}
