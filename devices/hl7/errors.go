package hl7

import (
	"errors"
	"strconv"
	"strings"
)

// Errors returned, usually wrapped in a *ParseError, by the parsers in this
// package. Test for them with errors.Is.
var (
	// ErrNoMSH means the input does not start with an MSH segment, so it is
	// not an HL7 v2 message (or its header was cut off).
	ErrNoMSH = errors.New("message does not start with an MSH segment")

	// ErrBadDelimiters means MSH-1 or MSH-2 do not declare a usable set of
	// separators.
	ErrBadDelimiters = errors.New("invalid encoding characters")

	// ErrBadSegmentID means a line does not start with a three-character
	// segment ID.
	ErrBadSegmentID = errors.New("invalid segment id")

	// ErrUnexpectedSegment means a segment appears where the ORU^R01 grammar
	// does not allow it (an OBX before any OBR, a second MSH).
	ErrUnexpectedSegment = errors.New("unexpected segment")

	// ErrMissingField means a field the message cannot be used without is empty.
	ErrMissingField = errors.New("required field missing")

	// ErrBadTimestamp means a TS/DTM field is not YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ].
	ErrBadTimestamp = errors.New("invalid timestamp")

	// ErrUnsupportedMessage means MSH-9 is not ORU^R01.
	ErrUnsupportedMessage = errors.New("unsupported message type")

	// ErrUnsupportedVersion means MSH-12 is not an HL7 v2 version.
	ErrUnsupportedVersion = errors.New("unsupported version")

	// ErrTooMany means the message has more segments, fields or repetitions
	// than this package accepts (see MaxSegments, MaxFields, MaxRepetitions).
	ErrTooMany = errors.New("limit exceeded")

	// ErrFrameTooLarge means an MLLP frame grew past Reader.MaxFrameSize. The
	// Reader drops the frame and resynchronises on the next start byte.
	ErrFrameTooLarge = errors.New("mllp frame too large")

	// ErrFrameByte means a message handed to WriteFrame contains an MLLP start
	// (0x0B) or end (0x1C) byte and cannot be framed.
	ErrFrameByte = errors.New("message contains an mllp framing byte")
)

// ParseError is a decode failure located in the message. Its text names the
// segment by position and ID and the field by number, never the contents:
// "decode ORU^R01 segment 3 (OBX) field 14: invalid timestamp: month out of range".
type ParseError struct {
	// What was being done: "parse HL7", "decode ORU^R01".
	Op string

	// Where. Segment is the 1-based position of the segment in the message
	// (0 when the error is about the whole message); SegmentID is empty when
	// the line had no valid ID; Occurrence counts segments with the same ID
	// (the second OBX has Occurrence 2), as HL7 ERR-2 wants; Field is the HL7
	// field number, 0 when the whole segment is at fault.
	Segment    int
	SegmentID  string
	Occurrence int
	Field      int

	// The cause, usually wrapping one of the Err sentinels.
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Segment > 0 {
		b.WriteString(" segment ")
		b.WriteString(strconv.Itoa(e.Segment))
		if e.SegmentID != "" {
			b.WriteString(" (")
			b.WriteString(e.SegmentID)
			b.WriteString(")")
		}
	}
	if e.Field > 0 {
		b.WriteString(" field ")
		b.WriteString(strconv.Itoa(e.Field))
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("unknown error")
	}
	return b.String()
}

// Unwrap returns the cause so errors.Is finds the sentinels.
func (e *ParseError) Unwrap() error { return e.Err }

// AckCodeFor returns the MSA-1 code that answers a message whose parse ended
// with err: AA for nil; AR when the message as a whole cannot be taken (no
// readable MSH, a message type or version this package does not handle); AE
// for errors in the content.
func AckCodeFor(err error) AckCode {
	switch {
	case err == nil:
		return AckAccept
	case errors.Is(err, ErrNoMSH),
		errors.Is(err, ErrBadDelimiters),
		errors.Is(err, ErrUnsupportedMessage),
		errors.Is(err, ErrUnsupportedVersion):
		return AckReject
	default:
		return AckError
	}
}

// errorCode returns the HL7 table 0357 code and its text for err, for the
// ERR segment of an ACK.
func errorCode(err error) (code, text string) {
	switch {
	case err == nil:
		return "0", "Message accepted"
	case errors.Is(err, ErrMissingField):
		return "101", "Required field missing"
	case errors.Is(err, ErrBadTimestamp):
		return "102", "Data type error"
	case errors.Is(err, ErrUnsupportedMessage):
		return "200", "Unsupported message type"
	case errors.Is(err, ErrUnsupportedVersion):
		return "203", "Unsupported version id"
	case errors.Is(err, ErrNoMSH),
		errors.Is(err, ErrBadDelimiters),
		errors.Is(err, ErrBadSegmentID),
		errors.Is(err, ErrUnexpectedSegment):
		return "100", "Segment sequence error"
	default:
		return "207", "Application internal error"
	}
}

// safeToken returns s when it is a short code made of letters, digits and
// a few punctuation marks (a message type, a version), and a placeholder
// otherwise, so error text never carries arbitrary message content.
func safeToken(s string) string {
	if s == "" {
		return `""`
	}
	if len(s) > 16 {
		return "(invalid)"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '^') {
			return "(invalid)"
		}
	}
	return s
}
