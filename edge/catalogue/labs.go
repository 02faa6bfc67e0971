package catalogue

import "strings"

// LabTest is one test the centre's laboratory runs. A test is either
// numeric (Unit set, a value in that UCUM unit) or coded (Answers set, one
// answer chosen), never both.
type LabTest struct {
	// Code is the key an order stores ("hb"). It never changes.
	Code string
	// LOINC code and its long common name, for FHIR coding.display.
	LOINC, Display string
	// Names for people, short enough for a tablet's select list.
	Name, NameHI string

	// Numeric tests: the canonical UCUM unit, the decimals kept, and the
	// range outside which a value cannot come from a living patient (not
	// a normal range: an alarming value inside it is accepted).
	Unit     string
	Decimals int
	Min, Max float64

	// Coded tests: the answers a result may have.
	Answers []Answer

	// Report is the kind of lab report the result goes in upstream.
	Report ReportKind
}

// Numeric reports whether the test's result is a number with a unit.
func (t LabTest) Numeric() bool { return t.Unit != "" }

// Answer is one result of a coded test.
type Answer struct {
	Code         string // key stored with the result ("pos")
	Name, NameHI string
	// SNOMED CT coding of the answer, where one was checked; empty when
	// the answer goes upstream as text only.
	SNOMED, SNOMEDDisplay string
}

// LabName is the test's name in the language ("hi" or anything else).
func (t LabTest) LabName(lang string) string {
	if lang == "hi" && t.NameHI != "" {
		return t.NameHI
	}
	return t.Name
}

// AnswerName is the answer's name in the language.
func (a Answer) AnswerName(lang string) string {
	if lang == "hi" && a.NameHI != "" {
		return a.NameHI
	}
	return a.Name
}

// Answer returns the test's answer with the code.
func (t LabTest) Answer(code string) (Answer, bool) {
	for _, a := range t.Answers {
		if a.Code == code {
			return a, true
		}
	}
	return Answer{}, false
}

// ReportKind is the SNOMED CT code of the section a result's
// DiagnosticReportRecord carries (SD DiagnosticReportRecord fixes the
// section's system to SNOMED CT and leaves the code free).
type ReportKind struct {
	SNOMED, Display string
}

// Report kinds, each from the IG package ndhm.in 6.5.0.
var (
	// IG example Bundle-DiagnosticReport-Lab-example-03, section code.
	ReportHaematology = ReportKind{"4321000179101", "Hematology report"}
	// IG ValueSet ndhm-diagnostic-report-type.
	ReportChemistry = ReportKind{"4311000179106", "Chemical pathology report"}
	// IG ValueSet ndhm-diagnostic-report-type.
	ReportInfection = ReportKind{"722143004", "Infectious disease diagnostic study note"}
)

// Answers shared by several tests. SNOMED CT qualifier values, checked in
// the HL7 US public health library IG's result value set
// (us-ph-library, "$snomed#131194007 Non-reactive (qualifier value)",
// 11214006 Reactive, 10828004 Positive, 260385009 Negative) and in public
// FHIR examples of pregnancy and HIV tests that code them the same way.
var (
	answerPositive    = Answer{"pos", "Positive", "पॉज़िटिव", "10828004", "Positive"}
	answerNegative    = Answer{"neg", "Negative", "नेगेटिव", "260385009", "Negative"}
	answerReactive    = Answer{"reactive", "Reactive", "रिएक्टिव", "11214006", "Reactive"}
	answerNonReactive = Answer{"nonreactive", "Non-reactive", "नॉन-रिएक्टिव", "131194007", "Non-reactive"}
)

// dipstick is the grading of a urine test strip or the heat test, as
// Indian lab registers write it ("nil, trace, +, ++, ..."). Only "nil" has
// a checked code (Negative); the grades go upstream as text.
var dipstick = []Answer{
	{"nil", "Nil", "निल (नहीं)", "260385009", "Negative"},
	{"trace", "Trace", "ट्रेस (बहुत कम)", "", ""},
	{"1+", "+ (1+)", "+ (1+)", "", ""},
	{"2+", "++ (2+)", "++ (2+)", "", ""},
	{"3+", "+++ (3+)", "+++ (3+)", "", ""},
	{"4+", "++++ (4+)", "++++ (4+)", "", ""},
}

