package vitals_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices/vitals"
)

// mdcWant is every MDC mapping, written out independently of the package's
// table, from the reference notes §1.3/§6 and the DK core MDC value set.
var mdcWant = []struct{ code, refID, loinc string }{
	{"150021", "MDC_PRESS_BLD_NONINV_SYS", "8480-6"},
	{"150022", "MDC_PRESS_BLD_NONINV_DIA", "8462-4"},
	{"150023", "MDC_PRESS_BLD_NONINV_MEAN", "8478-0"},
	{"150301", "MDC_PRESS_CUFF_SYS", "8480-6"},
	{"150302", "MDC_PRESS_CUFF_DIA", "8462-4"},
	{"150303", "MDC_PRESS_CUFF_MEAN", "8478-0"},
	{"147842", "MDC_ECG_HEART_RATE", "8867-4"},
	{"149530", "MDC_PULS_OXIM_PULS_RATE", "8867-4"},
	{"149546", "MDC_PULS_RATE_NON_INV", "8867-4"},
	{"149514", "MDC_PULS_RATE", "8867-4"},
	{"149522", "MDC_BLD_PULS_RATE_INV", "8867-4"},
	{"150456", "MDC_PULS_OXIM_SAT_O2", "2708-6"},
	{"150324", "MDC_SAT_O2_ART", "2708-6"},
	{"151562", "MDC_RESP_RATE", "9279-1"},
	{"151578", "MDC_TTHOR_RESP_RATE", "9279-1"},
	{"150344", "MDC_TEMP", "8310-5"},
	{"150364", "MDC_TEMP_BODY", "8310-5"},
	{"150368", "MDC_TEMP_CORE", "8310-5"},
	{"150392", "MDC_TEMP_TYMP", "8310-5"},
	{"188420", "MDC_TEMP_RECT", "8310-5"},
	{"188424", "MDC_TEMP_ORAL", "8310-5"},
	{"188428", "MDC_TEMP_EAR", "8310-5"},
	{"188452", "MDC_TEMP_AXILLA", "8310-5"},
	{"188496", "MDC_TEMP_AXIL", "8310-5"},
	{"150388", "MDC_TEMP_SKIN", "61008-9"},
	{"188736", "MDC_MASS_BODY_ACTUAL", "29463-7"},
	{"188740", "MDC_LEN_BODY_ACTUAL", "8302-2"},
	{"188752", "MDC_RATIO_MASS_BODY_LEN_SQ", "39156-5"},
	{"160184", "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", "2339-0"},
	{"160220", "MDC_CONC_HBA1C", "4548-4"},
}

