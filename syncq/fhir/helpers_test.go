package fhir_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/fhir"
)

// shared is where the FHIR validation assets live. They are read, never
// copied; a missing file fails the test (no skips).
const (
	sharedFHIR = "../../../shared/fhir"
	igDir      = sharedFHIR + "/ndhm.in-6.5.0"
	schemaPath = sharedFHIR + "/fhir.schema.json"
	goldenDir  = "../../testdata/fhir"
)

var ist = time.FixedZone("IST", 5*3600+30*60)

// at is a fixed moment on 14 March 2025 in IST.
func at(hour, min, sec int) time.Time { return time.Date(2025, 3, 14, hour, min, sec, 0, ist) }

// Node ids of the fixture, UUIDv7 shaped like edge.NewID's.
const (
	patientID   = "0195b3c2-7a10-7c00-8000-00000000a001"
	userID      = "0195b3c2-7a10-7c00-8000-00000000b001"
	encounterID = "0195b3c2-7a10-7c00-8000-00000000e001"
	deviceBP    = "0195b3c2-7a10-7c00-8000-00000000d001"
	deviceOxi   = "0195b3c2-7a10-7c00-8000-00000000d002"
)

func obsID(n int) string  { return fmt.Sprintf("0195b3c2-7a10-7c00-8000-0000000c%04d", n) }
func diagID(n int) string { return fmt.Sprintf("0195b3c2-7a10-7c00-8000-0000000f%04d", n) }
func rxID(n int) string   { return fmt.Sprintf("0195b3c2-7a10-7c00-8000-0000000a%04d", n) }

// PHI in the fixture: no error message may contain any of these.
var fixturePHI = []string{
	"Sunita", "91-2666-2007-2857", "91266620072857", "sunita.devi@abdm", "9876543210", "Rampur",
	"fever", "cough", "Paracetamol", "Amoxicillin", "J06.9", "upper respiratory", "steam inhalation", "Dr. Meena", "CHC Sitapur", "anaemia", "falciparum", "Ramesh",
}

func facility() edge.FacilityConfig {
	return edge.FacilityConfig{Name: "PHC Rampur", HFRID: "IN0910034387", District: "Sitapur", State: "Uttar Pradesh"}
}

func patientFixture() edge.Patient {
	return edge.Patient{
		ID: patientID, LocalID: "P-000123",
		ABHANumber: "91266620072857", ABHAAddress: "sunita.devi@abdm",
		Name: "Sunita Devi", Gender: "F", BirthDate: "1988-07-02", Phone: "9876543210",
		Address: "House 12, Ward 3", Village: "Rampur",
	}
}

func doctor() *edge.User {
	return &edge.User{ID: userID, Username: "meena", DisplayName: "Dr. Meena Sharma", Role: edge.RoleDoctor, HPRID: "71-2665-5777-1234"}
}

// vitals is an OPD visit's measurements: a BP pair from a monitor, pulse
// and SpO2 (the oximeter's own 59408-5) from an oximeter, and manual
// temperature (8310-5), weight, height, BMI, blood sugar and haemoglobin.
func vitalsFixture() []edge.Observation {
	t := at(10, 42, 0)
	return []edge.Observation{
		{ID: obsID(1), LOINC: "8480-6", Value: 128, Unit: "mm[Hg]", EffectiveAt: t, Source: "device", DeviceID: deviceBP},
		{ID: obsID(2), LOINC: "8462-4", Value: 84, Unit: "mm[Hg]", EffectiveAt: t, Source: "device", DeviceID: deviceBP},
		{ID: obsID(3), LOINC: "8867-4", Value: 92, Unit: "/min", EffectiveAt: t.Add(time.Minute), Source: "device", DeviceID: deviceOxi},
		{ID: obsID(4), LOINC: "59408-5", Value: 97, Unit: "%", EffectiveAt: t.Add(time.Minute), Source: "device", DeviceID: deviceOxi},
		{ID: obsID(5), LOINC: "8310-5", Value: 38.4, Unit: "Cel", EffectiveAt: t, Source: "manual"},
		{ID: obsID(6), LOINC: "9279-1", Value: 22, Unit: "/min", EffectiveAt: t, Source: "manual"},
		{ID: obsID(7), LOINC: "29463-7", Value: 52.5, Unit: "kg", EffectiveAt: t, Source: "manual"},
		{ID: obsID(8), LOINC: "8302-2", Value: 154, Unit: "cm", EffectiveAt: t, Source: "manual"},
		{ID: obsID(9), LOINC: "39156-5", Value: 22.1, Unit: "kg/m2", EffectiveAt: t, Source: "manual"},
		{ID: obsID(10), LOINC: "2339-0", Value: 112, Unit: "mg/dL", EffectiveAt: t, Source: "manual"},
		{ID: obsID(11), LOINC: "718-7", Value: 10.9, Unit: "g/dL", EffectiveAt: t, Source: "manual"},
	}
}

