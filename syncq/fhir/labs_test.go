package fhir_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/fhir"
)

// Ensure a lab result's DiagnosticReportRecord says what the result says:
// the test's LOINC code on the report and its Observation, the value in
// UCUM or the answer (SNOMED-coded where the catalogue has a code), the
// interpretation, the person who resulted it as interpreter and author,
// and the order it fulfils, completed, with the doctor as requester.
func TestBuildDocument_LabResult(t *testing.T) {
	b := MustDecode(t, MustBuild(t, labInput(2, doctor())).JSON)
	comp := asMap(asMap(asList(b["entry"])[0])["resource"])
	if g, w := str(comp, "section", "code", "coding", "code"), "722143004"; g != w {
		t.Fatalf("section code=%q, want the infectious disease report %q", g, w)
	}
	dr := resources(b, "DiagnosticReport")
	obs := resources(b, "Observation")
	sr := resources(b, "ServiceRequest")
	if len(dr) != 1 || len(obs) != 1 || len(sr) != 1 {
		t.Fatalf("%d reports, %d observations, %d orders; want one each", len(dr), len(obs), len(sr))
	}
	for what, got := range map[string]string{
		"report code":        str(dr[0], "code", "coding", "code"),
		"observation code":   str(obs[0], "code", "coding", "code"),
		"answer text":        str(obs[0], "valueCodeableConcept", "text"),
		"interpretation":     str(obs[0], "interpretation", "coding", "code"),
		"conclusion":         str(dr[0], "conclusion"),
		"order status":       str(sr[0], "status"),
		"order text":         str(sr[0], "code", "text"),
		"order category":     str(sr[0], "category", "coding", "code"),
		"report based on":    str(dr[0], "basedOn", "reference"),
		"interpreter":        str(dr[0], "resultsInterpreter", "reference"),
		"composition author": str(comp, "author", "reference"),
		"requester":          str(sr[0], "requester", "reference"),
	} {
		want := map[string]string{
			"report code": "70569-9", "observation code": "70569-9", "answer text": "P. falciparum",
			"interpretation": "A", "conclusion": "Malaria rapid test (RDT): P. falciparum (abnormal)",
			"order status": "completed", "order text": "Malaria rapid test (RDT)", "order category": "108252007",
			"report based on": "urn:uuid:" + str(sr[0], "id"),
			"interpreter":     practitionerURL(t, b, "Dr. Meena Sharma"), "composition author": practitionerURL(t, b, "Dr. Meena Sharma"),
			"requester": practitionerURL(t, b, "Dr. Meena Sharma"),
		}[what]
		if got != want {
			t.Errorf("%s=%q, want %q", what, got, want)
		}
	}
	// A Negative answer carries its SNOMED CT code.
	in := labInput(2, doctor())
	in.Encounter.LabOrders[1].Result.Answer = "neg"
	obs = resources(MustDecode(t, MustBuild(t, in).JSON), "Observation")
	if g := str(obs[0], "valueCodeableConcept", "coding", "code"); g != "260385009" {
		t.Fatalf("negative coded %q, want 260385009", g)
	}

	// Ensure the lab technician who resulted the haemoglobin later is the
	// interpreter, while the doctor stays the requester.
	b = MustDecode(t, MustBuild(t, labInput(1, labTech())).JSON)
	if g, w := str(resources(b, "DiagnosticReport")[0], "resultsInterpreter", "reference"), practitionerURL(t, b, "Ramesh (lab)"); g != w {
		t.Fatalf("interpreter=%q, want the lab technician %q", g, w)
	}
	if g, w := str(resources(b, "ServiceRequest")[0], "requester", "reference"), practitionerURL(t, b, "Dr. Meena Sharma"); g != w {
		t.Fatalf("requester=%q, want the doctor %q", g, w)
	}
	if g := str(resources(b, "Observation")[0], "valueQuantity", "value") + " " + str(resources(b, "Observation")[0], "valueQuantity", "code"); g != "9.8 g/dL" {
		t.Fatalf("value=%q, want 9.8 g/dL", g)
	}

	// Ensure each resulted order is a document of its own, stable across retries.
	a, _, _ := fhir.DocumentIdentity(labInput(1, labTech()).Item)
	c, _, _ := fhir.DocumentIdentity(labInput(2, doctor()).Item)
	if a == c || a == "" {
		t.Fatalf("two orders share bundle id %q", a)
	}
}

