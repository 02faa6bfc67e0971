package webui

import (
	"slices"
	"strings"

	"github.com/healthpost/healthpost/devices/vitals"
	"github.com/healthpost/healthpost/edge"
)

// icd10Known reports whether code is in the built-in diagnosis list.
func icd10Known(code string) bool { return slices.Contains(icd10Codes, code) }

// diagnosisName is the condition's name in the page's language.
func diagnosisName(c *catalog, code string) string {
	if c.Has("dx." + code) {
		return c.T("dx." + code)
	}
	return code
}

// drug is one line of the facility formulary: the medicines a PHC stocks
// (India's National List of Essential Medicines, primary care level).
type drug struct {
	Name     string // generic name
	Strength string
	Form     string // tablet, syrup, ...
}

// Label is how the form and the slip show the drug.
func (d drug) Label() string {
	return strings.Join(strings.Fields(d.Name+" "+d.Strength+" "+d.Form), " ")
}

var formulary = []drug{
	{"Paracetamol", "500 mg", "tablet"},
	{"Paracetamol", "250 mg/5 ml", "syrup"},
	{"Ibuprofen", "400 mg", "tablet"},
	{"Diclofenac", "50 mg", "tablet"},
	{"Mefenamic acid", "500 mg", "tablet"},
	{"Amoxicillin", "500 mg", "capsule"},
	{"Amoxicillin", "250 mg", "dispersible tablet"},
	{"Amoxicillin", "125 mg/5 ml", "syrup"},
	{"Amoxicillin + Clavulanic acid", "625 mg", "tablet"},
	{"Azithromycin", "500 mg", "tablet"},
	{"Azithromycin", "200 mg/5 ml", "syrup"},
	{"Cefalexin", "500 mg", "capsule"},
	{"Ciprofloxacin", "500 mg", "tablet"},
	{"Co-trimoxazole", "800 + 160 mg", "tablet"},
	{"Co-trimoxazole", "200 + 40 mg/5 ml", "syrup"},
	{"Doxycycline", "100 mg", "capsule"},
	{"Metronidazole", "400 mg", "tablet"},
	{"Metronidazole", "200 mg/5 ml", "syrup"},
	{"Nitrofurantoin", "100 mg", "capsule"},
	{"Fluconazole", "150 mg", "tablet"},
	{"Albendazole", "400 mg", "tablet"},
	{"Albendazole", "200 mg/5 ml", "suspension"},
	{"Chloroquine", "250 mg", "tablet"},
	{"Primaquine", "7.5 mg", "tablet"},
	{"Artesunate + Sulfadoxine-Pyrimethamine", "adult", "combi-pack"},
	{"Oral rehydration salts (ORS)", "20.5 g/l", "sachet"},
	{"Zinc sulphate", "20 mg", "dispersible tablet"},
	{"Ferrous sulphate + Folic acid (IFA)", "100 mg + 0.5 mg", "tablet"},
	{"Ferrous sulphate + Folic acid (IFA)", "20 mg + 0.1 mg/ml", "syrup"},
	{"Folic acid", "5 mg", "tablet"},
	{"Calcium carbonate + Vitamin D3", "500 mg + 250 IU", "tablet"},
	{"Vitamin A", "1,00,000 IU/ml", "solution"},
	{"Multivitamin", "", "tablet"},
	{"Cetirizine", "10 mg", "tablet"},
	{"Chlorphenamine", "4 mg", "tablet"},
	{"Salbutamol", "4 mg", "tablet"},
	{"Salbutamol", "100 mcg/dose", "inhaler"},
	{"Budesonide", "200 mcg/dose", "inhaler"},
	{"Prednisolone", "5 mg", "tablet"},
	{"Amlodipine", "5 mg", "tablet"},
	{"Telmisartan", "40 mg", "tablet"},
	{"Enalapril", "5 mg", "tablet"},
	{"Atenolol", "50 mg", "tablet"},
	{"Hydrochlorothiazide", "12.5 mg", "tablet"},
	{"Metformin", "500 mg", "tablet"},
	{"Glimepiride", "1 mg", "tablet"},
	{"Atorvastatin", "10 mg", "tablet"},
	{"Aspirin", "75 mg", "tablet"},
	{"Levothyroxine", "50 mcg", "tablet"},
	{"Phenytoin", "100 mg", "tablet"},
	{"Omeprazole", "20 mg", "capsule"},
	{"Pantoprazole", "40 mg", "tablet"},
	{"Aluminium hydroxide + Magnesium hydroxide", "", "suspension"},
	{"Domperidone", "10 mg", "tablet"},
	{"Ondansetron", "4 mg", "tablet"},
	{"Dicyclomine", "10 mg", "tablet"},
	{"Hyoscine butylbromide", "10 mg", "tablet"},
	{"Lactulose", "10 g/15 ml", "solution"},
	{"Permethrin", "5%", "cream"},
	{"Clotrimazole", "1%", "cream"},
	{"Silver sulfadiazine", "1%", "cream"},
	{"Povidone-iodine", "5%", "ointment"},
	{"Calamine", "", "lotion"},
	{"Ciprofloxacin", "0.3%", "eye drops"},
	{"Chloramphenicol", "1%", "eye ointment"},
}

