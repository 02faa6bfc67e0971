package vitals_test

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/devices/vitals"
)

// FuzzNormalize feeds any value and unit text to every measurement and
// checks that nothing panics and that what comes out keeps the package's
// promises. Seeds are the table cases of TestNormalizeText.
func FuzzNormalize(f *testing.F) {
	for _, tc := range normalizeCases {
		f.Add(tc.value, tc.unit)
	}
	catalogue := vitals.Catalogue()

	f.Fuzz(func(t *testing.T, value, unit string) {
		if _, err := vitals.ParseUnit(unit); err != nil {
			var ue *vitals.UnitError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseUnit(%q) err=%v (%T)", unit, err, err)
			}
		}
		// The value text doubles as a code, to fuzz Lookup too.
		for _, sys := range []string{"LN", "MDC", ""} {
			m, err := vitals.Lookup(sys, value, map[string]string{unit: "8480-6"})
			if err != nil {
				var ce *vitals.CodeError
				if !errors.As(err, &ce) {
					t.Fatalf("Lookup(%q, %q) err=%v (%T)", sys, value, err, err)
				}
			} else if _, ok := vitals.ByLOINC(m.LOINC); !ok {
				t.Fatalf("Lookup(%q, %q)=%s, not in catalogue", sys, value, m.LOINC)
			}
		}

		for _, m := range catalogue {
			r, err := vitals.NormalizeText(m, value, unit)
			checkOutcome(t, m, r, err, value, unit)

			if v, perr := strconv.ParseFloat(strings.TrimSpace(value), 64); perr == nil {
				r, err := vitals.Normalize(m, v, unit)
				checkOutcome(t, m, r, err, strconv.FormatFloat(v, 'g', -1, 64), unit)
				if err == nil && !r.Converted && r.Value != v && !(v == 0 && r.Value == 0) {
					t.Fatalf("Normalize(%s, %v, %q) changed an unconverted value to %v", m.LOINC, v, unit, r.Value)
				}
			}
		}
	})
}

// checkOutcome checks the promises of one Normalize result.
func checkOutcome(t *testing.T, asked vitals.Measurement, r vitals.Reading, err error, value, unit string) {
	t.Helper()
	if err != nil {
		rej := checkRejection(t, err)
		if rej.LOINC != asked.LOINC && rej.LOINC != asked.Sibling {
			t.Fatalf("rejection names %s, asked %s", rej.LOINC, asked.LOINC)
		}
		// A range refusal's log line is only the codes: no value.
		if rej.Code == vitals.RejectTooLow || rej.Code == vitals.RejectTooHigh {
			if got, want := rej.Error(), "vitals: reject "+rej.LOINC+": "+string(rej.Code); got != want {
				t.Fatalf("Error()=%q, want %q", got, want)
			}
		}
		if r != (vitals.Reading{}) {
			t.Fatalf("Reading=%+v with error %v", r, err)
		}
		return
	}
	m, ok := vitals.ByLOINC(r.LOINC)
	if !ok {
		t.Fatalf("reading LOINC %s not in catalogue", r.LOINC)
	}
	if r.LOINC != asked.LOINC && (r.LOINC != asked.Sibling || r.RecodedFrom != asked.LOINC) {
		t.Fatalf("asked %s, got %s (RecodedFrom %q)", asked.LOINC, r.LOINC, r.RecodedFrom)
	}
	if math.IsNaN(r.Value) || r.Value < m.Min || r.Value > m.Max {
		t.Fatalf("%s value %v outside [%v, %v]", r.LOINC, r.Value, m.Min, m.Max)
	}
	if r.Unit != m.Unit || r.Display != m.Display {
		t.Fatalf("reading %+v does not match catalogue %+v", r, m)
	}
	if r.RawValue != value || r.RawUnit != unit {
		t.Fatalf("raw %q %q, sent %q %q", r.RawValue, r.RawUnit, value, unit)
	}
	if u, err := vitals.ParseUnit(unit); err != nil || u.UCUM != r.RawUCUM {
		t.Fatalf("RawUCUM=%q, ParseUnit(%q)=%q, %v", r.RawUCUM, unit, u.UCUM, err)
	}
}
