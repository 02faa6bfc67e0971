package hl7

import (
	"strings"
	"unicode/utf8"
)

// Delimiters are the separators a message declares in MSH-1 and MSH-2. A
// zero byte means the message did not declare that character (some devices
// send MSH-2 as "^~&", with no escape character).
type Delimiters struct {
	FieldSep        byte // MSH-1, usually '|'
	ComponentSep    byte // usually '^'
	RepetitionSep   byte // usually '~'
	EscapeChar      byte // usually '\\'
	SubcomponentSep byte // usually '&'
}

// DefaultDelimiters are the separators HL7 recommends, "|^~\&".
var DefaultDelimiters = Delimiters{FieldSep: '|', ComponentSep: '^', RepetitionSep: '~', EscapeChar: '\\', SubcomponentSep: '&'}

// parseDelimiters reads MSH-1 (sep) and MSH-2 (enc). Two device quirks are
// accepted: "^~&" (the escape character left out, so '&' keeps its usual
// subcomponent role) and "^~\\&" (the escape character doubled).
func parseDelimiters(sep byte, enc string) (Delimiters, bool) {
	switch {
	case len(enc) == 3 && enc[2] == '&':
		enc = enc[:2] + "\x00&"
	case len(enc) == 5 && enc[2] == enc[3]:
		enc = enc[:3] + enc[4:]
	}
	if len(enc) < 2 || len(enc) > 5 {
		return Delimiters{}, false
	}
	d := Delimiters{FieldSep: sep, ComponentSep: enc[0], RepetitionSep: enc[1]}
	if len(enc) > 2 {
		d.EscapeChar = enc[2]
	}
	if len(enc) > 3 {
		d.SubcomponentSep = enc[3]
	}
	// The fifth character, when present, is the v2.7 truncation character;
	// this package does not use it, but it must not clash with the others.
	var trunc byte
	if len(enc) == 5 {
		trunc = enc[4]
	}
	seen := [6]byte{d.FieldSep, d.ComponentSep, d.RepetitionSep, d.EscapeChar, d.SubcomponentSep, trunc}
	for i, c := range seen {
		if c == 0 && i >= 3 {
			continue
		}
		if !isDelimiterByte(c) {
			return Delimiters{}, false
		}
		for _, o := range seen[:i] {
			if o == c {
				return Delimiters{}, false
			}
		}
	}
	return d, true
}

// isDelimiterByte reports whether c may serve as a separator: printable
// ASCII, neither a letter, a digit nor a space.
func isDelimiterByte(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9')
}

// encodingCharacters returns MSH-2 as these delimiters would write it.
func (d Delimiters) encodingCharacters() string {
	b := make([]byte, 0, 4)
	for _, c := range []byte{d.ComponentSep, d.RepetitionSep, d.EscapeChar, d.SubcomponentSep} {
		if c != 0 {
			b = append(b, c)
		}
	}
	return string(b)
}

// Component returns the n-th (1-based) component of a field or repetition,
// as received: escape sequences are not decoded. It returns "" when there is
// no such component.
func (d Delimiters) Component(s string, n int) string { return nth(s, d.ComponentSep, n) }

// Subcomponent returns the n-th (1-based) subcomponent of a component, as
// received.
func (d Delimiters) Subcomponent(s string, n int) string { return nth(s, d.SubcomponentSep, n) }

// Repetition returns the n-th (1-based) repetition of a field, as received.
func (d Delimiters) Repetition(s string, n int) string { return nth(s, d.RepetitionSep, n) }

// nth returns the n-th (1-based) part of s split on sep, without allocating.
func nth(s string, sep byte, n int) string {
	if n < 1 {
		return ""
	}
	if sep == 0 {
		if n == 1 {
			return s
		}
		return ""
	}
	for i := 1; i < n; i++ {
		j := strings.IndexByte(s, sep)
		if j < 0 {
			return ""
		}
		s = s[j+1:]
	}
	if j := strings.IndexByte(s, sep); j >= 0 {
		return s[:j]
	}
	return s
}

