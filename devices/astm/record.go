package astm

import (
	"fmt"
	"strings"
	"time"
)

// Delimiters are the four separators an E1394 message declares in its H
// record, right after the "H": field, repeat, component, escape.
type Delimiters struct {
	Field     byte
	Repeat    byte
	Component byte
	Escape    byte
}

// DefaultDelimiters are the ones E1394 recommends and nearly every analyzer
// uses: H|\^&.
var DefaultDelimiters = Delimiters{Field: '|', Repeat: '\\', Component: '^', Escape: '&'}

// valid reports whether d holds four distinct printable non-alphanumeric
// characters.
func (d Delimiters) valid() bool {
	all := [4]byte{d.Field, d.Repeat, d.Component, d.Escape}
	for i, c := range all {
		if c <= ' ' || c >= 0x7f || isAlnum(c) {
			return false
		}
		for _, o := range all[:i] {
			if o == c {
				return false
			}
		}
	}
	return true
}

// Unescape replaces the escape sequences of E1394 in s: &F& field, &S&
// component, &R& repeat and &E& escape delimiter (written here with the
// default escape character &). Other sequences, such as vendor ones, and a
// lone escape character are kept as they are.
func (d Delimiters) Unescape(s string) string {
	if strings.IndexByte(s, d.Escape) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == d.Escape && i+2 < len(s) && s[i+2] == d.Escape {
			var r byte
			switch s[i+1] {
			case 'F':
				r = d.Field
			case 'S':
				r = d.Component
			case 'R':
				r = d.Repeat
			case 'E':
				r = d.Escape
			}
			if r != 0 {
				b.WriteByte(r)
				i += 2
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// EscapeValue is the inverse of Unescape: it replaces each delimiter in s with
// its escape sequence, for building record text.
func (d Delimiters) EscapeValue(s string) string {
	if !strings.ContainsAny(s, string([]byte{d.Field, d.Component, d.Repeat, d.Escape})) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case d.Field:
			b.WriteString(string([]byte{d.Escape, 'F', d.Escape}))
		case d.Component:
			b.WriteString(string([]byte{d.Escape, 'S', d.Escape}))
		case d.Repeat:
			b.WriteString(string([]byte{d.Escape, 'R', d.Escape}))
		case d.Escape:
			b.WriteString(string([]byte{d.Escape, 'E', d.Escape}))
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// Record is one E1394 record split into fields, exactly as sent: fields keep
// their component and repeat delimiters and their escape sequences. The
// typed records (Header, Patient, ...) are built from it and keep it, so
// anything the typed view leaves out can still be read here.
type Record struct {
	// Num is the 1-based position of the record in its message; 0 marks a
	// placeholder that lenient mode created (see DevImplicitParent).
	Num int
	// Type is the record type letter: H, P, O, R, C, Q, M, S or L.
	Type byte
	// Fields holds the fields as sent. Fields[0] is the record type, so
	// Fields[i] is E1394 field i+1; use Field(n) to index by field number.
	Fields []string
	// Delimiters are those of the message the record belongs to.
	Delimiters Delimiters
}

// Field returns field n (1-based, as the standard numbers them: R-4 is
// Field(4)) as sent, or "" if the record is shorter.
func (r Record) Field(n int) string {
	if n < 1 || n > len(r.Fields) {
		return ""
	}
	return r.Fields[n-1]
}

// Repeats splits field n at the repeat delimiter, without unescaping. It
// returns nil for an empty field.
func (r Record) Repeats(n int) []string {
	f := r.Field(n)
	if f == "" {
		return nil
	}
	if n == 2 && r.Type == 'H' {
		return []string{f} // H-2 holds the delimiters themselves
	}
	return strings.Split(f, string(r.Delimiters.Repeat))
}

// Components splits the first repetition of field n at the component
// delimiter and unescapes each component. It returns nil for an empty field.
func (r Record) Components(n int) []string {
	f := r.Field(n)
	if f == "" {
		return nil
	}
	if n == 2 && r.Type == 'H' {
		return []string{f}
	}
	if i := strings.IndexByte(f, r.Delimiters.Repeat); i >= 0 {
		f = f[:i]
	}
	return splitUnescape(f, r.Delimiters)
}

// Text returns the first component of the first repetition of field n,
// unescaped: the plain value of a field that is not meant to have parts.
func (r Record) Text(n int) string {
	f := r.Field(n)
	if n == 2 && r.Type == 'H' {
		return f
	}
	if i := strings.IndexByte(f, r.Delimiters.Repeat); i >= 0 {
		f = f[:i]
	}
	if i := strings.IndexByte(f, r.Delimiters.Component); i >= 0 {
		f = f[:i]
	}
	return r.Delimiters.Unescape(f)
}

// splitUnescape splits s at the component delimiter and unescapes each part.
func splitUnescape(s string, d Delimiters) []string {
	parts := strings.Split(s, string(d.Component))
	for i, p := range parts {
		parts[i] = d.Unescape(p)
	}
	return parts
}

// parseRecord splits one record line into fields. num is its position in the
// message, for errors. Besides the field count it caps the components and
// repeats of each field at lim.MaxFields, so that a short hostile record
// cannot expand into many allocations later.
func parseRecord(line string, num int, d Delimiters, lim Limits) (Record, error) {
	typ := typeOf(line)
	if len(line) > lim.MaxRecordBytes {
		return Record{}, &RecordError{Record: num, Type: typ, Err: ErrRecordTooLong}
	}
	nf, nc, nr := 1, 1, 1
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case d.Field:
			nf, nc, nr = nf+1, 1, 1
			if nf > lim.MaxFields {
				return Record{}, &RecordError{Record: num, Type: typ, Field: nf, Err: ErrTooManyFields}
			}
		case d.Component:
			nc++
		case d.Repeat:
			nr++
		}
		if nc > lim.MaxFields || nr > lim.MaxFields {
			return Record{}, &RecordError{Record: num, Type: typ, Field: nf, Err: ErrTooManyFields}
		}
	}
	fields := make([]string, 0, nf)
	for {
		i := strings.IndexByte(line, d.Field)
		if i < 0 {
			fields = append(fields, line)
			break
		}
		fields = append(fields, line[:i])
		line = line[i+1:]
	}
	return Record{Num: num, Type: typ, Fields: fields, Delimiters: d}, nil
}

// typeOf returns the record type letter of a record or its first field.
func typeOf(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}

// ParseTime parses an E1394 date or date-time, YYYYMMDD, YYYYMMDDHHMM or
// YYYYMMDDHHMMSS, in loc (the analyzer's clock has no zone; nil means UTC).
// An empty string gives the zero time and no error.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	return parseTime(s, loc, false)
}

// parseTime is ParseTime; lenient also accepts YYYYMMDDHH and surrounding
// spaces.
func parseTime(s string, loc *time.Location, lenient bool) (time.Time, error) {
	if lenient {
		s = strings.TrimSpace(s)
	}
	if s == "" {
		return time.Time{}, nil
	}
	switch len(s) {
	case 8, 12, 14:
	case 10:
		if !lenient {
			return time.Time{}, fmt.Errorf("parse time: %w", ErrTimestamp)
		}
	default:
		return time.Time{}, fmt.Errorf("parse time: %w", ErrTimestamp)
	}
	var v [7]int // year, month, day, hour, minute, second
	widths := [6]int{4, 2, 2, 2, 2, 2}
	pos := 0
	for i, w := range widths {
		if pos >= len(s) {
			break
		}
		n := 0
		for _, c := range []byte(s[pos : pos+w]) {
			if c < '0' || c > '9' {
				return time.Time{}, fmt.Errorf("parse time: %w", ErrTimestamp)
			}
			n = n*10 + int(c-'0')
		}
		v[i] = n
		pos += w
	}
	if v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59 {
		return time.Time{}, fmt.Errorf("parse time: %w", ErrTimestamp)
	}
	if loc == nil {
		loc = time.UTC
	}
	t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, loc)
	if t.Day() != v[2] { // 31 April and the like roll over; reject them
		return time.Time{}, fmt.Errorf("parse time: %w", ErrTimestamp)
	}
	return t, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}
