package senml

import (
	"encoding/json"
	"unicode/utf8"
)

// scanEnvelope reads an envelope written in its plain form, the one devices
// send: each field name once and spelt as documented, strings without
// escapes, and a value that is a number or such a string. It is several
// times cheaper than encoding/json, which an envelope goes through at every
// MQTT publish. Anything else (an escape, another spelling of a field name,
// null, a repeated or unknown field, data after the object, a syntax error)
// returns ok false, and the caller decodes with encoding/json, which reads
// every form and words every error. When ok, env is what encoding/json
// would have decoded: FuzzScanEnvelope checks that they agree.
func scanEnvelope(p []byte) (env Envelope, ok bool) {
	s := envelopeScanner{p: p}
	if !s.byte('{') {
		return env, false
	}
	if s.byte('}') {
		return env, s.end()
	}
	var seen uint8
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return env, false
		}
		var bit uint8
		switch key {
		case "message_id":
			bit = 1 << 0
			env.MessageID, ok = s.str()
		case "device":
			bit = 1 << 1
			env.Device, ok = s.str()
		case "patient":
			bit = 1 << 2
			env.Patient, ok = s.str()
		case "time":
			bit = 1 << 3
			env.Time, ok = s.str()
		case "readings":
			bit = 1 << 4
			env.Readings, ok = s.readings()
		}
		if !ok || bit == 0 || seen&bit != 0 {
			return env, false
		}
		seen |= bit
		if s.byte(',') {
			continue
		}
		if s.byte('}') {
			return env, s.end()
		}
		return env, false
	}
}

// envelopeScanner reads the plain form of an envelope from p.
type envelopeScanner struct {
	p []byte
	i int
}

// space skips JSON white space.
func (s *envelopeScanner) space() {
	for s.i < len(s.p) {
		switch s.p[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c, after white space, if it comes next.
func (s *envelopeScanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.p) && s.p[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *envelopeScanner) end() bool {
	s.space()
	return s.i == len(s.p)
}

// quoted consumes a string without escapes and returns it with its quotes.
func (s *envelopeScanner) quoted() ([]byte, bool) {
	s.space()
	if s.i >= len(s.p) || s.p[s.i] != '"' {
		return nil, false
	}
	start := s.i
	ascii := true
	for s.i++; s.i < len(s.p); s.i++ {
		switch c := s.p[s.i]; {
		case c == '"':
			s.i++
			lit := s.p[start:s.i]
			return lit, ascii || utf8.Valid(lit)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// str consumes a string without escapes.
func (s *envelopeScanner) str() (string, bool) {
	lit, ok := s.quoted()
	if !ok {
		return "", false
	}
	return string(lit[1 : len(lit)-1]), true
}

// number consumes a JSON number and returns its text.
func (s *envelopeScanner) number() ([]byte, bool) {
	s.space()
	p, start := s.p, s.i
	digits := func() int {
		n := 0
		for s.i < len(p) && p[s.i] >= '0' && p[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(p) && p[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(p) && p[s.i] == '0':
		s.i++
	case digits() == 0:
		return nil, false
	}
	if s.i < len(p) && p[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if s.i < len(p) && (p[s.i] == 'e' || p[s.i] == 'E') {
		s.i++
		if s.i < len(p) && (p[s.i] == '+' || p[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return p[start:s.i], true
}

// readings consumes the readings array.
func (s *envelopeScanner) readings() ([]EnvelopeReading, bool) {
	if !s.byte('[') {
		return nil, false
	}
	rs := []EnvelopeReading{}
	if s.byte(']') {
		return rs, true
	}
	for {
		r, ok := s.reading()
		if !ok {
			return nil, false
		}
		rs = append(rs, r)
		if s.byte(',') {
			continue
		}
		return rs, s.byte(']')
	}
}

// reading consumes one object of the readings array.
func (s *envelopeScanner) reading() (r EnvelopeReading, ok bool) {
	if !s.byte('{') {
		return r, false
	}
	if s.byte('}') {
		return r, true
	}
	var seen uint8
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return r, false
		}
		var bit uint8
		switch key {
		case "loinc":
			bit = 1 << 0
			r.LOINC, ok = s.str()
		case "mdc":
			bit = 1 << 1
			r.MDC, ok = s.str()
		case "code":
			bit = 1 << 2
			r.Code, ok = s.str()
		case "unit":
			bit = 1 << 3
			r.Unit, ok = s.str()
		case "time":
			bit = 1 << 4
			r.Time, ok = s.str()
		case "value":
			bit = 1 << 5
			var lit []byte
			if s.space(); s.i < len(s.p) && s.p[s.i] == '"' {
				lit, ok = s.quoted()
			} else {
				lit, ok = s.number()
			}
			r.Value = json.RawMessage(append([]byte(nil), lit...))
		}
		if !ok || bit == 0 || seen&bit != 0 {
			return r, false
		}
		seen |= bit
		if s.byte(',') {
			continue
		}
		return r, s.byte('}')
	}
}
