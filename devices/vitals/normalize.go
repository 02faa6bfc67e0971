package vitals

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Reading is one value normalized to its measurement's canonical unit, with
// what the device sent kept beside it.
type Reading struct {
	// What was measured, in what.
	LOINC   string  // catalogue code; differs from the Measurement asked for when RecodedFrom is set
	Display string  // LOINC long common name of LOINC
	Value   float64 // in Unit, inside the measurement's plausibility range
	Unit    string  // canonical UCUM code of LOINC

	// What the device sent.
	RawValue string // value text as sent (NormalizeText) or formatted from the float (Normalize)
	RawUnit  string // unit text as sent
	RawUCUM  string // UCUM code RawUnit was understood as, e.g. "[degF]" for "deg F"

	// What this package did.
	Converted   bool   // Value was computed from the sent number by a unit conversion and rounded
	RecodedFrom string // LOINC code asked for, when the unit's kind moved the reading to the sibling code
}

// RejectCode is the machine-readable reason a value was refused.
type RejectCode string

// Reject codes.
const (
	RejectUnknownMeasurement RejectCode = "unknown_measurement" // the Measurement is not from the catalogue
	RejectNotANumber         RejectCode = "not_a_number"        // NaN, ±Inf, empty, "HI", "<20", "12,5", ...
	RejectNoUnit             RejectCode = "no_unit"             // no unit sent; never assumed
	RejectUnknownUnit        RejectCode = "unknown_unit"        // unit text not known
	RejectUnitMismatch       RejectCode = "unit_mismatch"       // unit of a kind the measurement cannot have
	RejectTooLow             RejectCode = "too_low"             // below the plausibility range
	RejectTooHigh            RejectCode = "too_high"            // above the plausibility range

	// From BloodPressure.Validate.
	RejectDiastolicNotBelowSystolic RejectCode = "diastolic_not_below_systolic"
	RejectMeanOutsidePressures      RejectCode = "mean_outside_pressures"
	RejectWrongMeasurement          RejectCode = "wrong_measurement" // a BP field holds another measurement
)

// Key is the i18n key of the code, in the webui catalogues' dotted style
// ("error.vitals_too_high").
func (c RejectCode) Key() string { return "error.vitals_" + string(c) }

// Rejection is why a value was not accepted. Reason and ReasonHI are plain
// sentences for the health worker and may contain the value; Error does not,
// so logging a Rejection logs no vitals.
type Rejection struct {
	Code     RejectCode
	LOINC    string // measurement judged; "" when unknown
	Reason   string // English
	ReasonHI string // Hindi
	Err      error  // cause, such as a *UnitError; may be nil
}

// Error returns the code and the LOINC code, never the value.
func (r *Rejection) Error() string {
	s := "vitals: reject"
	if r.LOINC != "" {
		s += " " + r.LOINC
	}
	s += ": " + string(r.Code)
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (r *Rejection) Unwrap() error { return r.Err }

// NormalizeText normalizes a value sent as text, such as HL7 OBX-5 or ASTM
// R.4 after the codec has taken the first component. The text must be a
// plain decimal ("120", "-3", "36.6", ".5"): no exponent, thousands
// separator, decimal comma or comparator ("<20", "HI"), since any of those
// would be a guess. See Normalize for the rest.
func NormalizeText(m Measurement, value, unit string) (Reading, error) {
	mp, ok := byLOINC[m.LOINC]
	if !ok {
		return Reading{}, rejectUnknownMeasurement(m.LOINC)
	}
	v, ok := parseDecimal(value)
	if !ok {
		return Reading{}, rejectNotANumber(mp, value)
	}
	return normalize(mp, v, value, unit)
}

// Normalize converts value, sent in unit, to m's canonical unit and checks
// it against m's plausibility range. m must come from the catalogue (Lookup,
// ByLOINC or Catalogue); only its LOINC code is read.
//
// A unit of another kind than m's moves the reading to m's Sibling when the
// sibling has that kind (glucose in mmol/L asked as 2339-0 becomes 15074-8,
// value unchanged); otherwise it is refused. Every refusal is a *Rejection.
func Normalize(m Measurement, value float64, unit string) (Reading, error) {
	mp, ok := byLOINC[m.LOINC]
	if !ok {
		return Reading{}, rejectUnknownMeasurement(m.LOINC)
	}
	raw := strconv.FormatFloat(value, 'g', -1, 64)
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return Reading{}, rejectNotANumber(mp, raw)
	}
	return normalize(mp, value, raw, unit)
}

