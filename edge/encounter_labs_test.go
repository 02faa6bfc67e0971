package edge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func intp(n int) *int { return &n }

// labVisit is an OPD visit that orders a haemoglobin (pending), a pregnancy
// test resulted in the visit, refers the patient and gives Td 1.
func labVisit(patientID string) *edge.Encounter {
	return &edge.Encounter{
		PatientID: patientID, Type: edge.EncounterANC, Complaint: "first antenatal visit",
		LabOrders: []edge.LabOrder{
			{Test: "hb", Status: edge.LabOrdered},
			{Test: "upt", Status: edge.LabResulted, Result: &edge.LabResult{Answer: "pos", Interpretation: edge.InterpAbnormal}},
		},
		Referral:      &edge.Referral{Facility: `CHC <Sitapur> "FRU"`, Reason: "high BP & oedema", Urgency: edge.UrgencyUrgent},
		Immunizations: []edge.Immunization{{Vaccine: "TD", Dose: intp(1)}},
	}
}

func TestStore_EncounterLabParts(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	db := edgetest.MustRawDB(t, s.Path)
	p := MustCreatePatient(t, s, "Sunita Devi")

	// Ensure a draft saves and reads back every part, and adds no outbox row.
	e := labVisit(p.ID)
	if err := s.SaveEncounter(ctx, e, nil, false); err != nil {
		t.Fatal(err)
	}
	got, err := s.Encounter(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := len(got.LabOrders), 2; g != w {
		t.Fatalf("lab orders=%d, want %d", g, w)
	}
	hb, upt := got.LabOrders[0], got.LabOrders[1]
	if hb.Test != "hb" || hb.LOINC != "718-7" || hb.Status != edge.LabOrdered || hb.Result != nil || hb.OrderedAt.IsZero() {
		t.Fatalf("hb order=%+v", hb)
	}
	if upt.Status != edge.LabResulted || upt.Result == nil || upt.Result.Answer != "pos" || upt.Result.Interpretation != "A" ||
		upt.Result.ResultedBy != "clerk-1" || upt.Result.Version != 1 || upt.Result.ResultedAt.IsZero() {
		t.Fatalf("upt order=%+v result=%+v", upt, upt.Result)
	}
	if got.Referral == nil || got.Referral.Facility != `CHC <Sitapur> "FRU"` || got.Referral.Reason != "high BP & oedema" || got.Referral.Urgency != "urgent" {
		t.Fatalf("referral=%+v", got.Referral)
	}
	if len(got.Immunizations) != 1 || got.Immunizations[0].Vaccine != "TD" || *got.Immunizations[0].Dose != 1 ||
		got.Immunizations[0].GivenOn != got.StartedAt.In(time.FixedZone("IST", 19800)).Format(time.DateOnly) {
		t.Fatalf("immunizations=%+v", got.Immunizations)
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("draft outbox rows=%d", n)
	}

	// Ensure saving the draft again replaces the parts, not adds to them.
	e.LabOrders = e.LabOrders[:1]
	e.Referral = nil
	if err := s.SaveEncounter(ctx, e, nil, false); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM lab_orders`: 1, `SELECT count(*) FROM referrals`: 0, `SELECT count(*) FROM immunizations`: 1,
	} {
		if n := edgetest.MustCount(t, db, q); n != want {
			t.Fatalf("%s = %d, want %d", q, n, want)
		}
	}

	// Ensure finalizing writes the OPConsult, the ImmunizationRecord of
	// the Td dose and one DiagnosticReportRecord per resulted order.
	e = labVisit(p.ID)
	if err := s.SaveEncounter(ctx, e, nil, true); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT key FROM outbox WHERE patient_id = ? ORDER BY id`, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for rows.Next() {
		var k string
		rows.Scan(&k)
		keys = append(keys, k)
	}
	rows.Close()
	want := []string{
		"OPConsultRecord/encounter/" + e.ID + "/v1",
		"ImmunizationRecord/encounter/" + e.ID + "/v1",
		"DiagnosticReportRecord/lab_order/" + e.LabOrders[1].ID + "/v1",
	}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("outbox keys=%v, want %v", keys, want)
	}

	// Ensure the patient page lists the pending haemoglobin, not the draft's.
	rec, err := s.PatientRecord(ctx, p.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.PendingLabOrders) != 1 || rec.PendingLabOrders[0].ID != e.LabOrders[0].ID || rec.PendingLabOrders[0].EncounterID != e.ID {
		t.Fatalf("pending=%+v, want the final visit's hb order", rec.PendingLabOrders)
	}
}