func practitionerURL(tb testing.TB, b map[string]any, name string) string {
	tb.Helper()
	for _, p := range resources(b, "Practitioner") {
		if str(p, "name", "text") == name {
			return "urn:uuid:" + str(p, "id")
		}
	}
	tb.Fatalf("no practitioner %q", name)
	return ""
}

// Ensure the OPConsultRecord carries every order as a ServiceRequest in
// Investigation advice (pending active, resulted completed, cancelled
// revoked) and the referral in its own section with priority and the
// facility as text.
func TestBuildDocument_OrdersAndReferral(t *testing.T) {
	in := encounterInput(edge.DocOPConsult)
	in.Encounter = labEncounter()
	b := MustDecode(t, MustBuild(t, in).JSON)
	codes := map[string][]string{}
	for _, s := range asList(sections(b)) {
		for _, e := range asList(asMap(s)["entry"]) {
			codes[str(s, "code", "coding", "code")] = append(codes[str(s, "code", "coding", "code")], str(e, "reference"))
		}
	}
	var statuses, referral []string
	for _, sr := range resources(b, "ServiceRequest") {
		url := "urn:uuid:" + str(sr, "id")
		switch {
		case strings.Contains(strings.Join(codes["721963009"], " "), url):
			statuses = append(statuses, str(sr, "status"))
		case strings.Contains(strings.Join(codes["306206005"], " "), url):
			referral = append(referral, str(sr, "priority"), str(sr, "locationCode", "text"), str(sr, "reasonCode", "text"))
		default:
			t.Fatalf("ServiceRequest %s in no section", url)
		}
	}
	if g, w := strings.Join(statuses, " "), "completed completed active revoked"; g != w {
		t.Fatalf("order statuses=%q, want %q", g, w)
	}
	if g, w := strings.Join(referral, "|"), "urgent|CHC Sitapur|severe anaemia with P. falciparum malaria"; g != w {
		t.Fatalf("referral=%q, want %q", g, w)
	}
	// No result travels in the consultation: results are DiagnosticReportRecords.
	if len(resources(b, "DiagnosticReport")) != 0 {
		t.Fatal("a DiagnosticReport in the OPConsultRecord")
	}

	// Ensure hostile text in the referral travels exactly and a bad urgency is refused.
	for _, s := range hostile {
		in := encounterInput(edge.DocOPConsult)
		in.Encounter = labEncounter()
		in.Encounter.Referral.Facility, in.Encounter.Referral.Reason = s, s
		doc := MustBuild(t, in)
		MustPassSchema(t, doc.JSON)
		MustPassIG(t, doc.JSON)
		for _, sr := range resources(MustDecode(t, doc.JSON), "ServiceRequest") {
			if sr["locationCode"] != nil && str(sr, "locationCode", "text") != strings.TrimSpace(s) {
				t.Fatalf("facility=%q, want %q", str(sr, "locationCode", "text"), s)
			}
		}
	}
}

