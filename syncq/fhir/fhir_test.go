package fhir_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/fhir"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/fhir")

// documentCase is one document the node sends, the IG profile its
// Composition must claim (by the IG file that defines it) and its golden
// file.
type documentCase struct {
	name    string
	in      func() fhir.DocumentInput
	profile string // StructureDefinition file in the IG package
	golden  bool   // compared with testdata/fhir/<name>.json
}

func documentCases() []documentCase {
	return []documentCase{
		{"opconsult", func() fhir.DocumentInput { return encounterInput(edge.DocOPConsult) }, "StructureDefinition-OPConsultRecord.json", true},
		{"prescription", func() fhir.DocumentInput { return encounterInput(edge.DocPrescription) }, "StructureDefinition-PrescriptionRecord.json", false},
		{"wellness", func() fhir.DocumentInput { return encounterInput(edge.DocWellness) }, "StructureDefinition-WellnessRecord.json", false},
		{"wellness-device-reading", readingInput, "StructureDefinition-WellnessRecord.json", true},
		{"immunization", immunizationInput, "StructureDefinition-ImmunizationRecord.json", true},
		{"opconsult-amended", func() fhir.DocumentInput { return amendedInput(edge.DocOPConsult) }, "StructureDefinition-OPConsultRecord.json", false},
		{"prescription-amended", func() fhir.DocumentInput { return amendedInput(edge.DocPrescription) }, "StructureDefinition-PrescriptionRecord.json", true},
		{"prescription-retracted", func() fhir.DocumentInput { return retractedInput(edge.DocPrescription) }, "StructureDefinition-PrescriptionRecord.json", true},
		{"wellness-retracted", func() fhir.DocumentInput { return retractedInput(edge.DocWellness) }, "StructureDefinition-WellnessRecord.json", false},
		{"opconsult-retracted", func() fhir.DocumentInput { return retractedInput(edge.DocOPConsult) }, "StructureDefinition-OPConsultRecord.json", false},
		{"opconsult-no-abha", func() fhir.DocumentInput {
			in := encounterInput(edge.DocOPConsult)
			in.Patient.ABHANumber, in.Patient.ABHAAddress = "", ""
			return in
		}, "StructureDefinition-OPConsultRecord.json", false},
		{"opconsult-no-practitioner", func() fhir.DocumentInput {
			in := encounterInput(edge.DocOPConsult)
			in.Practitioner, in.Encounter.PractitionerID = nil, ""
			return in
		}, "StructureDefinition-OPConsultRecord.json", false},
		{"opconsult-labs-referral", func() fhir.DocumentInput {
			in := encounterInput(edge.DocOPConsult)
			in.Encounter = labEncounter()
			return in
		}, "StructureDefinition-OPConsultRecord.json", true},
		{"immunization-referral", func() fhir.DocumentInput {
			in := vaccineInput()
			in.Item = outboxItem(edge.DocOPConsult, fhir.EntityEncounter, encounterID, 1, at(10, 55, 3))
			in.Encounter.Notes = ""
			in.Encounter.Referral = &edge.Referral{ID: labID(9), Facility: "District Hospital", Urgency: edge.UrgencyEmergency}
			return in
		}, "StructureDefinition-OPConsultRecord.json", false},
		{"diagnostic-report-numeric", func() fhir.DocumentInput { return labInput(1, labTech()) }, "StructureDefinition-DiagnosticReportRecord.json", true},
		{"diagnostic-report-coded", func() fhir.DocumentInput { return labInput(2, doctor()) }, "StructureDefinition-DiagnosticReportRecord.json", false},
		{"diagnostic-report-no-resulter", func() fhir.DocumentInput {
			in := labInput(1, nil)
			in.Encounter.LabOrders[0].Result.ResultedBy = ""
			return in
		}, "StructureDefinition-DiagnosticReportRecord.json", false},
		{"immunization-vaccines", vaccineInput, "StructureDefinition-ImmunizationRecord.json", true},
		{"immunization-vaccines-no-notes", func() fhir.DocumentInput {
			in := vaccineInput()
			in.Encounter.Notes = ""
			return in
		}, "StructureDefinition-ImmunizationRecord.json", false},
		{"immunization-vaccines-amended", func() fhir.DocumentInput { return amendedVaccineInput() }, "StructureDefinition-ImmunizationRecord.json", false},
		{"immunization-anc-retracted", func() fhir.DocumentInput {
			in := ancVaccineInput()
			in.Item = outboxItem(edge.DocImmunization, fhir.EntityEncounter, encounterID, 2, time.Date(2025, 3, 15, 9, 5, 0, 0, ist))
			in.Retracted = true
			return in
		}, "StructureDefinition-ImmunizationRecord.json", false},
		{"opconsult-immunization-referral-retracted", func() fhir.DocumentInput {
			in := vaccineInput()
			in.Item = outboxItem(edge.DocOPConsult, fhir.EntityEncounter, encounterID, 2, time.Date(2025, 3, 15, 9, 5, 0, 0, ist))
			in.Encounter.Referral = &edge.Referral{ID: labID(9), Facility: "District Hospital", Urgency: edge.UrgencyEmergency}
			in.Retracted = true
			return in
		}, "StructureDefinition-OPConsultRecord.json", false},
		{"opconsult-diagnosis-only", func() fhir.DocumentInput {
			in := encounterInput(edge.DocOPConsult)
			e := in.Encounter
			e.Complaint, e.Notes, e.Observations, e.Prescriptions = "", "", nil, nil
			return in
		}, "StructureDefinition-OPConsultRecord.json", false},
	}
}

