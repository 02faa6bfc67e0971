package vitals_test

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices/vitals"
)

// MustMeasurement returns the catalogue entry for a LOINC code, or a
// Measurement with only that code when it is not in the catalogue (to test
// refusals).
func MustMeasurement(tb testing.TB, loinc string) vitals.Measurement {
	tb.Helper()
	m, ok := vitals.ByLOINC(loinc)
	if !ok {
		return vitals.Measurement{LOINC: loinc}
	}
	return m
}

// MustReading normalizes a value that must be accepted.
func MustReading(tb testing.TB, loinc string, value float64, unit string) vitals.Reading {
	tb.Helper()
	r, err := vitals.Normalize(MustMeasurement(tb, loinc), value, unit)
	if err != nil {
		tb.Fatalf("Normalize(%s, %v, %q): %v", loinc, value, unit, err)
	}
	return r
}

// checkRejection checks the invariants of every refusal and returns it.
func checkRejection(tb testing.TB, err error) *vitals.Rejection {
	tb.Helper()
	var rej *vitals.Rejection
	if !errors.As(err, &rej) {
		tb.Fatalf("err=%v (%T), want *vitals.Rejection", err, err)
	}
	if rej.Code == "" || rej.Reason == "" || rej.ReasonHI == "" {
		tb.Fatalf("rejection %+v lacks code or reasons", rej)
	}
	if !utf8.ValidString(rej.Reason) || !utf8.ValidString(rej.ReasonHI) || !utf8.ValidString(rej.Error()) {
		tb.Fatalf("rejection %+v is not valid UTF-8", rej)
	}
	if !strings.HasPrefix(rej.Error(), "vitals: reject") {
		tb.Fatalf("Error()=%q, want prefix %q", rej.Error(), "vitals: reject")
	}
	if got, want := rej.Code.Key(), "error.vitals_"+string(rej.Code); got != want {
		tb.Fatalf("Key()=%q, want %q", got, want)
	}
	return rej
}

