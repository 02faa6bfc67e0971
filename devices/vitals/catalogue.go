package vitals

import (
	"slices"
	"strings"
)

// Measurement is one entry of the catalogue: a LOINC code, its canonical
// UCUM unit and the range outside which a value is physiologically
// impossible. The range is not a normal range: a value inside it may be
// alarming (SpO2 70 %, 34 °C, a 0.6 kg newborn) and is still accepted; a
// value outside it cannot come from a living patient and means a device,
// probe, unit or entry fault.
type Measurement struct {
	// Code and names.
	LOINC   string // e.g. "8480-6"
	Display string // LOINC long common name, for FHIR coding.display
	Name    string // short English name for the UI ("Systolic BP")
	NameHI  string // Hindi name for the UI

	// Unit and precision.
	Unit     string // canonical UCUM code; readings are stored in it
	Decimals int    // decimals kept when this package converts a value

	// Plausibility, inclusive, in Unit.
	Min, Max float64
	Why      string // why a value outside [Min, Max] is impossible

	// Sibling is the LOINC code of the same analyte in the other kind of
	// concentration (mass vs substance), or "". See the package comment.
	Sibling string

	// What a health worker should do when a value is rejected.
	Hint, HintHI string
}

// Hints, shared by rows that share a device.
const (
	hintCuff      = "check the cuff and measure again"
	hintCuffHI    = "कफ़ जाँचें और दोबारा नापें"
	hintPulse     = "check the probe or leads and count the pulse by hand"
	hintPulseHI   = "प्रोब या लीड जाँचें और नाड़ी हाथ से गिनें"
	hintProbe     = "check the probe"
	hintProbeHI   = "प्रोब जाँचें"
	hintThermo    = "check the thermometer and measure again"
	hintThermoHI  = "थर्मामीटर जाँचें और दोबारा नापें"
	hintScale     = "set the scale to zero and weigh again"
	hintScaleHI   = "तराज़ू को शून्य पर करके दोबारा तौलें"
	hintHeight    = "measure the height again"
	hintHeightHI  = "लंबाई दोबारा नापें"
	hintBMI       = "check the weight and height"
	hintBMIHI     = "वज़न और लंबाई जाँचें"
	hintBreath    = "count the breaths for one full minute"
	hintBreathHI  = "पूरे एक मिनट तक साँसें गिनें"
	hintMeter     = "check the strip and the meter's unit, then test again"
	hintMeterHI   = "स्ट्रिप और मीटर की इकाई जाँचें, फिर दोबारा जाँच करें"
	hintLab       = "check the sample and the analyser's unit, then repeat the test"
	hintLabHI     = "नमूना और मशीन की इकाई जाँचें, फिर जाँच दोहराएँ"
	whyGlucose    = "the lowest blood glucose recorded in a living patient is about 10 mg/dL and the highest about 2656 mg/dL (147.6 mmol/L); outside 5 to 3000 mg/dL the strip or the unit is wrong"
	whyGlucoseMol = "5 to 3000 mg/dL in mmol/L (factor 18.016): the lowest blood glucose recorded in a living patient is about 0.6 mmol/L and the highest about 147.6 mmol/L"
)