func TestBuildDocument(t *testing.T) {
	ig := MustIG(t)
	for _, tc := range documentCases() {
		t.Run(tc.name, func(t *testing.T) {
			doc := MustBuild(t, tc.in())

			// Ensure the bundle is valid FHIR R4 by the official JSON schema.
			MustPassSchema(t, doc.JSON)
			// Ensure it meets the IG's profiles, read from the IG package.
			MustPassIG(t, doc.JSON)

			// Ensure the Composition claims the profile of its kind.
			sd := ig.byFile[tc.profile]
			if sd == nil {
				t.Fatalf("IG package has no %s", tc.profile)
			}
			b := MustDecode(t, doc.JSON)
			if got, want := str(b, "entry", "resource", "meta", "profile"), sd.URL; got != want {
				t.Fatalf("Composition meta.profile=%q, want %q", got, want)
			}
			if got, want := str(b, "meta", "profile"), ig.byFile["StructureDefinition-DocumentBundle.json"].URL; got != want {
				t.Fatalf("Bundle meta.profile=%q, want %q", got, want)
			}
			// Ensure the Document fields say what the bundle says.
			if got, want := doc.BundleID, str(b, "id"); got != want {
				t.Fatalf("BundleID=%q, want %q", got, want)
			}
			if got, want := doc.Identifier, (fhir.Identifier{System: str(b, "identifier", "system"), Value: str(b, "identifier", "value")}); got != want {
				t.Fatalf("Identifier=%v, want %v", got, want)
			}
			if got, want := doc.VersionID, str(b, "meta", "versionId"); got != want {
				t.Fatalf("VersionID=%q, want %q", got, want)
			}
			if got, want := doc.Status, str(b, "entry", "resource", "status"); got != want {
				t.Fatalf("Status=%q, want %q", got, want)
			}
			if tc.golden {
				MustMatchGolden(t, tc.name, doc.JSON)
			}
		})
	}
}

// MustMatchGolden compares a bundle, indented, with testdata/fhir/<name>.json.
// The golden files are the reviewable form of the mapping, and they pin
// every UUIDv5: a change of namespace or name would break delivered
// identifiers, and shows here first.
func MustMatchGolden(tb testing.TB, name string, data []byte) {
	tb.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		tb.Fatal(err)
	}
	buf.WriteByte('\n')
	path := filepath.Join(goldenDir, name+".json")
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read golden file (run go test -update to write it): %v", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		tb.Fatalf("bundle differs from %s (go test -update rewrites it; review the diff)", path)
	}
}

func TestBuildDocument_Deterministic(t *testing.T) {
	for _, tc := range documentCases() {
		t.Run(tc.name, func(t *testing.T) {
			want := MustBuild(t, tc.in()).JSON

			// Ensure a second call gives the same bytes.
			if got := MustBuild(t, tc.in()).JSON; !bytes.Equal(got, want) {
				t.Fatal("second call differs")
			}

			// Ensure the machine's time zone does not leak in: the same
			// instants in UTC and in New York give the same bytes.
			for _, loc := range []*time.Location{time.UTC, time.FixedZone("EST", -5*3600)} {
				in := tc.in()
				in.Item.CreatedAt = in.Item.CreatedAt.In(loc)
				if e := in.Encounter; e != nil {
					e.StartedAt, e.EndedAt = e.StartedAt.In(loc), e.EndedAt.In(loc)
					for i := range e.Observations {
						e.Observations[i].EffectiveAt = e.Observations[i].EffectiveAt.In(loc)
					}
				}
				if o := in.Observation; o != nil {
					o.EffectiveAt = o.EffectiveAt.In(loc)
				}
				if got := MustBuild(t, in).JSON; !bytes.Equal(got, want) {
					t.Fatalf("times in %s give different bytes", loc)
				}
			}

			// Ensure the order of the device list does not matter.
			in := tc.in()
			slices.Reverse(in.Devices)
			if got := MustBuild(t, in).JSON; !bytes.Equal(got, want) {
				t.Fatal("reversed device list gives different bytes")
			}

			// Ensure concurrent calls on one shared input agree and only
			// read it (run with -race).
			shared := tc.in()
			var wg sync.WaitGroup
			out := make([][]byte, 8)
			for i := range out {
				wg.Go(func() {
					d, err := fhir.BuildDocument(shared)
					if err == nil {
						out[i] = d.JSON
					}
				})
			}
			wg.Wait()
			for i, got := range out {
				if !bytes.Equal(got, want) {
					t.Fatalf("concurrent call %d differs", i)
				}
			}
		})
	}
}

