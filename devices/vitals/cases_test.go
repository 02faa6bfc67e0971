package vitals_test

import (
	"strings"

	"github.com/healthpost/healthpost/devices/vitals"
)

// normalizeCase is one NormalizeText input and what must come out. The same
// table drives TestNormalizeText and seeds FuzzNormalize.
type normalizeCase struct {
	name  string
	loinc string // measurement asked for
	value string // as the device sent it
	unit  string // as the device sent it

	// When code is "", the reading:
	wantLOINC string // "" means loinc
	wantValue float64
	converted bool

	// Otherwise the rejection code.
	code vitals.RejectCode
}

var normalizeCases = []normalizeCase{
	// SpO2.
	{name: "SpO2/97%", loinc: "2708-6", value: "97", unit: "%", wantValue: 97},
	{name: "SpO2/MDCCode", loinc: "2708-6", value: "98", unit: "262688", wantValue: 98},
	{name: "SpO2/MDCRefID", loinc: "2708-6", value: "98", unit: "MDC_DIM_PERCENT", wantValue: 98},
	{name: "SpO2/PercentSpO2", loinc: "2708-6", value: "95", unit: "%SpO2", wantValue: 95},
	{name: "SpO2/Borderline70", loinc: "2708-6", value: "70", unit: "%", wantValue: 70},
	{name: "SpO2/SenMLRatio", loinc: "2708-6", value: "0.97", unit: "/", wantValue: 97, converted: true},
	{name: "SpO2/PulseOxCode", loinc: "59408-5", value: "99", unit: "%", wantValue: 99},
	{name: "SpO2/140Impossible", loinc: "2708-6", value: "140", unit: "%", code: vitals.RejectTooHigh},
	{name: "SpO2/101", loinc: "2708-6", value: "101", unit: "%", code: vitals.RejectTooHigh},
	{name: "SpO2/MonitorSentinelMinus100", loinc: "2708-6", value: "-100", unit: "262688", code: vitals.RejectTooLow},
	{name: "SpO2/Zero", loinc: "2708-6", value: "0", unit: "%", code: vitals.RejectTooLow},
	{name: "SpO2/InMmHg", loinc: "2708-6", value: "97", unit: "mmHg", code: vitals.RejectUnitMismatch},
	{name: "SpO2/FullWidthPercent", loinc: "2708-6", value: "97", unit: "％", code: vitals.RejectUnknownUnit},

	// Body temperature.
	{name: "Temp/Cel", loinc: "8310-5", value: "36.6", unit: "Cel", wantValue: 36.6},
	{name: "Temp/DegreeSign", loinc: "8310-5", value: "37.2", unit: "°C", wantValue: 37.2},
	{name: "Temp/OrdinalSign", loinc: "8310-5", value: "37.2", unit: "ºC", wantValue: 37.2},
	{name: "Temp/CelsiusSign", loinc: "8310-5", value: "37.2", unit: "℃", wantValue: 37.2},
	{name: "Temp/BareC", loinc: "8310-5", value: "37.2", unit: "C", wantValue: 37.2},
	{name: "Temp/DegSpaceC", loinc: "8310-5", value: "37.2", unit: " deg C ", wantValue: 37.2},
	{name: "Temp/MDCDegC", loinc: "8310-5", value: "38.5", unit: "268192", wantValue: 38.5},
	{name: "Temp/Borderline34", loinc: "8310-5", value: "34", unit: "Cel", wantValue: 34},
	{name: "Temp/98.6F", loinc: "8310-5", value: "98.6", unit: "F", wantValue: 37, converted: true},
	{name: "Temp/100.4DegF", loinc: "8310-5", value: "100.4", unit: "deg F", wantValue: 38, converted: true},
	{name: "Temp/102DegreeSignF", loinc: "8310-5", value: "102", unit: "°F", wantValue: 38.9, converted: true},
	{name: "Temp/97.7MDCFahr", loinc: "8310-5", value: "97.7", unit: "MDC_DIM_FAHR", wantValue: 36.5, converted: true},
	{name: "Temp/96.8UCUM", loinc: "8310-5", value: "96.8", unit: "[degF]", wantValue: 36, converted: true},
	{name: "Temp/70Impossible", loinc: "8310-5", value: "70", unit: "Cel", code: vitals.RejectTooHigh},
	{name: "Temp/MonitorTimesTen", loinc: "8310-5", value: "384.5", unit: "268192", code: vitals.RejectTooHigh},
	{name: "Temp/158FIs70C", loinc: "8310-5", value: "158", unit: "°F", code: vitals.RejectTooHigh},
	{name: "Temp/5C", loinc: "8310-5", value: "5", unit: "Cel", code: vitals.RejectTooLow},
	{name: "Temp/CyrillicEs", loinc: "8310-5", value: "36.6", unit: "°С", code: vitals.RejectUnknownUnit},
	{name: "Temp/InKg", loinc: "8310-5", value: "36.6", unit: "kg", code: vitals.RejectUnitMismatch},
	{name: "Temp/Skin", loinc: "61008-9", value: "33.5", unit: "Cel", wantValue: 33.5},

	// Weight.
	{name: "Weight/Kg", loinc: "29463-7", value: "70.5", unit: "kg", wantValue: 70.5},
	{name: "Weight/KgUpper", loinc: "29463-7", value: "70.5", unit: "KG", wantValue: 70.5},
	{name: "Weight/MDC", loinc: "29463-7", value: "64.2", unit: "263875", wantValue: 64.2},
	{name: "Weight/Newborn0.6kg", loinc: "29463-7", value: "0.6", unit: "kg", wantValue: 0.6},
	{name: "Weight/Newborn600g", loinc: "29463-7", value: "600", unit: "g", wantValue: 0.6, converted: true},
	{name: "Weight/3255g", loinc: "29463-7", value: "3255", unit: "gms", wantValue: 3.255, converted: true},
	{name: "Weight/185lbs", loinc: "29463-7", value: "185", unit: "lbs", wantValue: 83.915, converted: true},
	{name: "Weight/154lb", loinc: "29463-7", value: "154", unit: "[lb_av]", wantValue: 69.853, converted: true},
	{name: "Weight/MDCLb", loinc: "29463-7", value: "154", unit: "MDC_DIM_LB", wantValue: 69.853, converted: true},
	{name: "Weight/Negative", loinc: "29463-7", value: "-3", unit: "kg", code: vitals.RejectTooLow},
	{name: "Weight/Zero", loinc: "29463-7", value: "0", unit: "kg", code: vitals.RejectTooLow},
	{name: "Weight/1000kg", loinc: "29463-7", value: "1000", unit: "kg", code: vitals.RejectTooHigh},
	{name: "Weight/NoUnit", loinc: "29463-7", value: "70", unit: "", code: vitals.RejectNoUnit},
	{name: "Weight/SpacesUnit", loinc: "29463-7", value: "70", unit: " \t ", code: vitals.RejectNoUnit},
	{name: "Weight/Stone", loinc: "29463-7", value: "11", unit: "stone", code: vitals.RejectUnknownUnit},
	{name: "Weight/KelvinSignKg", loinc: "29463-7", value: "70", unit: "\u212Ag", code: vitals.RejectUnknownUnit},
	{name: "Weight/ZeroWidthSpace", loinc: "29463-7", value: "70", unit: "k\u200Bg", code: vitals.RejectUnknownUnit},
	{name: "Weight/InvalidUTF8", loinc: "29463-7", value: "70", unit: "k\xffg", code: vitals.RejectUnknownUnit},
	{name: "Weight/HugeUnit", loinc: "29463-7", value: "70", unit: strings.Repeat("kg", 5000), code: vitals.RejectUnknownUnit},
	{name: "Weight/NULUnit", loinc: "29463-7", value: "70", unit: "kg\x00", code: vitals.RejectUnknownUnit},

	// Height.
	{name: "Height/Cm", loinc: "8302-2", value: "162", unit: "cm", wantValue: 162},
	{name: "Height/Inches", loinc: "8302-2", value: "66.9", unit: "in", wantValue: 169.9, converted: true},
	{name: "Height/USSurveyInches", loinc: "8302-2", value: "66.9", unit: "[in_us]", wantValue: 169.9, converted: true},
	{name: "Height/Metres", loinc: "8302-2", value: "1.62", unit: "m", wantValue: 162, converted: true},
	{name: "Height/Millimetres", loinc: "8302-2", value: "1625", unit: "mm", wantValue: 162.5, converted: true},
	{name: "Height/MDC", loinc: "8302-2", value: "150", unit: "263441", wantValue: 150},
	{name: "Height/3m", loinc: "8302-2", value: "300", unit: "cm", code: vitals.RejectTooHigh},

	// BMI.
	{name: "BMI/KgM2", loinc: "39156-5", value: "16.2", unit: "kg/m2", wantValue: 16.2},
	{name: "BMI/PrintedSymbol", loinc: "39156-5", value: "22.4", unit: "kg m-2", wantValue: 22.4},
	{name: "BMI/MDC", loinc: "39156-5", value: "22.4", unit: "264096", wantValue: 22.4},
	{name: "BMI/PhilipsCodeUnknown", loinc: "39156-5", value: "22.4", unit: "264099", code: vitals.RejectUnknownUnit},

	// Blood pressure.
	{name: "BP/Systolic", loinc: "8480-6", value: "120", unit: "mm[Hg]", wantValue: 120},
	{name: "BP/SystolicMmHg", loinc: "8480-6", value: "120", unit: "mmHg", wantValue: 120},
	{name: "BP/SystolicMDC", loinc: "8480-6", value: "142", unit: "266016", wantValue: 142},
	{name: "BP/SystolicKPa", loinc: "8480-6", value: "16", unit: "kPa", wantValue: 120, converted: true},
	{name: "BP/SystolicPa", loinc: "8480-6", value: "16000", unit: "Pa", wantValue: 120, converted: true},
	{name: "BP/SystolicMDCKPa", loinc: "8480-6", value: "16", unit: "MDC_DIM_KILO_PASCAL", wantValue: 120, converted: true},
	{name: "BP/Systolic400", loinc: "8480-6", value: "400", unit: "mmHg", code: vitals.RejectTooHigh},
	{name: "BP/SystolicSentinel", loinc: "8480-6", value: "-999", unit: "266016", code: vitals.RejectTooLow},
	{name: "BP/Diastolic", loinc: "8462-4", value: "80", unit: "mm Hg", wantValue: 80},
	{name: "BP/Mean", loinc: "8478-0", value: "93", unit: "mmHg", wantValue: 93},
	{name: "BP/CWEUnit", loinc: "8480-6", value: "120", unit: "mm[Hg]^mm[Hg]^UCUM", code: vitals.RejectUnknownUnit},

	// Rates.
	{name: "Pulse/Bpm", loinc: "8867-4", value: "72", unit: "bpm", wantValue: 72},
	{name: "Pulse/MDC", loinc: "8867-4", value: "72", unit: "264864", wantValue: 72},
	{name: "Pulse/Beats", loinc: "8867-4", value: "72", unit: "{beats}/min", wantValue: 72},
	{name: "Pulse/SenML", loinc: "8867-4", value: "72", unit: "beat/min", wantValue: 72},
	{name: "Pulse/Borderline30", loinc: "8867-4", value: "30", unit: "/min", wantValue: 30},
	{name: "Pulse/Zero", loinc: "8867-4", value: "0", unit: "/min", code: vitals.RejectTooLow},
	{name: "Pulse/400", loinc: "8867-4", value: "400", unit: "/min", code: vitals.RejectTooHigh},
	{name: "Resp/PerMin", loinc: "9279-1", value: "18", unit: "/min", wantValue: 18},
	{name: "Resp/MDC", loinc: "9279-1", value: "18", unit: "MDC_DIM_RESP_PER_MIN", wantValue: 18},
	{name: "Resp/Breaths", loinc: "9279-1", value: "60", unit: "breaths/min", wantValue: 60},
	{name: "Resp/Zero", loinc: "9279-1", value: "0", unit: "/min", code: vitals.RejectTooLow},

	// Glucose: mass codes stay mass, molar units move to the sibling.
	{name: "Glucose/MgdL", loinc: "2339-0", value: "142", unit: "mg/dL", wantValue: 142},
	{name: "Glucose/Mgdl", loinc: "2339-0", value: "142", unit: "mg/dl", wantValue: 142},
	{name: "Glucose/MgPercent", loinc: "2339-0", value: "110", unit: "mg %", wantValue: 110},
	{name: "Glucose/MDC", loinc: "2339-0", value: "98", unit: "264274", wantValue: 98},
	{name: "Glucose/GramsPerLitre", loinc: "2339-0", value: "1.05", unit: "g/L", wantValue: 105, converted: true},
	{name: "Glucose/MmolToSibling", loinc: "2339-0", value: "5.6", unit: "mmol/L", wantLOINC: "15074-8", wantValue: 5.6},
	{name: "Glucose/MgdLToSibling", loinc: "15074-8", value: "100", unit: "mg/dL", wantLOINC: "2339-0", wantValue: 100},
	{name: "Glucose/MeterMmolMDC", loinc: "14743-9", value: "5.5", unit: "266866", wantValue: 5.5},
	{name: "Glucose/MeterToSibling", loinc: "41653-7", value: "6.1", unit: "mmol/l", wantLOINC: "14743-9", wantValue: 6.1},
	{name: "Glucose/FastingToSibling", loinc: "41604-0", value: "5.2", unit: "mmol/L", wantLOINC: "14770-2", wantValue: 5.2},
	{name: "Glucose/PostMeal", loinc: "14760-3", value: "7.8", unit: "mmol/L", wantValue: 7.8},
	{name: "Glucose/PostMealNoSibling", loinc: "14760-3", value: "140", unit: "mg/dL", code: vitals.RejectUnitMismatch},
	{name: "Glucose/PlasmaMmol", loinc: "2345-7", value: "5.4", unit: "mmol/L", wantLOINC: "14749-6", wantValue: 5.4},
	{name: "Glucose/FastingPlasmaMmol", loinc: "1558-6", value: "5.1", unit: "mmol/L", wantLOINC: "14771-0", wantValue: 5.1},
	{name: "Glucose/3500", loinc: "2339-0", value: "3500", unit: "mg/dL", code: vitals.RejectTooHigh},
	{name: "Glucose/MeterHI", loinc: "2339-0", value: "HI", unit: "mg/dL", code: vitals.RejectNotANumber},
	{name: "Glucose/MeterLessThan", loinc: "2339-0", value: "<20", unit: "mg/dL", code: vitals.RejectNotANumber},

	// Labs.
	{name: "Hb/GdL", loinc: "718-7", value: "12.5", unit: "g/dL", wantValue: 12.5},
	{name: "Hb/GmPercent", loinc: "718-7", value: "11", unit: "gm%", wantValue: 11},
	{name: "Hb/GramsPerLitre", loinc: "718-7", value: "123", unit: "g/L", wantValue: 12.3, converted: true},
	{name: "Hb/Molar", loinc: "718-7", value: "8", unit: "mmol/L", code: vitals.RejectUnitMismatch},
	{name: "Creatinine/MgdL", loinc: "2160-0", value: "0.9", unit: "mg/dL", wantValue: 0.9},
	{name: "Creatinine/UmolToSibling", loinc: "2160-0", value: "88", unit: "umol/L", wantLOINC: "14682-9", wantValue: 88},
	{name: "Creatinine/MicroSign", loinc: "14682-9", value: "88", unit: "µmol/L", wantValue: 88},
	{name: "Creatinine/GreekMu", loinc: "14682-9", value: "88", unit: "μmol/L", wantValue: 88},
	{name: "Creatinine/MmolL", loinc: "14682-9", value: "0.088", unit: "mmol/L", wantValue: 88, converted: true},
	{name: "Urea/MgdL", loinc: "3091-6", value: "30", unit: "mg/dL", wantValue: 30},
	{name: "Urea/MmolToSibling", loinc: "3091-6", value: "5", unit: "mmol/L", wantLOINC: "22664-7", wantValue: 5},
	{name: "BUN/MgdL", loinc: "3094-0", value: "14", unit: "mg/dL", wantValue: 14},
	{name: "BUN/MmolNoSibling", loinc: "3094-0", value: "5", unit: "mmol/L", code: vitals.RejectUnitMismatch},
	{name: "Cholesterol/MgdL", loinc: "2093-3", value: "180", unit: "mg/dL", wantValue: 180},
	{name: "Cholesterol/MmolToSibling", loinc: "2093-3", value: "4.65", unit: "mmol/L", wantLOINC: "14647-2", wantValue: 4.65},
	{name: "HbA1c/Percent", loinc: "4548-4", value: "6.5", unit: "%", wantValue: 6.5},
	{name: "HbA1c/IFCC", loinc: "4548-4", value: "48", unit: "mmol/mol", code: vitals.RejectUnitMismatch},

	// Value text.
	{name: "Value/SurroundingSpace", loinc: "8867-4", value: " 72 ", unit: "/min", wantValue: 72},
	{name: "Value/PlusSign", loinc: "8867-4", value: "+72", unit: "/min", wantValue: 72},
	{name: "Value/LeadingDot", loinc: "4548-4", value: ".5", unit: "%", code: vitals.RejectTooLow},
	{name: "Value/TrailingDot", loinc: "8867-4", value: "72.", unit: "/min", wantValue: 72},
	{name: "Value/Empty", loinc: "8867-4", value: "", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/Letters", loinc: "8867-4", value: "abc", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/DecimalComma", loinc: "8310-5", value: "36,6", unit: "Cel", code: vitals.RejectNotANumber},
	{name: "Value/Exponent", loinc: "8867-4", value: "7.2e1", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/NaN", loinc: "8867-4", value: "NaN", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/Inf", loinc: "8867-4", value: "Inf", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/HexFloat", loinc: "8867-4", value: "0x1p6", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/Underscore", loinc: "8867-4", value: "7_2", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/TwoSigns", loinc: "8867-4", value: "+-72", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/TwoDots", loinc: "8867-4", value: "7.2.1", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/DotOnly", loinc: "8867-4", value: ".", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/SignOnly", loinc: "8867-4", value: "-", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/InvalidUTF8", loinc: "8867-4", value: "7\xff2", unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/Huge", loinc: "8867-4", value: strings.Repeat("9", 100), unit: "/min", code: vitals.RejectNotANumber},
	{name: "Value/LongButPlausibleLength", loinc: "8867-4", value: strings.Repeat("9", 40), unit: "/min", code: vitals.RejectTooHigh},

	// Measurement.
	{name: "Measurement/BPPanel", loinc: "85354-9", value: "120", unit: "mmHg", code: vitals.RejectUnknownMeasurement},
	{name: "Measurement/Empty", loinc: "", value: "120", unit: "mmHg", code: vitals.RejectUnknownMeasurement},
}