func normalize(m *Measurement, v float64, rawValue, rawUnit string) (Reading, error) {
	u, err := ParseUnit(rawUnit)
	if err != nil {
		return Reading{}, rejectUnit(m, rawUnit, err)
	}

	target, canon := m, unitByUCUM[m.Unit]
	recodedFrom := ""
	if u.dim != canon.dim {
		sib, ok := byLOINC[m.Sibling]
		if !ok || unitByUCUM[sib.Unit].dim != u.dim {
			return Reading{}, rejectMismatch(m, u)
		}
		target, canon, recodedFrom = sib, unitByUCUM[sib.Unit], m.LOINC
	}

	val, converted := v, false
	if u != canon {
		val, converted = round(canon.fromBase(u.toBase(v)), target.Decimals), true
	}
	if math.IsNaN(val) {
		return Reading{}, rejectNotANumber(target, rawValue)
	}
	if val < target.Min || val > target.Max {
		return Reading{}, rejectRange(target, val, v, u, converted)
	}
	return Reading{
		LOINC:       target.LOINC,
		Display:     target.Display,
		Value:       val,
		Unit:        target.Unit,
		RawValue:    rawValue,
		RawUnit:     rawUnit,
		RawUCUM:     u.UCUM,
		Converted:   converted,
		RecodedFrom: recodedFrom,
	}, nil
}

// parseDecimal accepts [+-]digits[.digits] or [+-].digits, with surrounding
// space, as HL7's NM type does.
func parseDecimal(s string) (float64, bool) {
	if len(s) > maxText {
		return 0, false
	}
	t := strings.TrimSpace(s)
	body := t
	if body != "" && (body[0] == '+' || body[0] == '-') {
		body = body[1:]
	}
	intPart, frac, _ := strings.Cut(body, ".")
	if intPart == "" && frac == "" {
		return 0, false // "", "+", "."
	}
	if intPart != "" && !allDigits(intPart) || frac != "" && !allDigits(frac) {
		return 0, false
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// round rounds v to d decimals in decimal, so that 37.05 stays as close to
// what a person would write as float64 allows.
func round(v float64, d int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'f', d, 64), 64)
	if err != nil {
		return v
	}
	return r
}

