package devices

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices/astm"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/devices/vitals"
)

// DeviceLocation is the zone of a device clock whose timestamps carry no
// offset: India Standard Time. India keeps no daylight saving time, so when
// the system has no time zone database the fixed +05:30 zone is the same.
var DeviceLocation = loadDeviceLocation()

func loadDeviceLocation() *time.Location {
	if loc, err := time.LoadLocation("Asia/Kolkata"); err == nil {
		return loc
	}
	return time.FixedZone("IST", 5*3600+30*60)
}

// maxIDPart caps the part of a MessageID that comes from the device (a
// control ID, a sample ID): a longer one is shortened to a prefix and a hash,
// so two long IDs never collide and a hostile one cannot bloat the index.
const maxIDPart = 64

// ORUMeasurements turns a decoded ORU^R01 into measurements, one per OBX row
// that carries a value, in message order.
//
//   - Code: OBX-3 as sent (identifier and coding system; the text when the
//     identifier is empty). When OBX-3's first triplet is a vendor code and
//     its alternate triplet is LOINC or MDC, the alternate is used: the
//     message itself states they are the same thing.
//   - Value: OBX-5 as text; for an SN value without a comparator ("^112"),
//     its number. Anything else (">^600", "POS") is passed on as sent, and
//     normalization rejects it with a reason.
//   - Unit: OBX-6 identifier (an MDC or UCUM code, or free text), else its text.
//   - At: OBX-14, else OBR-7, else MSH-7 (the codec resolved the order);
//     a timestamp without a zone is read in loc (DeviceLocation when nil).
//   - PatientRef: the first identifier in PID-3 of the observation's own
//     patient group, if any.
//   - MessageID: MSH-10 "/" the OBX segment's position in the message, then
//     "@" and MSH-7 in UTC when the message has one. The time keeps apart
//     two messages with one control ID, as from a monitor whose counter
//     restarts at power-on; a retransmission repeats both and is stored once.
func ORUMeasurements(oru *hl7.ORU, loc *time.Location) []Measurement {
	if oru == nil {
		return nil
	}
	if loc == nil {
		loc = DeviceLocation
	}
	d := oru.Header.Delimiters
	id := idPart(oru.Header.ControlID)
	stamp := ""
	if !oru.Header.Time.IsZero() {
		stamp = "@" + oru.Header.Time.Resolve(loc).UTC().Format("20060102150405.999999999")
	}
	var out []Measurement
	for _, r := range oru.Results {
		ref := ""
		if r.Patient != nil && len(r.Patient.Identifiers) > 0 {
			ref = strings.TrimSpace(r.Patient.Identifiers[0].ID)
		}
		for _, o := range r.Orders {
			for _, obs := range o.Observations {
				value := strings.TrimSpace(obs.ValueText)
				if obs.HasNumber && obs.ValueType == "SN" && strings.IndexByte(obs.Value, d.ComponentSep) >= 0 {
					value = strings.TrimSpace(d.Unescape(d.Component(obs.Value, 2)))
				}
				if value == "" {
					continue
				}
				system, code := oruCode(obs.Code)
				unit := obs.Units.Identifier
				if unit == "" {
					unit = obs.Units.Text
				}
				m := Measurement{
					System:     system,
					Code:       code,
					Value:      value,
					Unit:       strings.TrimSpace(unit),
					At:         obs.Effective.Resolve(loc),
					PatientRef: ref,
				}
				if id != "" {
					m.MessageID = id + "/" + strconv.Itoa(obs.Segment) + stamp
				}
				out = append(out, m)
			}
		}
	}
	return out
}

// oruCode picks the code of an OBX-3.
func oruCode(c hl7.CWE) (system, code string) {
	if !standardSystem(c.CodingSystem) && standardSystem(c.AltCodingSystem) && c.AltIdentifier != "" {
		return c.AltCodingSystem, c.AltIdentifier
	}
	switch {
	case c.Identifier != "":
		return c.CodingSystem, c.Identifier
	case c.Text != "":
		return c.CodingSystem, c.Text
	default:
		return c.AltCodingSystem, c.AltIdentifier
	}
}

// standardSystem reports whether a coding system names LOINC or MDC.
func standardSystem(s string) bool {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "LN", "LNC", "LOINC", "MDC":
		return true
	}
	return false
}

