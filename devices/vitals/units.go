package vitals

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// dimension is the kind of quantity a unit measures. Values convert only
// between units of one dimension.
type dimension uint8

const (
	dimNone        dimension = iota
	dimPressure              // base mm[Hg]
	dimRate                  // base /min
	dimPercent               // base %
	dimTemperature           // base Cel
	dimMass                  // base kg
	dimLength                // base cm
	dimMassPerArea           // base kg/m2 (BMI)
	dimMassConc              // base mg/dL
	dimSubstConc             // base mmol/L
	dimSubstRatio            // base mmol/mol (IFCC HbA1c; known so that it is a mismatch, not unknown)
)

// Unit is a unit of measure this package understands. The zero Unit is no
// unit. Units are comparable: two spellings of one unit ("mg/dl", "mg%",
// "264274") parse to equal Units.
type Unit struct {
	// UCUM is the unit's UCUM code (case-sensitive, e.g. "mm[Hg]", "[degF]").
	UCUM string
	// Label is how to show the unit to a health worker ("mmHg", "°F").
	Label string

	// Conversion to the dimension's base unit:
	// base = (value + offset) * num / den.
	dim      dimension
	offset   float64
	num, den float64
}

// toBase converts v in u to the base unit of u's dimension.
func (u Unit) toBase(v float64) float64 { return (v + u.offset) * u.num / u.den }

// fromBase converts v in the base unit of u's dimension to u.
func (u Unit) fromBase(v float64) float64 { return v*u.den/u.num - u.offset }

// mdcUnit is one IEEE 11073-10101 unit code (partition 4, offset 262144)
// and its reference id.
type mdcUnit struct {
	code  string
	refID string
}

// unitDef is one row of the unit table: the Unit and every spelling that
// parses to it. Spellings are matched after removing white space and folding
// ASCII letters to lower case, so "mm Hg", "MMHG" and "mmHg" are one key.
type unitDef struct {
	unit    Unit
	mdc     []mdcUnit
	aliases []string
}

