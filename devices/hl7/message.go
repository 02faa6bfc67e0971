package hl7

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on what one message may hold. Real ORU^R01 messages stay far below
// them (an IHE PCD-01 monitor sends tens of segments, OBR has 50 fields at
// most, PID-3 a handful of identifiers); past them parsing stops with an error
// wrapping ErrTooMany rather than allocating for a hostile input.
const (
	MaxSegments    = 10000 // segments in one message
	MaxFields      = 256   // fields in one segment
	MaxRepetitions = 100   // repetitions of one field that this package splits (PID-3, OBX-8)
)

// Operation names used in ParseError.Op.
const (
	opParse  = "parse HL7"
	opORU    = "decode ORU^R01"
	opHeader = "parse HL7 header"
)

// Message is a tokenized HL7 v2 message: its segments, each split into
// fields exactly as received. It exists so callers can reach fields that
// ParseORU does not decode; use Delimiters to split and unescape them.
type Message struct {
	Delimiters Delimiters
	Segments   []Segment // Segments[0] is the MSH

	// Latin1 is true when the bytes were not valid UTF-8 and were read as
	// ISO-8859-1 instead; every string in the message is valid UTF-8 either way.
	Latin1 bool
}

// Segment is one segment of a message.
type Segment struct {
	ID string // "MSH", "OBX", ...

	// Fields[n] is HL7 field n as received, escape sequences not decoded;
	// Fields[0] is the segment ID. In MSH, Fields[1] is the field separator
	// and Fields[2] the encoding characters, so numbering matches the standard.
	Fields []string
}

// Field returns field n as received, or "" when the segment is shorter.
func (s Segment) Field(n int) string {
	if n < 0 || n >= len(s.Fields) {
		return ""
	}
	return s.Fields[n]
}

// Parse tokenizes an HL7 v2 message of any type: it reads the delimiters
// from the MSH, splits segments on CR, LF or CRLF (blank lines are skipped),
// and splits each segment into fields. It checks segment IDs and the limits
// but not the grammar of any message type; see ParseORU for that. Errors are
// *ParseError.
func Parse(data []byte) (*Message, error) { return parse(data, opParse) }

func parse(data []byte, op string) (*Message, error) {
	s, latin1 := decodeText(data)
	return parseText(s, latin1, op)
}

// parseText tokenizes a message already decoded to UTF-8.
func parseText(s string, latin1 bool, op string) (*Message, error) {
	m := &Message{Latin1: latin1}

	var fields []string // one backing array for every segment's fields
	var ends []int      // ends[i] is where segment i's fields end in fields
	n := 0
	for rest := s; rest != ""; {
		line := nextLine(&rest)
		if line == "" {
			continue
		}
		n++
		if n > MaxSegments {
			return nil, &ParseError{Op: op, Segment: n, Err: fmt.Errorf("%w: more than %d segments", ErrTooMany, MaxSegments)}
		}
		if n == 1 {
			d, err := parseMSH(line)
			if err != nil {
				err.Op = op
				return nil, err
			}
			m.Delimiters = d
			// Size the arrays once: every field ends at a separator or a
			// line end, so this bounds what the loop appends, and the caps
			// bound it again.
			lines := strings.Count(s, "\r") + strings.Count(s, "\n") + 1
			nf := strings.Count(s, line[3:4]) + lines + 1
			fields = make([]string, 0, min(nf, lines*(MaxFields+2), MaxSegments*(MaxFields+2)))
			ends = make([]int, 0, min(lines, MaxSegments+1))
			// "MSH" "|" "^~\&" then the fields after MSH-2.
			fields = append(fields, line[:3], line[3:4])
			enc, after, found := strings.Cut(line[4:], line[3:4])
			fields = append(fields, enc)
			if found {
				var ok bool
				if fields, ok = appendSplit(fields, after, d.FieldSep, MaxFields-2); !ok {
					return nil, tooManyFields(op, n, "MSH", 1)
				}
			}
		} else {
			id, after, found := line, "", false
			if i := strings.IndexByte(line, m.Delimiters.FieldSep); i >= 0 {
				id, after, found = line[:i], line[i+1:], true
			}
			if !validSegmentID(id) {
				return nil, &ParseError{Op: op, Segment: n, Err: ErrBadSegmentID}
			}
			fields = append(fields, id)
			if found {
				var ok bool
				if fields, ok = appendSplit(fields, after, m.Delimiters.FieldSep, MaxFields); !ok {
					return nil, tooManyFields(op, n, id, occurrence(fields, ends, id))
				}
			}
		}
		ends = append(ends, len(fields))
	}
	if n == 0 {
		return nil, &ParseError{Op: op, Err: ErrNoMSH}
	}
	m.Segments = make([]Segment, len(ends))
	start := 0
	for i, end := range ends {
		f := fields[start:end:end]
		m.Segments[i] = Segment{ID: f[0], Fields: f}
		start = end
	}
	return m, nil
}