func TestBuildDocument_Identity(t *testing.T) {
	// Ensure a retry of the same row, and an amendment of the same
	// document, keep Bundle.id, Bundle.identifier and the Composition's id
	// and identifier, and only bump the version and status.
	t.Run("AmendmentKeepsIdentity", func(t *testing.T) {
		for _, kind := range []string{edge.DocOPConsult, edge.DocPrescription, edge.DocWellness} {
			v1 := MustBuild(t, encounterInput(kind))
			retry := MustBuild(t, encounterInput(kind))
			v2 := MustBuild(t, amendedInput(kind))
			if retry.Identifier != v1.Identifier || retry.BundleID != v1.BundleID {
				t.Fatalf("%s: retry identity %v %s, want %v %s", kind, retry.Identifier, retry.BundleID, v1.Identifier, v1.BundleID)
			}
			if v2.Identifier != v1.Identifier || v2.BundleID != v1.BundleID {
				t.Fatalf("%s: amendment identity %v %s, want %v %s", kind, v2.Identifier, v2.BundleID, v1.Identifier, v1.BundleID)
			}
			b1, b2 := MustDecode(t, v1.JSON), MustDecode(t, v2.JSON)
			for _, path := range [][]string{{"entry", "resource", "id"}, {"entry", "resource", "identifier", "value"}, {"entry", "resource", "identifier", "system"}} {
				if g, w := str(b2, path...), str(b1, path...); g != w || g == "" {
					t.Fatalf("%s: Composition %v=%q in v2, %q in v1", kind, path, g, w)
				}
			}
			if g, w := v1.VersionID+"/"+v1.Status, "1/final"; g != w {
				t.Fatalf("%s: v1 version/status=%s, want %s", kind, g, w)
			}
			if g, w := v2.VersionID+"/"+v2.Status, "2/amended"; g != w {
				t.Fatalf("%s: v2 version/status=%s, want %s", kind, g, w)
			}
			if g, w := str(b2, "entry", "resource", "meta", "versionId"), "2"; g != w {
				t.Fatalf("%s: Composition meta.versionId=%q, want %q", kind, g, w)
			}
			if g, w := str(b2, "timestamp"), "2025-03-15T09:05:00.000+05:30"; g != w {
				t.Fatalf("%s: v2 timestamp=%q, want the amendment's commit time %q", kind, g, w)
			}
		}
	})

	// Ensure a document an amendment emptied is withdrawn as a new
	// version of the same document: same identity, the amendment's version
	// and time, Composition and every entry entered-in-error.
	t.Run("RetractionKeepsIdentity", func(t *testing.T) {
		for _, kind := range []string{edge.DocOPConsult, edge.DocPrescription, edge.DocWellness} {
			v1 := MustBuild(t, encounterInput(kind))
			r := MustBuild(t, retractedInput(kind))
			if r.Identifier != v1.Identifier || r.BundleID != v1.BundleID {
				t.Fatalf("%s: retraction identity %v %s, want %v %s", kind, r.Identifier, r.BundleID, v1.Identifier, v1.BundleID)
			}
			if g, w := r.VersionID+"/"+r.Status, "2/entered-in-error"; g != w {
				t.Fatalf("%s: retraction version/status=%s, want %s", kind, g, w)
			}
			b := MustDecode(t, r.JSON)
			if g, w := str(b, "timestamp"), "2025-03-15T09:05:00.000+05:30"; g != w {
				t.Fatalf("%s: timestamp=%q, want the amendment's commit time %q", kind, g, w)
			}
			entries := 0
			for _, typ := range []string{"Observation", "MedicationRequest", "DocumentReference"} {
				for _, res := range resources(b, typ) {
					entries++
					if g := str(res, "status"); g != "entered-in-error" {
						t.Fatalf("%s: %s %s status=%q, want entered-in-error", kind, typ, str(res, "id"), g)
					}
				}
			}
			for _, res := range resources(b, "Condition") {
				entries++
				if g := str(res, "verificationStatus", "coding", "code"); g != "entered-in-error" {
					t.Fatalf("%s: Condition %s verificationStatus=%q, want entered-in-error", kind, str(res, "id"), g)
				}
			}
			if entries == 0 {
				t.Fatalf("%s: the retraction carries no entries", kind)
			}
		}
	})

	// Ensure each document of an encounter is a document of its own.
	t.Run("KindsDiffer", func(t *testing.T) {
		seen := map[string]string{}
		for _, kind := range []string{edge.DocOPConsult, edge.DocPrescription, edge.DocWellness, edge.DocImmunization} {
			_, id, err := fhir.DocumentIdentity(encounterInput(kind).Item)
			if err != nil {
				t.Fatal(err)
			}
			if other, ok := seen[id.Value]; ok {
				t.Fatalf("%s and %s share identifier %s", kind, other, id.Value)
			}
			seen[id.Value] = kind
		}
	})

	// Ensure DocumentIdentity, which the engine may call without building,
	// agrees with BuildDocument, and is pinned: the namespace and the name
	// scheme must never change, or every retry after an upgrade would be a
	// new document upstream.
	t.Run("Pinned", func(t *testing.T) {
		in := encounterInput(edge.DocOPConsult)
		id, ident, err := fhir.DocumentIdentity(in.Item)
		if err != nil {
			t.Fatal(err)
		}
		doc := MustBuild(t, in)
		if id != doc.BundleID || ident != doc.Identifier {
			t.Fatalf("DocumentIdentity=%s %v, BuildDocument=%s %v", id, ident, doc.BundleID, doc.Identifier)
		}
		if got, want := ident.SearchToken(), "urn:ietf:rfc:3986|urn:uuid:1b258059-014f-5a57-8f69-65a75151df7d"; got != want {
			t.Fatalf("SearchToken=%q, want %q", got, want)
		}
	})

	// Ensure a key that does not match its row is refused: a version
	// suffix we cannot strip would make every amendment a new document.
	t.Run("KeyMismatch", func(t *testing.T) {
		for _, key := range []string{"OPConsultRecord/encounter/" + encounterID, "OPConsultRecord/encounter/" + encounterID + "/v2", "x"} {
			it := encounterInput(edge.DocOPConsult).Item
			it.Key = key
			if _, _, err := fhir.DocumentIdentity(it); !errors.Is(err, fhir.ErrInconsistentInput) {
				t.Fatalf("key %q: err=%v, want ErrInconsistentInput", key, err)
			}
		}
	})
}

