package vitals

import "fmt"

// BloodPressure is one cuff measurement: systolic and diastolic, and the
// mean when the device reports one. Each Reading comes from Normalize, so
// each is already inside its own range; Validate checks them together.
type BloodPressure struct {
	Systolic  Reading  // 8480-6
	Diastolic Reading  // 8462-4
	Mean      *Reading // 8478-0, or nil
}

// Validate reports a *Rejection when the pair is impossible: a field holds
// another measurement or unit (RejectWrongMeasurement), the diastolic is not
// below the systolic (RejectDiastolicNotBelowSystolic: a pulse pressure of
// zero or less means no pulse), or the mean lies outside them
// (RejectMeanOutsidePressures). It returns nil for a possible pair.
func (bp BloodPressure) Validate() error {
	sys, dia := byLOINC["8480-6"], byLOINC["8462-4"]
	if !isReadingOf(bp.Systolic, sys) || !isReadingOf(bp.Diastolic, dia) ||
		bp.Mean != nil && !isReadingOf(*bp.Mean, byLOINC["8478-0"]) {
		return &Rejection{
			Code:     RejectWrongMeasurement,
			LOINC:    "85354-9",
			Reason:   "This blood pressure does not hold systolic, diastolic and mean readings in mmHg; check the device's code mapping.",
			ReasonHI: "इस बीपी में सिस्टोलिक, डायस्टोलिक और औसत रीडिंग mmHg में नहीं हैं; मशीन की कोड मैपिंग जाँचें।",
		}
	}
	s, d := bp.Systolic.Value, bp.Diastolic.Value
	if d >= s {
		return &Rejection{
			Code:  RejectDiastolicNotBelowSystolic,
			LOINC: dia.LOINC,
			Reason: fmt.Sprintf("Diastolic BP %s mmHg is not below systolic BP %s mmHg, which is impossible; %s.",
				num(d), num(s), hintCuff),
			ReasonHI: fmt.Sprintf("डायस्टोलिक बीपी %s mmHg, सिस्टोलिक बीपी %s mmHg से कम नहीं है, जो संभव नहीं है; %s।",
				num(d), num(s), hintCuffHI),
		}
	}
	if bp.Mean != nil {
		if m := bp.Mean.Value; m < d || m > s {
			return &Rejection{
				Code:  RejectMeanOutsidePressures,
				LOINC: "8478-0",
				Reason: fmt.Sprintf("Mean BP %s mmHg is outside diastolic %s and systolic %s mmHg, which is impossible; %s.",
					num(m), num(d), num(s), hintCuff),
				ReasonHI: fmt.Sprintf("औसत बीपी %s mmHg, डायस्टोलिक %s और सिस्टोलिक %s mmHg के बीच नहीं है, जो संभव नहीं है; %s।",
					num(m), num(d), num(s), hintCuffHI),
			}
		}
	}
	return nil
}

// isReadingOf reports whether r is a reading of m in m's unit.
func isReadingOf(r Reading, m *Measurement) bool {
	return r.LOINC == m.LOINC && r.Unit == m.Unit
}