// catalogue is every measurement this package knows, sorted by LOINC number.
// The comment on each row says where the code and unit were checked:
//
//	IG   ABDM FHIR IG package ndhm.in 6.5.0 (/work/shared/fhir): ValueSet
//	     ndhm-vital-signs (61008-9, 9279-1, 8867-4, 2708-6, 85354-9),
//	     ndhm-body-measurement (39156-5, 29463-7, 8302-2),
//	     ndhm-general-assessment (2339-0, 41604-0, 14743-9, 14760-3), the
//	     WellnessRecord example (units) and the lab example (2093-3 mg/dL).
//	REF  reference/devices.md §6 (and reference/abdm.md §5.3).
//	DK   hl7dk/dk-core input/fsh/valueSets.fsh (LOINC basic observations).
//	LAB  LOINC names as used in public mappings: HL7 vulcan-rwd ValueSet
//	     ExampleHbA1cTestCodes (4548-4); ARUP test 0020025 (2160-0); mass to
//	     substance sibling tables in public LIS code (2160-0/14682-9,
//	     3091-6/22664-7, 2345-7/14749-6, 2093-3/14647-2, 2339-0/15074-8,
//	     1558-6/14771-0); an FSH glucose ValueSet (14770-2). These rows are
//	     not in the IG or REF; their codes were checked for a valid mod-10
//	     check digit and against at least two independent public uses.
var catalogue = []Measurement{
	// LAB. Haemoglobin in g/dL, as Indian labs report it ("gm%").
	{LOINC: "718-7", Display: "Hemoglobin [Mass/volume] in Blood", Name: "Haemoglobin", NameHI: "हीमोग्लोबिन",
		Unit: "g/dL", Decimals: 1, Min: 0.5, Max: 27,
		Why:  "survival has been reported at 0.7 g/dL and polycythaemia rarely exceeds 25 g/dL",
		Hint: hintLab, HintHI: hintLabHI},
	// LAB. Fasting plasma glucose.
	{LOINC: "1558-6", Display: "Fasting glucose [Mass/volume] in Serum or Plasma", Name: "Fasting plasma glucose", NameHI: "ख़ाली पेट प्लाज़्मा ग्लूकोज़",
		Unit: "mg/dL", Decimals: 0, Min: 5, Max: 3000, Why: whyGlucose, Sibling: "14771-0",
		Hint: hintLab, HintHI: hintLabHI},
	// IG (lab example Observation-lab-example-01: 2093-3, mg/dL).
	{LOINC: "2093-3", Display: "Cholesterol [Mass/volume] in Serum or Plasma", Name: "Total cholesterol", NameHI: "कुल कोलेस्ट्रॉल",
		Unit: "mg/dL", Decimals: 0, Min: 15, Max: 3000,
		Why:     "abetalipoproteinaemia gives about 20 mg/dL and cholestasis with lipoprotein X a few thousand; outside 15 to 3000 mg/dL the sample or unit is wrong",
		Sibling: "14647-2", Hint: hintLab, HintHI: hintLabHI},
	// LAB (ARUP 0020025).
	{LOINC: "2160-0", Display: "Creatinine [Mass/volume] in Serum or Plasma", Name: "Creatinine", NameHI: "क्रिएटिनिन",
		Unit: "mg/dL", Decimals: 2, Min: 0.05, Max: 80,
		Why:     "the highest serum creatinine reported is about 74 mg/dL; no living person has none",
		Sibling: "14682-9", Hint: hintLab, HintHI: hintLabHI},
	// IG (ndhm-general-assessment; WellnessRecord example 142 mg/dL), REF.
	{LOINC: "2339-0", Display: "Glucose [Mass/volume] in Blood", Name: "Blood sugar", NameHI: "ख़ून में शुगर (ग्लूकोज़)",
		Unit: "mg/dL", Decimals: 0, Min: 5, Max: 3000, Why: whyGlucose, Sibling: "15074-8",
		Hint: hintMeter, HintHI: hintMeterHI},
	// LAB. Random plasma glucose from an analyser.
	{LOINC: "2345-7", Display: "Glucose [Mass/volume] in Serum or Plasma", Name: "Plasma glucose", NameHI: "प्लाज़्मा ग्लूकोज़",
		Unit: "mg/dL", Decimals: 0, Min: 5, Max: 3000, Why: whyGlucose, Sibling: "14749-6",
		Hint: hintLab, HintHI: hintLabHI},
	// IG (ndhm-vital-signs, WellnessRecord example, "%"), REF, DK. The IG's SpO2 code.
	{LOINC: "2708-6", Display: "Oxygen saturation in Arterial blood", Name: "SpO2", NameHI: "SpO2 (ख़ून में ऑक्सीजन)",
		Unit: "%", Decimals: 0, Min: 20, Max: 100,
		Why:  "saturation is the share of haemoglobin carrying oxygen and cannot pass 100 %; below 20 % no living patient gives a reading (0 and -100 are devices' 'no reading' values)",
		Hint: hintProbe, HintHI: hintProbeHI},
	// LAB. Urea (not urea nitrogen), as Indian labs report "blood urea".
	{LOINC: "3091-6", Display: "Urea [Mass/volume] in Serum or Plasma", Name: "Blood urea", NameHI: "ब्लड यूरिया",
		Unit: "mg/dL", Decimals: 0, Min: 1, Max: 1000,
		Why:     "uraemia has been reported to about 800 mg/dL urea (BUN near 400); above 1000 mg/dL or at none the sample or unit is wrong",
		Sibling: "22664-7", Hint: hintLab, HintHI: hintLabHI},
	// LAB. Urea nitrogen, for analysers that report BUN. No sibling is known to us.
	{LOINC: "3094-0", Display: "Urea nitrogen [Mass/volume] in Serum or Plasma", Name: "Blood urea nitrogen (BUN)", NameHI: "ब्लड यूरिया नाइट्रोजन (BUN)",
		Unit: "mg/dL", Decimals: 0, Min: 0.5, Max: 470,
		Why:  "BUN is urea ÷ 2.14: the urea limits 1 to 1000 mg/dL give 0.5 to 470 mg/dL",
		Hint: hintLab, HintHI: hintLabHI},
	// LAB (HL7 vulcan-rwd ExampleHbA1cTestCodes), in NGSP %. IFCC mmol/mol is a unit mismatch.
	{LOINC: "4548-4", Display: "Hemoglobin A1c/Hemoglobin.total in Blood", Name: "HbA1c", NameHI: "HbA1c (3 महीने की औसत शुगर)",
		Unit: "%", Decimals: 1, Min: 2, Max: 25,
		Why:  "HbA1c below 2 % or above 25 % has not been seen even with haemolysis or extreme hyperglycaemia",
		Hint: hintLab, HintHI: hintLabHI},
	// IG (ndhm-body-measurement; example uses [in_i] and [in_us]), REF, DK.
	{LOINC: "8302-2", Display: "Body height", Name: "Height", NameHI: "लंबाई (कद)",
		Unit: "cm", Decimals: 1, Min: 20, Max: 275,
		Why:  "the smallest surviving preterm babies measure about 22 cm and the tallest person recorded was 272 cm",
		Hint: hintHeight, HintHI: hintHeightHI},
	// REF, DK. Not in the IG (which uses 61008-9); the right code for a thermometer reading.
	{LOINC: "8310-5", Display: "Body temperature", Name: "Temperature", NameHI: "शरीर का तापमान",
		Unit: "Cel", Decimals: 1, Min: 10, Max: 47,
		Why:  "the lowest body temperature survived is about 11.8 °C and the highest about 46.5 °C",
		Hint: hintThermo, HintHI: hintThermoHI},
	// IG (BP panel 85354-9 component, mm[Hg]), REF, DK.
	{LOINC: "8462-4", Display: "Diastolic blood pressure", Name: "Diastolic BP", NameHI: "डायस्टोलिक बीपी (नीचे का)",
		Unit: "mm[Hg]", Decimals: 0, Min: 10, Max: 360,
		Why:  "the highest pressure measured in a person is about 370/360 mmHg; below 10 mmHg no cuff can find a diastolic",
		Hint: hintCuff, HintHI: hintCuffHI},
	// DK (8478-0 "Mean blood pressure"), REF ([unverified] there).
	{LOINC: "8478-0", Display: "Mean blood pressure", Name: "Mean BP", NameHI: "औसत बीपी",
		Unit: "mm[Hg]", Decimals: 0, Min: 15, Max: 370,
		Why:  "the mean lies between diastolic (at least 10 mmHg) and systolic (at most about 370 mmHg)",
		Hint: hintCuff, HintHI: hintCuffHI},
	// IG (BP panel 85354-9 component, mm[Hg]), REF, DK.
	{LOINC: "8480-6", Display: "Systolic blood pressure", Name: "Systolic BP", NameHI: "सिस्टोलिक बीपी (ऊपर का)",
		Unit: "mm[Hg]", Decimals: 0, Min: 20, Max: 380,
		Why:  "the highest pressure measured in a person is about 370/360 mmHg; below 20 mmHg no cuff can find a pulse",
		Hint: hintCuff, HintHI: hintCuffHI},
	// IG (ndhm-vital-signs, example "/min"), REF, DK.
	{LOINC: "8867-4", Display: "Heart rate", Name: "Pulse", NameHI: "नाड़ी (धड़कन)",
		Unit: "/min", Decimals: 0, Min: 10, Max: 350,
		Why:  "complete heart block can slow the heart to about 20/min and infant SVT speeds it to about 300/min; 0 and negative values are devices' 'no reading' values",
		Hint: hintPulse, HintHI: hintPulseHI},
	// IG (ndhm-vital-signs, example "/min"), REF, DK.
	{LOINC: "9279-1", Display: "Respiratory rate", Name: "Breathing rate", NameHI: "साँस की दर",
		Unit: "/min", Decimals: 0, Min: 2, Max: 150,
		Why:  "a breathing patient takes at least a few breaths a minute and even a newborn in distress stays under about 120/min; 0 is a device's 'no breath detected'",
		Hint: hintBreath, HintHI: hintBreathHI},
	// LAB.
	{LOINC: "14647-2", Display: "Cholesterol [Moles/volume] in Serum or Plasma", Name: "Total cholesterol", NameHI: "कुल कोलेस्ट्रॉल",
		Unit: "mmol/L", Decimals: 2, Min: 0.39, Max: 77.6,
		Why:     "15 to 3000 mg/dL in mmol/L (1 mmol/L = 38.67 mg/dL)",
		Sibling: "2093-3", Hint: hintLab, HintHI: hintLabHI},
	// LAB.
	{LOINC: "14682-9", Display: "Creatinine [Moles/volume] in Serum or Plasma", Name: "Creatinine", NameHI: "क्रिएटिनिन",
		Unit: "umol/L", Decimals: 0, Min: 4, Max: 7100,
		Why:     "0.05 to 80 mg/dL in µmol/L (1 mg/dL = 88.4 µmol/L)",
		Sibling: "2160-0", Hint: hintLab, HintHI: hintLabHI},
	// IG (ndhm-general-assessment), REF.
	{LOINC: "14743-9", Display: "Glucose [Moles/volume] in Capillary blood by Glucometer", Name: "Blood sugar (glucometer)", NameHI: "शुगर (ग्लूकोमीटर)",
		Unit: "mmol/L", Decimals: 1, Min: 0.28, Max: 166.5, Why: whyGlucoseMol, Sibling: "41653-7",
		Hint: hintMeter, HintHI: hintMeterHI},
	// LAB.
	{LOINC: "14749-6", Display: "Glucose [Moles/volume] in Serum or Plasma", Name: "Plasma glucose", NameHI: "प्लाज़्मा ग्लूकोज़",
		Unit: "mmol/L", Decimals: 1, Min: 0.28, Max: 166.5, Why: whyGlucoseMol, Sibling: "2345-7",
		Hint: hintLab, HintHI: hintLabHI},
	// IG (ndhm-general-assessment). No mass sibling is known to us: mg/dL is a unit mismatch.
	{LOINC: "14760-3", Display: "Glucose [Moles/volume] in Capillary blood --2 hours post meal", Name: "Blood sugar 2 h after a meal", NameHI: "खाने के 2 घंटे बाद शुगर",
		Unit: "mmol/L", Decimals: 1, Min: 0.28, Max: 166.5, Why: whyGlucoseMol,
		Hint: hintMeter, HintHI: hintMeterHI},
	// LAB (FSH glucose ValueSet "Fasting glucose [Moles/volume] in Capillary blood by Glucometer").
	{LOINC: "14770-2", Display: "Fasting glucose [Moles/volume] in Capillary blood by Glucometer", Name: "Fasting blood sugar (glucometer)", NameHI: "ख़ाली पेट शुगर (ग्लूकोमीटर)",
		Unit: "mmol/L", Decimals: 1, Min: 0.28, Max: 166.5, Why: whyGlucoseMol, Sibling: "41604-0",
		Hint: hintMeter, HintHI: hintMeterHI},
	// LAB.
	{LOINC: "14771-0", Display: "Fasting glucose [Moles/volume] in Serum or Plasma", Name: "Fasting plasma glucose", NameHI: "ख़ाली पेट प्लाज़्मा ग्लूकोज़",
		Unit: "mmol/L", Decimals: 1, Min: 0.28, Max: 166.5, Why: whyGlucoseMol, Sibling: "1558-6",
		Hint: hintLab, HintHI: hintLabHI},
	// REF (15074-8 mmol/L, FHIR DSTU2 example f001).
	{LOINC: "15074-8", Display: "Glucose [Moles/volume] in Blood", Name: "Blood sugar", NameHI: "ख़ून में शुगर (ग्लूकोज़)",
		Unit: "mmol/L", Decimals: 1, Min: 0.28, Max: 166.5, Why: whyGlucoseMol, Sibling: "2339-0",
		Hint: hintMeter, HintHI: hintMeterHI},
	// LAB.
	{LOINC: "22664-7", Display: "Urea [Moles/volume] in Serum or Plasma", Name: "Blood urea", NameHI: "ब्लड यूरिया",
		Unit: "mmol/L", Decimals: 1, Min: 0.16, Max: 167,
		Why:     "1 to 1000 mg/dL in mmol/L (urea 60.06 g/mol: 1 mg/dL = 0.1665 mmol/L)",
		Sibling: "3091-6", Hint: hintLab, HintHI: hintLabHI},
	// IG (ndhm-body-measurement; example in [lb_av], IG says use kg), REF, DK.
	{LOINC: "29463-7", Display: "Body weight", Name: "Weight", NameHI: "वज़न",
		Unit: "kg", Decimals: 3, Min: 0.15, Max: 650,
		Why:  "the smallest baby known to survive weighed 212 g and the heaviest person about 635 kg; negative or zero weight is a scale fault",
		Hint: hintScale, HintHI: hintScaleHI},
	// IG (ndhm-body-measurement, "kg/m2"), REF, DK.
	{LOINC: "39156-5", Display: "Body mass index (BMI) [Ratio]", Name: "BMI", NameHI: "बीएमआई (BMI)",
		Unit: "kg/m2", Decimals: 1, Min: 4, Max: 200,
		Why:  "even the smallest surviving preterm baby has a BMI above about 4, and the heaviest person recorded about 185",
		Hint: hintBMI, HintHI: hintBMIHI},
	// IG (ndhm-general-assessment).
	{LOINC: "41604-0", Display: "Fasting glucose [Mass/volume] in Capillary blood by Glucometer", Name: "Fasting blood sugar (glucometer)", NameHI: "ख़ाली पेट शुगर (ग्लूकोमीटर)",
		Unit: "mg/dL", Decimals: 0, Min: 5, Max: 3000, Why: whyGlucose, Sibling: "14770-2",
		Hint: hintMeter, HintHI: hintMeterHI},
	// REF ([unverified] there; seen in several public mappings as "Glucose
	// [Mass/volume] in Capillary blood by Glucometer").
	{LOINC: "41653-7", Display: "Glucose [Mass/volume] in Capillary blood by Glucometer", Name: "Blood sugar (glucometer)", NameHI: "शुगर (ग्लूकोमीटर)",
		Unit: "mg/dL", Decimals: 0, Min: 5, Max: 3000, Why: whyGlucose, Sibling: "14743-9",
		Hint: hintMeter, HintHI: hintMeterHI},
	// REF (US Core vital-signs ValueSet), DK. Not in the IG, which uses 2708-6.
	{LOINC: "59408-5", Display: "Oxygen saturation in Arterial blood by Pulse oximetry", Name: "SpO2", NameHI: "SpO2 (ख़ून में ऑक्सीजन)",
		Unit: "%", Decimals: 0, Min: 20, Max: 100,
		Why:  "saturation is the share of haemoglobin carrying oxygen and cannot pass 100 %; below 20 % no living patient gives a reading (0 and -100 are devices' 'no reading' values)",
		Hint: hintProbe, HintHI: hintProbeHI},
	// IG (ndhm-vital-signs and WellnessRecord example: the IG's temperature code, "Cel").
	{LOINC: "61008-9", Display: "Body surface temperature", Name: "Skin temperature", NameHI: "त्वचा का तापमान",
		Unit: "Cel", Decimals: 1, Min: 10, Max: 47,
		Why:  "living skin stays between about 10 °C (severe cold exposure) and the highest body temperature survived, about 46.5 °C",
		Hint: hintThermo, HintHI: hintThermoHI},
}

