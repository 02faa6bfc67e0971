package fhir_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

// Ensure the checker reads the IG right: the IG's own example bundles pass,
// except for the two places where the examples contradict their profiles
// (both verified by hand in the package files).
func TestIGCheck_IGExamples(t *testing.T) {
	ig := MustIG(t)
	cases := []struct {
		file string
		want []string // problems, as substrings, in sorted order
	}{
		// Follow Up is coded 736271009 in the example, 390906007 in SD
		// OPConsultRecord: an unmatched section before a matched one.
		{"Bundle-OPConsultNote-example-05.json", []string{"Composition.section: item 7 matches a slice after an unmatched item (openAtEnd)"}},
		{"Bundle-Prescription-example-06.json", nil},
		// 81663-7 "Diet [Type]" is not in ValueSet ndhm-lifestyle.
		{"Bundle-WellnessRecord-example-01.json", []string{"Observation.code: no coding from https://nrces.in/ndhm/fhir/r4/ValueSet/ndhm-lifestyle (extensible)"}},
		{"Bundle-ImmunizationRecord-example-07.json", nil},
		{"Bundle-DiagnosticReport-Lab-example-03.json", nil},
		{"Bundle-DischargeSummary-example-04.json", nil},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(igDir, "example", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := ig.check(data, nil)
			if len(got) != len(tc.want) {
				t.Fatalf("problems=%q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Fatalf("problem %d=%q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// Ensure the checker is not vacuous: each break of one IG rule in a valid
// bundle of ours is reported.
func TestIGCheck_CatchesBreaks(t *testing.T) {
	ig := MustIG(t)
	op := MustBuild(t, encounterInput(edge.DocOPConsult)).JSON
	rx := MustBuild(t, encounterInput(edge.DocPrescription)).JSON
	wl := MustBuild(t, encounterInput(edge.DocWellness)).JSON
	dr := MustBuild(t, labInput(1, labTech())).JSON
	im := MustBuild(t, vaccineInput()).JSON
	comp := func(b map[string]any) map[string]any { return asMap(asMap(asList(b["entry"])[0])["resource"]) }
	byType := func(b map[string]any, typ string) map[string]any { return resources(b, typ)[0] }
	cases := []struct {
		name   string
		bundle []byte
		mutate func(b map[string]any)
		want   string
	}{
		{"CompositionTypeCode", op, func(b map[string]any) {
			asMap(asList(asMap(comp(b)["type"])["coding"])[0])["code"] = "371531000"
		}, "Composition.type.coding.code: fixed 371530004"},
		{"SectionCodeDropped", op, func(b map[string]any) {
			delete(asMap(asList(comp(b)["section"])[0]), "code")
		}, "openAtEnd"},
		{"SectionTwice", op, func(b map[string]any) {
			s := asList(comp(b)["section"])
			comp(b)["section"] = append([]any{s[0]}, s...)
		}, "Composition.section:ChiefComplaints: max 1, found 2"},
		{"NoSection", op, func(b map[string]any) { comp(b)["section"] = []any{} }, "Composition.section: min 1, found 0"},
		{"BundleNotDocument", op, func(b map[string]any) { b["type"] = "collection" }, "Bundle.type: fixed document"},
		{"NoVersionID", op, func(b map[string]any) { delete(asMap(b["meta"]), "versionId") }, "Bundle.meta.versionId: min 1, found 0"},
		{"PrescriptionEntryType", rx, func(b map[string]any) {
			asMap(asList(asMap(asList(comp(b)["section"])[0])["entry"])[0])["type"] = "Observation"
		}, "closed slicing"},
		{"WellnessTitle", wl, func(b map[string]any) {
			asMap(asList(comp(b)["section"])[0])["title"] = "Vital signs"
		}, "openAtEnd"},
		{"IdentifierTypeDisplay", op, func(b map[string]any) {
			asMap(asList(asMap(asMap(asList(byType(b, "Patient")["identifier"])[0])["type"])["coding"])[0])["display"] = "ABHA number"
		}, "display \"ABHA number\", the IG says \"Health ID issued by NDHM\""},
		{"PatientWithoutIdentifier", op, func(b map[string]any) { delete(byType(b, "Patient"), "identifier") }, "Patient.identifier: min 1, found 0"},
		{"OrganizationWithoutSystem", op, func(b map[string]any) {
			delete(asMap(asList(byType(b, "Organization")["identifier"])[0]), "system")
		}, "Organization.identifier.system: min 1, found 0"},
		{"UnknownProfile", op, func(b map[string]any) {
			asMap(byType(b, "Patient")["meta"])["profile"] = []any{"https://nrces.in/ndhm/fhir/r4/StructureDefinition/Patientx"}
		}, "is not a profile of the IG package"},
		{"SubjectNotPatient", op, func(b map[string]any) {
			asMap(comp(b)["subject"])["reference"] = str(comp(b), "custodian", "reference")
		}, "Composition.subject: reference to Organization"},
		{"VitalSignWithoutProfile", wl, func(b map[string]any) {
			asMap(byType(b, "Observation")["meta"])["profile"] = []any{"https://nrces.in/ndhm/fhir/r4/StructureDefinition/Observation"}
		}, "Composition.section:VitalSigns.entry: reference to Observation"},
		{"ConditionCodedInICD9", op, func(b map[string]any) {
			for _, c := range resources(b, "Condition") {
				if cs := asList(asMap(c["code"])["coding"]); len(cs) > 0 {
					asMap(cs[0])["system"] = "http://hl7.org/fhir/sid/icd-9-cm"
				}
			}
		}, "Condition.code.coding: item 0 matches no slice of a closed slicing"},
		{"LOINCDisplay", wl, func(b map[string]any) {
			for _, o := range resources(b, "Observation") {
				if str(o, "code", "coding", "code") == "8867-4" {
					asMap(asList(asMap(o["code"])["coding"])[0])["display"] = "Pulse"
				}
			}
		}, "http://loinc.org|8867-4 display \"Pulse\", the IG says \"Heart rate\""},
		{"DanglingReference", op, func(b map[string]any) {
			asMap(comp(b)["encounter"])["reference"] = "urn:uuid:00000000-0000-5000-8000-000000000000"
		}, "does not resolve inside the bundle"},
		{"ReportWithoutConclusion", dr, func(b map[string]any) { delete(byType(b, "DiagnosticReport"), "conclusion") },
			"DiagnosticReport.conclusion: min 1, found 0"},
		{"ReportCodedInSNOMED", dr, func(b map[string]any) {
			asMap(asList(asMap(byType(b, "DiagnosticReport")["code"])["coding"])[0])["system"] = "http://snomed.info/sct"
		}, "DiagnosticReport.code.coding.system: fixed http://loinc.org"},
		{"ReportWithoutInterpreter", dr, func(b map[string]any) { delete(byType(b, "DiagnosticReport"), "resultsInterpreter") },
			"DiagnosticReport.resultsInterpreter: min 1, found 0"},
		{"ReportSectionTwoReports", dr, func(b map[string]any) {
			s := asMap(asList(comp(b)["section"])[0])
			s["entry"] = append(asList(s["entry"]), asList(s["entry"])...)
		}, "Composition.section.entry:DiagnosticReport: max 1, found 2"},
		{"OrderCodedInLOINC", dr, func(b map[string]any) {
			byType(b, "ServiceRequest")["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}}}
		}, "ServiceRequest.code.coding.system: fixed http://snomed.info/sct"},
		{"ImmunizationEntryType", im, func(b map[string]any) {
			asMap(asList(asMap(asList(comp(b)["section"])[0])["entry"])[0])["type"] = "Observation"
		}, "closed slicing"},
		{"VaccineCodingWithoutDisplay", im, func(b map[string]any) {
			delete(asMap(asList(asMap(byType(b, "Immunization")["vaccineCode"])["coding"])[0]), "display")
		}, "Immunization.vaccineCode.coding.display: min 1, found 0"},
		{"ImmunizationRecordTypeCode", im, func(b map[string]any) {
			asMap(asList(asMap(comp(b)["type"])["coding"])[0])["code"] = "41000179104"
		}, "Composition.type.coding.code: fixed 41000179103"},
		{"CompositionNotFirst", op, func(b map[string]any) {
			e := asList(b["entry"])
			e[0], e[1] = e[1], e[0]
		}, "bdl-11"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := MustDecode(t, tc.bundle)
			tc.mutate(b)
			data, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			got := ig.check(data, extensibleExceptions)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("problems=%q, want one with %q", got, tc.want)
			}
		})
	}

	// Ensure 8310-5 passes only through the test's own exception list.
	if got := ig.check(wl, nil); len(got) != 1 || !strings.Contains(got[0], "ndhm-vital-signs (extensible)") {
		t.Fatalf("without exceptions: problems=%q, want the one 8310-5 binding problem", got)
	}
}
