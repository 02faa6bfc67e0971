package senml

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices"
)

// Caps on what a device may send. A payload over a cap is refused whole; it
// is never truncated.
const (
	// MaxPayload is the largest payload decoded, in bytes. A BP monitor's
	// message is a few hundred bytes; an analyzer's panel a few kilobytes.
	MaxPayload = 64 << 10
	// MaxRecords is the most SenML records or envelope readings in one payload.
	MaxRecords = 256
	// MaxString is the longest string field (a SenML name after the base name
	// is added, a unit, a string value, a code), in bytes.
	MaxString = 256
	// MaxMessageID is the longest envelope message_id, in bytes.
	MaxMessageID = 128
	// MaxPatientRef is the longest envelope patient identifier, in bytes.
	MaxPatientRef = 64
	// SupportedVersion is the highest SenML version (bver) read: RFC 8428's.
	SupportedVersion = 10
)

// Codec names, as in edge.DeviceCodecs.
const (
	CodecSenML = "senml" // RFC 8428 SenML JSON
	CodecJSON  = "json"  // the healthpost JSON envelope
	CodecAuto  = "auto"  // a JSON array is SenML, a JSON object the envelope
)

// Why a payload was refused. Every error this package returns is an *Error
// wrapping one of these.
var (
	ErrTooLarge         = errors.New("payload too large")
	ErrInvalidUTF8      = errors.New("payload is not valid UTF-8")
	ErrNotJSON          = errors.New("payload is not JSON")
	ErrNotSenML         = errors.New("payload is not SenML")
	ErrNotEnvelope      = errors.New("payload is not a healthpost JSON envelope")
	ErrTooManyRecords   = errors.New("too many records")
	ErrNoMeasurement    = errors.New("payload holds no measurement")
	ErrUnsupportedCodec = errors.New("codec cannot be carried over MQTT")
)

// Error says why a payload was refused: the format, the record (1-based; 0
// for the payload as a whole), the JSON field and the problem. It never
// quotes a value, a patient identifier or a time from the payload, so it may
// be logged and shown on the device page.
type Error struct {
	Format  string // "SenML" or "envelope"
	Record  int
	Field   string
	Problem string
	Err     error // one of the sentinels above
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Format)
	if e.Record > 0 {
		fmt.Fprintf(&b, " record %d", e.Record)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Decode reads payload with codec (CodecSenML, CodecJSON or CodecAuto) and
// returns its measurements and the format it found (CodecSenML or
// CodecJSON), to record as the readings' codec. device is the registered
// name of the device that sent it: an envelope naming another device is
// refused. now resolves SenML relative times.
func Decode(codec string, payload []byte, device string, now time.Time) ([]devices.Measurement, string, error) {
	switch codec {
	case CodecSenML:
		ms, err := DecodeSenML(payload, now)
		return ms, CodecSenML, err
	case CodecJSON:
		ms, err := DecodeEnvelope(payload, device)
		return ms, CodecJSON, err
	case CodecAuto, "":
		if err := checkPayload("payload", payload); err != nil {
			return nil, "", err
		}
		switch firstByte(payload) {
		case '[':
			ms, err := DecodeSenML(payload, now)
			return ms, CodecSenML, err
		case '{':
			ms, err := DecodeEnvelope(payload, device)
			return ms, CodecJSON, err
		}
		return nil, "", &Error{Format: "payload", Err: ErrNotJSON,
			Problem: "neither SenML (a JSON array of records) nor the healthpost envelope (a JSON object)"}
	}
	return nil, "", &Error{Format: "payload", Err: ErrUnsupportedCodec,
		Problem: fmt.Sprintf("codec %q is not read over MQTT; set the device's codec to senml, json or auto", clip(codec, 16))}
}

// checkPayload applies the caps every format shares.
func checkPayload(format string, payload []byte) error {
	if len(payload) > MaxPayload {
		return &Error{Format: format, Err: ErrTooLarge, Problem: fmt.Sprintf("%d bytes, more than the %d allowed", len(payload), MaxPayload)}
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		return &Error{Format: format, Err: ErrNotJSON, Problem: "empty payload"}
	}
	if !utf8.Valid(payload) {
		return &Error{Format: format, Err: ErrInvalidUTF8, Problem: "invalid UTF-8; JSON must be UTF-8"}
	}
	return nil
}

// firstByte is the first byte of payload that is not JSON white space.
func firstByte(payload []byte) byte {
	t := bytes.TrimLeft(payload, " \t\r\n")
	if len(t) == 0 {
		return 0
	}
	return t[0]
}

// checkString applies the string caps: length and no control characters.
func checkString(s string, max int) string {
	if len(s) > max {
		return fmt.Sprintf("longer than %d bytes", max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return "contains a control character"
		}
	}
	return ""
}

// numberText turns a JSON number literal into the decimal text the vitals
// package parses: the literal itself when it has no exponent, else the
// shortest plain decimal of its value.
func numberText(lit string) (string, bool) {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return "", false
	}
	if !strings.ContainsAny(lit, "eE") {
		return lit, true
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// clip cuts s to at most n bytes on a rune boundary, for quoting a name
// (never a value) in an error.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