// drugByLabel finds the formulary line a form sent.
func drugByLabel(label string) (drug, bool) {
	label = strings.Join(strings.Fields(label), " ")
	for _, d := range formulary {
		if strings.EqualFold(d.Label(), label) {
			return d, true
		}
	}
	return drug{}, false
}

// frequencies are the dosing schedules a prescription line may have; their
// names are in the catalogues as freq.<code>.
var frequencies = []string{"OD", "BD", "TDS", "QID", "HS", "SOS", "STAT"}

// instructionKeys are the usual instructions, offered as suggestions.
var instructionKeys = []string{"rx.after_food", "rx.before_food", "rx.empty_stomach", "rx.at_bedtime", "rx.apply_skin", "rx.complete_course"}

// encounterTypes in the order the patient page offers them.
var encounterTypes = []string{edge.EncounterOPD, edge.EncounterANC, edge.EncounterImmunization, edge.EncounterFollowUp}

// vitalField is one measurement on the visit form.
type vitalField struct {
	Key      string // form field name
	LOINC    string
	Unit     string // UCUM, as stored
	Decimals int
	Min, Max float64  // plausible range, in Unit
	Types    []string // encounter types that show it; nil means all
}

var vitalFields = []vitalField{
	{Key: "sys", LOINC: "8480-6", Unit: "mm[Hg]"},
	{Key: "dia", LOINC: "8462-4", Unit: "mm[Hg]"},
	{Key: "pulse", LOINC: "8867-4", Unit: "/min"},
	{Key: "temp", LOINC: "8310-5", Unit: "Cel", Decimals: 1},
	{Key: "spo2", LOINC: "2708-6", Unit: "%"},
	{Key: "resp", LOINC: "9279-1", Unit: "/min"},
	{Key: "weight", LOINC: "29463-7", Unit: "kg", Decimals: 1},
	{Key: "height", LOINC: "8302-2", Unit: "cm", Decimals: 1, Types: []string{edge.EncounterOPD, edge.EncounterANC, edge.EncounterImmunization}},
	{Key: "glucose", LOINC: "2339-0", Unit: "mg/dL", Types: []string{edge.EncounterOPD, edge.EncounterANC, edge.EncounterFollowUp}},
	{Key: "hb", LOINC: "718-7", Unit: "g/dL", Decimals: 1, Types: []string{edge.EncounterOPD, edge.EncounterANC, edge.EncounterFollowUp}},
	// Antenatal measurements, not in the device catalogue.
	{Key: "fundal", LOINC: "11881-0", Unit: "cm", Min: 5, Max: 50, Types: []string{edge.EncounterANC}},
	{Key: "fhr", LOINC: "55283-6", Unit: "/min", Min: 50, Max: 250, Types: []string{edge.EncounterANC}},
	{Key: "ga", LOINC: "11884-4", Unit: "wk", Min: 1, Max: 45, Types: []string{edge.EncounterANC}},
}

func init() {
	// Plausible ranges come from the device catalogue, so a typed value and a
	// device value are judged alike.
	for i := range vitalFields {
		f := &vitalFields[i]
		if m, ok := vitals.ByLOINC(f.LOINC); ok {
			f.Min, f.Max = m.Min, m.Max
		}
	}
}

// shows reports whether the field belongs on a form for the encounter type.
func (f vitalField) shows(typ string) bool { return f.Types == nil || slices.Contains(f.Types, typ) }

// vitalName is a measurement's name in the page's language: the catalogue's
// vital.<loinc>, else the device catalogue's, else the code.
func vitalName(c *catalog, loinc string) string {
	if c.Has("vital." + loinc) {
		return c.T("vital." + loinc)
	}
	if m, ok := vitals.ByLOINC(loinc); ok {
		if c.lang == "hi" && m.NameHI != "" {
			return m.NameHI
		}
		return m.Name
	}
	return loinc
}

// unitLabel shows a UCUM unit the way people write it.
func unitLabel(u string) string {
	switch u {
	case "mm[Hg]":
		return "mmHg"
	case "Cel":
		return "°C"
	case "/min":
		return "/min"
	case "wk":
		return "wk"
	}
	return u
}