func TestEncounter_ValidateLabParts(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(e *edge.Encounter)
		field  string
	}{
		{"UnknownTest", func(e *edge.Encounter) { e.LabOrders[0].Test = "x-ray" }, "lab_orders.0.test"},
		{"WrongLOINC", func(e *edge.Encounter) { e.LabOrders[0].LOINC = "2345-7" }, "lab_orders.0.test"},
		{"ResultedWithoutResult", func(e *edge.Encounter) { e.LabOrders[0].Status = edge.LabResulted }, "lab_orders.0.status"},
		{"OrderedWithResult", func(e *edge.Encounter) { e.LabOrders[1].Status = edge.LabOrdered }, "lab_orders.1.status"},
		{"BadStatus", func(e *edge.Encounter) { e.LabOrders[0].Status = "done" }, "lab_orders.0.status"},
		{"UnknownAnswer", func(e *edge.Encounter) { e.LabOrders[1].Result.Answer = "maybe" }, "lab_orders.1.answer"},
		{"NumberForCodedTest", func(e *edge.Encounter) { e.LabOrders[1].Result.Value = 3 }, "lab_orders.1.value"},
		{"BadInterpretation", func(e *edge.Encounter) { e.LabOrders[1].Result.Interpretation = "X" }, "lab_orders.1.interpretation"},
		{"ImplausibleHb", func(e *edge.Encounter) {
			e.LabOrders[0].Status, e.LabOrders[0].Result = edge.LabResulted, &edge.LabResult{Value: 45, Unit: "g/dL"}
		}, "lab_orders.0.value"},
		{"HbInWrongUnit", func(e *edge.Encounter) {
			e.LabOrders[0].Status, e.LabOrders[0].Result = edge.LabResulted, &edge.LabResult{Value: 110, Unit: "g/L"}
		}, "lab_orders.0.value"},
		{"NaN", func(e *edge.Encounter) {
			e.LabOrders[0].Status, e.LabOrders[0].Result = edge.LabResulted, &edge.LabResult{Value: nan(), Unit: "g/dL"}
		}, "lab_orders.0.value"},
		{"ReferralWithoutFacility", func(e *edge.Encounter) { e.Referral.Facility = "  " }, "referral.facility"},
		{"ReferralControlChars", func(e *edge.Encounter) { e.Referral.Facility = "CHC\x00" }, "referral.facility"},
		{"ReferralInvalidUTF8", func(e *edge.Encounter) { e.Referral.Reason = "bad \xff" }, "referral.reason"},
		{"ReferralUrgency", func(e *edge.Encounter) { e.Referral.Urgency = "asap" }, "referral.urgency"},
		{"UnknownVaccine", func(e *edge.Encounter) { e.Immunizations[0].Vaccine = "COVID" }, "immunizations.0.vaccine"},
		{"BadDose", func(e *edge.Encounter) { e.Immunizations[0].Dose = intp(-1) }, "immunizations.0.dose"},
		{"BadDate", func(e *edge.Encounter) { e.Immunizations[0].GivenOn = "14/03/2025" }, "immunizations.0.given_on"},
	}
	s := edgetest.MustOpenStore(t)
	db := edgetest.MustRawDB(t, s.Path)
	p := MustCreatePatient(t, s, "Asha")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := labVisit(p.ID)
			tc.mutate(e)
			// Ensure the store refuses it with the field's error and writes nothing.
			err := s.SaveEncounter(edgetest.Clerk(), e, nil, true)
			var fe edge.FieldErrors
			if !errors.As(err, &fe) || fe[tc.field] == "" {
				t.Fatalf("err=%v, want a field error on %s", err, tc.field)
			}
			if n := edgetest.MustCount(t, db, `SELECT count(*) FROM encounters`); n != 0 {
				t.Fatalf("encounters=%d after a refused save", n)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

// MustFinalLabVisit saves labVisit as a final encounter.
func MustFinalLabVisit(tb testing.TB, s *edge.Store, patientID string) *edge.Encounter {
	tb.Helper()
	e := labVisit(patientID)
	if err := s.SaveEncounter(edgetest.Clerk(), e, nil, true); err != nil {
		tb.Fatal(err)
	}
	return e
}

func TestStore_RecordLabResult(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	db := edgetest.MustRawDB(t, s.Path)
	p := MustCreatePatient(t, s, "Sunita Devi")
	e := MustFinalLabVisit(t, s, p.ID)
	hb := e.LabOrders[0].ID
	key := "DiagnosticReportRecord/lab_order/" + hb + "/v1"

	// Ensure an implausible value is refused with a field error and changes nothing.
	err := s.RecordLabResult(ctx, hb, &edge.LabResult{Value: 0.1, ValueText: "0.1", Unit: "g/dL"})
	var fe edge.FieldErrors
	if !errors.As(err, &fe) || fe["value"] != "error.vital_implausible" {
		t.Fatalf("err=%v, want value implausible", err)
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM outbox WHERE key = ?`, key); n != 0 {
		t.Fatal("refused result wrote an outbox row")
	}

	// Ensure the result, its audit entry and its outbox row commit together:
	// with outbox inserts refused, nothing of the result stays.
	if _, err := db.Exec(`CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordLabResult(ctx, hb, &edge.LabResult{Value: 9.8, ValueText: "9.8", Unit: "g/dL", Interpretation: "L"}); err == nil {
		t.Fatal("result saved although its outbox row was refused")
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM lab_orders WHERE id = ? AND status = 'ordered' AND resulted_at IS NULL`, hb); n != 1 {
		t.Fatal("the order changed although the transaction failed")
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM audit_log WHERE action = 'lab.result'`); n != 0 {
		t.Fatal("an audit entry outlived its failed transaction")
	}
	if _, err := db.Exec(`DROP TRIGGER refuse_outbox`); err != nil {
		t.Fatal(err)
	}

	// Ensure a good result is saved, audited as the user and queued once.
	if err := s.RecordLabResult(ctx, hb, &edge.LabResult{Value: 9.8, ValueText: "9.8", Unit: "g/dL", Interpretation: "L"}); err != nil {
		t.Fatal(err)
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM outbox WHERE key = ? AND entity = 'lab_order' AND lane = 1 AND patient_id = ?`, key, p.ID); n != 1 {
		t.Fatalf("outbox rows for the result=%d, want 1", n)
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM audit_log WHERE action = 'lab.result' AND entity_id = ? AND actor = 'user:clerk-1' AND patient_id = ?`, hb, p.ID); n != 1 {
		t.Fatalf("audit entries=%d, want 1", n)
	}
	o, err := s.LabOrder(ctx, hb)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != edge.LabResulted || o.Result.Value != 9.8 || o.Result.Unit != "g/dL" || o.Result.Interpretation != "L" ||
		o.Result.ResultedBy != "clerk-1" || o.EncounterID != e.ID || o.PatientID != p.ID {
		t.Fatalf("order=%+v result=%+v", o, o.Result)
	}
	// The encounter read shows it too (the fhir mapper builds from it).
	got, err := s.Encounter(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LabOrders[0].Result == nil || got.LabOrders[0].Result.Value != 9.8 {
		t.Fatalf("encounter's order=%+v", got.LabOrders[0])
	}

	// Ensure a second result is refused: a correction is an amendment.
	err = s.RecordLabResult(ctx, hb, &edge.LabResult{Value: 10.2, Unit: "g/dL"})
	var ee *edge.Error
	if !errors.As(err, &ee) || ee.Code != "lab_not_pending" {
		t.Fatalf("err=%v, want lab_not_pending", err)
	}

	// Ensure an unknown order is not found, and no actor is refused.
	if err := s.RecordLabResult(ctx, "nope", &edge.LabResult{}); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("err=%v, want ErrNotFound", err)
	}
	if err := s.RecordLabResult(context.Background(), hb, &edge.LabResult{}); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("err=%v, want ErrNoActor", err)
	}
}

func TestStore_CancelLabOrder(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	db := edgetest.MustRawDB(t, s.Path)
	p := MustCreatePatient(t, s, "Sunita Devi")

	// Ensure an order of a draft cannot be cancelled or resulted from outside the form.
	draft := labVisit(p.ID)
	if err := s.SaveEncounter(ctx, draft, nil, false); err != nil {
		t.Fatal(err)
	}
	var ee *edge.Error
	if err := s.CancelLabOrder(ctx, draft.LabOrders[0].ID); !errors.As(err, &ee) || ee.Code != "lab_draft" {
		t.Fatalf("cancel draft order: err=%v", err)
	}
	if err := s.RecordLabResult(ctx, draft.LabOrders[0].ID, &edge.LabResult{Value: 11, Unit: "g/dL"}); !errors.As(err, &ee) || ee.Code != "lab_draft" {
		t.Fatalf("result draft order: err=%v", err)
	}

	// Ensure a pending order of a final visit is cancelled, audited, and no longer pending.
	e := MustFinalLabVisit(t, s, p.ID)
	id := e.LabOrders[0].ID
	if err := s.CancelLabOrder(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM audit_log WHERE action = 'lab.cancel' AND entity_id = ?`, id); n != 1 {
		t.Fatalf("audit entries=%d", n)
	}
	rec, err := s.PatientRecord(ctx, p.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.PendingLabOrders) != 0 {
		t.Fatalf("pending=%+v after cancel", rec.PendingLabOrders)
	}
	if err := s.RecordLabResult(ctx, id, &edge.LabResult{Value: 11, Unit: "g/dL"}); !errors.As(err, &ee) || ee.Code != "lab_not_pending" {
		t.Fatalf("result after cancel: err=%v", err)
	}
	if err := s.CancelLabOrder(ctx, id); !errors.As(err, &ee) || ee.Code != "lab_not_pending" {
		t.Fatalf("second cancel: err=%v", err)
	}
}

// labsVersion is the schema version of the labs migration, read from the
// embedded file's name so that a renumbering at merge keeps this test right.
func labsVersion(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("migrations")
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		if num, ok := strings.CutSuffix(e.Name(), "_labs.sql"); ok {
			v, err := strconv.Atoi(num)
			if err != nil {
				tb.Fatal(err)
			}
			return v
		}
	}
	tb.Fatal("no *_labs.sql migration")
	return 0
}

// Ensure the labs migration moves the vaccines an immunization visit kept
// as urn:healthpost:uip-vaccine diagnoses into immunization rows (vaccine,
// dose, booster, the visit's day in India) and leaves other diagnoses.
func TestMigration_VaccineDiagnoses(t *testing.T) {
	v := labsVersion(t)
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	old := edgetest.NewTestStore(path)
	old.MaxSchemaVersion = v - 1
	if err := old.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	old.Close(context.Background())
	db := edgetest.MustRawDB(t, path)
	// 2025-03-14 20:00 UTC is 15 March 01:30 in India.
	started := time.Date(2025, 3, 14, 20, 0, 0, 0, time.UTC).UnixMilli()
	for _, q := range []string{
		`INSERT INTO patients (id, local_id, name, gender, birth_date, created_at, updated_at, node_seq) VALUES ('p1', 'P-1', 'Baby', 'F', '2025-01-01', 1, 1, 1)`,
		`INSERT INTO encounters (id, patient_id, type, started_at, status, created_at, updated_at, node_seq) VALUES ('e1', 'p1', 'immunization', ` + strconv.FormatInt(started, 10) + `, 'final', 1, 1, 2)`,
		`INSERT INTO diagnoses (id, encounter_id, system, code, display, created_at, node_seq) VALUES
			('d1', 'e1', 'urn:healthpost:uip-vaccine', 'PENTA-2', 'Pentavalent 2', 5, 3),
			('d2', 'e1', 'urn:healthpost:uip-vaccine', 'DPT-B1', 'DPT booster 1', 5, 4),
			('d3', 'e1', 'urn:healthpost:uip-vaccine', 'TD-16', 'Td (16 years)', 5, 5),
			('d4', 'e1', 'urn:healthpost:uip-vaccine', 'BCG', 'BCG', 5, 6),
			('d5', 'e1', 'http://hl7.org/fhir/sid/icd-10', 'Z23', 'Need for immunization', 5, 7)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s := edgetest.MustOpenStoreAt(t, path)
	e, err := s.Encounter(edgetest.Clerk(), "e1")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Diagnoses) != 1 || e.Diagnoses[0].Code != "Z23" {
		t.Fatalf("diagnoses=%+v, want only Z23", e.Diagnoses)
	}
	var got []string
	for _, im := range e.Immunizations {
		d := "-"
		if im.Dose != nil {
			d = strconv.Itoa(*im.Dose)
		}
		got = append(got, im.ID+":"+im.Vaccine+":"+d+":"+strconv.FormatBool(im.Booster)+":"+im.GivenOn)
	}
	want := "d1:PENTA:2:false:2025-03-15 d2:DPT:1:true:2025-03-15 d3:TD:-:true:2025-03-15 d4:BCG:-:false:2025-03-15"
	if strings.Join(got, " ") != want {
		t.Fatalf("immunizations=%q, want %q", strings.Join(got, " "), want)
	}
}
