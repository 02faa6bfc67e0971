package edge_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func TestStore_SearchPatients(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	sunita := &edge.Patient{Name: "सुनीता देवी", Gender: "F", BirthDate: "1990-04-12", Village: "Rampur",
		Phone: "9876543210", ABHANumber: "91-2666-2007-2857", ABHAAddress: "sunita@abdm"}
	if err := s.CreatePatient(ctx, sunita); err != nil {
		t.Fatal(err)
	}
	laxmi := &edge.Patient{Name: "Laxmi Bai", Gender: "F", StatedAge: 45, Village: "Sitapur"}
	if err := s.CreatePatient(ctx, laxmi); err != nil {
		t.Fatal(err)
	}
	MustCreatePatient(t, s, "Anita Kumari")

	ids := func(ms []edge.PatientMatch) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Patient.ID)
		}
		return out
	}
	for _, tc := range []struct {
		q    string
		kind edge.SearchKind
		want string
	}{
		{"Suneeta", edge.SearchByName, sunita.ID},     // Latin, misspelled, finds Devanagari
		{"sunita devi", edge.SearchByName, sunita.ID}, // two words
		{"सुनी", edge.SearchByName, sunita.ID},        // a prefix in Devanagari
		{"लक्ष्मी", edge.SearchByName, laxmi.ID},      // Devanagari finds Latin
		{"lakshmi", edge.SearchByName, laxmi.ID},
		{"98765-43210", edge.SearchByPhone, sunita.ID},
		{"91266620072857", edge.SearchByABHANumber, sunita.ID},
		{"SUNITA@abdm", edge.SearchByABHAAddress, sunita.ID},
		{sunita.LocalID, edge.SearchByLocalID, sunita.ID},
	} {
		ms, kind, err := s.SearchPatients(ctx, tc.q, 10)
		if err != nil {
			t.Fatalf("SearchPatients(%q): %v", tc.q, err)
		}
		if kind != tc.kind || len(ms) == 0 || ms[0].Patient.ID != tc.want {
			t.Errorf("SearchPatients(%q)=%s %v, want %s first %s", tc.q, kind, ids(ms), tc.kind, tc.want)
		}
	}

	// Ensure a name that sounds different is not found, and one letter is too little.
	for _, q := range []string{"Mohan", "s"} {
		if ms, _, err := s.SearchPatients(ctx, q, 10); err != nil || len(ms) != 0 {
			t.Errorf("SearchPatients(%q)=%v, %v; want none", q, ids(ms), err)
		}
	}

	// Ensure searching needs an actor and is audited without the query.
	if _, _, err := s.SearchPatients(t.Context(), "sunita", 10); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("search without actor: %v", err)
	}
	db := edgetest.MustRawDB(t, s.Path)
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM audit_log WHERE action = 'patient.search' AND actor = 'user:clerk-1'`); n != 11 {
		t.Fatalf("search audit entries=%d, want 11", n)
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM audit_log WHERE detail LIKE '%sun%' OR detail LIKE '%987%'`); n != 0 {
		t.Fatalf("the audit log holds a query")
	}

	// Ensure a patient written behind the web UI's back (CLI, import) is indexed.
	if _, err := db.Exec(`UPDATE patients SET name = 'Pooja Sharma' WHERE id = ?`, laxmi.ID); err != nil {
		t.Fatal(err)
	}
	ms, _, err := s.SearchPatients(ctx, "पूजा", 10)
	if err != nil || !slices.Contains(ids(ms), laxmi.ID) {
		t.Fatalf("search after rename=%v, %v", ids(ms), err)
	}
	if ms, _, _ := s.SearchPatients(ctx, "laxmi", 10); len(ms) != 0 {
		t.Fatalf("old name still found: %v", ids(ms))
	}
}

func TestStore_LikelyDuplicates(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	p := &edge.Patient{Name: "Ram Prasad", Gender: "M", BirthDate: "1970-01-01", Village: "Rampur", Phone: "9876500000"}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    edge.Patient
		want bool
	}{
		{"SameNameOtherSpellingAgeVillage", edge.Patient{Name: "राम प्रसाद", StatedAge: 2025 - 1970, Village: "रामपुर"}, true},
		{"SamePhone", edge.Patient{Name: "Someone Else", BirthDate: "2000-01-01", Phone: "+91 98765 00000"}, true},
		{"OtherYear", edge.Patient{Name: "Ram Prasad", BirthDate: "1990-01-01", Village: "Rampur"}, false},
		{"OtherVillage", edge.Patient{Name: "Ram Prasad", BirthDate: "1970-05-01", Village: "Sitapur"}, false},
		{"OtherName", edge.Patient{Name: "Shyam Prasad", BirthDate: "1970-05-01", Village: "Rampur"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.p.StatedAge > 0 {
				tc.p.StatedAgeAt = p.CreatedAt.AddDate(2025-p.CreatedAt.Year(), 0, 0)
			}
			ms, err := s.LikelyDuplicates(ctx, &tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(ms) == 1 && ms[0].Patient.ID == p.ID; got != tc.want {
				t.Fatalf("duplicates=%+v, want found=%v", ms, tc.want)
			}
		})
	}
}

// BenchmarkStore_SearchPatients searches 100,000 patients with 1,000,000
// observations (edgetest.LargePopulation) the way the search box does
// (names misspelled, in Devanagari, phones, ABHA numbers, IDs) and reports
// p50 and p99 per search, including its audit entry's commit.
//
//	go test ./edge -run '^$' -bench SearchPatients -benchtime 500x
func BenchmarkStore_SearchPatients(b *testing.B) {
	path := filepath.Join(b.TempDir(), edge.DBFileName)
	edgetest.LargePopulation.MustCopy(b, path)
	s := edgetest.MustOpenStoreAt(b, path)
	db := edgetest.MustRawDB(b, path)
	var phone, abha string
	if err := db.QueryRow(`SELECT phone FROM patients WHERE phone IS NOT NULL AND local_id > 'P-050000' LIMIT 1`).Scan(&phone); err != nil {
		b.Fatal(err)
	}
	if err := db.QueryRow(`SELECT abha_number FROM patients WHERE abha_number IS NOT NULL AND local_id > 'P-070000' LIMIT 1`).Scan(&abha); err != nil {
		b.Fatal(err)
	}
	queries := []string{"Suneeta", "sunita devi", "लक्ष्मी", "Laxmi Bai", "Mohd", "Muhammad Khan", "पूजा शर्मा", "vijai",
		phone, "P-054321", "Krushna Yadav", "Ra", edge.FormatABHANumber(abha)}
	var lat []time.Duration
	tx0 := s.WriteStats().Transactions
	b.ResetTimer()
	for i := range b.N {
		q := queries[i%len(queries)]
		t0 := time.Now()
		if _, _, err := s.SearchPatients(edgetest.Clerk(), q, edge.DefaultSearchLimit); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(s.WriteStats().Transactions-tx0)/float64(b.N), "write-tx/op")
}
