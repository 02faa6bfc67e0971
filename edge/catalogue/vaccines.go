package catalogue

import (
	"strconv"
	"strings"
)

// Vaccine is one vaccine (or, for Vitamin A, one prophylaxis) of India's
// Universal Immunization Programme, as recorded on an immunization visit.
type Vaccine struct {
	// Code is the key a record stores ("PENTA"). It never changes.
	Code         string
	Name, NameHI string
	// SNOMED CT code and display from the IG's ValueSet ndhm-vaccine-codes
	// (the binding of SD Immunization.vaccineCode), empty for Vitamin A,
	// which is no vaccine and is in no vaccine value set.
	SNOMED, SNOMEDDisplay string
}

// VaccineName is the vaccine's name in the language.
func (v Vaccine) VaccineName(lang string) string {
	if lang == "hi" && v.NameHI != "" {
		return v.NameHI
	}
	return v.Name
}

// vaccines of the UIP schedule. Each SNOMED CT code and display is in the
// IG package ndhm.in 6.5.0, ValueSet-ndhm-vaccine-codes.json; where the IG
// has several, the row says why this one.
var vaccines = []Vaccine{
	{"BCG", "BCG", "बीसीजी (BCG)", "1861000221106", "BCG (Bacillus Calmette-Guerin) vaccine"},
	// India's OPV has been bivalent (types 1 and 3) since April 2016.
	{"OPV", "OPV (oral polio)", "ओपीवी (पोलियो ड्रॉप)", "1051000221104", "Live attenuated poliovirus serotypes 1 and 3 vaccine in oral dose form"},
	{"HEPB", "Hepatitis B", "हेपेटाइटिस बी", "871822003", "Hepatitis B vaccine"},
	// Pentavalent: DTwP + Hep B + Hib.
	{"PENTA", "Pentavalent", "पेंटावेलेंट", "871886002", "Diphtheria and Haemophilus influenzae type B and hepatitis B and pertussis and tetanus vaccine"},
	{"ROTA", "Rotavirus", "रोटावायरस", "871761004", "Rotavirus vaccine"},
	{"FIPV", "fIPV (injected polio)", "एफ़आईपीवी (पोलियो इंजेक्शन)", "871740006", "Inactivated polio vaccine"},
	// The valency given varies by state and supply: the general code.
	{"PCV", "PCV (pneumococcal)", "पीसीवी (न्यूमोकोकल)", "981000221107", "Pneumococcal vaccine"},
	{"MR", "Measles-Rubella (MR)", "खसरा-रूबेला (MR)", "871817003", "Measles and rubella vaccine"},
	// Live (SA 14-14-2) and inactivated JE vaccines are both used: the general code.
	{"JE", "Japanese encephalitis (JE)", "जापानी एन्सेफ़लाइटिस (JE)", "871724008", "Japanese encephalitis virus vaccine"},
	{"DPT", "DPT", "डीपीटी (DPT)", "871875004", "Diphtheria and pertussis and tetanus vaccine"},
	// Td: tetanus with a reduced (adult) diphtheria dose.
	{"TD", "Td (tetanus-diphtheria)", "टीडी (टिटनेस-डिप्थीरिया)", "871827009", "Low dose diphtheria and tetanus vaccine"},
	{"VITA", "Vitamin A", "विटामिन ए", "", ""},
}

var vaccineByCode = map[string]*Vaccine{}

func init() {
	for i := range vaccines {
		vaccineByCode[vaccines[i].Code] = &vaccines[i]
	}
}

// VaccineByCode returns the vaccine with the code.
func VaccineByCode(code string) (Vaccine, bool) {
	v, ok := vaccineByCode[code]
	if !ok {
		return Vaccine{}, false
	}
	return *v, true
}

// Vaccines returns every vaccine of the catalogue.
func Vaccines() []Vaccine {
	out := make([]Vaccine, len(vaccines))
	copy(out, vaccines)
	return out
}

// Dose is one line of the UIP schedule: a vaccine, its dose number where the
// schedule numbers it (0 is the birth dose), or a booster.
type Dose struct {
	Vaccine string
	Number  int // -1 when the schedule gives no number
	Booster bool
}

// Key is the dose's key on the visit form ("OPV-1", "PCV-B", "DPT-B2").
func (d Dose) Key() string {
	k := d.Vaccine
	if d.Booster {
		k += "-B"
	} else if d.Number >= 0 {
		k += "-"
	}
	if d.Number >= 0 {
		k += strconv.Itoa(d.Number)
	}
	return k
}

// Schedule is the UIP schedule in the order a child (then a pregnant woman)
// gets it: birth, 6, 10 and 14 weeks, 9-12 months, 16-24 months, 5-6 years,
// 10 and 16 years (Td boosters), pregnancy (Td 1, Td 2 or a Td booster).
var schedule = []Dose{
	{"BCG", -1, false}, {"OPV", 0, false}, {"HEPB", 0, false},
	{"OPV", 1, false}, {"PENTA", 1, false}, {"ROTA", 1, false}, {"FIPV", 1, false}, {"PCV", 1, false},
	{"OPV", 2, false}, {"PENTA", 2, false}, {"ROTA", 2, false},
	{"OPV", 3, false}, {"PENTA", 3, false}, {"ROTA", 3, false}, {"FIPV", 2, false}, {"PCV", 2, false},
	{"MR", 1, false}, {"JE", 1, false}, {"PCV", -1, true}, {"VITA", 1, false},
	{"MR", 2, false}, {"JE", 2, false}, {"DPT", 1, true}, {"OPV", -1, true},
	{"DPT", 2, true},
	{"TD", 1, false}, {"TD", 2, false}, {"TD", -1, true},
}

// Schedule returns the UIP doses in schedule order.
func Schedule() []Dose {
	out := make([]Dose, len(schedule))
	copy(out, schedule)
	return out
}

// DoseByKey returns the schedule's dose with the key.
func DoseByKey(key string) (Dose, bool) {
	key = strings.TrimSpace(key)
	for _, d := range schedule {
		if d.Key() == key {
			return d, true
		}
	}
	return Dose{}, false
}