// num formats a number for a sentence.
func num(v float64) string {
	if a := math.Abs(v); !math.IsInf(v, 0) && a != 0 && (a >= 1e9 || a < 1e-4) {
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// quote shows device text inside a sentence: escaped, at most 32 bytes.
func quote(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strconv.Quote(s)
}

func rejectUnknownMeasurement(loinc string) *Rejection {
	return &Rejection{
		Code:     RejectUnknownMeasurement,
		Reason:   "This reading has no known measurement code; check the device's code mapping.",
		ReasonHI: "इस रीडिंग का कोड पहचाना नहीं गया; मशीन की कोड मैपिंग जाँचें।",
		Err:      &CodeError{System: "LOINC", Code: clip(loinc), Err: ErrUnknownCode},
	}
}

func rejectNotANumber(m *Measurement, raw string) *Rejection {
	return &Rejection{
		Code:     RejectNotANumber,
		LOINC:    m.LOINC,
		Reason:   fmt.Sprintf("The device sent %s for %s, which is not a number; %s.", quote(raw), m.Name, m.Hint),
		ReasonHI: fmt.Sprintf("%s: मशीन ने %s भेजा, जो संख्या नहीं है; %s।", m.NameHI, quote(raw), m.HintHI),
	}
}

func rejectUnit(m *Measurement, raw string, err error) *Rejection {
	if errors.Is(err, ErrNoUnit) {
		return &Rejection{
			Code:     RejectNoUnit,
			LOINC:    m.LOINC,
			Reason:   fmt.Sprintf("The device sent no unit for %s; set the unit in the device's settings.", m.Name),
			ReasonHI: fmt.Sprintf("%s: मशीन ने कोई इकाई नहीं भेजी; मशीन की सेटिंग में इकाई तय करें।", m.NameHI),
			Err:      err,
		}
	}
	return &Rejection{
		Code:     RejectUnknownUnit,
		LOINC:    m.LOINC,
		Reason:   fmt.Sprintf("The unit %s for %s is not one we know; check the device's unit setting.", quote(raw), m.Name),
		ReasonHI: fmt.Sprintf("%s: इकाई %s पहचानी नहीं गई; मशीन की इकाई की सेटिंग जाँचें।", m.NameHI, quote(raw)),
		Err:      err,
	}
}

func rejectMismatch(m *Measurement, u Unit) *Rejection {
	return &Rejection{
		Code:     RejectUnitMismatch,
		LOINC:    m.LOINC,
		Reason:   fmt.Sprintf("%s cannot be measured in %s; check the device's unit setting and its code mapping.", m.Name, u.Label),
		ReasonHI: fmt.Sprintf("%s: इकाई %s इसके लिए सही नहीं है; मशीन की इकाई की सेटिंग और कोड मैपिंग जाँचें।", m.NameHI, u.Label),
	}
}

// rejectRange words a value outside [m.Min, m.Max]. val is in m.Unit; sent
// and u are what the device sent, mentioned when a conversion happened.
func rejectRange(m *Measurement, val, sent float64, u Unit, converted bool) *Rejection {
	label := unitByUCUM[m.Unit].Label
	sentEN, sentHI := "", ""
	if converted {
		sentEN = fmt.Sprintf(" (sent as %s %s)", num(sent), u.Label)
		sentHI = fmt.Sprintf(" (मशीन ने %s %s भेजा)", num(sent), u.Label)
	}
	r := &Rejection{LOINC: m.LOINC}
	if val < m.Min || math.IsInf(val, -1) {
		r.Code = RejectTooLow
		r.Reason = fmt.Sprintf("%s of %s %s%s is impossible (it cannot be below %s %s); %s.",
			m.Name, num(val), label, sentEN, num(m.Min), label, m.Hint)
		r.ReasonHI = fmt.Sprintf("%s %s %s%s होना संभव नहीं है (न्यूनतम %s %s); %s।",
			m.NameHI, num(val), label, sentHI, num(m.Min), label, m.HintHI)
		return r
	}
	r.Code = RejectTooHigh
	r.Reason = fmt.Sprintf("%s of %s %s%s is impossible (it cannot be above %s %s); %s.",
		m.Name, num(val), label, sentEN, num(m.Max), label, m.Hint)
	r.ReasonHI = fmt.Sprintf("%s %s %s%s होना संभव नहीं है (अधिकतम %s %s); %s।",
		m.NameHI, num(val), label, sentHI, num(m.Max), label, m.HintHI)
	return r
}

// GlucoseMgPerDLPerMmolL is the glucose conversion factor: 1 mmol/L is
// 18.016 mg/dL (molar mass 180.16 g/mol).
const GlucoseMgPerDLPerMmolL = 18.016

// GlucoseMgdL converts glucose from mmol/L to mg/dL, rounded to a whole
// mg/dL, for showing a reading kept in mmol/L to someone who reads mg/dL.
// Normalize never applies it: see the package comment.
func GlucoseMgdL(mmolL float64) float64 { return round(mmolL*GlucoseMgPerDLPerMmolL, 0) }

// GlucoseMmolL converts glucose from mg/dL to mmol/L, rounded to 0.1 mmol/L.
func GlucoseMmolL(mgdL float64) float64 { return round(mgdL/GlucoseMgPerDLPerMmolL, 1) }