// ASTMMeasurements turns a decoded E1394 message into measurements, one per
// R record with a value, in message order.
//
//   - Code: from the universal test ID. When its type component says
//     LN and its first component is a well-formed LOINC code, that code with
//     system "LN". Otherwise a device code looked up in the device's table
//     codes: the local code (fourth component, "^^^GLU") when codes has it,
//     else the first component when codes has that (Mindray puts its code
//     first: "GLU^Glucose^^F"), else the local code, else the first.
//   - Value: R-4, first component, trimmed. Unit: R-5, trimmed. Bytes
//     that are not UTF-8, in these and the other texts, become U+FFFD (the
//     raw frame keeps them); E1394 does not say which character set it is.
//   - At: R-13 (completed), else O-8 (collected), else H-14. E1394 times
//     carry no zone: their wall clock is read in loc (DeviceLocation when nil).
//   - PatientRef: P-3, the practice-assigned patient ID; when it is empty,
//     P-4, the laboratory-assigned one. Either must match a patient's
//     local ID or ABHA number exactly to bind the reading.
//   - MessageID: the sample ID (O-3, else O-4, else H-3) "/" the R record's
//     position in the message, then "@" and R-13 (else H-14) as sent, so a
//     rerun of the same sample is a new reading and a retransmission is
//     not. Without any sample or message ID, no MessageID: a guessed one
//     could drop a real result as a replay.
func ASTMMeasurements(msg *astm.Message, loc *time.Location, codes map[string]string) []Measurement {
	if msg == nil {
		return nil
	}
	if loc == nil {
		loc = DeviceLocation
	}
	var out []Measurement
	for _, p := range msg.Patients {
		ref := text(firstNonEmpty(p.PracticeID, p.LabID))
		for _, o := range p.Orders {
			key := firstNonEmpty(o.SpecimenID, o.InstrumentSpecimenID, msg.Header.ControlID)
			for _, r := range o.Results {
				value := text(r.Value)
				if value == "" {
					continue
				}
				system, code := astmCode(r.Test, codes)
				at := firstTime(r.CompletedAt, o.CollectedAt, msg.Header.Timestamp)
				m := Measurement{
					System:     text(system),
					Code:       text(code),
					Value:      value,
					Unit:       text(r.Units),
					At:         inLocation(at, loc),
					PatientRef: ref,
				}
				if key != "" {
					m.MessageID = idPart(key) + "/" + strconv.Itoa(r.Record.Num)
					if stamp := firstTime(r.CompletedAt, msg.Header.Timestamp); !stamp.IsZero() {
						m.MessageID += "@" + stamp.Format("20060102150405")
					}
				}
				out = append(out, m)
			}
		}
	}
	return out
}

// astmCode picks the code of a universal test ID.
func astmCode(t astm.TestID, codes map[string]string) (system, code string) {
	universal, local := strings.TrimSpace(t.Universal), strings.TrimSpace(t.Local)
	switch strings.ToUpper(strings.TrimSpace(t.Type)) {
	case "LN", "LNC", "LOINC":
		if vitals.ValidLOINC(universal) {
			return "LN", universal
		}
	}
	if _, ok := codes[local]; ok && local != "" {
		return "", local
	}
	if _, ok := codes[universal]; ok && universal != "" {
		return "", universal
	}
	if local != "" {
		return "", local
	}
	return "", universal
}

// inLocation reads t's wall clock in loc: E1394 times carry no zone, so the
// zone the parser labelled them with says nothing.
func inLocation(t time.Time, loc *time.Location) time.Time {
	if t.IsZero() {
		return t
	}
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// idPart returns a device-given ID for use in a MessageID: as sent when
// short and valid UTF-8, else a readable prefix and a hash of the bytes as
// sent, so that IDs stay distinct.
func idPart(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxIDPart && utf8.ValidString(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	n := min(len(s), maxIDPart/2)
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n-- // do not split a UTF-8 sequence
	}
	return strings.ToValidUTF8(s[:n], "?") + "~" + hex.EncodeToString(sum[:8])
}

// text returns s with bytes that are not UTF-8 replaced by U+FFFD. ASTM
// leaves character sets to the caller; the raw frame keeps the bytes.
func text(s string) string {
	s = strings.TrimSpace(s)
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
