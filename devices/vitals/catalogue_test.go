package vitals_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/healthpost/healthpost/devices/vitals"
)

// sharedDir is /work/shared seen from this package: the FHIR IG package and
// the research notes that the catalogue cites (see shared/fhir/README.md).
const sharedDir = "../../../shared"

func TestTables_Indexed(t *testing.T) {
	// Ensure the static tables have no duplicate keys and every MDC row maps
	// into the catalogue.
	for _, e := range vitals.TableErrs() {
		t.Error(e)
	}
}

func TestCatalogue_Sorted(t *testing.T) {
	// Ensure the catalogue is sorted by LOINC number with no duplicates.
	cat := vitals.Catalogue()
	prev := -1
	for _, m := range cat {
		body, _, _ := strings.Cut(m.LOINC, "-")
		n, err := strconv.Atoi(body)
		if err != nil {
			t.Fatalf("LOINC %q: %v", m.LOINC, err)
		}
		if n <= prev {
			t.Fatalf("LOINC %s out of order or repeated", m.LOINC)
		}
		prev = n
	}
	if got, want := len(cat), 32; got != want {
		t.Fatalf("len(Catalogue())=%d, want %d (update this test when adding a row)", got, want)
	}
}

func TestCatalogue_Complete(t *testing.T) {
	for _, m := range vitals.Catalogue() {
		t.Run(m.LOINC, func(t *testing.T) {
			// Ensure every row has names in both languages, a reason, a hint
			// and a sane range in a unit ParseUnit knows by its UCUM code.
			for name, s := range map[string]string{
				"Display": m.Display, "Name": m.Name, "NameHI": m.NameHI, "Unit": m.Unit,
				"Why": m.Why, "Hint": m.Hint, "HintHI": m.HintHI,
			} {
				if strings.TrimSpace(s) == "" {
					t.Errorf("%s is empty", name)
				}
			}
			if !hasDevanagari(m.NameHI) || !hasDevanagari(m.HintHI) {
				t.Errorf("NameHI %q / HintHI %q: no Devanagari", m.NameHI, m.HintHI)
			}
			if !(m.Min < m.Max) || math.IsInf(m.Min, 0) || math.IsInf(m.Max, 0) || m.Min <= 0 {
				t.Errorf("range [%v, %v] is not a finite positive interval", m.Min, m.Max)
			}
			if m.Decimals < 0 || m.Decimals > 3 {
				t.Errorf("Decimals=%d, want 0..3", m.Decimals)
			}
			u, err := vitals.ParseUnit(m.Unit)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := u.UCUM, m.Unit; got != want {
				t.Errorf("ParseUnit(%q).UCUM=%q, want itself", m.Unit, got)
			}
		})
	}
}

func hasDevanagari(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Devanagari, r) {
			return true
		}
	}
	return false
}

func TestCatalogue_BriefCodes(t *testing.T) {
	// Ensure the measurements the PHC needs are present with the unit
	// checked against the IG and the reference (independent of the table).
	for _, tc := range []struct{ loinc, unit string }{
		{"8480-6", "mm[Hg]"}, {"8462-4", "mm[Hg]"}, {"8478-0", "mm[Hg]"},
		{"8867-4", "/min"}, {"9279-1", "/min"},
		{"59408-5", "%"}, {"2708-6", "%"},
		{"8310-5", "Cel"}, {"61008-9", "Cel"},
		{"29463-7", "kg"}, {"8302-2", "cm"}, {"39156-5", "kg/m2"},
		{"2339-0", "mg/dL"}, {"15074-8", "mmol/L"},
		{"41653-7", "mg/dL"}, {"14743-9", "mmol/L"}, {"41604-0", "mg/dL"}, {"14760-3", "mmol/L"},
		{"718-7", "g/dL"}, {"2160-0", "mg/dL"}, {"3091-6", "mg/dL"}, {"2093-3", "mg/dL"}, {"4548-4", "%"},
	} {
		m, ok := vitals.ByLOINC(tc.loinc)
		if !ok {
			t.Errorf("%s missing", tc.loinc)
			continue
		}
		if got, want := m.Unit, tc.unit; got != want {
			t.Errorf("%s: Unit=%q, want %q", tc.loinc, got, want)
		}
	}
}

