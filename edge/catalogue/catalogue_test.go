package catalogue_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/healthpost/healthpost/edge/catalogue"
)

// igDir is the ABDM IG package, read (never copied) by the tests.
const igDir = "../../../shared/fhir/ndhm.in-6.5.0"

// loincValid checks the LOINC mod-10 check digit (LOINC Users' Guide,
// written here again so the test does not share code with what it checks).
func loincValid(code string) bool {
	dash := -1
	for i, r := range code {
		if r == '-' {
			dash = i
		} else if r < '0' || r > '9' {
			return false
		}
	}
	if dash < 1 || dash != len(code)-2 || dash > 7 {
		return false
	}
	sum := 0
	for i := 0; i < dash; i++ {
		d := int(code[dash-1-i] - '0')
		if i%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return int(code[dash+1]-'0') == (10-sum%10)%10
}

// Ensure every lab test is well formed: a valid LOINC code used once, a
// display, names in both languages, and either a unit with a sane range or
// answers with unique codes, never both.
func TestLabTests(t *testing.T) {
	seen := map[string]bool{}
	for _, lt := range catalogue.LabTests() {
		if !loincValid(lt.LOINC) {
			t.Errorf("%s: LOINC %q has a wrong check digit", lt.Code, lt.LOINC)
		}
		if seen[lt.LOINC] {
			t.Errorf("%s: LOINC %s listed twice", lt.Code, lt.LOINC)
		}
		seen[lt.LOINC] = true
		if lt.Display == "" || lt.Name == "" || lt.NameHI == "" || lt.Report.SNOMED == "" {
			t.Errorf("%s: display, names and report kind are required", lt.Code)
		}
		switch {
		case lt.Numeric() && len(lt.Answers) > 0:
			t.Errorf("%s: both a unit and answers", lt.Code)
		case lt.Numeric() && !(lt.Min < lt.Max):
			t.Errorf("%s: range %v..%v", lt.Code, lt.Min, lt.Max)
		case !lt.Numeric() && len(lt.Answers) < 2:
			t.Errorf("%s: a coded test needs at least two answers", lt.Code)
		}
		answers := map[string]bool{}
		for _, a := range lt.Answers {
			if answers[a.Code] || a.Code == "" || a.Name == "" || a.NameHI == "" || (a.SNOMED == "") != (a.SNOMEDDisplay == "") {
				t.Errorf("%s: answer %+v", lt.Code, a)
			}
			answers[a.Code] = true
		}
		if got, ok := catalogue.Lab(lt.Code); !ok || got.LOINC != lt.LOINC {
			t.Errorf("Lab(%q)=%v, %v", lt.Code, got.LOINC, ok)
		}
	}
	// The tests the issue names are there.
	for _, code := range []string{"hb", "rbs", "fbs", "malaria_rdt", "malaria_smear", "urine_albumin", "urine_sugar", "upt", "blood_group", "hiv", "syphilis_rpr", "sputum_afb"} {
		if _, ok := catalogue.Lab(code); !ok {
			t.Errorf("no lab test %q", code)
		}
	}
	if _, ok := catalogue.Lab("x-ray"); ok {
		t.Error("Lab found a test that is not in the catalogue")
	}
	// A check digit that is wrong is caught by the checker itself.
	if loincValid("718-6") || !loincValid("718-7") {
		t.Fatal("loincValid is broken")
	}
}

// Ensure each vaccine's SNOMED CT code and display are the IG's, read from
// ValueSet ndhm-vaccine-codes, and the schedule names known vaccines only.
func TestVaccines(t *testing.T) {
	data, err := os.ReadFile(igDir + "/ValueSet-ndhm-vaccine-codes.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs struct {
		Compose struct {
			Include []struct {
				System  string
				Concept []struct{ Code, Display string }
			}
		}
	}
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	ig := map[string]string{}
	for _, inc := range vs.Compose.Include {
		for _, c := range inc.Concept {
			ig[inc.System+"|"+c.Code] = c.Display
		}
	}
	for _, v := range catalogue.Vaccines() {
		if v.Code == "VITA" {
			if v.SNOMED != "" {
				t.Error("Vitamin A is in no vaccine value set and must carry no vaccine code")
			}
			continue
		}
		if d, ok := ig["http://snomed.info/sct|"+v.SNOMED]; !ok || d != v.SNOMEDDisplay {
			t.Errorf("%s: SNOMED %s %q, the IG value set says %q (present %v)", v.Code, v.SNOMED, v.SNOMEDDisplay, d, ok)
		}
	}
	keys := map[string]bool{}
	for _, d := range catalogue.Schedule() {
		if _, ok := catalogue.VaccineByCode(d.Vaccine); !ok {
			t.Errorf("schedule dose %+v names an unknown vaccine", d)
		}
		if keys[d.Key()] {
			t.Errorf("schedule key %s twice", d.Key())
		}
		keys[d.Key()] = true
		if got, ok := catalogue.DoseByKey(d.Key()); !ok || got != d {
			t.Errorf("DoseByKey(%s)=%+v, %v", d.Key(), got, ok)
		}
	}
	for key, want := range map[string]catalogue.Dose{"OPV-0": {"OPV", 0, false}, "PCV-B": {"PCV", -1, true}, "DPT-B2": {"DPT", 2, true}, "BCG": {"BCG", -1, false}} {
		if got, ok := catalogue.DoseByKey(key); !ok || got != want {
			t.Errorf("DoseByKey(%s)=%+v, want %+v", key, got, want)
		}
	}
}