func TestBuildDocument_PatientIdentifiers(t *testing.T) {
	ig := MustIG(t)
	cs := ig.codeSystems["https://nrces.in/ndhm/fhir/r4/CodeSystem/ndhm-identifier-type-code"]
	if cs == nil {
		t.Fatal("IG package has no ndhm-identifier-type-code CodeSystem")
	}
	identifiers := func(in fhir.DocumentInput) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, id := range asList(resources(MustDecode(t, MustBuild(t, in).JSON), "Patient")[0]["identifier"]) {
			out = append(out, asMap(id))
		}
		return out
	}

	// Ensure the ABHA number goes as XX-XXXX-XXXX-XXXX however it was typed,
	// the address in lower case, each with its type from the IG's code
	// system (HIN: "a 14 digit number"; ABHA: the address).
	t.Run("ABHA", func(t *testing.T) {
		for _, typed := range []string{"91266620072857", "91-2666-2007-2857", "91 2666 2007 2857"} {
			in := encounterInput(edge.DocOPConsult)
			in.Patient.ABHANumber, in.Patient.ABHAAddress = typed, "  Sunita.Devi@ABDM "
			ids := identifiers(in)
			if len(ids) != 3 {
				t.Fatalf("%d identifiers, want ABHA number, ABHA address, facility number", len(ids))
			}
			if g, w := str(ids[0], "value"), "91-2666-2007-2857"; g != w {
				t.Fatalf("ABHA number %q written %q, want %q", typed, g, w)
			}
			if g, w := str(ids[1], "value"), "sunita.devi@abdm"; g != w {
				t.Fatalf("ABHA address=%q, want %q", g, w)
			}
			if code := str(ids[0], "type", "coding", "code"); !strings.Contains(cs[code], "Health ID") {
				t.Fatalf("ABHA number type %q (%q) is not the IG's health ID number code", code, cs[code])
			}
			if code := str(ids[1], "type", "coding", "code"); !strings.Contains(cs[code], "ABHA") {
				t.Fatalf("ABHA address type %q (%q) is not the IG's ABHA code", code, cs[code])
			}
			if str(ids[0], "system") == "" || str(ids[0], "system") != str(ids[1], "system") {
				t.Fatalf("ABHA systems %q, %q: want one non-empty system", str(ids[0], "system"), str(ids[1], "system"))
			}
		}
	})

	// Ensure a patient without ABHA still gets a valid document (SD Patient
	// needs one identifier of any type in ndhm-identifier-type-code, which
	// includes v2-0203): the facility's number, assigned by the facility.
	t.Run("NoABHA", func(t *testing.T) {
		in := encounterInput(edge.DocOPConsult)
		in.Patient.ABHANumber, in.Patient.ABHAAddress = "", ""
		doc := MustBuild(t, in)
		MustPassSchema(t, doc.JSON)
		MustPassIG(t, doc.JSON)
		b := MustDecode(t, doc.JSON)
		ids := asList(resources(b, "Patient")[0]["identifier"])
		if len(ids) != 1 {
			t.Fatalf("%d identifiers, want 1", len(ids))
		}
		if g, w := str(ids[0], "type", "coding", "code")+" "+str(ids[0], "value"), "MR P-000123"; g != w {
			t.Fatalf("identifier=%q, want %q", g, w)
		}
		if g, w := str(ids[0], "assigner", "reference"), str(resources(b, "Organization")[0], "id"); g != "urn:uuid:"+w {
			t.Fatalf("assigner=%q, want the facility urn:uuid:%s", g, w)
		}
	})

	// Ensure a patient with no identifier at all is refused.
	t.Run("NoIdentifier", func(t *testing.T) {
		in := encounterInput(edge.DocOPConsult)
		in.Patient.ABHANumber, in.Patient.ABHAAddress, in.Patient.LocalID = "", "", ""
		if _, err := fhir.BuildDocument(in); !errors.Is(err, fhir.ErrMissing) {
			t.Fatalf("err=%v, want ErrMissing", err)
		}
	})

	// Ensure an ABHA that fails its check is never sent: it would link the
	// record to someone else.
	t.Run("BadABHA", func(t *testing.T) {
		for _, p := range []edge.Patient{{ABHANumber: "91-2666-2007-2858"}, {ABHANumber: "1234"}, {ABHAAddress: "sunita devi@abdm"}, {ABHAAddress: "sunita"}} {
			in := encounterInput(edge.DocOPConsult)
			in.Patient.ABHANumber, in.Patient.ABHAAddress = p.ABHANumber, p.ABHAAddress
			if _, err := fhir.BuildDocument(in); !errors.Is(err, fhir.ErrInvalidIdentifier) {
				t.Fatalf("%+v: err=%v, want ErrInvalidIdentifier", p, err)
			}
		}
	})

	// Ensure the HPR ID goes 2-4-4-4 with the IG's HPIN type, and a user
	// without one is identified by the node's user id (v2-0203 RI).
	t.Run("Practitioner", func(t *testing.T) {
		in := encounterInput(edge.DocOPConsult)
		in.Practitioner.HPRID = "71266557771234"
		pr := resources(MustDecode(t, MustBuild(t, in).JSON), "Practitioner")[0]
		if g, w := str(pr, "identifier", "value"), "71-2665-5777-1234"; g != w {
			t.Fatalf("HPR ID=%q, want %q", g, w)
		}
		if code := str(pr, "identifier", "type", "coding", "code"); !strings.Contains(cs[code], "Practitioner ID") {
			t.Fatalf("HPR type %q (%q) is not the IG's practitioner ID code", code, cs[code])
		}
		in.Practitioner.HPRID = ""
		pr = resources(MustDecode(t, MustBuild(t, in).JSON), "Practitioner")[0]
		if g, w := str(pr, "identifier", "type", "coding", "code")+" "+str(pr, "identifier", "value"), "RI urn:uuid:"+userID; g != w {
			t.Fatalf("identifier=%q, want %q", g, w)
		}
	})
}