// units is the unit table. Sources:
//   - UCUM codes and the vital-sign set "% cm [in_i] kg g [lb_av] Cel [degF]
//     mm[Hg] /min kg/m2": reference/devices.md §6 and the IG examples, which
//     use mm[Hg], /min, %, Cel, kg, cm, kg/m2, mg/dL, [lb_av], [in_i] and,
//     once (Observation-example-34), [in_us].
//   - Free-text spellings devices print: reference/devices.md §6 ("mmHg",
//     "bpm", "{beats}/min", "mg/dl", "%SpO2", "°C", "C") and §3.1 (scales
//     print "kg", "g", "lb"); "mg%", "g%" and "gm%" are how Indian lab
//     reports write mg/dL and g/dL (per 100 mL).
//   - SenML units (RFC 8428 registry, reference §4.1): "Cel", "kg", "m",
//     "/", "beat/min", "1/min", "Pa".
//   - MDC unit codes: 10101 term code + 262144 (reference §1.3). MMHG,
//     PERCENT, BEAT_PER_MIN, DEGC, FAHR, KILO_G, CENTI_M, KG_PER_M_SQ,
//     MILLI_G_PER_DL: reference §6 and the PHD constants (IEEE 10404-10417:
//     MDC_DIM_LB 1760, MDC_DIM_INCH 1376, MDC_DIM_KG_PER_M_SQ 1952). The rest
//     (X_G 1728, X_M 1280, MILLI_M 1298, PER_MIN 2528, PULS_PER_MIN 2752,
//     X_PASCAL 3840, KILO_PASCAL 3843, X_G_PER_L 2048, MILLI_G_PER_L 2066,
//     X_G_PER_DL 2112, MILLI_MOLE_PER_L 4722, MICRO_MOLE_PER_L 4723) from
//     Koshsky/Intellivue-api unitCodes.go. Philips lists kg/m2 as 1955
//     (264099), the PHD weighing-scale constants and an IPF Continua OBX as
//     1952 (264096): only 264096 is accepted.
//   - Factors: [lb_av] = 0.45359237 kg and [in_i] = 2.54 cm (exact, UCUM);
//     [in_us] = 100/39.37 cm (UCUM: [ft_us] = 1200/3937 m); mm[Hg] =
//     0.1333220 kPa (UCUM ucum-essence: m[Hg] = 133.3220 kPa); °F to Cel is
//     (F − 32) × 5/9.
var units = []unitDef{
	// Pressure, base mm[Hg].
	{Unit{UCUM: "mm[Hg]", Label: "mmHg", dim: dimPressure, num: 1, den: 1},
		[]mdcUnit{{"266016", "MDC_DIM_MMHG"}},
		[]string{"mm[Hg]", "mmHg", "mm Hg"}},
	{Unit{UCUM: "kPa", Label: "kPa", dim: dimPressure, num: 1, den: 0.1333220},
		[]mdcUnit{{"265987", "MDC_DIM_KILO_PASCAL"}},
		[]string{"kPa"}},
	{Unit{UCUM: "Pa", Label: "Pa", dim: dimPressure, num: 1, den: 133.3220},
		[]mdcUnit{{"265984", "MDC_DIM_X_PASCAL"}},
		[]string{"Pa"}},

	// Rates, base /min.
	{Unit{UCUM: "/min", Label: "/min", dim: dimRate, num: 1, den: 1},
		[]mdcUnit{
			{"264672", "MDC_DIM_PER_MIN"},
			{"264864", "MDC_DIM_BEAT_PER_MIN"},
			{"264896", "MDC_DIM_PULS_PER_MIN"},
			{"264928", "MDC_DIM_RESP_PER_MIN"},
		},
		[]string{
			"/min", "1/min", "per min", "per minute",
			"bpm", "beats/min", "beat/min", "{beats}/min", "{beat}/min", "b/min",
			"breaths/min", "breath/min", "{breaths}/min", "{breath}/min", "br/min", "brpm", "rpm", "resp/min",
		}},

	// Percent.
	{Unit{UCUM: "%", Label: "%", dim: dimPercent, num: 1, den: 1},
		[]mdcUnit{{"262688", "MDC_DIM_PERCENT"}},
		[]string{"%", "percent", "%SpO2"}},
	// SenML "/" is a ratio (0 to 1).
	{Unit{UCUM: "1", Label: "ratio", dim: dimPercent, num: 100, den: 1},
		nil,
		[]string{"/"}},

	// Temperature, base Cel.
	{Unit{UCUM: "Cel", Label: "°C", dim: dimTemperature, num: 1, den: 1},
		[]mdcUnit{{"268192", "MDC_DIM_DEGC"}},
		[]string{"Cel", "°C", "ºC", "℃", "C", "degC", "deg C", "degrees C", "degree C", "celsius", "degree celsius", "degrees celsius", "centigrade"}},
	{Unit{UCUM: "[degF]", Label: "°F", dim: dimTemperature, offset: -32, num: 5, den: 9},
		[]mdcUnit{{"266560", "MDC_DIM_FAHR"}},
		[]string{"[degF]", "°F", "ºF", "℉", "F", "degF", "deg F", "degrees F", "degree F", "fahrenheit", "degree fahrenheit", "degrees fahrenheit"}},

	// Mass, base kg.
	{Unit{UCUM: "kg", Label: "kg", dim: dimMass, num: 1, den: 1},
		[]mdcUnit{{"263875", "MDC_DIM_KILO_G"}},
		[]string{"kg", "kgs", "kilogram", "kilograms"}},
	{Unit{UCUM: "g", Label: "g", dim: dimMass, num: 1, den: 1000},
		[]mdcUnit{{"263872", "MDC_DIM_X_G"}},
		[]string{"g", "gm", "gms", "gram", "grams"}},
	{Unit{UCUM: "[lb_av]", Label: "lb", dim: dimMass, num: 0.45359237, den: 1},
		[]mdcUnit{{"263904", "MDC_DIM_LB"}},
		[]string{"[lb_av]", "lb", "lbs", "pound", "pounds"}},

	// Length, base cm.
	{Unit{UCUM: "cm", Label: "cm", dim: dimLength, num: 1, den: 1},
		[]mdcUnit{{"263441", "MDC_DIM_CENTI_M"}},
		[]string{"cm", "cms", "centimeter", "centimeters", "centimetre", "centimetres"}},
	{Unit{UCUM: "m", Label: "m", dim: dimLength, num: 100, den: 1},
		[]mdcUnit{{"263424", "MDC_DIM_X_M"}},
		[]string{"m", "meter", "meters", "metre", "metres"}},
	{Unit{UCUM: "mm", Label: "mm", dim: dimLength, num: 1, den: 10},
		[]mdcUnit{{"263442", "MDC_DIM_MILLI_M"}},
		[]string{"mm", "millimeter", "millimeters", "millimetre", "millimetres"}},
	{Unit{UCUM: "[in_i]", Label: "in", dim: dimLength, num: 2.54, den: 1},
		[]mdcUnit{{"263520", "MDC_DIM_INCH"}, {"", "MDC_DIM_X_INCH"}},
		[]string{"[in_i]", "in", "inch", "inches"}},
	{Unit{UCUM: "[in_us]", Label: "in (US survey)", dim: dimLength, num: 100, den: 39.37},
		nil,
		[]string{"[in_us]"}},

	// Body mass index.
	{Unit{UCUM: "kg/m2", Label: "kg/m²", dim: dimMassPerArea, num: 1, den: 1},
		[]mdcUnit{{"264096", "MDC_DIM_KG_PER_M_SQ"}},
		[]string{"kg/m2", "kg/m^2", "kg/m²", "kg.m-2", "kg m-2"}},

	// Mass concentration, base mg/dL.
	{Unit{UCUM: "mg/dL", Label: "mg/dL", dim: dimMassConc, num: 1, den: 1},
		[]mdcUnit{{"264274", "MDC_DIM_MILLI_G_PER_DL"}},
		[]string{"mg/dL", "mg%", "mg/100mL"}},
	{Unit{UCUM: "g/dL", Label: "g/dL", dim: dimMassConc, num: 1000, den: 1},
		[]mdcUnit{{"264256", "MDC_DIM_X_G_PER_DL"}},
		[]string{"g/dL", "gm/dL", "g%", "gm%", "gms%", "g/100mL"}},
	{Unit{UCUM: "g/L", Label: "g/L", dim: dimMassConc, num: 100, den: 1},
		[]mdcUnit{{"264192", "MDC_DIM_X_G_PER_L"}},
		[]string{"g/L"}},
	{Unit{UCUM: "mg/L", Label: "mg/L", dim: dimMassConc, num: 1, den: 10},
		[]mdcUnit{{"264210", "MDC_DIM_MILLI_G_PER_L"}},
		[]string{"mg/L"}},

	// Substance concentration, base mmol/L.
	{Unit{UCUM: "mmol/L", Label: "mmol/L", dim: dimSubstConc, num: 1, den: 1},
		[]mdcUnit{{"266866", "MDC_DIM_MILLI_MOLE_PER_L"}},
		[]string{"mmol/L"}},
	{Unit{UCUM: "umol/L", Label: "µmol/L", dim: dimSubstConc, num: 1, den: 1000},
		[]mdcUnit{{"266867", "MDC_DIM_MICRO_MOLE_PER_L"}},
		[]string{"umol/L", "µmol/L", "μmol/L", "micromol/L"}},

	// IFCC HbA1c.
	{Unit{UCUM: "mmol/mol", Label: "mmol/mol", dim: dimSubstRatio, num: 1, den: 1},
		nil,
		[]string{"mmol/mol"}},
}

