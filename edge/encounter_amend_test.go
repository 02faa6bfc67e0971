package edge_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// amendment is the correction of OPDVisit the tests make: another
// complaint, one vital instead of five, another diagnosis, and no
// prescription any more.
func amendment(e *edge.Encounter) *edge.Encounter {
	return &edge.Encounter{ID: e.ID, PatientID: e.PatientID, Type: e.Type, Complaint: "fever for 5 days",
		Observations: []edge.Observation{{LOINC: "8310-5", Value: 38.9, Unit: "Cel"}},
		Diagnoses:    []edge.Diagnosis{{Code: "A09", Display: "Infectious gastroenteritis and colitis"}}}
}

func TestStore_AmendEncounter(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	raw := edgetest.MustRawDB(t, path)
	ctx := edgetest.Clerk()
	p := MustCreatePatient(t, s, "Sunita Devi")
	dev := MustCreateDevice(t, s, "BP 1")

	// A visit with a device reading, finalized through the form's path.
	if err := s.BindDevice(ctx, dev.ID, p.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	r := &edge.Reading{DeviceID: dev.ID, LOINC: "8480-6", Value: 131, Unit: "mm[Hg]", EffectiveAt: time.Now()}
	if err := s.SaveReading(ctx, r); err != nil {
		t.Fatal(err)
	}
	e := OPDVisit(p.ID)
	e.Status = ""
	if err := s.SaveEncounter(ctx, e, []string{r.ObservationID}, true); err != nil {
		t.Fatal(err)
	}
	v1Snapshot := func() string {
		var body string
		if err := raw.QueryRow(`SELECT snapshot FROM encounter_versions WHERE encounter_id = ? AND version = 1`, e.ID).Scan(&body); err != nil {
			t.Fatalf("version 1 snapshot: %v", err)
		}
		return body
	}
	before := v1Snapshot()
	if !strings.Contains(before, "fever for 3 days") || !strings.Contains(before, "Paracetamol") {
		t.Fatalf("version 1 snapshot lacks the visit: %s", before)
	}

	// Ensure a reason is required, and that a refused amendment changes nothing.
	rows := func(q string) int { return edgetest.MustCount(t, raw, q, e.ID) }
	outbox, audit := rows(`SELECT count(*) FROM outbox WHERE entity_id = ?`), edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`)
	for _, reason := range []string{"", "   \n"} {
		a := amendment(e)
		err := s.AmendEncounter(ctx, a, reason, nil)
		var fe edge.FieldErrors
		if !errors.As(err, &fe) || fe["reason"] != "error.amend_reason_required" {
			t.Fatalf("amend with reason %q: %v, want a field error on reason", reason, err)
		}
	}
	// A type change, and bad parts, are field errors too.
	a := amendment(e)
	a.Type = edge.EncounterANC
	var fe edge.FieldErrors
	if err := s.AmendEncounter(ctx, a, "wrong type", nil); !errors.As(err, &fe) || fe["type"] != "error.amend_type_fixed" {
		t.Fatalf("type change: %v", err)
	}
	a = amendment(e)
	a.Observations[0].LOINC = "nope"
	if err := s.AmendEncounter(ctx, a, "", nil); !errors.As(err, &fe) || fe["reason"] == "" || fe["observations.0.loinc"] == "" {
		t.Fatalf("bad part and no reason: %v, want both field errors", err)
	}
	if g := rows(`SELECT count(*) FROM encounters WHERE id = ? AND version = 1 AND status = 'final' AND complaint = 'fever for 3 days'`); g != 1 {
		t.Fatal("a refused amendment changed the encounter")
	}
	if g := rows(`SELECT count(*) FROM outbox WHERE entity_id = ?`); g != outbox {
		t.Fatalf("outbox rows=%d after refused amendments, want %d", g, outbox)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`); g != audit {
		t.Fatalf("audit entries=%d after refused amendments, want %d", g, audit)
	}

	// Ensure an amendment makes version 2, keeps the device reading and
	// supersedes every document of version 1, including the prescription
	// it removed, in the transaction that changed the visit.
	changed := s.OutboxChanged()
	a = amendment(e)
	a.PractitionerID = "someone-else"
	if err := s.AmendEncounter(ctx, a, "  temperature was misread; diagnosis corrected  ", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("OutboxChanged was not signalled after the amendment")
	}
	if a.Version != 2 || a.Status != edge.EncounterAmended || a.Complaint != "fever for 5 days" || a.PractitionerID != "" {
		t.Fatalf("amended encounter=%+v", a)
	}
	got, err := s.Encounter(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := len(got.Observations), 2; g != w {
		t.Fatalf("observations=%d, want %d (the typed temperature and the device reading)", g, w)
	}
	if len(got.Prescriptions) != 0 || len(got.Diagnoses) != 1 || got.Diagnoses[0].Code != "A09" {
		t.Fatalf("amended parts=%+v %+v", got.Prescriptions, got.Diagnoses)
	}
	if g := rows(`SELECT count(*) FROM observations WHERE encounter_id = ? AND source = 'device'`); g != 1 {
		t.Fatal("the device reading left the visit")
	}
	keys := map[string]bool{}
	q, err := raw.Query(`SELECT key, entity_version, node_seq FROM outbox WHERE entity_id = ? AND entity_version = 2`, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for q.Next() {
		var k string
		var v int
		var seq int64
		if err := q.Scan(&k, &v, &seq); err != nil {
			t.Fatal(err)
		}
		keys[k] = true
		seqs = append(seqs, seq)
	}
	q.Close()
	for _, doc := range []string{edge.DocOPConsult, edge.DocWellness, edge.DocPrescription} {
		if !keys[doc+"/encounter/"+e.ID+"/v2"] {
			t.Errorf("no outbox row %s at version 2 (rows %v)", doc, keys)
		}
	}
	if len(keys) != 3 {
		t.Fatalf("version 2 outbox rows=%v, want 3", keys)
	}
	var amendSeq int64
	if err := raw.QueryRow(`SELECT node_seq FROM encounter_versions WHERE encounter_id = ? AND version = 2`, e.ID).Scan(&amendSeq); err != nil {
		t.Fatal(err)
	}
	for _, seq := range seqs {
		if seq <= amendSeq || seq > amendSeq+10 {
			t.Fatalf("outbox node_seq %d is not of the amendment's transaction (snapshot %d)", seq, amendSeq)
		}
	}

	// Ensure the amendment is audited without its reason (free text may name the patient).
	var detail, actor string
	if err := raw.QueryRow(`SELECT detail, actor FROM audit_log WHERE action = 'encounter.amend' AND entity_id = ?`, e.ID).Scan(&detail, &actor); err != nil {
		t.Fatalf("no audit entry of the amendment: %v", err)
	}
	if detail != "version=2" || actor != "user:clerk-1" {
		t.Fatalf("audit detail=%q actor=%q", detail, actor)
	}

	// Ensure version 1 is kept byte for byte and readable, version 2 too,
	// each read audited, and that a version never made is not found.
	if after := v1Snapshot(); after != before {
		t.Fatal("version 1 snapshot changed by the amendment")
	}
	reads := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE action = 'encounter.read'`)
	v1, err := s.EncounterVersion(ctx, e.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || v1.Status != edge.EncounterFinal || v1.Complaint != "fever for 3 days" || len(v1.Prescriptions) != 1 ||
		len(v1.Observations) != 6 || v1.EndedAt.IsZero() {
		t.Fatalf("version 1=%+v", v1)
	}
	v2, err := s.EncounterVersion(ctx, e.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.Status != edge.EncounterAmended || v2.Complaint != "fever for 5 days" || len(v2.Prescriptions) != 0 {
		t.Fatalf("version 2=%+v", v2)
	}
	if !v2.StartedAt.Equal(got.StartedAt) || v2.StartedAt.Location() != got.StartedAt.Location() {
		t.Fatalf("snapshot StartedAt=%v, the row's %v", v2.StartedAt, got.StartedAt)
	}
	for _, v := range []int{0, 3} {
		if _, err := s.EncounterVersion(ctx, e.ID, v); !errors.Is(err, edge.ErrNotFound) {
			t.Fatalf("version %d: %v, want ErrNotFound", v, err)
		}
	}
	if _, err := s.EncounterVersion(ctx, "no-such-encounter", 1); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("unknown encounter: %v", err)
	}
	if g, w := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE action = 'encounter.read'`), reads+2; g != w {
		t.Fatalf("audited reads=%d, want %d", g, w)
	}
	if _, err := s.EncounterVersion(context.Background(), e.ID, 1); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("unaudited read: %v", err)
	}

	// Ensure snapshots cannot be changed or removed, even with plain SQL.
	for _, stmt := range []string{
		`UPDATE encounter_versions SET snapshot = '{}' WHERE encounter_id = ?`,
		`DELETE FROM encounter_versions WHERE encounter_id = ?`,
	} {
		if _, err := raw.Exec(stmt, e.ID); err == nil || !strings.Contains(err.Error(), "never") {
			t.Fatalf("%s: %v, want refused", stmt, err)
		}
	}

	// Ensure the history names each version, its author and the reason, trimmed.
	h, err := s.EncounterHistory(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Version != 1 || h[0].Status != edge.EncounterFinal || h[0].Reason != "" ||
		h[1].Version != 2 || h[1].Status != edge.EncounterAmended || h[1].Reason != "temperature was misread; diagnosis corrected" ||
		h[1].AuthorID != "clerk-1" || h[1].At.IsZero() {
		t.Fatalf("history=%+v", h)
	}

	// A second amendment is version 3 and supersedes what version 2 produced.
	a = amendment(e)
	a.Observations = nil
	if err := s.AmendEncounter(ctx, a, "typed temperature was a duplicate of the device's", nil); err != nil {
		t.Fatal(err)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE entity_id = ? AND entity_version = 3`, e.ID); g != 2 {
		t.Fatalf("version 3 outbox rows=%d, want 2 (consultation and wellness: the device reading stays)", g)
	}

	// Ensure another patient's visit cannot be amended through this one.
	other := MustCreatePatient(t, s, "Ram Lal")
	a = amendment(e)
	a.PatientID = other.ID
	if err := s.AmendEncounter(ctx, a, "wrong patient", nil); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("cross-patient amendment: %v", err)
	}
	if rep, err := s.VerifyAudit(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("VerifyAudit=%+v, %v", rep, err)
	}
}

func TestStore_AmendEncounter_DraftRefused(t *testing.T) {
	// Ensure a draft cannot be amended: it is still edited as a draft.
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	p := MustCreatePatient(t, s, "Sunita Devi")
	e := &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Complaint: "cough"}
	if err := s.SaveEncounter(ctx, e, nil, false); err != nil {
		t.Fatal(err)
	}
	var ee *edge.Error
	if err := s.AmendEncounter(ctx, amendment(e), "a reason", nil); !errors.As(err, &ee) || ee.Code != "encounter_not_final" {
		t.Fatalf("amending a draft: %v", err)
	}
	if _, err := s.EncounterVersion(ctx, e.ID, 1); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("version 1 of a draft: %v, want ErrNotFound", err)
	}
	if h, err := s.EncounterHistory(ctx, e.ID); err != nil || len(h) != 0 {
		t.Fatalf("history of a draft=%v, %v", h, err)
	}
	// Each way of finalizing keeps version 1.
	if err := s.FinalizeEncounter(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	created := OPDVisit(p.ID)
	if err := s.CreateEncounter(ctx, created); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{e.ID, created.ID} {
		v1, err := s.EncounterVersion(ctx, id, 1)
		if err != nil || v1.Status != edge.EncounterFinal || v1.ID != id {
			t.Fatalf("version 1 of %s=%+v, %v", id, v1, err)
		}
	}
}

func TestStore_AmendEncounter_FailureChangesNothing(t *testing.T) {
	for _, table := range []string{"prescriptions", "encounter_versions", "outbox", "audit_log"} {
		t.Run("FailIn_"+table, func(t *testing.T) {
			// Ensure a failure anywhere in the amendment leaves the visit,
			// its parts, its versions, the outbox and the audit log as they were.
			path := filepath.Join(t.TempDir(), edge.DBFileName)
			s := edgetest.MustOpenStoreAt(t, path)
			ctx := edgetest.Clerk()
			p := MustCreatePatient(t, s, "Sunita Devi")
			e := OPDVisit(p.ID)
			if err := s.CreateEncounter(ctx, e); err != nil {
				t.Fatal(err)
			}
			raw := edgetest.MustRawDB(t, path)
			state := func() []int {
				var out []int
				for _, q := range []string{
					`SELECT count(*) FROM encounters WHERE id = ? AND version = 1 AND status = 'final' AND complaint = 'fever for 3 days'`,
					`SELECT count(*) FROM observations WHERE encounter_id = ?`,
					`SELECT count(*) FROM diagnoses WHERE encounter_id = ? AND code = 'A01.0'`,
					`SELECT count(*) FROM prescriptions WHERE encounter_id = ?`,
					`SELECT count(*) FROM encounter_versions WHERE encounter_id = ?`,
					`SELECT count(*) FROM outbox WHERE entity_id = ?`,
					`SELECT count(*) FROM audit_log WHERE entity_id = ?`,
				} {
					out = append(out, edgetest.MustCount(t, raw, q, e.ID))
				}
				return out
			}
			want := state()
			failOn(t, path, table)
			changed := s.OutboxChanged()
			a := amendment(e)
			a.Prescriptions = []edge.Prescription{{Drug: "ORS", Strength: "1 sachet"}}
			if err := s.AmendEncounter(ctx, a, "corrected", nil); err == nil {
				t.Fatal("AmendEncounter succeeded despite the injected failure")
			}
			if got := state(); !equalInts(got, want) {
				t.Fatalf("after the failed amendment %v, before %v", got, want)
			}
			select {
			case <-changed:
				t.Fatal("OutboxChanged signalled for a transaction that rolled back")
			default:
			}
			// The same amendment goes through once the fault is gone.
			if _, err := raw.Exec(`DROP TRIGGER fail_` + table); err != nil {
				t.Fatal(err)
			}
			a = amendment(e)
			if err := s.AmendEncounter(ctx, a, "corrected", nil); err != nil || a.Version != 2 {
				t.Fatalf("amend after the fault: version %d, %v", a.Version, err)
			}
			if rep, err := s.VerifyAudit(context.Background()); err != nil || !rep.OK() {
				t.Fatalf("VerifyAudit=%+v, %v", rep, err)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStore_EncounterVersion_FinalizedBeforeVersions(t *testing.T) {
	// Ensure a visit finalized by a node of schema 7 (no snapshots) still
	// maps: its current row is its version 1, no other version is made up,
	// and its first amendment keeps that row as version 1 before changing it.
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	old := edgetest.NewTestStore(path)
	old.MaxSchemaVersion = 7
	if err := old.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	old.Close(context.Background())
	raw := edgetest.MustRawDB(t, path)
	for _, q := range []string{
		`INSERT INTO patients (id, local_id, name, gender, birth_date, created_at, updated_at, node_seq) VALUES ('p1', 'P-000001', 'Old Patient', 'F', '1980-01-01', 1, 1, 1)`,
		`INSERT INTO encounters (id, patient_id, type, started_at, ended_at, complaint, status, created_at, updated_at, node_seq)
			VALUES ('e1', 'p1', 'opd', 1700000000000, 1700000600000, 'old cough', 'final', 1700000000000, 1700000600000, 2)`,
		`INSERT INTO prescriptions (id, encounter_id, drug, strength, created_at, node_seq) VALUES ('rx1', 'e1', 'Paracetamol', '500 mg', 1700000000000, 3)`,
		`INSERT INTO outbox (key, document, lane, patient_id, entity, entity_id, next_attempt_at, created_at, node_seq)
			VALUES ('OPConsultRecord/encounter/e1/v1', 'OPConsultRecord', 1, 'p1', 'encounter', 'e1', 1, 1700000600000, 4)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s := edgetest.MustOpenStoreAt(t, path)
	ctx := edgetest.Clerk()
	v1, err := s.EncounterVersion(ctx, "e1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Complaint != "old cough" || len(v1.Prescriptions) != 1 || v1.Version != 1 {
		t.Fatalf("version 1 from the row=%+v", v1)
	}
	if _, err := s.EncounterVersion(ctx, "e1", 2); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("version 2 before any amendment: %v", err)
	}

	a := &edge.Encounter{ID: "e1", PatientID: "p1", Type: edge.EncounterOPD, Complaint: "old cough, now better"}
	if err := s.AmendEncounter(ctx, a, "prescription was for another patient", nil); err != nil {
		t.Fatal(err)
	}
	v1, err = s.EncounterVersion(ctx, "e1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Complaint != "old cough" || len(v1.Prescriptions) != 1 || v1.Prescriptions[0].Drug != "Paracetamol" {
		t.Fatalf("version 1 after the amendment=%+v, want the row as it was", v1)
	}
	h, err := s.EncounterHistory(ctx, "e1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].At.UnixMilli() != 1700000600000 || h[0].AuthorID != "" || h[1].AuthorID != "clerk-1" {
		t.Fatalf("history=%+v, want version 1 at its finalize time with no author", h)
	}
	// The prescription it no longer has is superseded at version 2.
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE entity_id = 'e1' AND entity_version = 2
		AND document IN ('OPConsultRecord', 'PrescriptionRecord')`); g != 2 {
		t.Fatalf("version 2 outbox rows=%d, want 2", g)
	}
}

func TestStore_EncounterVersion_SameAsTheRow(t *testing.T) {
	// Ensure version 1 of a visit reads exactly as the visit's row does,
	// whichever way it was finalized, so a document built from either is
	// the same document.
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	p := MustCreatePatient(t, s, "Sunita Devi")
	created := OPDVisit(p.ID)
	created.StartedAt = time.Now().Add(-time.Hour) // nanoseconds, cut to milliseconds when stored
	if err := s.CreateEncounter(ctx, created); err != nil {
		t.Fatal(err)
	}
	saved := OPDVisit(p.ID)
	saved.Status = ""
	if err := s.SaveEncounter(ctx, saved, nil, true); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{created.ID, saved.ID} {
		row, err := s.Encounter(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		v1, err := s.EncounterVersion(ctx, id, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v1, row) {
			t.Fatalf("version 1 differs from the row:\n%+v\n%+v", v1, row)
		}
	}
}