// labTests is what a PHC laboratory runs, in the order the visit form
// offers them. Where each LOINC code and display was checked:
//
//	VIT  devices/vitals catalogue (its own sources are listed there)
//	IG   ABDM IG package ndhm.in 6.5.0, /work/shared/fhir
//	PUB  public uses of the code with this display, named in the row,
//	     where neither the IG nor the reference notes have it. LOINC
//	     itself is not available offline; two independent uses and the
//	     mod-10 check digit (tested) are the bar, as in devices/vitals.
var labTests = []LabTest{
	// VIT (718-7, g/dL, range 0.5-27).
	{Code: "hb", LOINC: "718-7", Display: "Hemoglobin [Mass/volume] in Blood",
		Name: "Haemoglobin (Hb)", NameHI: "हीमोग्लोबिन (Hb)",
		Unit: "g/dL", Decimals: 1, Min: 0.5, Max: 27, Report: ReportHaematology},
	// VIT (2345-7, mg/dL): plasma glucose as the lab's analyser measures it.
	{Code: "rbs", LOINC: "2345-7", Display: "Glucose [Mass/volume] in Serum or Plasma",
		Name: "Blood sugar, random (RBS)", NameHI: "रैंडम ब्लड शुगर (RBS)",
		Unit: "mg/dL", Min: 5, Max: 3000, Report: ReportChemistry},
	// VIT (1558-6, mg/dL).
	{Code: "fbs", LOINC: "1558-6", Display: "Fasting glucose [Mass/volume] in Serum or Plasma",
		Name: "Blood sugar, fasting (FBS)", NameHI: "ख़ाली पेट ब्लड शुगर (FBS)",
		Unit: "mg/dL", Min: 5, Max: 3000, Report: ReportChemistry},
	// PUB: HL7 Switzerland ch-elm ConceptMap (fhir.ch/ig/ch-elm), a
	// Bangladesh BD-Core FSH ValueSet, OpenMRS-based MRDT order tables.
	// "[Identifier]": the answer names the species, as India's bivalent
	// (Pf/Pv) RDT kits report.
	{Code: "malaria_rdt", LOINC: "70569-9", Display: "Plasmodium sp Ag [Identifier] in Blood by Rapid immunoassay",
		Name: "Malaria rapid test (RDT)", NameHI: "मलेरिया रैपिड टेस्ट (RDT)",
		Answers: []Answer{
			{"pf", "P. falciparum", "पी. फ़ैल्सीपेरम (Pf)", "", ""},
			{"pv", "P. vivax", "पी. वाइवैक्स (Pv)", "", ""},
			{"mixed", "Mixed (Pf + Pv)", "मिश्रित (Pf + Pv)", "", ""},
			answerNegative,
		}, Report: ReportInfection},
	// PUB: OCL LOINC 2.46 to ICPC-2 mapping (32700-7 "Microscopic
	// observation [Identifier] in Blood by Malaria smear"), a hospital
	// LIS export with the same code and display, a FHIR ServiceRequest
	// example.
	{Code: "malaria_smear", LOINC: "32700-7", Display: "Microscopic observation [Identifier] in Blood by Malaria smear",
		Name: "Malaria slide (smear)", NameHI: "मलेरिया स्लाइड (स्मीयर)",
		Answers: []Answer{
			{"pf", "P. falciparum seen", "पी. फ़ैल्सीपेरम मिला", "", ""},
			{"pv", "P. vivax seen", "पी. वाइवैक्स मिला", "", ""},
			{"mixed", "Mixed (Pf + Pv) seen", "मिश्रित (Pf + Pv) मिला", "", ""},
			{"none", "No parasite seen", "कोई परजीवी नहीं मिला", "", ""},
		}, Report: ReportInfection},
	// PUB: N3C/OMOP concept usage tables (20454-5 "Protein [Presence] in
	// Urine by Test strip"), a Dutch HL7 v2 ORU sample, an Indonesian
	// SATUSEHAT lab mapping. "Urine albumin" at a PHC is this dipstick.
	{Code: "urine_albumin", LOINC: "20454-5", Display: "Protein [Presence] in Urine by Test strip",
		Name: "Urine albumin (protein)", NameHI: "पेशाब में एल्ब्यूमिन (प्रोटीन)",
		Answers: dipstick, Report: ReportChemistry},
	// PUB: a Dutch HL7 v2 ORU sample (OBX 25428-4 with this name), a Java
	// FHIR library's tests, a Python urinalysis mapping.
	{Code: "urine_sugar", LOINC: "25428-4", Display: "Glucose [Presence] in Urine by Test strip",
		Name: "Urine sugar", NameHI: "पेशाब में शुगर",
		Answers: dipstick, Report: ReportChemistry},
	// PUB: a Thai maternal-health FHIR IG example and a Sri Lankan
	// MOH-visit FSH example (both 2106-3 with this display), an Uzbek lab
	// ConceptMap, an Indonesian lab mapping.
	{Code: "upt", LOINC: "2106-3", Display: "Choriogonadotropin (pregnancy test) [Presence] in Urine",
		Name: "Urine pregnancy test (UPT)", NameHI: "पेशाब से गर्भ जाँच (UPT)",
		Answers: []Answer{answerPositive, answerNegative}, Report: ReportChemistry},
	// PUB: two Chilean FHIR IGs' BloodTypeObservation profiles (code =
	// 882-1), an Indonesian lab mapping, public FHIR bundles with this
	// display. The combined groups have no checked SNOMED code here and go
	// upstream as text.
	{Code: "blood_group", LOINC: "882-1", Display: "ABO and Rh group [Type] in Blood",
		Name: "Blood group (ABO and Rh)", NameHI: "ब्लड ग्रुप (ABO और Rh)",
		Answers: []Answer{
			{"A+", "A positive", "A पॉज़िटिव", "", ""}, {"A-", "A negative", "A नेगेटिव", "", ""},
			{"B+", "B positive", "B पॉज़िटिव", "", ""}, {"B-", "B negative", "B नेगेटिव", "", ""},
			{"AB+", "AB positive", "AB पॉज़िटिव", "", ""}, {"AB-", "AB negative", "AB नेगेटिव", "", ""},
			{"O+", "O positive", "O पॉज़िटिव", "", ""}, {"O-", "O negative", "O नेगेटिव", "", ""},
		}, Report: ReportHaematology},
	// PUB: a published LOINC value set listing (7918-6 "HIV 1+2 Ab
	// [Presence] in Serum"), an Indonesian antenatal lab mapping that
	// offers it for the rapid HIV 1+2 antibody test. India's screening
	// kits detect antibodies to HIV-1 and HIV-2.
	{Code: "hiv", LOINC: "7918-6", Display: "HIV 1+2 Ab [Presence] in Serum",
		Name: "HIV screening (antibody)", NameHI: "एचआईवी जाँच (एंटीबॉडी)",
		Answers: []Answer{answerReactive, answerNonReactive}, Report: ReportInfection},
	// PUB: FSH and JSON value sets of syphilis tests in public FHIR IGs,
	// an STI screening module, a Russian lab-to-FHIR mapping (20507-0).
	{Code: "syphilis_rpr", LOINC: "20507-0", Display: "Reagin Ab [Presence] in Serum by RPR",
		Name: "Syphilis screening (RPR)", NameHI: "सिफ़लिस जाँच (RPR)",
		Answers: []Answer{answerReactive, answerNonReactive}, Report: ReportInfection},
	// PUB: an Indonesian antenatal mapping (5292-8 "Reagin Ab [Presence]
	// in Serum by VDRL") and a hospital LIS seed with the same code.
	{Code: "syphilis_vdrl", LOINC: "5292-8", Display: "Reagin Ab [Presence] in Serum by VDRL",
		Name: "Syphilis screening (VDRL)", NameHI: "सिफ़लिस जाँच (VDRL)",
		Answers: []Answer{answerReactive, answerNonReactive}, Report: ReportInfection},
	// PUB: Indonesia's SATUSEHAT integrations (11477-7 "Microscopic
	// observation [Identifier] in Sputum by Acid fast stain"), an HL7 IG
	// ConceptMap. Grades as India's NTEP reports a sputum smear.
	{Code: "sputum_afb", LOINC: "11477-7", Display: "Microscopic observation [Identifier] in Sputum by Acid fast stain",
		Name: "Sputum for AFB (TB)", NameHI: "बलगम जाँच AFB (टीबी)",
		Answers: []Answer{
			{"neg", "Negative (no AFB seen)", "नेगेटिव (AFB नहीं मिला)", "260385009", "Negative"},
			{"scanty", "Scanty", "स्कैंटी (बहुत कम)", "", ""},
			{"1+", "1+", "1+", "", ""},
			{"2+", "2+", "2+", "", ""},
			{"3+", "3+", "3+", "", ""},
		}, Report: ReportInfection},
}

var labByCode = map[string]*LabTest{}

func init() {
	for i := range labTests {
		t := &labTests[i]
		if _, dup := labByCode[t.Code]; dup {
			panic("catalogue: lab test " + t.Code + " listed twice")
		}
		labByCode[t.Code] = t
	}
}

// LabTests returns every lab test, in the order the form offers them.
func LabTests() []LabTest {
	out := make([]LabTest, len(labTests))
	copy(out, labTests)
	return out
}

// Lab returns the test with the code.
func Lab(code string) (LabTest, bool) {
	t, ok := labByCode[strings.TrimSpace(code)]
	if !ok {
		return LabTest{}, false
	}
	return *t, true
}
