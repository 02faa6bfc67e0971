package line

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/vitals"
)

// Decoder turns lines into measurements with a device's pattern. It is safe
// for concurrent use.
type Decoder struct {
	re    *regexp.Regexp
	code  string            // Settings.Code
	unit  string            // Settings.Unit
	codes map[string]string // Settings.Codes, read only

	value, unitGroup, codeGroup, patient int // subexpression indexes, -1 when absent
}

// NewDecoder returns a decoder for a device's settings: Pattern must compile
// and have a value group; Code or a code group says what is measured. The
// settings are those devices.ParseSettings checked; errors name the setting.
func NewDecoder(st devices.Settings) (*Decoder, error) {
	if st.Pattern == "" {
		return nil, fmt.Errorf("line decoder: no pattern; set \"pattern\", for example WT:\\s*(?P<value>[0-9.]+)\\s*(?P<unit>kg|lb)")
	}
	re, err := regexp.Compile(st.Pattern)
	if err != nil {
		return nil, fmt.Errorf("line decoder: pattern does not compile: %w", err)
	}
	d := &Decoder{
		re: re, code: strings.TrimSpace(st.Code), unit: strings.TrimSpace(st.Unit), codes: st.Codes,
		value: re.SubexpIndex("value"), unitGroup: re.SubexpIndex("unit"),
		codeGroup: re.SubexpIndex("code"), patient: re.SubexpIndex("patient"),
	}
	if d.value < 0 {
		return nil, fmt.Errorf("line decoder: pattern has no (?P<value>...) group")
	}
	if d.code == "" && d.codeGroup < 0 {
		return nil, fmt.Errorf("line decoder: set \"code\" (a LOINC code such as 29463-7) or a (?P<code>...) group")
	}
	return d, nil
}

// Decode turns one line into a measurement taken at at (lines carry no time
// of their own: the caller passes the time the line arrived).
//
//   - Value: the value group, trimmed; a sign padded away from its digits
//     ("+  4.876", as A&D scales print) is joined to them.
//   - Unit: the unit group when it matched, else Settings.Unit.
//   - Code: the code group when it matched, else Settings.Code. A code in
//     the device's table (Settings.Codes) is looked up there (system ""); a
//     well-formed LOINC code otherwise has system "LN"; anything else goes
//     to the table lookup and fails there as unknown.
//   - PatientRef: an optional patient group, for devices that print an ID.
//
// Errors: ErrNotText, ErrNoMatch, ErrNoValue, ErrNoCode. They never quote
// the line.
func (d *Decoder) Decode(line []byte, at time.Time) (devices.Measurement, error) {
	if !utf8.Valid(line) {
		return devices.Measurement{}, ErrNotText
	}
	m := d.re.FindSubmatchIndex(line)
	if m == nil {
		return devices.Measurement{}, ErrNoMatch
	}
	group := func(i int) string {
		if i < 0 || 2*i+1 >= len(m) || m[2*i] < 0 {
			return ""
		}
		return strings.TrimSpace(string(line[m[2*i]:m[2*i+1]]))
	}
	value := joinSign(group(d.value))
	if value == "" {
		return devices.Measurement{}, ErrNoValue
	}
	unit := group(d.unitGroup)
	if unit == "" {
		unit = d.unit
	}
	code := group(d.codeGroup)
	if code == "" {
		code = d.code
	}
	if code == "" {
		return devices.Measurement{}, ErrNoCode
	}
	system := ""
	if _, local := d.codes[code]; !local && vitals.ValidLOINC(code) {
		system = "LN"
	}
	return devices.Measurement{System: system, Code: code, Value: value, Unit: unit, At: at, PatientRef: group(d.patient)}, nil
}

// joinSign removes the padding between a leading sign and the digits.
func joinSign(v string) string {
	if len(v) > 1 && (v[0] == '+' || v[0] == '-') {
		return v[:1] + strings.TrimLeft(v[1:], " \t")
	}
	return v
}