// Lookup indexes over units, built once by init.
var (
	unitByKey  map[string]Unit // folded spelling or MDC ref id or MDC code
	unitByUCUM map[string]Unit // exact UCUM code
	// tableErrs lists problems found while indexing the static tables
	// (duplicate keys). Tests require it to be empty; nothing reads it at
	// run time, so a bad table can never panic the node.
	tableErrs []string
)

func init() {
	unitByKey = make(map[string]Unit)
	unitByUCUM = make(map[string]Unit)
	add := func(key string, u Unit) {
		if old, dup := unitByKey[key]; dup && old != u {
			tableErrs = append(tableErrs, "unit key "+key+" is both "+old.UCUM+" and "+u.UCUM)
			return
		}
		unitByKey[key] = u
	}
	for _, d := range units {
		if _, dup := unitByUCUM[d.unit.UCUM]; dup {
			tableErrs = append(tableErrs, "UCUM code "+d.unit.UCUM+" listed twice")
		}
		unitByUCUM[d.unit.UCUM] = d.unit
		for _, a := range d.aliases {
			add(foldUnit(a), d.unit)
		}
		for _, m := range d.mdc {
			if m.code != "" {
				add(m.code, d.unit)
			}
			add(foldUnit(m.refID), d.unit)
		}
	}
}

// foldUnit is the lookup key of a unit spelling: white space removed and
// ASCII letters folded to lower case. Only ASCII is folded, so a look-alike
// such as the Kelvin sign (U+212A, whose Unicode lower case is "k") stays
// itself and matches nothing.
func foldUnit(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			continue
		case 'A' <= r && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ParseUnit returns the unit that s names. It accepts UCUM codes, MDC unit
// codes and reference ids ("266016", "MDC_DIM_MMHG") and the free text
// devices print ("mmHg", "bpm", "°C", "deg F", "lbs", "mg/dl"), ignoring
// white space and ASCII case. It returns a *UnitError wrapping ErrNoUnit for
// empty text and ErrUnknownUnit for anything else it does not know; it never
// picks the nearest match.
func ParseUnit(s string) (Unit, error) {
	if len(s) > maxText {
		return Unit{}, &UnitError{Unit: clip(s), Detail: "longer than 64 bytes", Err: ErrUnknownUnit}
	}
	if !utf8.ValidString(s) {
		return Unit{}, &UnitError{Unit: s, Detail: "not valid UTF-8", Err: ErrUnknownUnit}
	}
	key := foldUnit(s)
	if key == "" {
		return Unit{}, &UnitError{Unit: s, Err: ErrNoUnit}
	}
	u, ok := unitByKey[key]
	if !ok {
		return Unit{}, &UnitError{Unit: s, Err: ErrUnknownUnit}
	}
	return u, nil
}