func TestNormalizeText(t *testing.T) {
	for _, tc := range normalizeCases {
		t.Run(tc.name, func(t *testing.T) {
			m := MustMeasurement(t, tc.loinc)
			r, err := vitals.NormalizeText(m, tc.value, tc.unit)

			if tc.code != "" {
				// Ensure the value is refused with the expected code.
				if err == nil {
					t.Fatalf("NormalizeText(%s, %q, %q)=%+v, want rejection %s", tc.loinc, tc.value, tc.unit, r, tc.code)
				}
				rej := checkRejection(t, err)
				if got, want := rej.Code, tc.code; got != want {
					t.Fatalf("Code=%v, want %v (%v)", got, want, err)
				}
				if got, want := r, (vitals.Reading{}); got != want {
					t.Fatalf("Reading=%+v on rejection, want zero", got)
				}
				return
			}

			// Ensure the value is accepted, converted exactly, and the sent
			// text is kept.
			if err != nil {
				t.Fatalf("NormalizeText(%s, %q, %q): %v", tc.loinc, tc.value, tc.unit, err)
			}
			wantLOINC := tc.loinc
			if tc.wantLOINC != "" {
				wantLOINC = tc.wantLOINC
			}
			want := MustMeasurement(t, wantLOINC)
			if got, want := r.LOINC, wantLOINC; got != want {
				t.Fatalf("LOINC=%v, want %v", got, want)
			}
			if got, want := r.Value, tc.wantValue; got != want {
				t.Fatalf("Value=%v, want %v", got, want)
			}
			if got, want := r.Unit, want.Unit; got != want {
				t.Fatalf("Unit=%v, want %v", got, want)
			}
			if got, want := r.Display, want.Display; got != want {
				t.Fatalf("Display=%v, want %v", got, want)
			}
			if got, want := r.Converted, tc.converted; got != want {
				t.Fatalf("Converted=%v, want %v", got, want)
			}
			wantRecoded := ""
			if tc.wantLOINC != "" && tc.wantLOINC != tc.loinc {
				wantRecoded = tc.loinc
			}
			if got, want := r.RecodedFrom, wantRecoded; got != want {
				t.Fatalf("RecodedFrom=%v, want %v", got, want)
			}
			if got, want := r.RawValue, tc.value; got != want {
				t.Fatalf("RawValue=%q, want %q", got, want)
			}
			if got, want := r.RawUnit, tc.unit; got != want {
				t.Fatalf("RawUnit=%q, want %q", got, want)
			}
			u, err := vitals.ParseUnit(tc.unit)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r.RawUCUM, u.UCUM; got != want {
				t.Fatalf("RawUCUM=%q, want %q", got, want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Ensure a float in the canonical unit passes through bit for bit,
		// even with more decimals than the measurement keeps.
		r := MustReading(t, "8310-5", 36.5678, "Cel")
		if got, want := r.Value, 36.5678; got != want {
			t.Fatalf("Value=%v, want %v", got, want)
		}
		if got, want := r.RawValue, "36.5678"; got != want {
			t.Fatalf("RawValue=%q, want %q", got, want)
		}
		if r.Converted {
			t.Fatal("Converted=true, want false")
		}
	})

	for _, tc := range []struct {
		name  string
		value float64
	}{
		{"NaN", math.NaN()},
		{"PlusInf", math.Inf(1)},
		{"MinusInf", math.Inf(-1)},
	} {
		t.Run("ErrNotANumber/"+tc.name, func(t *testing.T) {
			// Ensure NaN and infinities are refused, not compared.
			_, err := vitals.Normalize(MustMeasurement(t, "2708-6"), tc.value, "%")
			if got, want := checkRejection(t, err).Code, vitals.RejectNotANumber; got != want {
				t.Fatalf("Code=%v, want %v", got, want)
			}
		})
	}

	t.Run("ErrOverflowOnConversion", func(t *testing.T) {
		// Ensure a finite value that overflows in conversion is too high,
		// not accepted as +Inf.
		_, err := vitals.Normalize(MustMeasurement(t, "8480-6"), math.MaxFloat64, "kPa")
		if got, want := checkRejection(t, err).Code, vitals.RejectTooHigh; got != want {
			t.Fatalf("Code=%v, want %v", got, want)
		}
	})

	t.Run("ErrNegativeZero", func(t *testing.T) {
		// Ensure -0 kg is a scale fault.
		_, err := vitals.Normalize(MustMeasurement(t, "29463-7"), math.Copysign(0, -1), "kg")
		if got, want := checkRejection(t, err).Code, vitals.RejectTooLow; got != want {
			t.Fatalf("Code=%v, want %v", got, want)
		}
	})

	t.Run("OnlyLOINCIsRead", func(t *testing.T) {
		// Ensure a caller cannot widen the range by editing a Measurement.
		m := MustMeasurement(t, "2708-6")
		m.Max = 1000
		_, err := vitals.Normalize(m, 140, "%")
		if got, want := checkRejection(t, err).Code, vitals.RejectTooHigh; got != want {
			t.Fatalf("Code=%v, want %v", got, want)
		}
	})
}

func TestRejection_Reasons(t *testing.T) {
	for _, tc := range []struct {
		name                string
		loinc, value, unit  string
		wantEN, wantHI      []string
		forbiddenInErrorMsg string
	}{
		{
			name: "SpO2TooHigh", loinc: "2708-6", value: "140", unit: "%",
			wantEN:              []string{"SpO2 of 140 % is impossible", "above 100 %", "check the probe"},
			wantHI:              []string{"140 %", "संभव नहीं", "अधिकतम 100 %", "प्रोब जाँचें"},
			forbiddenInErrorMsg: "140",
		},
		{
			name: "TemperatureSentInF", loinc: "8310-5", value: "158", unit: "°F",
			wantEN:              []string{"Temperature of 70 °C (sent as 158 °F) is impossible", "above 47 °C", "thermometer"},
			wantHI:              []string{"शरीर का तापमान 70 °C", "मशीन ने 158 °F भेजा", "47 °C"},
			forbiddenInErrorMsg: "158",
		},
		{
			name: "WeightNegative", loinc: "29463-7", value: "-3", unit: "kg",
			wantEN:              []string{"Weight of -3 kg is impossible", "below 0.15 kg", "scale"},
			wantHI:              []string{"वज़न -3 kg", "न्यूनतम 0.15 kg"},
			forbiddenInErrorMsg: "-3",
		},
		{
			name: "NotANumber", loinc: "2339-0", value: "HI", unit: "mg/dL",
			wantEN: []string{`The device sent "HI" for Blood sugar, which is not a number`},
			wantHI: []string{`"HI"`, "संख्या नहीं"},
		},
		{
			name: "UnknownUnit", loinc: "8310-5", value: "36.6", unit: "°С",
			wantEN: []string{"is not one we know"},
			wantHI: []string{"पहचानी नहीं गई"},
		},
		{
			name: "Mismatch", loinc: "4548-4", value: "48", unit: "mmol/mol",
			wantEN: []string{"HbA1c cannot be measured in mmol/mol"},
			wantHI: []string{"इकाई mmol/mol इसके लिए सही नहीं है"},
		},
		{
			name: "HugeUnitQuotedShort", loinc: "29463-7", value: "70", unit: strings.Repeat("x", 10000),
			wantEN: []string{"…"},
			wantHI: []string{"…"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Ensure the health worker's sentences say what was wrong and
			// what to do, and the log line carries no value.
			_, err := vitals.NormalizeText(MustMeasurement(t, tc.loinc), tc.value, tc.unit)
			rej := checkRejection(t, err)
			for _, s := range tc.wantEN {
				if !strings.Contains(rej.Reason, s) {
					t.Errorf("Reason=%q, want it to contain %q", rej.Reason, s)
				}
			}
			for _, s := range tc.wantHI {
				if !strings.Contains(rej.ReasonHI, s) {
					t.Errorf("ReasonHI=%q, want it to contain %q", rej.ReasonHI, s)
				}
			}
			if tc.forbiddenInErrorMsg != "" && strings.Contains(rej.Error(), tc.forbiddenInErrorMsg) {
				t.Errorf("Error()=%q contains the value %q", rej.Error(), tc.forbiddenInErrorMsg)
			}
			if len(rej.Reason) > 1000 || len(rej.Error()) > 1000 {
				t.Errorf("reason of %d bytes, error of %d bytes: not cut", len(rej.Reason), len(rej.Error()))
			}
		})
	}

	t.Run("UnwrapUnitError", func(t *testing.T) {
		// Ensure the unit cause is reachable with errors.Is and errors.As.
		_, err := vitals.NormalizeText(MustMeasurement(t, "29463-7"), "70", "stone")
		if !errors.Is(err, vitals.ErrUnknownUnit) {
			t.Fatalf("errors.Is(%v, ErrUnknownUnit)=false", err)
		}
		var ue *vitals.UnitError
		if !errors.As(err, &ue) {
			t.Fatalf("errors.As(%v, *UnitError)=false", err)
		}
		if got, want := ue.Unit, "stone"; got != want {
			t.Fatalf("Unit=%q, want %q", got, want)
		}
	})

	t.Run("UnwrapNoUnit", func(t *testing.T) {
		_, err := vitals.NormalizeText(MustMeasurement(t, "29463-7"), "70", "")
		if !errors.Is(err, vitals.ErrNoUnit) {
			t.Fatalf("errors.Is(%v, ErrNoUnit)=false", err)
		}
	})

	t.Run("UnwrapUnknownMeasurement", func(t *testing.T) {
		_, err := vitals.Normalize(vitals.Measurement{}, 1, "kg")
		if !errors.Is(err, vitals.ErrUnknownCode) {
			t.Fatalf("errors.Is(%v, ErrUnknownCode)=false", err)
		}
	})
}

func TestGlucoseConversion(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         func(float64) float64
		in, want  float64
		wantExact bool
	}{
		{"MgdL/5.5", vitals.GlucoseMgdL, 5.5, 99, true},    // 99.088
		{"MgdL/7.0", vitals.GlucoseMgdL, 7.0, 126, true},   // 126.112
		{"MgdL/11.1", vitals.GlucoseMgdL, 11.1, 200, true}, // 199.9776
		{"MmolL/100", vitals.GlucoseMmolL, 100, 5.6, true}, // 5.5506
		{"MmolL/126", vitals.GlucoseMmolL, 126, 7, true},   // 6.9938
		{"MmolL/200", vitals.GlucoseMmolL, 200, 11.1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Ensure the 18.016 factor and the rounding give exact values.
			if got, want := tc.f(tc.in), tc.want; got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
	if got, want := vitals.GlucoseMgPerDLPerMmolL, 18.016; got != want {
		t.Fatalf("GlucoseMgPerDLPerMmolL=%v, want %v", got, want)
	}
}

func TestBloodPressure_Validate(t *testing.T) {
	sys := MustReading(t, "8480-6", 120, "mmHg")
	dia := MustReading(t, "8462-4", 80, "mmHg")
	mean := MustReading(t, "8478-0", 93, "mmHg")

	t.Run("OK", func(t *testing.T) {
		// Ensure a normal pair, with and without a mean, is possible.
		if err := (vitals.BloodPressure{Systolic: sys, Diastolic: dia}).Validate(); err != nil {
			t.Fatal(err)
		}
		if err := (vitals.BloodPressure{Systolic: sys, Diastolic: dia, Mean: &mean}).Validate(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("OKFromKPa", func(t *testing.T) {
		// Ensure converted readings validate like any other.
		s := MustReading(t, "8480-6", 16, "kPa")
		d := MustReading(t, "8462-4", 10.7, "kPa")
		if err := (vitals.BloodPressure{Systolic: s, Diastolic: d}).Validate(); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name string
		bp   vitals.BloodPressure
		code vitals.RejectCode
	}{
		{"ErrDiastolicAbove", vitals.BloodPressure{Systolic: MustReading(t, "8480-6", 90, "mmHg"), Diastolic: MustReading(t, "8462-4", 110, "mmHg")}, vitals.RejectDiastolicNotBelowSystolic},
		{"ErrDiastolicEqual", vitals.BloodPressure{Systolic: sys, Diastolic: MustReading(t, "8462-4", 120, "mmHg")}, vitals.RejectDiastolicNotBelowSystolic},
		{"ErrMeanAbove", vitals.BloodPressure{Systolic: sys, Diastolic: dia, Mean: ptr(MustReading(t, "8478-0", 130, "mmHg"))}, vitals.RejectMeanOutsidePressures},
		{"ErrMeanBelow", vitals.BloodPressure{Systolic: sys, Diastolic: dia, Mean: ptr(MustReading(t, "8478-0", 70, "mmHg"))}, vitals.RejectMeanOutsidePressures},
		{"ErrSwapped", vitals.BloodPressure{Systolic: dia, Diastolic: sys}, vitals.RejectWrongMeasurement},
		{"ErrNotBP", vitals.BloodPressure{Systolic: sys, Diastolic: MustReading(t, "8867-4", 80, "/min")}, vitals.RejectWrongMeasurement},
		{"ErrMeanNotBP", vitals.BloodPressure{Systolic: sys, Diastolic: dia, Mean: ptr(MustReading(t, "8867-4", 90, "/min"))}, vitals.RejectWrongMeasurement},
		{"ErrZero", vitals.BloodPressure{}, vitals.RejectWrongMeasurement},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Ensure an impossible pair is refused with its code.
			err := tc.bp.Validate()
			if err == nil {
				t.Fatal("Validate()=nil, want rejection")
			}
			if got, want := checkRejection(t, err).Code, tc.code; got != want {
				t.Fatalf("Code=%v, want %v", got, want)
			}
		})
	}

	t.Run("ReasonNamesBothValues", func(t *testing.T) {
		err := vitals.BloodPressure{Systolic: MustReading(t, "8480-6", 90, "mmHg"), Diastolic: MustReading(t, "8462-4", 110, "mmHg")}.Validate()
		rej := checkRejection(t, err)
		for _, s := range []string{"110", "90", "cuff"} {
			if !strings.Contains(rej.Reason, s) {
				t.Errorf("Reason=%q, want it to contain %q", rej.Reason, s)
			}
		}
		if strings.Contains(rej.Error(), "110") {
			t.Errorf("Error()=%q contains a value", rej.Error())
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestNormalize_Concurrent(t *testing.T) {
	// Ensure the package is safe to call from every codec goroutine at once
	// (run with -race).
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tc := range normalizeCases {
				m, err := vitals.Lookup("LN", tc.loinc, nil)
				if err != nil {
					continue
				}
				_, _ = vitals.NormalizeText(m, tc.value, tc.unit)
				_ = vitals.Catalogue()
			}
		}()
	}
	wg.Wait()
}