func TestCatalogue_RoundTrip(t *testing.T) {
	for _, m := range vitals.Catalogue() {
		t.Run(m.LOINC, func(t *testing.T) {
			// Ensure the row is found by code through every LOINC system name.
			got, ok := vitals.ByLOINC(m.LOINC)
			if !ok || got != m {
				t.Fatalf("ByLOINC(%s)=%+v, %v", m.LOINC, got, ok)
			}
			for _, sys := range []string{"LN", "LNC", "LOINC", "http://loinc.org", "urn:oid:2.16.840.1.113883.6.1", " ln "} {
				got, err := vitals.Lookup(sys, m.LOINC, nil)
				if err != nil || got != m {
					t.Fatalf("Lookup(%q, %s)=%+v, %v", sys, m.LOINC, got, err)
				}
			}

			// Ensure the range ends and the middle are accepted unchanged,
			// as float and as text, and a hair outside is refused.
			mid := m.Min + (m.Max-m.Min)/2
			for _, v := range []float64{m.Min, mid, m.Max} {
				r, err := vitals.Normalize(m, v, m.Unit)
				if err != nil {
					t.Fatalf("Normalize(%v %s): %v", v, m.Unit, err)
				}
				want := vitals.Reading{
					LOINC: m.LOINC, Display: m.Display, Value: v, Unit: m.Unit,
					RawValue: strconv.FormatFloat(v, 'g', -1, 64), RawUnit: m.Unit, RawUCUM: m.Unit,
				}
				if r != want {
					t.Fatalf("Normalize(%v %s)=%+v, want %+v", v, m.Unit, r, want)
				}
				text := strconv.FormatFloat(v, 'f', -1, 64)
				r, err = vitals.NormalizeText(m, text, m.Unit)
				if err != nil || r.Value != v || r.RawValue != text {
					t.Fatalf("NormalizeText(%q %s)=%+v, %v", text, m.Unit, r, err)
				}
			}
			for _, tc := range []struct {
				v    float64
				code vitals.RejectCode
			}{
				{math.Nextafter(m.Min, math.Inf(-1)), vitals.RejectTooLow},
				{math.Nextafter(m.Max, math.Inf(1)), vitals.RejectTooHigh},
			} {
				_, err := vitals.Normalize(m, tc.v, m.Unit)
				var rej *vitals.Rejection
				if !errors.As(err, &rej) || rej.Code != tc.code || rej.LOINC != m.LOINC {
					t.Fatalf("Normalize(%v %s) err=%v, want %s", tc.v, m.Unit, err, tc.code)
				}
			}
		})
	}
}

func TestCatalogue_Siblings(t *testing.T) {
	for _, m := range vitals.Catalogue() {
		if m.Sibling == "" {
			continue
		}
		t.Run(m.LOINC, func(t *testing.T) {
			// Ensure siblings point at each other, differ in unit, and a
			// value in the sibling's unit moves there unchanged.
			s, ok := vitals.ByLOINC(m.Sibling)
			if !ok {
				t.Fatalf("sibling %s not in catalogue", m.Sibling)
			}
			if got, want := s.Sibling, m.LOINC; got != want {
				t.Fatalf("%s.Sibling=%s, want %s", s.LOINC, got, want)
			}
			if s.Unit == m.Unit {
				t.Fatalf("siblings share unit %s", m.Unit)
			}
			v := s.Min + (s.Max-s.Min)/3
			r, err := vitals.Normalize(m, v, s.Unit)
			if err != nil {
				t.Fatal(err)
			}
			if r.LOINC != s.LOINC || r.Value != v || r.Unit != s.Unit || r.RecodedFrom != m.LOINC || r.Converted {
				t.Fatalf("Normalize(%s, %v %s)=%+v", m.LOINC, v, s.Unit, r)
			}
		})
	}
}

func TestCatalogue_Copy(t *testing.T) {
	// Ensure callers cannot change the catalogue through Catalogue().
	c := vitals.Catalogue()
	c[0].Max = -1
	if got := vitals.Catalogue()[0].Max; got == -1 {
		t.Fatal("Catalogue() returned the package's own slice")
	}
}