func TestBuildDocument_LabErrors(t *testing.T) {
	cases := []struct {
		name string
		in   func() fhir.DocumentInput
		want error
	}{
		{"Pending", func() fhir.DocumentInput { return labInputFor(3) }, fhir.ErrNotFinal},
		{"Cancelled", func() fhir.DocumentInput { return labInputFor(4) }, fhir.ErrNotFinal},
		{"OrderNotInEncounter", func() fhir.DocumentInput {
			in := labInput(1, labTech())
			in.Encounter.LabOrders = in.Encounter.LabOrders[1:]
			return in
		}, fhir.ErrInconsistentInput},
		{"NewerResult", func() fhir.DocumentInput {
			in := labInput(1, labTech())
			in.Encounter.LabOrders[0].Result.Version = 2
			return in
		}, fhir.ErrStaleVersion},
		{"ResulterNotPassed", func() fhir.DocumentInput { return labInput(1, nil) }, fhir.ErrMissing},
		{"OtherResulter", func() fhir.DocumentInput { return labInput(1, doctor()) }, fhir.ErrInconsistentInput},
		{"DraftEncounter", func() fhir.DocumentInput {
			in := labInput(1, labTech())
			in.Encounter.Status = edge.EncounterDraft
			return in
		}, fhir.ErrNotFinal},
		{"UnknownTest", func() fhir.DocumentInput {
			in := labInput(1, labTech())
			in.Encounter.LabOrders[0].Test = "x-ray"
			return in
		}, fhir.ErrUnknownCode},
		{"LOINCNotTheTests", func() fhir.DocumentInput {
			in := labInput(1, labTech())
			in.Encounter.LabOrders[0].LOINC = "2345-7"
			return in
		}, fhir.ErrUnknownCode},
		{"WrongUnit", func() fhir.DocumentInput {
			in := labInput(1, labTech())
			in.Encounter.LabOrders[0].Result.Unit = "g/L"
			return in
		}, fhir.ErrUnitMismatch},
		{"UnknownAnswer", func() fhir.DocumentInput {
			in := labInput(2, doctor())
			in.Encounter.LabOrders[1].Result.Answer = "yes"
			return in
		}, fhir.ErrUnknownCode},
		{"ReportOfAnEncounter", func() fhir.DocumentInput {
			in := labInput(1, labTech())
			in.Item = outboxItem(edge.DocDiagnosticReport, fhir.EntityEncounter, encounterID, 1, at(15, 0, 0))
			return in
		}, fhir.ErrUnsupportedDocument},
		{"OPConsultOfALabOrder", func() fhir.DocumentInput {
			in := labInput(1, labTech())
			in.Item = outboxItem(edge.DocOPConsult, fhir.EntityLabOrder, labID(1), 1, at(15, 0, 0))
			return in
		}, fhir.ErrUnsupportedDocument},
		{"UnknownVaccine", func() fhir.DocumentInput {
			in := vaccineInput()
			in.Encounter.Immunizations[0].Vaccine = "COVID"
			return in
		}, fhir.ErrUnknownCode},
		{"VaccineDate", func() fhir.DocumentInput {
			in := vaccineInput()
			in.Encounter.Immunizations[0].GivenOn = "14/03/2025"
			return in
		}, fhir.ErrInvalidValue},
		{"ReferralUrgency", func() fhir.DocumentInput {
			in := encounterInput(edge.DocOPConsult)
			in.Encounter = labEncounter()
			in.Encounter.Referral.Urgency = "soon"
			return in
		}, fhir.ErrInvalidValue},
		{"ReferralBadText", func() fhir.DocumentInput {
			in := encounterInput(edge.DocOPConsult)
			in.Encounter = labEncounter()
			in.Encounter.Referral.Facility = "CHC\x00"
			return in
		}, fhir.ErrInvalidText},
		{"ImmunizationEmpty", func() fhir.DocumentInput {
			in := vaccineInput()
			in.Encounter.Immunizations, in.Encounter.Notes = nil, ""
			return in
		}, fhir.ErrEmptyDocument},
		// An antenatal visit's ImmunizationRecord holds its vaccines; its
		// notes alone are its OPConsultRecord's.
		{"AntenatalWithoutVaccines", func() fhir.DocumentInput {
			in := ancVaccineInput()
			in.Encounter.Immunizations = nil
			return in
		}, fhir.ErrEmptyDocument},
		// An immunization visit is a consultation only while it orders
		// tests or refers.
		{"ImmunizationVisitConsultation", func() fhir.DocumentInput {
			in := vaccineInput()
			in.Item = outboxItem(edge.DocOPConsult, fhir.EntityEncounter, encounterID, 1, at(10, 55, 3))
			return in
		}, fhir.ErrEmptyDocument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := fhir.BuildDocument(tc.in())
			if !errors.Is(err, tc.want) {
				t.Fatalf("err=%v, want %v", err, tc.want)
			}
			if doc.JSON != nil {
				t.Fatal("an error must come with no bundle")
			}
			MustHaveNoPHI(t, err)
		})
	}
}