// hostile are strings a name, note or drug may hold that must travel
// exactly: quotes, backslashes, markup, JSON, line and paragraph
// separators, emoji, Devanagari, bidi overrides.
var hostile = []string{
	`Ram "Lal" \ O'Brien`,
	`</div><script>alert(1)</script>&amp;`,
	`{"resourceType":"Patient","id":"x"}`,
	"line\u2028para\u2029end",
	"👩🏽‍⚕️ सुनीता देवी",
	"\u202eilaD\u202c mixed",
	"tab\there\r\nnew line",
}

func TestBuildDocument_HostileText(t *testing.T) {
	// Ensure hostile but valid text is escaped and comes back exactly.
	for i, s := range hostile {
		in := encounterInput(edge.DocOPConsult)
		in.Patient.Name, in.Encounter.Complaint, in.Encounter.Notes = s, s, s
		in.Encounter.Prescriptions[0].Drug, in.Facility.Name = s, s
		doc := MustBuild(t, in)
		MustPassSchema(t, doc.JSON)
		MustPassIG(t, doc.JSON)
		if bytes.Contains(doc.JSON, []byte("<script")) {
			t.Fatalf("case %d: raw markup in the JSON", i)
		}
		b := MustDecode(t, doc.JSON)
		notes, err := base64.StdEncoding.DecodeString(str(resources(b, "DocumentReference")[0], "content", "attachment", "data"))
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSpace(s)
		for what, got := range map[string]string{
			"Patient.name":                      str(resources(b, "Patient")[0], "name", "text"),
			"Condition.code.text":               str(resources(b, "Condition")[0], "code", "text"),
			"DocumentReference attachment":      string(notes),
			"Organization.name":                 str(resources(b, "Organization")[0], "name"),
			"MedicationRequest medication text": strings.TrimSuffix(str(resources(b, "MedicationRequest")[0], "medicationCodeableConcept", "text"), " 500 mg"),
		} {
			if got != want {
				t.Fatalf("case %d: %s=%q, want %q", i, what, got, want)
			}
		}
	}

	// Ensure text that is not valid UTF-8, or holds control characters,
	// is refused with a clear error that does not echo it.
	bad := []string{"Sun\xffita", "Sunita\x00", "Sunita\x1b[31m", "Sunita\x7f", strings.Repeat("Sunita ", 1<<18)}
	fields := map[string]func(in *fhir.DocumentInput, s string){
		"patient.name":              func(in *fhir.DocumentInput, s string) { in.Patient.Name = s },
		"encounter.complaint":       func(in *fhir.DocumentInput, s string) { in.Encounter.Complaint = s },
		"encounter.notes":           func(in *fhir.DocumentInput, s string) { in.Encounter.Notes = s },
		"prescription 0.drug":       func(in *fhir.DocumentInput, s string) { in.Encounter.Prescriptions[0].Drug = s },
		"diagnosis 0.display":       func(in *fhir.DocumentInput, s string) { in.Encounter.Diagnoses[0].Display = s },
		"practitioner.display_name": func(in *fhir.DocumentInput, s string) { in.Practitioner.DisplayName = s },
	}
	for field, set := range fields {
		for _, s := range bad {
			in := encounterInput(edge.DocOPConsult)
			set(&in, s)
			_, err := fhir.BuildDocument(in)
			if !errors.Is(err, fhir.ErrInvalidText) {
				t.Fatalf("%s=%.20q: err=%v, want ErrInvalidText", field, s, err)
			}
			if !strings.HasPrefix(err.Error(), field+":") || strings.Contains(err.Error(), "Sun") {
				t.Fatalf("%s: error %q must name the field and not echo the text", field, err)
			}
		}
	}
}