// Unescape decodes the HL7 escape sequences in s: \F\ \S\ \T\ \R\ \E\ become
// the field, component, subcomponent, repetition and escape characters, \Xhh..\
// becomes the bytes it spells (read as UTF-8 when they are valid UTF-8, as
// ISO-8859-1 otherwise), \.br\ becomes a newline, and any other sequence
// (formatting such as \H\ \N\ \.sp\, charset switches \C..\ \M..\, local \Z..\,
// malformed hex) is dropped. An escape character with no closing partner is
// kept literally. Call it on one component or subcomponent at a time: a
// decoded \S\ is indistinguishable from a component separator.
func (d Delimiters) Unescape(s string) string {
	e := d.EscapeChar
	if e == 0 || strings.IndexByte(s, e) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	var hex []byte // bytes of consecutive \X..\ sequences, decoded together
	flush := func() {
		if len(hex) == 0 {
			return
		}
		if utf8.Valid(hex) {
			b.Write(hex)
		} else {
			for _, c := range hex {
				b.WriteRune(rune(c))
			}
		}
		hex = hex[:0]
	}
	writeDelim := func(c byte) {
		flush()
		if c != 0 {
			b.WriteByte(c)
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != e {
			flush()
			b.WriteByte(c)
			i++
			continue
		}
		j := strings.IndexByte(s[i+1:], e)
		if j < 0 {
			flush()
			b.WriteString(s[i:])
			break
		}
		seq := s[i+1 : i+1+j]
		i += j + 2
		switch seq {
		case "F":
			writeDelim(d.FieldSep)
		case "S":
			writeDelim(d.ComponentSep)
		case "T":
			writeDelim(d.SubcomponentSep)
		case "R":
			writeDelim(d.RepetitionSep)
		case "E":
			writeDelim(d.EscapeChar)
		case ".br":
			writeDelim('\n')
		default:
			if v, ok := decodeHex(hex, seq); ok {
				hex = v
				continue
			}
			flush()
		}
	}
	flush()
	return b.String()
}

// decodeHex appends the bytes of an "Xhhhh" escape body to dst.
func decodeHex(dst []byte, seq string) ([]byte, bool) {
	if len(seq) < 3 || seq[0] != 'X' || len(seq)%2 != 1 {
		return dst, false
	}
	for i := 1; i < len(seq); i += 2 {
		hi, ok1 := unhex(seq[i])
		lo, ok2 := unhex(seq[i+1])
		if !ok1 || !ok2 {
			return dst, false
		}
		dst = append(dst, hi<<4|lo)
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Escape encodes s for use inside one component: each delimiter becomes its
// escape sequence (\F\ \S\ \T\ \R\ \E\) and each run of control characters
// (CR, LF, ...) becomes a \Xhh..\ sequence, so Unescape(Escape(s)) == s for
// valid UTF-8. When the message declared no escape character, delimiters and
// control characters are replaced by spaces instead.
func (d Delimiters) Escape(s string) string {
	needs := false
	for i := 0; i < len(s); i++ {
		if d.special(s[i]) {
			needs = true
			break
		}
	}
	if !needs {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !d.special(c) {
			b.WriteByte(c)
			continue
		}
		if d.EscapeChar == 0 {
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(d.EscapeChar)
		switch {
		case isControl(c):
			b.WriteByte('X')
			for ; i < len(s) && isControl(s[i]); i++ {
				b.WriteByte(hexDigits[s[i]>>4])
				b.WriteByte(hexDigits[s[i]&0x0f])
			}
			i--
		case c == d.FieldSep:
			b.WriteByte('F')
		case c == d.ComponentSep:
			b.WriteByte('S')
		case c == d.SubcomponentSep:
			b.WriteByte('T')
		case c == d.RepetitionSep:
			b.WriteByte('R')
		default: // the escape character itself
			b.WriteByte('E')
		}
		b.WriteByte(d.EscapeChar)
	}
	return b.String()
}

// special reports whether c must be escaped.
func (d Delimiters) special(c byte) bool {
	if isControl(c) {
		return true
	}
	return c == d.FieldSep || c == d.ComponentSep || c == d.RepetitionSep ||
		(d.EscapeChar != 0 && c == d.EscapeChar) || (d.SubcomponentSep != 0 && c == d.SubcomponentSep)
}

func isControl(c byte) bool { return c < 0x20 || c == 0x7f }
