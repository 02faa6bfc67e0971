package senml

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/healthpost/healthpost/devices"
)

// Envelope is the healthpost JSON envelope as a device sends it. The README
// in this directory is its specification for device makers.
type Envelope struct {
	// MessageID is the device's own ID for this message, unique among
	// everything it ever sends (a counter, a UUID). A message sent again
	// after an outage with the same ID is stored once. Required.
	MessageID string `json:"message_id"`
	// Device is the device's registered name. Optional; when present it
	// must match the name the device logged in with.
	Device string `json:"device,omitempty"`
	// Patient is the patient identifier the reading belongs to: the
	// facility's ID from the OPD slip (P-000123) or a 14-digit ABHA number.
	// Optional; without it the reading binds to the patient a health worker
	// chose for the device, or waits in the inbox.
	Patient string `json:"patient,omitempty"`
	// Time is when the readings were taken, RFC 3339 with a zone offset.
	// Optional; without it the node's receive time is used.
	Time string `json:"time,omitempty"`
	// Readings are the values, at least one.
	Readings []EnvelopeReading `json:"readings"`
}

// EnvelopeReading is one value of an Envelope.
type EnvelopeReading struct {
	// Exactly one of LOINC, MDC and Code names what was measured: a LOINC
	// code ("8480-6"), an IEEE 11073 MDC code ("150021" or
	// "MDC_PRESS_BLD_NONINV_SYS"), or a vendor code that the device's code
	// table in the registry maps to LOINC.
	LOINC string `json:"loinc,omitempty"`
	MDC   string `json:"mdc,omitempty"`
	Code  string `json:"code,omitempty"`
	// Value is a JSON number (128, 36.6) or a string holding one ("36.6").
	Value json.RawMessage `json:"value"`
	// Unit is the unit, preferably UCUM ("mm[Hg]", "Cel", "%", "/min",
	// "kg"); common spellings ("mmHg", "bpm", "°C") are understood.
	Unit string `json:"unit,omitempty"`
	// Time overrides the envelope's time for this value.
	Time string `json:"time,omitempty"`
}

// DecodeEnvelope decodes a healthpost JSON envelope into measurements, the
// i-th reading (1-based) getting the message ID "<message_id>/<i>". device
// is the registered name of the sender; an envelope naming another device is
// refused. Unknown fields are refused, so that a misspelt "patient" is an
// error rather than a reading silently left without its patient.
func DecodeEnvelope(payload []byte, device string) ([]devices.Measurement, error) {
	if err := checkPayload("envelope", payload); err != nil {
		return nil, err
	}
	fail := func(rec int, field, problem string, err error) ([]devices.Measurement, error) {
		return nil, &Error{Format: "envelope", Record: rec, Field: field, Problem: problem, Err: err}
	}
	if firstByte(payload) != '{' {
		return fail(0, "", "the envelope is a JSON object", ErrNotEnvelope)
	}
	env, ok := scanEnvelope(payload)
	if !ok {
		env = Envelope{}
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil {
			if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				name, _ := strconv.Unquote(f)
				return fail(0, clip(name, 32), "unknown field; see the envelope's documentation for the field names", ErrNotEnvelope)
			}
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return fail(0, clip(te.Field, 32), fmt.Sprintf("wrong JSON type (%s)", te.Value), ErrNotEnvelope)
			}
			return fail(0, "", jsonProblem(err), ErrNotJSON)
		}
		if _, err := dec.Token(); err != io.EOF {
			return fail(0, "", "data after the envelope object", ErrNotJSON)
		}
	}

	if env.MessageID == "" {
		return fail(0, "message_id", "required: the device's unique ID for this message, so a replay is stored once", ErrNotEnvelope)
	}
	if len(env.MessageID) > MaxMessageID {
		return fail(0, "message_id", fmt.Sprintf("longer than %d bytes", MaxMessageID), ErrNotEnvelope)
	}
	for i := 0; i < len(env.MessageID); i++ {
		if c := env.MessageID[i]; c <= ' ' || c > '~' {
			return fail(0, "message_id", "may hold only printable ASCII without spaces", ErrNotEnvelope)
		}
	}
	if p := checkString(env.Device, MaxString); p != "" {
		return fail(0, "device", p, ErrNotEnvelope)
	}
	if env.Device != "" && device != "" && env.Device != device {
		return fail(0, "device", fmt.Sprintf("names device %q but the message came from %q", clip(env.Device, 64), device), ErrNotEnvelope)
	}
	patient := strings.TrimSpace(env.Patient)
	if p := checkString(patient, MaxPatientRef); p != "" {
		return fail(0, "patient", p, ErrNotEnvelope)
	}
	var at time.Time
	if env.Time != "" {
		var err error
		if at, err = parseTime(env.Time); err != nil {
			return fail(0, "time", err.Error(), ErrNotEnvelope)
		}
	}
	if len(env.Readings) == 0 {
		return fail(0, "readings", "at least one reading is required", ErrNoMeasurement)
	}
	if len(env.Readings) > MaxRecords {
		return fail(0, "readings", fmt.Sprintf("%d readings, more than the %d allowed", len(env.Readings), MaxRecords), ErrTooManyRecords)
	}

	ms := make([]devices.Measurement, 0, len(env.Readings))
	for i, r := range env.Readings {
		rec := i + 1
		m := devices.Measurement{At: at, PatientRef: patient, MessageID: env.MessageID + "/" + strconv.Itoa(rec)}
		codes := 0
		for _, c := range []struct{ field, value, system string }{{"loinc", r.LOINC, "LN"}, {"mdc", r.MDC, "MDC"}, {"code", r.Code, ""}} {
			if c.value == "" {
				continue
			}
			if p := checkString(c.value, 64); p != "" {
				return fail(rec, c.field, p, ErrNotEnvelope)
			}
			codes++
			m.System, m.Code = c.system, c.value
		}
		if codes != 1 {
			return fail(rec, "", "each reading needs exactly one of loinc, mdc and code", ErrNotEnvelope)
		}
		lit := strings.TrimSpace(string(r.Value))
		switch {
		case lit == "" || lit == "null":
			return fail(rec, "value", "required", ErrNotEnvelope)
		case lit[0] == '"':
			var s string
			if err := json.Unmarshal(r.Value, &s); err != nil {
				return fail(rec, "value", "must be a number or a string", ErrNotEnvelope)
			}
			if s = strings.TrimSpace(s); s == "" {
				return fail(rec, "value", "empty", ErrNotEnvelope)
			}
			if p := checkString(s, 64); p != "" {
				return fail(rec, "value", p, ErrNotEnvelope)
			}
			m.Value = s
		case lit[0] == '-' || lit[0] >= '0' && lit[0] <= '9':
			text, ok := numberText(lit)
			if !ok {
				return fail(rec, "value", "number out of range", ErrNotEnvelope)
			}
			m.Value = text
		default:
			return fail(rec, "value", "must be a number or a string", ErrNotEnvelope)
		}
		if p := checkString(r.Unit, 64); p != "" {
			return fail(rec, "unit", p, ErrNotEnvelope)
		}
		m.Unit = r.Unit
		if r.Time != "" {
			t, err := parseTime(r.Time)
			if err != nil {
				return fail(rec, "time", err.Error(), ErrNotEnvelope)
			}
			m.At = t
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// parseTime reads an RFC 3339 time with a zone offset.
func parseTime(s string) (time.Time, error) {
	if len(s) > 64 {
		return time.Time{}, errors.New("not an RFC 3339 time")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("not an RFC 3339 time with a zone, like 2026-03-14T10:16:00+05:30")
	}
	return t, nil
}
