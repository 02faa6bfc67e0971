package edge_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// outboxKeys lists the outbox keys of one entity, in commit order.
func outboxKeys(tb testing.TB, s *edge.Store, entityID string) []string {
	tb.Helper()
	rows, err := edgetest.MustRawDB(tb, s.Path).Query(`SELECT key FROM outbox WHERE entity_id = ? ORDER BY id`, entityID)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			tb.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// orderSummary is "test:status[:result]" for each order, in order.
func orderSummary(os []edge.LabOrder) []string {
	var out []string
	for _, o := range os {
		s := o.Test + ":" + o.Status
		if r := o.Result; r != nil {
			s += ":" + r.Answer + strconv.FormatFloat(r.Value, 'f', -1, 64)
		}
		out = append(out, s)
	}
	return out
}

func TestStore_AmendEncounter_LabParts(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	raw := edgetest.MustRawDB(t, path)
	ctx := edgetest.Clerk()
	p := MustCreatePatient(t, s, "Sunita Devi")

	// Version 1: an antenatal visit that orders a haemoglobin, a malaria
	// RDT and a urine sugar (pending), a pregnancy test resulted in the
	// visit, refers the patient and gives Td 1. The lab results the
	// haemoglobin afterwards.
	e := labVisit(p.ID)
	e.LabOrders = append(e.LabOrders, edge.LabOrder{Test: "malaria_rdt", Status: edge.LabOrdered},
		edge.LabOrder{Test: "urine_sugar", Status: edge.LabOrdered})
	if err := s.SaveEncounter(ctx, e, nil, true); err != nil {
		t.Fatal(err)
	}
	hb, upt, rdt, sugar := e.LabOrders[0], e.LabOrders[1], e.LabOrders[2], e.LabOrders[3]
	if err := s.RecordLabResult(ctx, hb.ID, &edge.LabResult{Value: 9.8, ValueText: "9.8", Unit: "g/dL", Interpretation: "L"}); err != nil {
		t.Fatal(err)
	}
	hbRow, err := s.LabOrder(ctx, hb.ID)
	if err != nil {
		t.Fatal(err)
	}
	report := func(id string) string { return "DiagnosticReportRecord/lab_order/" + id + "/v1" }
	enc := func(doc string, v int) string { return doc + "/encounter/" + e.ID + "/v" + strconv.Itoa(v) }

	// Ensure an amendment that lists only what it changes keeps the
	// results (the one from the visit and the lab's), results the RDT in
	// place, removes the urine sugar, adds a blood group, and replaces the
	// referral and the vaccine.
	a := &edge.Encounter{ID: e.ID, PatientID: p.ID, Type: e.Type, Complaint: "first antenatal visit, 14 weeks",
		LabOrders: []edge.LabOrder{
			{ID: rdt.ID, Test: "malaria_rdt", Status: edge.LabResulted, Result: &edge.LabResult{Answer: "neg", Interpretation: edge.InterpNormal}},
			{ID: "not-an-order-of-this-visit", Test: "blood_group", Status: edge.LabOrdered},
		},
		Referral:      &edge.Referral{Facility: "District Hospital", Reason: "severe anaemia", Urgency: edge.UrgencyEmergency},
		Immunizations: []edge.Immunization{{Vaccine: "TD", Dose: intp(2)}},
	}
	if err := s.AmendEncounter(ctx, a, "Td dose was the second; RDT read in the visit", nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Encounter(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := orderSummary(got.LabOrders), []string{"hb:resulted:9.8", "upt:resulted:pos0", "malaria_rdt:resulted:neg0", "blood_group:ordered"}; !slices.Equal(g, w) {
		t.Fatalf("orders after the amendment=%v, want %v", g, w)
	}
	if got.LabOrders[0].ID != hb.ID || !reflect.DeepEqual(*got.LabOrders[0].Result, *hbRow.Result) {
		t.Fatalf("the lab's result changed: %+v, was %+v", got.LabOrders[0].Result, hbRow.Result)
	}
	if got.LabOrders[1].ID != upt.ID || !got.LabOrders[1].Result.ResultedAt.Equal(upt.Result.ResultedAt) {
		t.Fatalf("the visit's result changed: %+v, was %+v", got.LabOrders[1], upt)
	}
	if r := got.LabOrders[2]; r.ID != rdt.ID || !r.OrderedAt.Equal(rdt.OrderedAt) || r.Result.ResultedBy != "clerk-1" || r.Result.Version != 1 {
		t.Fatalf("the RDT resulted in the amendment=%+v %+v, want its ID and order time kept", r, r.Result)
	}
	if bg := got.LabOrders[3]; bg.ID == "not-an-order-of-this-visit" || bg.ID == sugar.ID || bg.OrderedAt.IsZero() {
		t.Fatalf("the new order=%+v, want a new ID", bg)
	}
	if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM lab_orders WHERE id = ?`, sugar.ID); n != 0 {
		t.Fatal("the pending urine sugar the amendment removed is still stored")
	}
	if r := got.Referral; r == nil || r.Facility != "District Hospital" || r.Urgency != edge.UrgencyEmergency {
		t.Fatalf("referral=%+v", got.Referral)
	}
	day := got.StartedAt.In(time.FixedZone("IST", 19800)).Format(time.DateOnly)
	if len(got.Immunizations) != 1 || *got.Immunizations[0].Dose != 2 || got.Immunizations[0].GivenOn != day {
		t.Fatalf("immunizations=%+v, want Td 2 given on the visit's day %s", got.Immunizations, day)
	}
	rec, err := s.PatientRecord(ctx, p.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.PendingLabOrders) != 1 || rec.PendingLabOrders[0].Test != "blood_group" {
		t.Fatalf("pending=%v, want only the blood group", orderSummary(rec.PendingLabOrders))
	}

	// Ensure version 2's snapshot is the visit as stored, with its orders,
	// results, referral and vaccine, and version 1's is still the visit as
	// finalized (the haemoglobin pending, Td 1).
	v2, err := s.EncounterVersion(ctx, e.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v2, got) {
		t.Fatalf("version 2 differs from the row:\n%+v\n%+v", v2, got)
	}
	v1, err := s.EncounterVersion(ctx, e.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := orderSummary(v1.LabOrders), []string{"hb:ordered", "upt:resulted:pos0", "malaria_rdt:ordered", "urine_sugar:ordered"}; !slices.Equal(g, w) ||
		v1.Referral == nil || v1.Referral.Urgency != edge.UrgencyUrgent || *v1.Immunizations[0].Dose != 1 {
		t.Fatalf("version 1=%v %+v %+v", g, v1.Referral, v1.Immunizations)
	}

	// Ensure the outbox has, at version 2, the consultation and the
	// immunization record, and one report per result: the two queued
	// before (not again) and the RDT's, none for the pending blood group.
	want := []string{
		enc("OPConsultRecord", 1), enc("ImmunizationRecord", 1),
		enc("OPConsultRecord", 2), enc("ImmunizationRecord", 2),
	}
	if g := outboxKeys(t, s, e.ID); !slices.Equal(g, want) {
		t.Fatalf("encounter outbox=%v, want %v", g, want)
	}
	for id, n := range map[string]int{hb.ID: 1, upt.ID: 1, rdt.ID: 1, got.LabOrders[3].ID: 0, sugar.ID: 0} {
		if g := len(outboxKeys(t, s, id)); g != n {
			t.Fatalf("report rows of order %s=%d, want %d", id, g, n)
		}
		if n == 1 && outboxKeys(t, s, id)[0] != report(id) {
			t.Fatalf("report row of %s=%v", id, outboxKeys(t, s, id))
		}
	}

	// Ensure changing a recorded result, or a cancelled order, is refused
	// with a field error and changes nothing.
	if err := s.CancelLabOrder(ctx, got.LabOrders[3].ID); err != nil {
		t.Fatal(err)
	}
	rows := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox`)
	for name, o := range map[string]edge.LabOrder{
		"ResultChanged": {ID: hb.ID, Test: "hb", Status: edge.LabResulted, Result: &edge.LabResult{Value: 11.2, Unit: "g/dL"}},
		"ResultRemoved": {ID: upt.ID, Test: "upt", Status: edge.LabOrdered},
		"Uncancelled":   {ID: got.LabOrders[3].ID, Test: "blood_group", Status: edge.LabOrdered},
	} {
		bad := &edge.Encounter{ID: e.ID, PatientID: p.ID, Type: e.Type, LabOrders: []edge.LabOrder{o}}
		var fe edge.FieldErrors
		if err := s.AmendEncounter(ctx, bad, "correct it", nil); !errors.As(err, &fe) || fe["lab_orders.0.status"] != "error.lab_order_fixed" {
			t.Fatalf("%s: err=%v, want lab_orders.0.status lab_order_fixed", name, err)
		}
	}
	if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM encounters WHERE id = ? AND version = 2`, e.ID); n != 1 {
		t.Fatal("a refused amendment made a version")
	}
	if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox`); n != rows {
		t.Fatalf("outbox rows=%d after refused amendments, want %d", n, rows)
	}

	// Ensure an amendment that removes the vaccine and the referral, and
	// lists a kept result as it was read, supersedes the immunization
	// record at version 3, keeps every result and the cancellation, and
	// queues no report again.
	a = &edge.Encounter{ID: e.ID, PatientID: p.ID, Type: e.Type, Complaint: "first antenatal visit, 14 weeks",
		LabOrders: []edge.LabOrder{got.LabOrders[0]}}
	if err := s.AmendEncounter(ctx, a, "Td was not given: no stock", nil); err != nil {
		t.Fatal(err)
	}
	if a.Version != 3 || a.Referral != nil || len(a.Immunizations) != 0 {
		t.Fatalf("version 3=%+v", a)
	}
	if g, w := orderSummary(a.LabOrders), []string{"hb:resulted:9.8", "upt:resulted:pos0", "malaria_rdt:resulted:neg0", "blood_group:cancelled"}; !slices.Equal(g, w) {
		t.Fatalf("orders at version 3=%v, want %v", g, w)
	}
	want = append(want, enc("OPConsultRecord", 3), enc("ImmunizationRecord", 3))
	if g := outboxKeys(t, s, e.ID); !slices.Equal(g, want) {
		t.Fatalf("encounter outbox=%v, want %v", g, want)
	}
	if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE document = 'DiagnosticReportRecord'`); n != 3 {
		t.Fatalf("report rows=%d, want 3", n)
	}
	v3, err := s.EncounterVersion(ctx, e.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v3.Referral != nil || len(v3.Immunizations) != 0 || len(v3.LabOrders) != 4 {
		t.Fatalf("version 3 snapshot=%+v", v3)
	}
	if rep, err := s.VerifyAudit(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("VerifyAudit=%+v, %v", rep, err)
	}
}

// Ensure version 1 of a visit with lab orders, results, a referral and
// vaccines reads exactly as its row does, whichever way it was finalized.
func TestStore_EncounterVersion_LabPartsSameAsTheRow(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	p := MustCreatePatient(t, s, "Sunita Devi")
	created := labVisit(p.ID)
	created.Status = edge.EncounterFinal
	created.StartedAt = time.Now().Add(-time.Hour).Truncate(time.Millisecond).Add(123456) // cut to milliseconds when stored
	if err := s.CreateEncounter(ctx, created); err != nil {
		t.Fatal(err)
	}
	saved := MustFinalLabVisit(t, s, p.ID)
	for _, id := range []string{created.ID, saved.ID} {
		row, err := s.Encounter(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(row.LabOrders) != 2 || row.Referral == nil || len(row.Immunizations) != 1 {
			t.Fatalf("row=%+v", row)
		}
		v1, err := s.EncounterVersion(ctx, id, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v1, row) {
			t.Fatalf("version 1 differs from the row:\n%+v\n%+v", v1, row)
		}
	}
	// The snapshot's copy did not cut the caller's times: it shares none
	// of the caller's parts.
	if !created.LabOrders[0].OrderedAt.Equal(created.StartedAt) {
		t.Fatalf("the caller's order time=%v, want the visit's %v", created.LabOrders[0].OrderedAt, created.StartedAt)
	}
}

// Ensure a version kept before the labs migration, when an immunization
// visit's vaccines were diagnoses of urn:healthpost:uip-vaccine, reads as
// the migrated row of the same visit: the vaccines as immunizations.
func TestEncounterVersion_SnapshotBeforeLabsMigration(t *testing.T) {
	v := labsVersion(t)
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	old := edgetest.NewTestStore(path)
	old.MaxSchemaVersion = v - 1
	if err := old.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	old.Close(context.Background())
	started := time.Date(2025, 3, 14, 20, 0, 0, 0, time.UTC).UnixMilli() // 15 March in India
	snap := edge.Encounter{ID: "e1", PatientID: "p1", Type: edge.EncounterImmunization, StartedAt: time.UnixMilli(started),
		EndedAt: time.UnixMilli(started + 600000), Status: edge.EncounterFinal, Version: 1, CreatedAt: time.UnixMilli(started),
		Diagnoses: []edge.Diagnosis{
			{ID: "d1", System: "urn:healthpost:uip-vaccine", Code: "PENTA-2", Display: "Pentavalent 2"},
			{ID: "d2", System: "urn:healthpost:uip-vaccine", Code: "PCV-B", Display: "PCV booster"},
			{ID: "d3", System: edge.ICD10System, Code: "Z23", Display: "Need for immunization"},
		}}
	body, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	db := edgetest.MustRawDB(t, path)
	st := strconv.FormatInt(started, 10)
	for _, q := range []string{
		`INSERT INTO patients (id, local_id, name, gender, birth_date, created_at, updated_at, node_seq) VALUES ('p1', 'P-1', 'Baby', 'F', '2025-01-01', 1, 1, 1)`,
		`INSERT INTO encounters (id, patient_id, type, started_at, ended_at, status, created_at, updated_at, node_seq)
			VALUES ('e1', 'p1', 'immunization', ` + st + `, ` + st + ` + 600000, 'final', ` + st + `, ` + st + `, 2)`,
		`INSERT INTO diagnoses (id, encounter_id, system, code, display, created_at, node_seq) VALUES
			('d1', 'e1', 'urn:healthpost:uip-vaccine', 'PENTA-2', 'Pentavalent 2', 5, 3),
			('d2', 'e1', 'urn:healthpost:uip-vaccine', 'PCV-B', 'PCV booster', 5, 4),
			('d3', 'e1', 'http://hl7.org/fhir/sid/icd-10', 'Z23', 'Need for immunization', 5, 5)`,
		`INSERT INTO encounter_versions (encounter_id, version, patient_id, status, snapshot, at, node_seq) VALUES ('e1', 1, 'p1', 'final', '` + string(body) + `', ` + st + `, 6)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s := edgetest.MustOpenStoreAt(t, path)
	ctx := edgetest.Clerk()
	row, err := s.Encounter(ctx, "e1")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := s.EncounterVersion(ctx, "e1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(v1.Immunizations) != 2 || v1.Immunizations[0].Vaccine != "PENTA" || *v1.Immunizations[0].Dose != 2 ||
		!v1.Immunizations[1].Booster || v1.Immunizations[1].Dose != nil || v1.Immunizations[1].GivenOn != "2025-03-15" {
		t.Fatalf("version 1 immunizations=%+v", v1.Immunizations)
	}
	if !reflect.DeepEqual(v1, row) {
		t.Fatalf("version 1 differs from the migrated row:\n%+v\n%+v", v1, row)
	}
}