// byLOINC indexes catalogue by code, built once by init.
var byLOINC map[string]*Measurement

func init() {
	byLOINC = make(map[string]*Measurement, len(catalogue))
	for i := range catalogue {
		m := &catalogue[i]
		if _, dup := byLOINC[m.LOINC]; dup {
			tableErrs = append(tableErrs, "LOINC "+m.LOINC+" listed twice")
		}
		byLOINC[m.LOINC] = m
	}
}

// Catalogue returns a copy of every measurement this package knows, sorted
// by LOINC number.
func Catalogue() []Measurement { return slices.Clone(catalogue) }

// ByLOINC returns the measurement with the given LOINC code, exactly as
// written (no spaces). It reports false for a code not in the catalogue.
func ByLOINC(code string) (Measurement, bool) {
	m, ok := byLOINC[code]
	if !ok {
		return Measurement{}, false
	}
	return *m, true
}

// ValidLOINC reports whether code is a well-formed LOINC code: one to seven
// digits, a hyphen and the mod-10 check digit of the LOINC Users' Guide
// (section 12 C). It says nothing about whether the code exists.
func ValidLOINC(code string) bool {
	body, check, ok := strings.Cut(code, "-")
	if !ok || len(body) < 1 || len(body) > 7 || len(check) != 1 || !allDigits(body) || !allDigits(check) {
		return false
	}
	return loincCheckDigit(body) == check[0]
}

// loincCheckDigit computes the LOINC mod-10 check digit of an all-digit body.
// The Users' Guide doubles the number formed by the odd positions (from the
// right) and sums the digits of that and of the even positions; summing
// digit-wise with a doubled digit's digits summed is the same thing (Luhn).
func loincCheckDigit(body string) byte {
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[len(body)-1-i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