// loincMod10 is the check digit by the eight steps of the LOINC Users' Guide
// section 12 C (loinc.org/kb/users-guide/calculating-mod-10-check-digits),
// written step by step and independently of the package's Luhn form.
func loincMod10(body string) int {
	// Step 1: positions from right to left. Step 2: odd positions, in that
	// order (12345 gives "531"). Step 4: even positions ("42").
	var odd, even strings.Builder
	for pos, i := 1, len(body)-1; i >= 0; pos, i = pos+1, i-1 {
		if pos%2 == 1 {
			odd.WriteByte(body[i])
		} else {
			even.WriteByte(body[i])
		}
	}
	// Step 3: multiply the odd number by 2 ("1062").
	n, ok := new(big.Int).SetString(odd.String(), 10)
	if !ok {
		return -1
	}
	n.Mul(n, big.NewInt(2))
	// Step 5: prepend step 4 to step 3 ("421062"). Step 6: add the digits.
	sum := 0
	for _, c := range even.String() + n.String() {
		sum += int(c - '0')
	}
	// Steps 7 and 8: up to the next multiple of ten.
	return (10 - sum%10) % 10
}

func TestValidLOINC(t *testing.T) {
	t.Run("UsersGuideExample", func(t *testing.T) {
		// Ensure the test's own algorithm reproduces the guide's example.
		if got, want := loincMod10("12345"), 5; got != want {
			t.Fatalf("loincMod10(12345)=%d, want %d", got, want)
		}
		if !vitals.ValidLOINC("12345-5") {
			t.Fatal("ValidLOINC(12345-5)=false")
		}
	})

	t.Run("Catalogue", func(t *testing.T) {
		// Ensure every catalogue code is well formed with a valid check digit.
		re := regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)
		for _, m := range vitals.Catalogue() {
			body, check, _ := strings.Cut(m.LOINC, "-")
			if !re.MatchString(m.LOINC) {
				t.Errorf("%q is not digits-digit", m.LOINC)
				continue
			}
			if got, want := strconv.Itoa(loincMod10(body)), check; got != want {
				t.Errorf("%s: check digit %s, want %s", m.LOINC, check, got)
			}
			if !vitals.ValidLOINC(m.LOINC) {
				t.Errorf("ValidLOINC(%s)=false", m.LOINC)
			}
		}
	})

	t.Run("AgreesWithUsersGuide", func(t *testing.T) {
		// Ensure the package's algorithm equals the guide's for every body
		// up to six digits, with the right digit and every wrong one.
		for n := 0; n < 200000; n++ {
			body := strconv.Itoa(n)
			want := loincMod10(body)
			for d := 0; d <= 9; d++ {
				code := body + "-" + strconv.Itoa(d)
				if got := vitals.ValidLOINC(code); got != (d == want) {
					t.Fatalf("ValidLOINC(%s)=%v, guide's check digit is %d", code, got, want)
				}
			}
		}
	})

	t.Run("KnownInvalid", func(t *testing.T) {
		// Ensure the 14 deprecated codes the guide lists with invalid check
		// digits are reported as malformed.
		for _, code := range []string{"11491-6", "11501-6", "5895-7", "5896-5", "5897-3", "5928-1", "6028-3",
			"6415-5", "6580-7", "6645-7", "6646-5", "6647-3", "6648-1", "6649-9"} {
			if vitals.ValidLOINC(code) {
				t.Errorf("ValidLOINC(%s)=true", code)
			}
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		for _, code := range []string{"", "-", "-6", "8480", "8480-", "8480-66", "a480-6", "12345678-9",
			" 8480-6", "8480-6 ", "8480–6", "８４８０-6", "LP12345-6", "8480-6-6", "+8480-6"} {
			if vitals.ValidLOINC(code) {
				t.Errorf("ValidLOINC(%q)=true", code)
			}
		}
	})
}

