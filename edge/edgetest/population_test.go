package edgetest_test

import (
	"path/filepath"
	"testing"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func TestPopulation_MustCopy(t *testing.T) {
	t.Setenv(edgetest.PopulationCacheDirEnv, t.TempDir())
	pop := edgetest.Population{Patients: 500, Observations: 4002}
	path := filepath.Join(t.TempDir(), "a", edge.DBFileName)
	pop.MustCopy(t, path)

	// Ensure the counts are exact, and every row is one the node accepts.
	db := edgetest.MustRawDB(t, path)
	for _, c := range []struct {
		query string
		want  int
	}{
		{`SELECT count(*) FROM patients`, 500},
		{`SELECT count(*) FROM observations`, 4002},
		{`SELECT count(*) FROM encounters WHERE status = 'final'`, 1000},
		{`SELECT count(*) FROM encounters e WHERE (SELECT count(*) FROM observations o WHERE o.encounter_id = e.id) != 4`, 0},
		{`SELECT count(*) FROM encounters e WHERE NOT EXISTS (SELECT 1 FROM diagnoses d WHERE d.encounter_id = e.id)`, 0},
		{`SELECT count(*) FROM encounters e WHERE NOT EXISTS (SELECT 1 FROM prescriptions p WHERE p.encounter_id = e.id)`, 0},
		{`SELECT count(*) FROM patient_search_pending`, 0},
		{`SELECT count(*) FROM patient_search`, 500},
		{`SELECT count(*) FROM patients WHERE name GLOB '*[^ -~]*'`, 50}, // a tenth in Devanagari
		{`SELECT count(*) FROM users`, 0},                                // the node creates its admin at first start
	} {
		if got := edgetest.MustCount(t, db, c.query); got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
	rows, err := db.Query(`SELECT abha_number FROM patients WHERE abha_number IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var abha string
		rows.Scan(&abha)
		if _, err := edge.NormalizeABHANumber(abha); err != nil {
			t.Errorf("ABHA number %s: %v", abha, err)
		}
		n++
	}
	rows.Close()
	if n < 100 {
		t.Errorf("%d patients with an ABHA number, want about 200", n)
	}

	// Ensure the node opens it, carries on its sequence, and finds people
	// by misspelled and Devanagari names.
	s := edgetest.MustOpenStoreAt(t, path)
	ctx := edgetest.Clerk()
	for _, q := range []string{"Suneeta", "लक्ष्मी", "Muhammad"} {
		ms, kind, err := s.SearchPatients(ctx, q, 20)
		if err != nil || kind != edge.SearchByName || len(ms) == 0 {
			t.Errorf("SearchPatients(%q) = %d results, %s, %v", q, len(ms), kind, err)
		}
	}
	var patientID, encounterID string
	db.QueryRow(`SELECT patient_id, id FROM encounters ORDER BY node_seq LIMIT 1`).Scan(&patientID, &encounterID)
	rec, err := s.PatientRecord(ctx, patientID, []string{"8480-6"})
	if err != nil || len(rec.Encounters) == 0 || len(rec.Encounters[0].Diagnoses) == 0 || len(rec.Vitals["8480-6"]) == 0 {
		t.Fatalf("patient record of a populated patient: %+v, %v", rec, err)
	}
	if e, err := s.Encounter(ctx, encounterID); err != nil || len(e.Observations) != 4 || len(e.Prescriptions) == 0 {
		t.Fatalf("populated encounter: %+v, %v", e, err)
	}
	p := &edge.Patient{Name: "Asha Kumari", Gender: "F", StatedAge: 30}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.LocalID != "P-000501" {
		t.Errorf("new patient's local ID %s, want P-000501", p.LocalID)
	}
	if max := edgetest.MustCount(t, db, `SELECT max(node_seq) FROM observations`); edgetest.MustCount(t, db,
		`SELECT node_seq FROM patients WHERE id = ?`, p.ID) <= max {
		t.Fatalf("a new patient's node_seq is not after the population's (%d)", max)
	}

	// Ensure a second copy comes from the cache: the same people.
	again := filepath.Join(t.TempDir(), edge.DBFileName)
	pop.MustCopy(t, again)
	var first1, first2 string
	db.QueryRow(`SELECT id FROM patients WHERE local_id = 'P-000001'`).Scan(&first1)
	edgetest.MustRawDB(t, again).QueryRow(`SELECT id FROM patients WHERE local_id = 'P-000001'`).Scan(&first2)
	if first1 == "" || first1 != first2 {
		t.Fatalf("second copy has patient %q, first %q: not from the cache", first2, first1)
	}
}