func TestLookup_MDC(t *testing.T) {
	for _, tc := range mdcWant {
		t.Run(tc.refID, func(t *testing.T) {
			// Ensure the number, the reference id and any system spelling
			// give the same measurement.
			for _, in := range []struct{ sys, code string }{
				{"MDC", tc.code},
				{"mdc", " " + tc.code + " "},
				{"urn:iso:std:iso:11073:10101", tc.code},
				{"MDC", tc.refID},
				{"MDC", strings.ToLower(tc.refID)},
			} {
				m, err := vitals.Lookup(in.sys, in.code, nil)
				if err != nil {
					t.Fatalf("Lookup(%q, %q): %v", in.sys, in.code, err)
				}
				if got, want := m.LOINC, tc.loinc; got != want {
					t.Fatalf("Lookup(%q, %q).LOINC=%s, want %s", in.sys, in.code, got, want)
				}
			}
		})
	}

	t.Run("TableMatchesExpectations", func(t *testing.T) {
		// Ensure the package table is sorted and has exactly these rows.
		table := vitals.MDCMetrics()
		if got, want := len(table), len(mdcWant); got != want {
			t.Fatalf("len(MDC table)=%d, want %d (add the new row to mdcWant)", got, want)
		}
		want := make(map[vitals.MDCMetric]bool)
		for _, w := range mdcWant {
			want[vitals.MDCMetric{Code: w.code, RefID: w.refID, LOINC: w.loinc}] = true
		}
		prev := ""
		for _, r := range table {
			if len(r.Code) != 6 || r.Code <= prev {
				t.Fatalf("MDC table not sorted at %s", r.Code)
			}
			prev = r.Code
			if !want[r] {
				t.Errorf("unexpected MDC row %+v", r)
			}
		}
	})

	for _, tc := range []struct {
		name, code string
		err        error
	}{
		{"BPContainer", "150020", vitals.ErrUnknownCode},
		{"DeviceTypo150031", "150031", vitals.ErrUnknownCode},
		{"ValidatorNegative1500212", "1500212", vitals.ErrUnknownCode},
		{"GlucosePlasmaUnchecked", "160188", vitals.ErrUnknownCode},
		{"ContainerRefID", "MDC_PRESS_BLD_NONINV", vitals.ErrUnknownCode},
		{"UnknownRefID", "MDC_NOPE", vitals.ErrUnknownCode},
		{"Empty", "", vitals.ErrMalformedCode},
		{"Negative", "-150456", vitals.ErrMalformedCode},
		{"Decimal", "150456.0", vitals.ErrMalformedCode},
		{"InnerSpace", "150 456", vitals.ErrMalformedCode},
		{"RefIDSpace", "MDC_PULS OXIM", vitals.ErrMalformedCode},
		{"CWE", "150456^MDC_PULS_OXIM_SAT_O2^MDC", vitals.ErrMalformedCode},
		{"FullWidthDigits", "１５０４５６", vitals.ErrMalformedCode},
		{"InvalidUTF8", "MDC_\xff", vitals.ErrMalformedCode},
		{"Huge", strings.Repeat("1", 100000), vitals.ErrMalformedCode},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			// Ensure codes not in the table are typed errors, never a guess.
			m, err := vitals.Lookup("MDC", tc.code, nil)
			checkCodeError(t, m, err, tc.err)
		})
	}
}

// checkCodeError checks that err is a *CodeError wrapping want, with a
// short valid message and no measurement.
func checkCodeError(tb testing.TB, m vitals.Measurement, err, want error) *vitals.CodeError {
	tb.Helper()
	if m != (vitals.Measurement{}) {
		tb.Fatalf("Measurement=%+v on error, want zero", m)
	}
	var ce *vitals.CodeError
	if !errors.As(err, &ce) {
		tb.Fatalf("err=%v (%T), want *vitals.CodeError", err, err)
	}
	if !errors.Is(err, want) {
		tb.Fatalf("err=%v, want %v", err, want)
	}
	if msg := err.Error(); !utf8.ValidString(msg) || len(msg) > 400 || !strings.HasPrefix(msg, "vitals: code") {
		tb.Fatalf("Error()=%q: want a short valid message", msg)
	}
	return ce
}

func TestLookup_LOINC(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Ensure surrounding space is ignored.
		m, err := vitals.Lookup(" LN ", " 8480-6 ", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.LOINC, "8480-6"; got != want {
			t.Fatalf("LOINC=%s, want %s", got, want)
		}
	})

	for _, tc := range []struct {
		name, code string
		err        error
	}{
		{"BadCheckDigit", "8480-5", vitals.ErrMalformedCode},
		{"NoCheckDigit", "8480", vitals.ErrMalformedCode},
		{"LOINCPart", "LP12345-6", vitals.ErrMalformedCode},
		{"EnDash", "8480–6", vitals.ErrMalformedCode},
		{"Empty", "", vitals.ErrMalformedCode},
		{"DeprecatedInvalidCheck", "5895-7", vitals.ErrMalformedCode},
		{"BPPanelNotAMeasurement", "85354-9", vitals.ErrUnknownCode},
		{"UsersGuideExample", "12345-5", vitals.ErrUnknownCode},
		{"MeasuredWeightNotCatalogued", "3141-9", vitals.ErrUnknownCode},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			// Ensure a malformed code and an unknown one are told apart.
			m, err := vitals.Lookup("LN", tc.code, nil)
			checkCodeError(t, m, err, tc.err)
		})
	}

	t.Run("LocalTableIgnored", func(t *testing.T) {
		// Ensure a LOINC system never consults the device table.
		m, err := vitals.Lookup("LN", "GLU", map[string]string{"GLU": "2345-7"})
		checkCodeError(t, m, err, vitals.ErrMalformedCode)
	})
}