// igUnits returns every UCUM code used in the IG package: each JSON object
// with system http://unitsofmeasure.org and a code, in every file.
func igUnits(tb testing.TB) map[string]string {
	tb.Helper()
	dir := filepath.Join(sharedDir, "fhir", "ndhm.in-6.5.0")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(dir, "example", "*.json"))
	files = append(files, more...)
	if len(files) < 100 {
		tb.Fatalf("found %d IG files under %s; the IG package belongs at shared/fhir next to the repository", len(files), dir)
	}
	found := make(map[string]string)
	var walk func(v any, file string)
	walk = func(v any, file string) {
		switch v := v.(type) {
		case map[string]any:
			if v["system"] == "http://unitsofmeasure.org" {
				if c, ok := v["code"].(string); ok {
					found[c] = filepath.Base(file)
				}
			}
			for _, e := range v {
				walk(e, file)
			}
		case []any:
			for _, e := range v {
				walk(e, file)
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if !bytes.Contains(b, []byte("http://unitsofmeasure.org")) {
			continue // no UCUM quantity; skip the costly decode
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		walk(v, f)
	}
	return found
}

// referenceText returns the research notes the catalogue cites.
func referenceText(tb testing.TB) string {
	tb.Helper()
	var b strings.Builder
	for _, name := range []string{"devices.md", "abdm.md"} {
		data, err := os.ReadFile(filepath.Join(sharedDir, "reference", name))
		if err != nil {
			tb.Fatalf("read reference notes: %v", err)
		}
		b.Write(data)
	}
	return b.String()
}

// inText reports whether unit occurs in text as a token of its own (between
// spaces, table bars, backticks, commas, semicolons or brackets).
func inText(text, unit string) bool {
	re := regexp.MustCompile("(^|[\\s|`(,;])" + regexp.QuoteMeta(unit) + "($|[\\s|`),;.])")
	return re.MatchString(text)
}

func TestCatalogue_UnitsSeenInIGOrReference(t *testing.T) {
	ig := igUnits(t)
	ref := referenceText(t)

	// Units the catalogue needs that neither local source uses, each with
	// the external source it was checked against. The test fails if one of
	// them turns up locally, so the list only shrinks.
	external := map[string]string{
		"g/dL":   "718-7 in g/dL: FHIR R4 observation-example-f005-hemoglobin; US Core Observation-cbc-hemoglobin",
		"umol/L": "14682-9 in umol/L: LOINC example unit; French EDS profile edsh-observation-laboratory-creat",
	}

	for _, m := range vitals.Catalogue() {
		if file, ok := ig[m.Unit]; ok {
			t.Logf("%s %s: IG %s", m.LOINC, m.Unit, file)
			continue
		}
		if inText(ref, m.Unit) {
			t.Logf("%s %s: reference notes", m.LOINC, m.Unit)
			continue
		}
		if src, ok := external[m.Unit]; ok {
			t.Logf("%s %s: %s", m.LOINC, m.Unit, src)
			continue
		}
		t.Errorf("%s: unit %q is in neither the IG package nor the reference notes", m.LOINC, m.Unit)
	}
	for unit := range external {
		// Ensure the exception list stays minimal and its units parse.
		if _, ok := ig[unit]; ok || inText(ref, unit) {
			t.Errorf("%q is now in a local source: drop it from the external list", unit)
		}
		if u, err := vitals.ParseUnit(unit); err != nil || u.UCUM != unit {
			t.Errorf("ParseUnit(%q)=%v, %v", unit, u.UCUM, err)
		}
	}
}

// igValueSet returns the LOINC codes of an IG ValueSet.
func igValueSet(tb testing.TB, name string) map[string]bool {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir, "fhir", "ndhm.in-6.5.0", name))
	if err != nil {
		tb.Fatal(err)
	}
	var vs struct {
		Compose struct {
			Include []struct {
				System  string `json:"system"`
				Concept []struct {
					Code string `json:"code"`
				} `json:"concept"`
			} `json:"include"`
		} `json:"compose"`
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		tb.Fatal(err)
	}
	codes := make(map[string]bool)
	for _, inc := range vs.Compose.Include {
		if inc.System != "http://loinc.org" {
			continue
		}
		for _, c := range inc.Concept {
			codes[c.Code] = true
		}
	}
	return codes
}