func TestBuildDocument_Errors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(in *fhir.DocumentInput)
		want   error
	}{
		{"Draft", func(in *fhir.DocumentInput) { in.Encounter.Status = edge.EncounterDraft }, fhir.ErrNotFinal},
		{"OtherPatientsEncounter", func(in *fhir.DocumentInput) { in.Encounter.PatientID = "0195b3c2-7a10-7c00-8000-00000000a999" }, fhir.ErrInconsistentInput},
		{"OtherPatientsRow", func(in *fhir.DocumentInput) { in.Item.PatientID = "0195b3c2-7a10-7c00-8000-00000000a999" }, fhir.ErrInconsistentInput},
		{"OtherEncounter", func(in *fhir.DocumentInput) { in.Encounter.ID = "0195b3c2-7a10-7c00-8000-00000000e999" }, fhir.ErrInconsistentInput},
		{"NewerVersion", func(in *fhir.DocumentInput) { in.Encounter.Version = 2 }, fhir.ErrStaleVersion},
		{"OlderVersion", func(in *fhir.DocumentInput) {
			in.Item = outboxItem(edge.DocOPConsult, "encounter", encounterID, 2, at(11, 0, 0))
		}, fhir.ErrInconsistentInput},
		{"OtherPractitioner", func(in *fhir.DocumentInput) { in.Practitioner.ID = "0195b3c2-7a10-7c00-8000-00000000b999" }, fhir.ErrInconsistentInput},
		{"PractitionerNotPassed", func(in *fhir.DocumentInput) { in.Practitioner = nil }, fhir.ErrMissing},
		{"DiagnosticReport", func(in *fhir.DocumentInput) {
			in.Item = outboxItem(edge.DocDiagnosticReport, "encounter", encounterID, 1, at(11, 0, 0))
		}, fhir.ErrUnsupportedDocument},
		{"UnknownEntity", func(in *fhir.DocumentInput) {
			in.Item = outboxItem(edge.DocWellness, "reading", encounterID, 1, at(11, 0, 0))
		}, fhir.ErrUnsupportedDocument},
		{"NoRecord", func(in *fhir.DocumentInput) { in.Encounter = nil }, fhir.ErrInconsistentInput},
		{"NoHFRID", func(in *fhir.DocumentInput) { in.Facility.HFRID = "" }, fhir.ErrMissing},
		{"NoFacilityName", func(in *fhir.DocumentInput) { in.Facility.Name = " " }, fhir.ErrMissing},
		{"NoCommitTime", func(in *fhir.DocumentInput) { in.Item.CreatedAt = time.Time{} }, fhir.ErrMissing},
		{"UnknownLOINC", func(in *fhir.DocumentInput) { in.Encounter.Observations[4].LOINC = "12345-6" }, fhir.ErrUnknownCode},
		{"UnitNotCanonical", func(in *fhir.DocumentInput) { in.Encounter.Observations[4].Unit = "[degF]" }, fhir.ErrUnitMismatch},
		{"NotANumber", func(in *fhir.DocumentInput) { in.Encounter.Observations[4].Value = math.Inf(1) }, fhir.ErrInvalidValue},
		{"ICD9", func(in *fhir.DocumentInput) { in.Encounter.Diagnoses[0].System = "http://hl7.org/fhir/sid/icd-9-cm" }, fhir.ErrUnsupportedCodeSystem},
		{"DiagnosisWithoutDisplay", func(in *fhir.DocumentInput) { in.Encounter.Diagnoses[0].Display = "" }, fhir.ErrMissing},
		{"DiagnosisCodeWithSpaces", func(in *fhir.DocumentInput) { in.Encounter.Diagnoses[0].Code = " J06.9\n" }, fhir.ErrInvalidValue},
		{"BadGender", func(in *fhir.DocumentInput) { in.Patient.Gender = "X" }, fhir.ErrInvalidValue},
		{"BadBirthDate", func(in *fhir.DocumentInput) { in.Patient.BirthDate = "02/07/1988" }, fhir.ErrInvalidValue},
		{"BadHPR", func(in *fhir.DocumentInput) { in.Practitioner.HPRID = "meena@hpr.abdm" }, fhir.ErrInvalidIdentifier},
		{"EmptyConsultation", func(in *fhir.DocumentInput) {
			e := in.Encounter
			e.Complaint, e.Notes, e.Observations, e.Diagnoses, e.Prescriptions = " ", "", nil, nil, nil
		}, fhir.ErrEmptyDocument},
		{"PrescriptionWithoutDrugs", func(in *fhir.DocumentInput) {
			in.Item = outboxItem(edge.DocPrescription, "encounter", encounterID, 1, at(11, 0, 0))
			in.Encounter.Prescriptions = nil
		}, fhir.ErrEmptyDocument},
		{"DrugWithoutName", func(in *fhir.DocumentInput) { in.Encounter.Prescriptions[1].Drug = "" }, fhir.ErrMissing},
		{"ObservationWithoutID", func(in *fhir.DocumentInput) { in.Encounter.Observations[0].ID = "" }, fhir.ErrMissing},
		// A retraction carries an earlier version's content, never the
		// version it is sent as (or a later one).
		{"RetractedSameVersion", func(in *fhir.DocumentInput) { in.Retracted = true }, fhir.ErrInconsistentInput},
		{"RetractedDraft", func(in *fhir.DocumentInput) {
			in.Item = outboxItem(edge.DocOPConsult, "encounter", encounterID, 2, at(11, 0, 0))
			in.Retracted, in.Encounter.Status = true, edge.EncounterDraft
		}, fhir.ErrNotFinal},
		{"RetractedReading", func(in *fhir.DocumentInput) {
			r := readingInput()
			r.Retracted = true
			*in = r
		}, fhir.ErrInconsistentInput},
		{"RetractedEmpty", func(in *fhir.DocumentInput) {
			in.Item = outboxItem(edge.DocPrescription, "encounter", encounterID, 2, at(11, 0, 0))
			in.Retracted, in.Encounter.Prescriptions = true, nil
		}, fhir.ErrEmptyDocument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := encounterInput(edge.DocOPConsult)
			tc.mutate(&in)
			doc, err := fhir.BuildDocument(in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err=%v, want %v", err, tc.want)
			}
			if doc.JSON != nil {
				t.Fatal("an error must come with no bundle")
			}
			MustHaveNoPHI(t, err)
		})
	}

	// Ensure an immunization visit without notes is refused: the node has
	// no vaccine fields, and the profile needs one section entry.
	t.Run("ImmunizationWithoutNotes", func(t *testing.T) {
		in := immunizationInput()
		in.Encounter.Notes = ""
		_, err := fhir.BuildDocument(in)
		if !errors.Is(err, fhir.ErrEmptyDocument) {
			t.Fatalf("err=%v, want ErrEmptyDocument", err)
		}
		MustHaveNoPHI(t, err)
	})
}

