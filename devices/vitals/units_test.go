package vitals_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices/vitals"
)

func TestParseUnit(t *testing.T) {
	// Spellings and their UCUM code, written out independently of the
	// package's table: UCUM codes, MDC codes and ids (reference §1.3, §6)
	// and what devices print.
	for _, tc := range []struct{ in, ucum string }{
		{"mm[Hg]", "mm[Hg]"}, {"mmHg", "mm[Hg]"}, {"MMHG", "mm[Hg]"}, {" mm Hg ", "mm[Hg]"},
		{"266016", "mm[Hg]"}, {"MDC_DIM_MMHG", "mm[Hg]"}, {"kPa", "kPa"}, {"KPA", "kPa"},
		{"%", "%"}, {"262688", "%"}, {"MDC_DIM_PERCENT", "%"}, {"%SpO2", "%"},
		{"/min", "/min"}, {"bpm", "/min"}, {"BPM", "/min"}, {"{beats}/min", "/min"}, {"264864", "/min"},
		{"MDC_DIM_BEAT_PER_MIN", "/min"}, {"264928", "/min"}, {"MDC_DIM_RESP_PER_MIN", "/min"},
		{"Cel", "Cel"}, {"°C", "Cel"}, {"C", "Cel"}, {"c", "Cel"}, {"deg C", "Cel"}, {"℃", "Cel"},
		{"268192", "Cel"}, {"MDC_DIM_DEGC", "Cel"},
		{"[degF]", "[degF]"}, {"°F", "[degF]"}, {"F", "[degF]"}, {"deg F", "[degF]"}, {"DEG F", "[degF]"},
		{"266560", "[degF]"}, {"MDC_DIM_FAHR", "[degF]"},
		{"kg", "kg"}, {"Kg", "kg"}, {"KGS", "kg"}, {"263875", "kg"}, {"MDC_DIM_KILO_G", "kg"},
		{"g", "g"}, {"lb", "[lb_av]"}, {"lbs", "[lb_av]"}, {"[lb_av]", "[lb_av]"}, {"263904", "[lb_av]"}, {"MDC_DIM_LB", "[lb_av]"},
		{"cm", "cm"}, {"263441", "cm"}, {"MDC_DIM_CENTI_M", "cm"}, {"in", "[in_i]"}, {"[in_i]", "[in_i]"},
		{"263520", "[in_i]"}, {"MDC_DIM_INCH", "[in_i]"}, {"[in_us]", "[in_us]"},
		{"kg/m2", "kg/m2"}, {"264096", "kg/m2"}, {"MDC_DIM_KG_PER_M_SQ", "kg/m2"},
		{"mg/dL", "mg/dL"}, {"mg/dl", "mg/dL"}, {"MG/DL", "mg/dL"}, {"mg%", "mg/dL"}, {"264274", "mg/dL"},
		{"MDC_DIM_MILLI_G_PER_DL", "mg/dL"},
		{"mmol/L", "mmol/L"}, {"mmol/l", "mmol/L"}, {"266866", "mmol/L"}, {"MDC_DIM_MILLI_MOLE_PER_L", "mmol/L"},
		{"g/dL", "g/dL"}, {"g/dl", "g/dL"}, {"gm%", "g/dL"},
		{"umol/L", "umol/L"}, {"µmol/L", "umol/L"}, {"μmol/L", "umol/L"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			// Ensure the spelling parses to its UCUM code.
			u, err := vitals.ParseUnit(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := u.UCUM, tc.ucum; got != want {
				t.Fatalf("UCUM=%q, want %q", got, want)
			}
			if u.Label == "" {
				t.Fatal("Label is empty")
			}
		})
	}

	t.Run("EveryTableSpelling", func(t *testing.T) {
		// Ensure every spelling in the table parses, also in ASCII upper
		// case and with spaces around it, to its own unit.
		for _, s := range vitals.UnitSpellings() {
			for _, in := range []string{s.Spelling, asciiUpper(s.Spelling), "  " + s.Spelling + "\t"} {
				u, err := vitals.ParseUnit(in)
				if err != nil {
					t.Fatalf("ParseUnit(%q): %v", in, err)
				}
				if got, want := u.UCUM, s.UCUM; got != want {
					t.Fatalf("ParseUnit(%q).UCUM=%q, want %q", in, got, want)
				}
			}
		}
	})

	t.Run("OnlyASCIIFolds", func(t *testing.T) {
		// Ensure Unicode case mapping is not applied: Greek capital Mu is
		// not micro.
		if _, err := vitals.ParseUnit(strings.ToUpper("μmol/L")); !errors.Is(err, vitals.ErrUnknownUnit) {
			t.Fatalf("err=%v, want ErrUnknownUnit", err)
		}
	})

	t.Run("EqualUnitsCompareEqual", func(t *testing.T) {
		a, _ := vitals.ParseUnit("mg/dl")
		b, _ := vitals.ParseUnit("264274")
		if a != b {
			t.Fatalf("%+v != %+v", a, b)
		}
	})

	for _, tc := range []struct {
		name, in string
		err      error
	}{
		{"Empty", "", vitals.ErrNoUnit},
		{"Spaces", "   ", vitals.ErrNoUnit},
		{"Tabs", "\t\r\n", vitals.ErrNoUnit},
		{"NoBreakSpace", "\u00a0", vitals.ErrNoUnit},
		{"LongerThan64", strings.Repeat("a", 65), vitals.ErrUnknownUnit},
		{"TwoMegabytes", strings.Repeat("mm", 1<<20), vitals.ErrUnknownUnit},
		{"LongSpaces", strings.Repeat(" ", 100) + "kg", vitals.ErrUnknownUnit},
		{"InvalidUTF8", "\xff", vitals.ErrUnknownUnit},
		{"InvalidUTF8Inside", "k\xffg", vitals.ErrUnknownUnit},
		{"CyrillicEs", "°С", vitals.ErrUnknownUnit},
		{"CyrillicEsAlone", "С", vitals.ErrUnknownUnit},
		{"FullWidthPercent", "％", vitals.ErrUnknownUnit},
		{"ArabicPercent", "٪", vitals.ErrUnknownUnit},
		{"KelvinSignKg", "\u212Ag", vitals.ErrUnknownUnit},
		{"FullWidthMmHg", "ｍｍＨｇ", vitals.ErrUnknownUnit},
		{"RingAboveC", "˚C", vitals.ErrUnknownUnit},
		{"ZeroWidthSpace", "k\u200bg", vitals.ErrUnknownUnit},
		{"NUL", "kg\x00", vitals.ErrUnknownUnit},
		{"HL7CWE", "mm[Hg]^mm[Hg]^UCUM", vitals.ErrUnknownUnit},
		{"PhilipsKgPerM2", "264099", vitals.ErrUnknownUnit},
		{"NumberNotMDC", "0", vitals.ErrUnknownUnit},
		{"Negative", "-1", vitals.ErrUnknownUnit},
		{"DegreeOnly", "°", vitals.ErrUnknownUnit},
		{"TrailingSlash", "mg/dL/", vitals.ErrUnknownUnit},
		{"Stone", "st", vitals.ErrUnknownUnit},
		{"Torr", "torr", vitals.ErrUnknownUnit},
		{"Kelvin", "K", vitals.ErrUnknownUnit},
		{"Grain", "gr", vitals.ErrUnknownUnit},
		{"Ratio1", "1", vitals.ErrUnknownUnit},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			// Ensure hostile or unknown text is a clear typed error.
			u, err := vitals.ParseUnit(tc.in)
			if u != (vitals.Unit{}) {
				t.Fatalf("Unit=%+v on error, want zero", u)
			}
			var ue *vitals.UnitError
			if !errors.As(err, &ue) {
				t.Fatalf("err=%v (%T), want *vitals.UnitError", err, err)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err=%v, want %v", err, tc.err)
			}
			if msg := err.Error(); !utf8.ValidString(msg) || len(msg) > 300 || !strings.HasPrefix(msg, "vitals: unit") {
				t.Fatalf("Error()=%q: want a short valid message", msg)
			}
		})
	}
}

// asciiUpper upper-cases ASCII letters only.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
