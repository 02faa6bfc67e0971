package vitals

import (
	"maps"
	"slices"
	"strings"
)

// mdcMetric maps one IEEE 11073-10101 metric code (partition 2 SCADA,
// 131072 + term code) to a LOINC code in the catalogue.
type mdcMetric struct {
	code  string // decimal, as in OBX-3.1
	refID string // as in OBX-3.2
	loinc string
}

// mdcMetrics is every MDC metric code Lookup maps, sorted by code. Sources:
//
//	REF  reference/devices.md §1.3 and §6.
//	DK   hl7dk/dk-core input/fsh/valueSets.fsh, ValueSet
//	     dk-core-IEEEBasicObservation (code, reference id and meaning).
//	PHD  IEEE 11073 PHD term codes as constants in public code (e.g. a
//	     Nomenclature class: MDC_TEMP_BODY 19292, MDC_PULS_OXIM_SAT_O2 19384,
//	     MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD 29112, MDC_CONC_HBA1C 29148,
//	     MDC_MASS_BODY_ACTUAL 57664), plus 131072.
//	MR   Mindray monitor output seen in public integration code: a
//	     "northern patient monitor" fixture (150344 MDC_TEMP, 150301/150302/
//	     150303 MDC_PRESS_CUFF_*) and a Mindray/EDAN HL7 client
//	     (188496 MDC_TEMP_AXIL, 150301, 150302).
//
// Deliberately not mapped (Lookup returns ErrUnknownCode): 150020
// MDC_PRESS_BLD_NONINV, which is the BP container row; 160188
// MDC_CONC_GLU_CAPILLARY_PLASMA, for which no LOINC code was checked; and
// 150031, a device's typo for 150301 seen in the same fixture. The task
// brief's "150344 MDC_TEMP_BODY" is wrong: 150344 is MDC_TEMP, 150364 is
// MDC_TEMP_BODY (DK, PHD).
var mdcMetrics = []mdcMetric{
	{"147842", "MDC_ECG_HEART_RATE", "8867-4"},        // REF, DK
	{"149514", "MDC_PULS_RATE", "8867-4"},             // DK
	{"149522", "MDC_BLD_PULS_RATE_INV", "8867-4"},     // REF, DK
	{"149530", "MDC_PULS_OXIM_PULS_RATE", "8867-4"},   // REF, DK, PHD
	{"149546", "MDC_PULS_RATE_NON_INV", "8867-4"},     // REF, DK, PHD
	{"150021", "MDC_PRESS_BLD_NONINV_SYS", "8480-6"},  // REF, DK, PHD
	{"150022", "MDC_PRESS_BLD_NONINV_DIA", "8462-4"},  // REF, DK, PHD
	{"150023", "MDC_PRESS_BLD_NONINV_MEAN", "8478-0"}, // REF, DK, PHD
	{"150301", "MDC_PRESS_CUFF_SYS", "8480-6"},        // REF, MR
	{"150302", "MDC_PRESS_CUFF_DIA", "8462-4"},        // REF, MR
	{"150303", "MDC_PRESS_CUFF_MEAN", "8478-0"},       // MR
	// IG's SpO2 code is 2708-6 (see package comment), for both.
	{"150324", "MDC_SAT_O2_ART", "2708-6"},       // DK
	{"150344", "MDC_TEMP", "8310-5"},             // REF, MR (a monitor's temperature probe)
	{"150364", "MDC_TEMP_BODY", "8310-5"},        // DK, PHD
	{"150368", "MDC_TEMP_CORE", "8310-5"},        // DK
	{"150388", "MDC_TEMP_SKIN", "61008-9"},       // DK; body surface temperature
	{"150392", "MDC_TEMP_TYMP", "8310-5"},        // DK
	{"150456", "MDC_PULS_OXIM_SAT_O2", "2708-6"}, // REF, DK, PHD
	{"151562", "MDC_RESP_RATE", "9279-1"},        // REF, DK, PHD
	{"151578", "MDC_TTHOR_RESP_RATE", "9279-1"},  // REF, DK
	// Glucose meters report capillary whole blood; REF and the IG example
	// code it 2339-0. An mmol/L value moves to the sibling 15074-8.
	{"160184", "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", "2339-0"}, // REF, PHD
	{"160220", "MDC_CONC_HBA1C", "4548-4"},                    // PHD
	{"188420", "MDC_TEMP_RECT", "8310-5"},                     // DK
	{"188424", "MDC_TEMP_ORAL", "8310-5"},                     // REF, DK
	{"188428", "MDC_TEMP_EAR", "8310-5"},                      // DK
	{"188452", "MDC_TEMP_AXILLA", "8310-5"},                   // DK
	// REF lists axillary temperature as 188496 MDC_TEMP_AXIL; DK lists
	// 188452 MDC_TEMP_AXILLA. 188496 is mapped because Mindray monitors send
	// it (MR); it has no other source.
	{"188496", "MDC_TEMP_AXIL", "8310-5"},               // REF, MR
	{"188736", "MDC_MASS_BODY_ACTUAL", "29463-7"},       // REF, DK, PHD
	{"188740", "MDC_LEN_BODY_ACTUAL", "8302-2"},         // REF, DK, PHD
	{"188752", "MDC_RATIO_MASS_BODY_LEN_SQ", "39156-5"}, // REF, DK, PHD
}