// MustHaveNoPHI fails if an error message holds any PHI of the fixture.
func MustHaveNoPHI(tb testing.TB, err error) {
	tb.Helper()
	for _, s := range fixturePHI {
		if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(s)) {
			tb.Fatalf("error %q holds PHI %q", err, s)
		}
	}
}

// Ensure each vital goes with the LOINC code, display and UCUM unit the IG
// uses: the codes and displays of ValueSets ndhm-vital-signs,
// ndhm-body-measurement and ndhm-general-assessment, the units of the IG's
// WellnessRecord example, and the section the WellnessRecord profile slices
// it into.
func TestBuildDocument_WellnessCodes(t *testing.T) {
	ig := MustIG(t)
	// The IG example's UCUM unit for each LOINC code (BP from its components).
	var example map[string]any
	if err := readJSONFile(filepath.Join(igDir, "example", "Bundle-WellnessRecord-example-01.json"), &example); err != nil {
		t.Fatal(err)
	}
	igUnit := map[string]string{}
	for _, o := range resources(example, "Observation") {
		igUnit[str(o, "code", "coding", "code")] = str(o, "valueQuantity", "code")
		for _, c := range asList(o["component"]) {
			igUnit[str(c, "code", "coding", "code")] = str(c, "valueQuantity", "code")
		}
	}
	vsDisplay := func(code string) string {
		for _, vs := range []string{"ndhm-vital-signs", "ndhm-body-measurement", "ndhm-general-assessment"} {
			if d, ok := ig.valueSets["https://nrces.in/ndhm/fhir/r4/ValueSet/"+vs].concepts["http://loinc.org|"+code]; ok {
				return d
			}
		}
		return ""
	}

	b := MustDecode(t, MustBuild(t, encounterInput(edge.DocWellness)).JSON)
	sectionOf := map[string]string{}
	for _, s := range asList(sections(b)) {
		for _, e := range asList(asMap(s)["entry"]) {
			sectionOf[str(e, "reference")] = str(s, "title")
		}
	}
	type got struct{ section, codes, unit string }
	byCode := map[string]got{}
	for _, o := range resources(b, "Observation") {
		var codes []string
		for _, c := range asList(asMap(o["code"])["coding"]) {
			codes = append(codes, str(c, "code"))
			if d := vsDisplay(str(c, "code")); d != "" && d != str(c, "display") {
				t.Fatalf("%s display %q, the IG says %q", str(c, "code"), str(c, "display"), d)
			}
		}
		unit := str(o, "valueQuantity", "code")
		for _, c := range asList(o["component"]) {
			unit += " " + str(c, "code", "coding", "code") + "=" + str(c, "valueQuantity", "code")
		}
		byCode[codes[len(codes)-1]] = got{sectionOf["urn:uuid:"+str(o, "id")], strings.Join(codes, ","), strings.TrimSpace(unit)}
	}

	cases := []struct {
		stored string // the node's code
		want   got
		igCode string // the IG example code whose unit ours must equal, "" if none
	}{
		// BP: stored as two readings, sent as the IG's panel with components.
		{"85354-9", got{"Vital Signs", "85354-9", "8480-6=mm[Hg] 8462-4=mm[Hg]"}, ""},
		{"8867-4", got{"Vital Signs", "8867-4", "/min"}, "8867-4"},
		// SpO2 by oximeter: the IG's 2708-6 first, the device's 59408-5 kept.
		{"59408-5", got{"Vital Signs", "2708-6,59408-5", "%"}, "2708-6"},
		// Body temperature stays 8310-5 (61008-9 is skin temperature); same UCUM.
		{"8310-5", got{"Vital Signs", "8310-5", "Cel"}, "61008-9"},
		{"9279-1", got{"Vital Signs", "9279-1", "/min"}, "9279-1"},
		// The example weighs in [lb_av] and measures in [in_i]; the node
		// stores kg and cm (both UCUM, the units Indian clinics use).
		{"29463-7", got{"Body Measurement", "29463-7", "kg"}, ""},
		{"8302-2", got{"Body Measurement", "8302-2", "cm"}, ""},
		{"39156-5", got{"Body Measurement", "39156-5", "kg/m2"}, "39156-5"},
		{"2339-0", got{"General Assessment", "2339-0", "mg/dL"}, "2339-0"},
		// Haemoglobin is in no IG wellness value set.
		{"718-7", got{"Other Observations", "718-7", "g/dL"}, ""},
	}
	for _, tc := range cases {
		g, ok := byCode[tc.stored]
		if !ok {
			t.Fatalf("no observation for %s; have %v", tc.stored, byCode)
		}
		if g != tc.want {
			t.Fatalf("%s: got %+v, want %+v", tc.stored, g, tc.want)
		}
		if tc.igCode != "" && igUnit[tc.igCode] != g.unit {
			t.Fatalf("%s: unit %q, the IG example writes %s in %q", tc.stored, g.unit, tc.igCode, igUnit[tc.igCode])
		}
	}
	if g, w := igUnit["8480-6"]+" "+igUnit["8462-4"], "mm[Hg] mm[Hg]"; g != w {
		t.Fatalf("IG example BP units %q, want %q", g, w)
	}
}