func encounterFixture() *edge.Encounter {
	return &edge.Encounter{
		ID: encounterID, PatientID: patientID, Type: edge.EncounterOPD, PractitionerID: userID,
		StartedAt: at(10, 30, 0), EndedAt: at(10, 55, 0),
		Complaint: "fever and cough for 3 days",
		Notes:     "Chest clear. Advised steam inhalation and fluids.\nReview in 5 days if fever persists.",
		Status:    edge.EncounterFinal, Version: 1,
		Observations: vitalsFixture(),
		Diagnoses: []edge.Diagnosis{
			{ID: diagID(1), System: edge.ICD10System, Code: "J06.9", Display: "Acute upper respiratory infection, unspecified"},
		},
		Prescriptions: []edge.Prescription{
			{ID: rxID(1), Drug: "Paracetamol", Strength: "500 mg", Dose: "1 tablet", Frequency: "three times a day", DurationDays: 3, Instructions: "after food"},
			{ID: rxID(2), Drug: "Amoxicillin", Strength: "500 mg", Dose: "1 capsule", Frequency: "twice a day", DurationDays: 5},
			{ID: rxID(3), Drug: "ORS sachet"}, // no dosage written
		},
		CreatedAt: at(10, 30, 0),
	}
}

func devicesFixture() []edge.Device {
	return []edge.Device{
		{ID: deviceBP, Name: "OPD BP monitor", Kind: "bp-monitor", Transport: "serial"},
		{ID: deviceOxi, Name: "Pulse oximeter 2", Kind: "pulse-oximeter", Transport: "mqtt"},
	}
}

// outboxItem is the row edge writes for a document of an entity version.
func outboxItem(doc, entity, id string, version int, created time.Time) edge.OutboxItem {
	return edge.OutboxItem{
		ID: 42, Key: fmt.Sprintf("%s/%s/%s/v%d", doc, entity, id, version), Document: doc, Lane: edge.LaneClinical,
		PatientID: patientID, Entity: entity, EntityID: id, EntityVersion: version,
		State: edge.OutboxPending, CreatedAt: created,
	}
}

// encounterInput is the input for one document of the fixture encounter.
func encounterInput(doc string) fhir.DocumentInput {
	e := encounterFixture()
	return fhir.DocumentInput{
		Item:     outboxItem(doc, fhir.EntityEncounter, e.ID, e.Version, at(10, 55, 3)),
		Facility: facility(), Patient: patientFixture(), Practitioner: doctor(),
		Encounter: e, Devices: devicesFixture(),
	}
}

// immunizationInput is an immunization visit by an ANM without an HPR ID.
func immunizationInput() fhir.DocumentInput {
	in := encounterInput(edge.DocImmunization)
	in.Practitioner = &edge.User{ID: "0195b3c2-7a10-7c00-8000-00000000b002", Username: "anm.kavita", DisplayName: "Kavita (ANM)", Role: edge.RoleHealthWorker}
	e := in.Encounter
	e.Type, e.PractitionerID = edge.EncounterImmunization, in.Practitioner.ID
	e.Complaint, e.Observations, e.Diagnoses, e.Prescriptions = "", nil, nil, nil
	e.Notes = "Pentavalent dose 2 and OPV dose 2 given, left thigh. Next due in 4 weeks."
	return in
}

// amendedInput is version 2 of the fixture encounter: a diagnosis corrected
// and a note added, committed the next morning.
func amendedInput(doc string) fhir.DocumentInput {
	in := encounterInput(doc)
	e := in.Encounter
	e.Version, e.Status = 2, edge.EncounterAmended
	e.Diagnoses = []edge.Diagnosis{{ID: diagID(2), System: edge.ICD10System, Code: "J20.9", Display: "Acute bronchitis, unspecified"}}
	e.Notes += "\nAmended: wheeze heard on review."
	in.Item = outboxItem(doc, fhir.EntityEncounter, e.ID, 2, time.Date(2025, 3, 15, 9, 5, 0, 0, ist))
	return in
}

// retractedInput is the document kind doc of the fixture encounter
// withdrawn at version 2: the amendment removed everything the document
// held (every drug line, every measurement), so version 1's content goes
// out once more, marked entered-in-error, at version 2.
func retractedInput(doc string) fhir.DocumentInput {
	in := encounterInput(doc)
	in.Item = outboxItem(doc, fhir.EntityEncounter, in.Encounter.ID, 2, time.Date(2025, 3, 15, 9, 5, 0, 0, ist))
	in.Retracted = true
	return in
}

// readingInput is a device reading bound to the patient outside any
// encounter: an SpO2 from the oximeter.
func readingInput() fhir.DocumentInput {
	o := &edge.Observation{ID: obsID(50), LOINC: "2708-6", Value: 94, Unit: "%", EffectiveAt: at(16, 2, 11), Source: "device", DeviceID: deviceOxi}
	return fhir.DocumentInput{
		Item:     outboxItem(edge.DocWellness, fhir.EntityObservation, o.ID, 1, at(16, 2, 12)),
		Facility: facility(), Patient: patientFixture(), Observation: o, Devices: devicesFixture(),
	}
}