func TestIG_CodeChoices(t *testing.T) {
	vital := igValueSet(t, "ValueSet-ndhm-vital-signs.json")

	t.Run("SpO2", func(t *testing.T) {
		// Ensure the IG still uses 2708-6 (not 59408-5) and that a pulse
		// oximeter's MDC code maps to the IG's choice.
		if !vital["2708-6"] || vital["59408-5"] {
			t.Fatalf("IG vital-signs ValueSet: 2708-6=%v 59408-5=%v; revisit the SpO2 mapping", vital["2708-6"], vital["59408-5"])
		}
		m, err := vitals.Lookup("MDC", "150456", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.LOINC, "2708-6"; got != want {
			t.Fatalf("MDC 150456 -> %s, want %s", got, want)
		}
	})

	t.Run("Temperature", func(t *testing.T) {
		// Ensure the documented disagreement still holds: the IG codes
		// temperature 61008-9 and never 8310-5.
		if !vital["61008-9"] || vital["8310-5"] {
			t.Fatalf("IG vital-signs ValueSet: 61008-9=%v 8310-5=%v; revisit the temperature mapping", vital["61008-9"], vital["8310-5"])
		}
	})

	t.Run("ValueSetCodesInCatalogue", func(t *testing.T) {
		// Ensure every IG vital-sign, body-measurement and glucose code the
		// node can receive from a device is in the catalogue.
		body := igValueSet(t, "ValueSet-ndhm-body-measurement.json")
		general := igValueSet(t, "ValueSet-ndhm-general-assessment.json")
		for _, code := range []string{"9279-1", "8867-4", "2708-6", "61008-9"} {
			if !vital[code] {
				t.Errorf("%s not in IG vital-signs", code)
			}
			if _, ok := vitals.ByLOINC(code); !ok {
				t.Errorf("%s not in catalogue", code)
			}
		}
		for _, code := range []string{"39156-5", "29463-7", "8302-2"} {
			if !body[code] {
				t.Errorf("%s not in IG body-measurement", code)
			}
			if _, ok := vitals.ByLOINC(code); !ok {
				t.Errorf("%s not in catalogue", code)
			}
		}
		for _, code := range []string{"2339-0", "41604-0", "14743-9", "14760-3"} {
			if !general[code] {
				t.Errorf("%s not in IG general-assessment", code)
			}
			if _, ok := vitals.ByLOINC(code); !ok {
				t.Errorf("%s not in catalogue", code)
			}
		}
	})
}

func TestIG_ExamplesNormalize(t *testing.T) {
	// Ensure every quantity in the IG's wellness examples whose code is in
	// the catalogue normalizes: the IG's own data must not be refused.
	type quantity struct {
		Value  float64 `json:"value"`
		System string  `json:"system"`
		Code   string  `json:"code"`
	}
	type observation struct {
		ResourceType string `json:"resourceType"`
		Code         struct {
			Coding []struct {
				System string `json:"system"`
				Code   string `json:"code"`
			} `json:"coding"`
		} `json:"code"`
		ValueQuantity *quantity `json:"valueQuantity"`
		Component     []struct {
			Code struct {
				Coding []struct {
					System string `json:"system"`
					Code   string `json:"code"`
				} `json:"coding"`
			} `json:"code"`
			ValueQuantity *quantity `json:"valueQuantity"`
		} `json:"component"`
	}

	want := map[string]float64{
		"9279-1": 26, "8867-4": 44, "2708-6": 95, "61008-9": 36.5,
		"8302-2": 169.9, "29463-7": 83.915, "39156-5": 16.2, "2339-0": 142,
		"8480-6": 107, "8462-4": 60,
	}
	seen := make(map[string]bool)
	check := func(file, loinc string, q *quantity) {
		if q == nil || q.System != "http://unitsofmeasure.org" {
			return
		}
		m, err := vitals.Lookup("http://loinc.org", loinc, nil)
		if errors.Is(err, vitals.ErrUnknownCode) {
			return
		}
		if err != nil {
			t.Errorf("%s: Lookup(%s): %v", file, loinc, err)
			return
		}
		r, err := vitals.Normalize(m, q.Value, q.Code)
		if err != nil {
			t.Errorf("%s: Normalize(%s, %v %s): %v", file, loinc, q.Value, q.Code, err)
			return
		}
		if w, ok := want[loinc]; ok && r.Value != w {
			t.Errorf("%s: %s %v %s -> %v %s, want %v", file, loinc, q.Value, q.Code, r.Value, r.Unit, w)
		}
		seen[loinc] = true
	}

	files, _ := filepath.Glob(filepath.Join(sharedDir, "fhir", "ndhm.in-6.5.0", "example", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"Observation"`)) || !bytes.Contains(b, []byte("http://unitsofmeasure.org")) {
			continue
		}
		var doc struct {
			ResourceType string `json:"resourceType"`
			Entry        []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		raws := []json.RawMessage{b}
		for _, e := range doc.Entry {
			raws = append(raws, e.Resource)
		}
		for _, raw := range raws {
			var obs observation
			if err := json.Unmarshal(raw, &obs); err != nil || obs.ResourceType != "Observation" {
				continue
			}
			for _, c := range obs.Code.Coding {
				if c.System == "http://loinc.org" {
					check(filepath.Base(f), c.Code, obs.ValueQuantity)
				}
			}
			for _, comp := range obs.Component {
				for _, c := range comp.Code.Coding {
					if c.System == "http://loinc.org" {
						check(filepath.Base(f), c.Code, comp.ValueQuantity)
					}
				}
			}
		}
	}
	for loinc := range want {
		if !seen[loinc] {
			t.Errorf("no IG example quantity for %s was checked", loinc)
		}
	}
}
