package fhir_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/fhir"
)

// FuzzBuildDocument puts arbitrary strings in the free-text fields of an
// OPD encounter. Whatever they hold, BuildDocument must not panic, and must
// either refuse them (invalid text, or a drug line without a name) or give
// valid JSON in which the patient's name comes back exactly.
func FuzzBuildDocument(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, s, s, s)
	}
	f.Add("Sun\xffita", "", "", "x")
	f.Add("", "\x00", "\u2028", "")
	f.Add(" ", "\t", "\n", " ")
	f.Fuzz(func(t *testing.T, name, complaint, notes, drug string) {
		in := encounterInput(edge.DocOPConsult)
		in.Patient.Name, in.Encounter.Complaint, in.Encounter.Notes = name, complaint, notes
		in.Encounter.Prescriptions[0].Drug = drug
		doc, err := fhir.BuildDocument(in)
		if err != nil {
			if !errors.Is(err, fhir.ErrInvalidText) && !errors.Is(err, fhir.ErrMissing) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !json.Valid(doc.JSON) {
			t.Fatal("invalid JSON")
		}
		got := ""
		for _, p := range resources(MustDecode(t, doc.JSON), "Patient") {
			got = str(p, "name", "text")
		}
		if want := strings.TrimSpace(name); got != want {
			t.Fatalf("name=%q, want %q", got, want)
		}
	})
}