// sections returns the Composition's sections.
func sections(b map[string]any) any {
	return asMap(asMap(asList(b["entry"])[0])["resource"])["section"]
}

// Ensure a device reading outside an encounter is a one-observation
// WellnessRecord authored by the device, with no encounter and no
// practitioner.
func TestBuildDocument_DeviceReading(t *testing.T) {
	b := MustDecode(t, MustBuild(t, readingInput()).JSON)
	devices := resources(b, "Device")
	if len(devices) != 1 {
		t.Fatalf("%d devices, want 1", len(devices))
	}
	dev := "urn:uuid:" + str(devices[0], "id")
	comp := asMap(asMap(asList(b["entry"])[0])["resource"])
	if g := str(comp, "author", "reference"); g != dev {
		t.Fatalf("Composition.author=%q, want the device %q", g, dev)
	}
	if comp["encounter"] != nil || len(resources(b, "Encounter")) > 0 || len(resources(b, "Practitioner")) > 0 {
		t.Fatal("a reading outside an encounter must have no Encounter and no Practitioner")
	}
	obs := resources(b, "Observation")
	if len(obs) != 1 || str(obs[0], "device", "reference") != dev || obs[0]["performer"] != nil {
		t.Fatalf("observations=%v, want one with device %s and no performer", obs, dev)
	}
	if g, w := str(devices[0], "deviceName", "name"), "Pulse oximeter 2"; g != w {
		t.Fatalf("device name=%q, want %q", g, w)
	}

	// Ensure an unlisted device is still identified, by its id.
	in := readingInput()
	in.Devices = nil
	devices = resources(MustDecode(t, MustBuild(t, in).JSON), "Device")
	if g, w := str(devices[0], "identifier", "value"), "urn:uuid:"+deviceOxi; g != w {
		t.Fatalf("device identifier=%q, want %q", g, w)
	}

	// Ensure a reading row cannot carry another document kind.
	in = readingInput()
	in.Item = outboxItem(edge.DocOPConsult, fhir.EntityObservation, in.Observation.ID, 1, at(16, 3, 0))
	if _, err := fhir.BuildDocument(in); !errors.Is(err, fhir.ErrUnsupportedDocument) {
		t.Fatalf("err=%v, want ErrUnsupportedDocument", err)
	}
}

// Ensure a lone systolic (no diastolic at that moment) is a panel with one
// component, and that readings at different moments are not paired.
func TestBuildDocument_BloodPressurePairs(t *testing.T) {
	in := encounterInput(edge.DocWellness)
	obs := in.Encounter.Observations
	obs[1].EffectiveAt = obs[1].EffectiveAt.Add(time.Minute)
	doc := MustBuild(t, in)
	MustPassIG(t, doc.JSON)
	var panels []string
	for _, o := range resources(MustDecode(t, doc.JSON), "Observation") {
		if str(o, "code", "coding", "code") == "85354-9" {
			var comps []string
			for _, c := range asList(o["component"]) {
				comps = append(comps, str(c, "code", "coding", "code"))
			}
			panels = append(panels, strings.Join(comps, "+"))
		}
	}
	if g, w := strings.Join(panels, " "), "8480-6 8462-4"; g != w {
		t.Fatalf("panels=%q, want %q", g, w)
	}
}