// Indexes over mdcMetrics, built once by init.
var (
	mdcByCode  map[string]string // MDC code -> LOINC
	mdcByRefID map[string]string // upper-case reference id -> LOINC
)

func init() {
	mdcByCode = make(map[string]string, len(mdcMetrics))
	mdcByRefID = make(map[string]string, len(mdcMetrics))
	for _, m := range mdcMetrics {
		if _, dup := mdcByCode[m.code]; dup {
			tableErrs = append(tableErrs, "MDC code "+m.code+" listed twice")
		}
		if _, dup := mdcByRefID[m.refID]; dup {
			tableErrs = append(tableErrs, "MDC reference id "+m.refID+" listed twice")
		}
		if _, ok := byLOINC[m.loinc]; !ok {
			tableErrs = append(tableErrs, "MDC code "+m.code+" maps to "+m.loinc+", which is not in the catalogue")
		}
		mdcByCode[m.code] = m.loinc
		mdcByRefID[m.refID] = m.loinc
	}
}

// Code systems Lookup recognises, keyed by the ASCII-lower-cased system.
var (
	loincSystems = map[string]bool{
		"ln":                            true, // HL7 v2 table 0396
		"lnc":                           true,
		"loinc":                         true,
		"http://loinc.org":              true, // FHIR
		"urn:oid:2.16.840.1.113883.6.1": true,
	}
	mdcSystems = map[string]bool{
		"mdc":                         true, // HL7 v2 (IHE PCD-01)
		"urn:iso:std:iso:11073:10101": true, // FHIR
	}
)

// Lookup maps a code as a device sent it to a catalogue measurement.
//
// system decides how code is read, ignoring ASCII case and surrounding
// space:
//   - LOINC ("LN", "LNC", "LOINC", "http://loinc.org", its OID): code must
//     be a well-formed LOINC code (ErrMalformedCode otherwise) that is in
//     the catalogue (ErrUnknownCode otherwise).
//   - MDC ("MDC", "urn:iso:std:iso:11073:10101"): code is the decimal MDC
//     code ("150456") or its reference id ("MDC_PULS_OXIM_SAT_O2"). A
//     codec holding both (OBX-3.1 and OBX-3.2) should pass the number; if
//     the device got the number wrong, trying the reference id is the
//     codec's decision.
//   - anything else, including "" and vendor systems ("99MNDRY", "MDIL",
//     an ASTM test id with no system): code is looked up in local, the
//     device's own table from code exactly as the device sends it (after
//     trimming surrounding space, e.g. "^^^GLU") to a LOINC code. A code
//     missing from local is ErrUnknownCode; a LOINC code not in the
//     catalogue is ErrBadMapping. local is only read; check it once with
//     ValidateLocal.
//
// A system or code longer than 64 bytes is ErrMalformedCode. Every failure
// is a *CodeError. Lookup never guesses.
func Lookup(system, code string, local map[string]string) (Measurement, error) {
	if len(system) > maxText || len(code) > maxText {
		return Measurement{}, &CodeError{System: clip(system), Code: clip(code), Err: ErrMalformedCode}
	}
	sys := strings.ToLower(strings.TrimSpace(system))
	c := strings.TrimSpace(code)
	fail := func(err error) (Measurement, error) {
		return Measurement{}, &CodeError{System: system, Code: code, Err: err}
	}
	switch {
	case loincSystems[sys]:
		if !ValidLOINC(c) {
			return fail(ErrMalformedCode)
		}
		m, ok := ByLOINC(c)
		if !ok {
			return fail(ErrUnknownCode)
		}
		return m, nil

	case mdcSystems[sys]:
		var loinc string
		var ok bool
		switch {
		case allDigits(c):
			loinc, ok = mdcByCode[c]
		case isRefID(c):
			loinc, ok = mdcByRefID[strings.ToUpper(c)]
		default:
			return fail(ErrMalformedCode)
		}
		if !ok {
			return fail(ErrUnknownCode)
		}
		m, _ := ByLOINC(loinc) // every MDC target is checked by init and tests
		return m, nil

	default:
		target, ok := local[c]
		if !ok {
			return fail(ErrUnknownCode)
		}
		m, ok := ByLOINC(target)
		if !ok {
			return Measurement{}, &CodeError{System: system, Code: code, Target: clip(target), Err: ErrBadMapping}
		}
		return m, nil
	}
}

// isRefID reports whether s looks like an MDC reference id: "MDC_" then
// letters, digits and underscores.
func isRefID(s string) bool {
	if len(s) < 5 || !strings.EqualFold(s[:4], "MDC_") {
		return false
	}
	for i := 4; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ValidateLocal checks a per-device table before it is used, for example
// when a device profile is loaded. Every key must be what Lookup can match
// (not empty, no surrounding space, at most 64 bytes; else ErrMalformedCode)
// and every target a LOINC code in the catalogue (else ErrBadMapping). It
// returns a *CodeError for the first bad entry in key order, or nil.
func ValidateLocal(local map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(local)) {
		if k == "" || len(k) > maxText || strings.TrimSpace(k) != k {
			return &CodeError{Code: clip(k), Err: ErrMalformedCode}
		}
		if _, ok := byLOINC[local[k]]; !ok {
			return &CodeError{Code: k, Target: clip(local[k]), Err: ErrBadMapping}
		}
	}
	return nil
}