// parseMSH reads the delimiters from the first line of a message.
func parseMSH(line string) (Delimiters, *ParseError) {
	if !strings.HasPrefix(line, "MSH") {
		return Delimiters{}, &ParseError{Segment: 1, Err: ErrNoMSH}
	}
	if len(line) < 4 || !isDelimiterByte(line[3]) {
		return Delimiters{}, &ParseError{Segment: 1, SegmentID: "MSH", Occurrence: 1, Field: 1, Err: ErrBadDelimiters}
	}
	enc, _, _ := strings.Cut(line[4:], line[3:4])
	d, ok := parseDelimiters(line[3], enc)
	if !ok {
		return Delimiters{}, &ParseError{Segment: 1, SegmentID: "MSH", Occurrence: 1, Field: 2, Err: ErrBadDelimiters}
	}
	return d, nil
}

// decodeText turns the raw bytes into the string the parser works on. It
// drops MLLP framing bytes and a UTF-8 byte order mark left around the
// message, and reads bytes that are not valid UTF-8 as ISO-8859-1 (the usual
// charset of older analyzers, whatever MSH-18 says).
func decodeText(data []byte) (string, bool) {
	for len(data) > 0 && data[0] == mllpStart {
		data = data[1:]
	}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		data = data[3:]
	}
	for len(data) > 0 {
		if c := data[len(data)-1]; c == mllpEnd || c == '\r' || c == '\n' {
			data = data[:len(data)-1]
			continue
		}
		break
	}
	if utf8.Valid(data) {
		return string(data), false
	}
	var b strings.Builder
	b.Grow(len(data) + len(data)/8)
	for _, c := range data {
		b.WriteRune(rune(c))
	}
	return b.String(), true
}

// nextLine cuts the next line off *rest. Lines end at CR or LF, so CRLF
// leaves an empty line behind, which the caller skips.
func nextLine(rest *string) string {
	s := *rest
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			*rest = s[i+1:]
			return s[:i]
		}
	}
	*rest = ""
	return s
}

// appendSplit appends the parts of s split on sep to dst. It reports false
// when there are more than max parts.
func appendSplit(dst []string, s string, sep byte, max int) ([]string, bool) {
	for k := 1; ; k++ {
		if k > max {
			return dst, false
		}
		i := strings.IndexByte(s, sep)
		if i < 0 {
			return append(dst, s), true
		}
		dst = append(dst, s[:i])
		s = s[i+1:]
	}
}

// validSegmentID reports whether id is three characters, an upper-case
// letter followed by upper-case letters or digits.
func validSegmentID(id string) bool {
	if len(id) != 3 || id[0] < 'A' || id[0] > 'Z' {
		return false
	}
	for i := 1; i < 3; i++ {
		if c := id[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// occurrence counts the segments with this ID parsed so far, plus one.
func occurrence(fields []string, ends []int, id string) int {
	k, start := 1, 0
	for _, end := range ends {
		if fields[start] == id {
			k++
		}
		start = end
	}
	return k
}

func tooManyFields(op string, seg int, id string, occ int) *ParseError {
	return &ParseError{Op: op, Segment: seg, SegmentID: id, Occurrence: occ, Err: fmt.Errorf("%w: more than %d fields", ErrTooMany, MaxFields)}
}
