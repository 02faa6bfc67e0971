// Package vitals turns one coded measurement, as a device sent it, into a
// normalized reading: a LOINC code from a fixed catalogue, a value in that
// code's canonical UCUM unit, and the value and unit text exactly as sent. It
// also refuses values that are physiologically impossible (SpO2 of 140 %, a
// body temperature of 70 °C, a negative weight), with a machine code and a
// plain reason in English and Hindi that a health worker can act on.
//
// The codecs (devices/hl7, devices/astm, SenML and serial line readers) call it
// in two steps: Lookup maps the device's code to a Measurement (from LOINC,
// from IEEE 11073-10101 MDC, or through a per-device table of vendor codes),
// then Normalize or NormalizeText parses the unit, converts the value and
// checks it. BloodPressure.Validate checks a systolic/diastolic pair.
//
// # What this package must never do
//
//   - Never guess a code. A code that is not in the tables, a unit it does not
//     know and a local table that points at an unknown LOINC code are typed
//     errors (*CodeError, *UnitError), never a best match. Unicode look-alikes
//     (Cyrillic "С" for "C", the Kelvin sign for "K", full-width "％") are
//     unknown units, not their ASCII twins.
//   - Never silently change a value's meaning. A value is converted only
//     between units of one kind (°F to Cel, lb to kg, in to cm, kPa to mm[Hg],
//     g/L to g/dL); the Reading keeps the sent text and says whether it was
//     converted. A concentration sent in the other kind (glucose in mmol/L
//     for the mass code 2339-0) is never converted with a molar mass: the
//     reading moves to the analyte's sibling code of that kind (15074-8) and
//     keeps the number as sent, and RecodedFrom says so. Without a sibling
//     it is a unit_mismatch rejection. A value already in the canonical unit
//     is passed through bit for bit, never rounded.
//   - Never log. Errors are returned; Rejection.Error carries codes only, no
//     values, so that a caller who logs it logs no vitals (PHI).
//   - Never panic on input: any string (empty, huge, invalid UTF-8) gives a
//     result or an error.
//
// # Where the codes come from
//
// Each catalogue row and each MDC row says its source in a comment. The main
// ones: the ABDM FHIR IG package ndhm.in 6.5.0 (ValueSets ndhm-vital-signs,
// ndhm-body-measurement, ndhm-general-assessment and the WellnessRecord
// example), the project's research notes (reference/devices.md §1.3 and §6),
// the HL7 Denmark core IG (hl7dk/dk-core input/fsh/valueSets.fsh, an MDC value
// set with reference ids), the IEEE 11073 PHD nomenclature constants and
// Philips unit codes (Koshsky/Intellivue-api pkg/intellivue/base/unitCodes.go),
// and UCUM (ucum-essence: m[Hg] = 133.3220 kPa).
//
// Two places where the sources disagree and this package chose:
//
//   - SpO2. The IG binds 2708-6 "Oxygen saturation in Arterial blood" (its
//     vital-signs ValueSet and WellnessRecord example) and never uses
//     59408-5 "... by Pulse oximetry". MDC 150456 MDC_PULS_OXIM_SAT_O2
//     therefore maps to 2708-6. 59408-5 stays in the catalogue, for senders
//     that code it themselves.
//   - Body temperature. The IG's vital-signs ValueSet and examples use
//     61008-9 "Body surface temperature" and never 8310-5 "Body temperature";
//     the binding is extensible. A thermometer measures body temperature, so
//     the MDC temperature codes map to 8310-5 (reference §6, DK core), and
//     MDC_TEMP_SKIN maps to 61008-9. Whether to send 61008-9 upstream is for
//     syncq/fhir to decide.
//
// # Precision
//
// A value this package computes (by a unit conversion) is rounded to the
// measurement's Decimals: 0 for blood pressure, rates, SpO2, creatinine in
// µmol/L and the mg/dL labs other than creatinine; 1 for temperature,
// height, BMI, haemoglobin, HbA1c and mmol/L glucose or urea; 2 for
// creatinine in mg/dL and cholesterol in mmol/L; 3 for weight, because
// neonatal scales step in 5 g and 0.01 kg would drop that.
// Rounding is decimal (strconv), so 98.6 °F is exactly 37 Cel.
//
// All tables are read-only after package initialisation; every function is
// safe for concurrent use.
package vitals