// labInputFor is the DiagnosticReportRecord input of an order without a result.
func labInputFor(order int) fhir.DocumentInput {
	in := labInput(order, nil)
	return in
}

// ancVaccineInput is the ImmunizationRecord of an antenatal visit that
// gave Td 1, with notes.
func ancVaccineInput() fhir.DocumentInput {
	in := vaccineInput()
	in.Encounter.Type = edge.EncounterANC
	in.Encounter.Immunizations = []edge.Immunization{{ID: vaxID(7), Vaccine: "TD", Dose: intp(1), GivenOn: "2025-03-14"}}
	return in
}

// amendedVaccineInput is version 2 of vaccineInput's record: the amendment
// found that Pentavalent was dose 2 and that the Hep B dose was not given.
func amendedVaccineInput() fhir.DocumentInput {
	in := vaccineInput()
	e := in.Encounter
	e.Version, e.Status = 2, edge.EncounterAmended
	e.Immunizations = slices.Clone(e.Immunizations)
	e.Immunizations[1] = edge.Immunization{ID: vaxID(8), Vaccine: "PENTA", Dose: intp(2), GivenOn: "2025-03-14"}
	e.Immunizations = slices.Delete(e.Immunizations, 2, 3)
	in.Item = outboxItem(edge.DocImmunization, fhir.EntityEncounter, e.ID, 2, time.Date(2025, 3, 15, 9, 5, 0, 0, ist))
	return in
}

// Ensure an amendment of the vaccines given is the next version of the
// same ImmunizationRecord with the corrected doses, and that an amendment
// that removed an antenatal visit's last vaccine withdraws the record:
// the doses it last had, each entered-in-error, at the new version.
func TestBuildDocument_AmendedVaccines(t *testing.T) {
	v1 := MustBuild(t, vaccineInput())
	v2 := MustBuild(t, amendedVaccineInput())
	if v1.BundleID != v2.BundleID || v1.Identifier != v2.Identifier {
		t.Fatal("the amended record is another document")
	}
	if g, w := v2.VersionID+"/"+v2.Status, "2/amended"; g != w {
		t.Fatalf("version/status=%s, want %s", g, w)
	}
	var doses []string
	for _, im := range resources(MustDecode(t, v2.JSON), "Immunization") {
		doses = append(doses, str(im, "vaccineCode", "text")+" "+str(im, "protocolApplied", "doseNumberPositiveInt")+str(im, "protocolApplied", "doseNumberString")+" "+str(im, "status"))
	}
	if g, w := strings.Join(doses, ", "), "OPV (oral polio) 1 completed, Pentavalent 2 completed, DPT 1 completed, PCV (pneumococcal) Booster completed, Vitamin A 1 completed"; g != w {
		t.Fatalf("doses=%q,\nwant %q", g, w)
	}

	in := ancVaccineInput()
	anc := MustBuild(t, in)
	in.Item = outboxItem(edge.DocImmunization, fhir.EntityEncounter, encounterID, 2, time.Date(2025, 3, 15, 9, 5, 0, 0, ist))
	in.Retracted = true
	r := MustBuild(t, in)
	if r.BundleID != anc.BundleID || r.VersionID != "2" || r.Status != "entered-in-error" {
		t.Fatalf("retraction %s v%s %s, want %s v2 entered-in-error", r.BundleID, r.VersionID, r.Status, anc.BundleID)
	}
	ims := resources(MustDecode(t, r.JSON), "Immunization")
	if len(ims) != 1 || str(ims[0], "status") != "entered-in-error" {
		t.Fatalf("withdrawn doses=%v, want Td 1 entered-in-error", ims)
	}
}