// MustBuild builds a document or fails the test.
func MustBuild(tb testing.TB, in fhir.DocumentInput) fhir.Document {
	tb.Helper()
	doc, err := fhir.BuildDocument(in)
	if err != nil {
		tb.Fatalf("BuildDocument: %v", err)
	}
	return doc
}

// MustDecode decodes a bundle into generic JSON, numbers kept as text.
func MustDecode(tb testing.TB, data []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := decodeJSON(data, &m); err != nil {
		tb.Fatalf("decode bundle: %v", err)
	}
	return m
}

// resources returns the bundle's entry resources of one type, in order.
func resources(bundle map[string]any, resourceType string) []map[string]any {
	var out []map[string]any
	for _, e := range asList(bundle["entry"]) {
		r, _ := asMap(e)["resource"].(map[string]any)
		if r["resourceType"] == resourceType {
			out = append(out, r)
		}
	}
	return out
}

func asList(v any) []any {
	switch v := v.(type) {
	case []any:
		return v
	case nil:
		return nil
	default:
		return []any{v}
	}
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// str follows keys and first array elements down to a string.
func str(v any, keys ...string) string {
	for _, k := range keys {
		if l, ok := v.([]any); ok {
			if len(l) == 0 {
				return ""
			}
			v = l[0]
		}
		v = asMap(v)[k]
	}
	if l, ok := v.([]any); ok && len(l) > 0 {
		v = l[0]
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

func labID(n int) string { return fmt.Sprintf("0195b3c2-7a10-7c00-8000-0000000b%04d", n) }
func vaxID(n int) string { return fmt.Sprintf("0195b3c2-7a10-7c00-8000-0000000d%04d", n) }

const labTechID = "0195b3c2-7a10-7c00-8000-00000000b003"

func labTech() *edge.User {
	return &edge.User{ID: labTechID, Username: "lt.ramesh", DisplayName: "Ramesh (lab)", Role: edge.RoleHealthWorker}
}

func intp(n int) *int { return &n }

// labEncounter is the fixture OPD visit that also ordered a haemoglobin
// (resulted later by the lab), a malaria RDT (resulted in the visit), a
// urine sugar (pending) and a blood group (cancelled), and referred the
// patient to the CHC.
func labEncounter() *edge.Encounter {
	e := encounterFixture()
	ordered := at(10, 40, 0)
	e.LabOrders = []edge.LabOrder{
		{ID: labID(1), Test: "hb", LOINC: "718-7", Status: edge.LabResulted, OrderedAt: ordered,
			Result: &edge.LabResult{Value: 9.8, ValueText: "9.8", Unit: "g/dL", Interpretation: edge.InterpLow,
				ResultedAt: at(15, 10, 0), ResultedBy: labTechID, Version: 1}},
		{ID: labID(2), Test: "malaria_rdt", LOINC: "70569-9", Status: edge.LabResulted, OrderedAt: ordered,
			Result: &edge.LabResult{Answer: "pf", Interpretation: edge.InterpAbnormal, ResultedAt: at(10, 52, 0), ResultedBy: userID, Version: 1}},
		{ID: labID(3), Test: "urine_sugar", LOINC: "25428-4", Status: edge.LabOrdered, OrderedAt: ordered},
		{ID: labID(4), Test: "blood_group", LOINC: "882-1", Status: edge.LabCancelled, OrderedAt: ordered},
	}
	e.Referral = &edge.Referral{ID: labID(9), Facility: "CHC Sitapur", Reason: "severe anaemia with P. falciparum malaria", Urgency: edge.UrgencyUrgent}
	return e
}

// labInput is the DiagnosticReportRecord of one of labEncounter's orders.
func labInput(order int, by *edge.User) fhir.DocumentInput {
	e := labEncounter()
	return fhir.DocumentInput{
		Item:     outboxItem(edge.DocDiagnosticReport, fhir.EntityLabOrder, labID(order), 1, at(15, 10, 1)),
		Facility: facility(), Patient: patientFixture(), Practitioner: doctor(),
		Encounter: e, ResultedBy: by,
	}
}

// vaccineInput is an immunization visit at 6 weeks: OPV 1, Pentavalent 1
// and a birth-dose Hep B given late, with a DPT booster and Vitamin A to
// cover the other dose forms, and notes.
func vaccineInput() fhir.DocumentInput {
	in := immunizationInput()
	in.Encounter.Immunizations = []edge.Immunization{
		{ID: vaxID(1), Vaccine: "OPV", Dose: intp(1), GivenOn: "2025-03-14"},
		{ID: vaxID(2), Vaccine: "PENTA", Dose: intp(1), GivenOn: "2025-03-14"},
		{ID: vaxID(3), Vaccine: "HEPB", Dose: intp(0), GivenOn: "2025-03-14"},
		{ID: vaxID(4), Vaccine: "DPT", Dose: intp(1), Booster: true, GivenOn: "2025-03-14"},
		{ID: vaxID(5), Vaccine: "PCV", Booster: true, GivenOn: "2025-03-13"},
		{ID: vaxID(6), Vaccine: "VITA", Dose: intp(1), GivenOn: "2025-03-14"},
	}
	return in
}