func TestLookup_Local(t *testing.T) {
	// A device profile's table, as the ASTM and HL7 codecs will pass it.
	local := map[string]string{
		"^^^GLU":    "2345-7",  // ASTM universal test id
		"CREA":      "2160-0",  // ASTM, code component only
		"101":       "8867-4",  // legacy Mindray gateway HR (reference §1.3)
		"0002-4bb8": "2708-6",  // Philips MDIL SpO2
		"393216":    "8480-6",  // EDAN EHC NIBP_SYS
		"TEMP":      "99999-9", // a profile error
	}

	for _, tc := range []struct{ sys, code, loinc string }{
		{"", "^^^GLU", "2345-7"},
		{"", " ^^^GLU ", "2345-7"},
		{"", "CREA", "2160-0"},
		{"99MNDRY", "101", "8867-4"},
		{"MDIL", "0002-4bb8", "2708-6"},
		{"EHC", "393216", "8480-6"},
	} {
		t.Run(tc.sys+tc.code, func(t *testing.T) {
			// Ensure vendor codes map through the device's table.
			m, err := vitals.Lookup(tc.sys, tc.code, local)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.LOINC, tc.loinc; got != want {
				t.Fatalf("LOINC=%s, want %s", got, want)
			}
		})
	}

	t.Run("ErrUnknownCode", func(t *testing.T) {
		// Ensure a code the table lacks, or a different case, is unknown.
		for _, code := range []string{"^^^CREA", "glu", "^^^glu", "102", "\xff"} {
			m, err := vitals.Lookup("", code, local)
			checkCodeError(t, m, err, vitals.ErrUnknownCode)
		}
	})

	t.Run("ErrNilTable", func(t *testing.T) {
		m, err := vitals.Lookup("99MNDRY", "101", nil)
		checkCodeError(t, m, err, vitals.ErrUnknownCode)
	})

	t.Run("ErrBadMapping", func(t *testing.T) {
		// Ensure a table entry naming an unknown LOINC code is reported as
		// the table's fault, naming the target.
		m, err := vitals.Lookup("", "TEMP", local)
		ce := checkCodeError(t, m, err, vitals.ErrBadMapping)
		if got, want := ce.Target, "99999-9"; got != want {
			t.Fatalf("Target=%q, want %q", got, want)
		}
	})

	t.Run("ValidateLocal", func(t *testing.T) {
		// Ensure a profile's table can be checked when it is loaded.
		if err := vitals.ValidateLocal(nil); err != nil {
			t.Fatal(err)
		}
		good := map[string]string{"^^^GLU": "2345-7", "101": "8867-4"}
		if err := vitals.ValidateLocal(good); err != nil {
			t.Fatal(err)
		}
		err := vitals.ValidateLocal(local)
		ce := checkCodeError(t, vitals.Measurement{}, err, vitals.ErrBadMapping)
		if got, want := ce.Code, "TEMP"; got != want {
			t.Fatalf("Code=%q, want %q", got, want)
		}
		bad := map[string]string{"B": "1-1", "A": "", "C": "8480-6"}
		ce = checkCodeError(t, vitals.Measurement{}, vitals.ValidateLocal(bad), vitals.ErrBadMapping)
		if got, want := ce.Code, "A"; got != want {
			t.Fatalf("first bad key=%q, want %q", got, want)
		}
		for _, key := range []string{"", " GLU", "GLU ", strings.Repeat("G", 65)} {
			// Ensure a key Lookup could never match is reported.
			err := vitals.ValidateLocal(map[string]string{key: "2345-7"})
			checkCodeError(t, vitals.Measurement{}, err, vitals.ErrMalformedCode)
		}
	})

	t.Run("ErrHugeSystem", func(t *testing.T) {
		m, err := vitals.Lookup(strings.Repeat("S", 1<<20), "101", local)
		checkCodeError(t, m, err, vitals.ErrMalformedCode)
	})
}
