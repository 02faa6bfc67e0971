package astm

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Control characters of the E1381 low-level protocol.
const (
	STX = 0x02 // start of frame
	ETX = 0x03 // end of the last frame of a message
	EOT = 0x04 // end of transmission
	ENQ = 0x05 // request to send
	ACK = 0x06 // frame or request accepted
	NAK = 0x15 // frame rejected, or receiver busy
	ETB = 0x17 // end of an intermediate frame
	CR  = 0x0D
	LF  = 0x0A
)

// Frame size limits of E1381-95 / LIS01-A2.
const (
	// MaxFrameText is the most text one frame may carry; longer records are
	// split into ETB-terminated intermediate frames.
	MaxFrameText = 240
	// MaxFrameSize is the most bytes one frame may take on the wire:
	// STX FN text ETX C1 C2 CR LF.
	MaxFrameSize = MaxFrameText + 7
)

// Timers and retry counts from LIS01-A2. Each is the default of a field on
// Receiver or Sender, so tests (and odd devices) can change them.
const (
	// DefaultReplyTimeout is how long a sender waits for the reply to its ENQ
	// or to a frame before it gives up and sends EOT.
	DefaultReplyTimeout = 15 * time.Second
	// DefaultFrameTimeout is how long a receiver waits, inside a
	// transmission, for the next frame, the next byte of a frame, or EOT.
	DefaultFrameTimeout = 30 * time.Second
	// DefaultHandlerTimeout bounds a Handler call. It is below the sender's
	// 15 s reply timer so the ACK or NAK still reaches a waiting analyzer.
	DefaultHandlerTimeout = 10 * time.Second
	// DefaultTrailerTimeout is how long a receiver waits for each byte after
	// ETX or ETB (checksum, CR, LF) before it treats the frame as ended. It
	// lets lenient mode serve devices that send no checksum or terminator
	// and then wait for the ACK.
	DefaultTrailerTimeout = 500 * time.Millisecond
	// DefaultBusyDelay is how long a sender waits after a NAK to its ENQ
	// (receiver busy) before it sends ENQ again.
	DefaultBusyDelay = 10 * time.Second
	// DefaultContentionDelay is how long the instrument waits after line
	// contention (both sides sent ENQ) before it sends ENQ again.
	DefaultContentionDelay = 1 * time.Second
	// DefaultMaxAttempts is how often a sender tries one frame (or one ENQ)
	// before it aborts the transmission.
	DefaultMaxAttempts = 6
)

// Sentinel errors. Errors from this package wrap one of these (or a
// transport error) so callers can use errors.Is.
var (
	// ErrTimeout means the other side went silent for longer than the
	// timeout that applies.
	ErrTimeout = errors.New("timeout")
	// ErrRetryLimit means a frame or ENQ was refused DefaultMaxAttempts
	// times and the sender aborted the transmission.
	ErrRetryLimit = errors.New("retry limit reached")
	// ErrContention means both sides sent ENQ and this side, being the
	// computer system, yielded the line: receive the instrument's
	// transmission, then send again.
	ErrContention = errors.New("line contention")
	// ErrBusy means the receiver answered every ENQ with NAK.
	ErrBusy = errors.New("receiver busy")
	// ErrInvalidRecord means a record handed to a Sender cannot be framed:
	// it is empty or holds control characters.
	ErrInvalidRecord = errors.New("invalid record")

	// ErrEmpty means there were no records at all.
	ErrEmpty = errors.New("no records")
	// ErrNoHeader means the first record is not an H record.
	ErrNoHeader = errors.New("no header record")
	// ErrDelimiters means the H record does not define four usable
	// delimiters.
	ErrDelimiters = errors.New("invalid delimiter definition")
	// ErrNoTerminator means the message has no L record at its end.
	ErrNoTerminator = errors.New("no terminator record")
	// ErrUnexpectedRecord means a record appears where E1394 does not allow
	// it: a second H, O before P, R before O, anything after L.
	ErrUnexpectedRecord = errors.New("unexpected record")
	// ErrUnknownRecord means the record type is not one E1394 defines.
	ErrUnknownRecord = errors.New("unknown record type")
	// ErrSequence means a sequence number is not a decimal integer.
	ErrSequence = errors.New("invalid sequence number")
	// ErrTimestamp means a date or time is not YYYYMMDD[HHMM[SS]].
	ErrTimestamp = errors.New("invalid timestamp")
	// ErrInvalidByte means record text holds a control character the
	// standard forbids.
	ErrInvalidByte = errors.New("invalid byte in record")
	// ErrRecordTooLong means a record is longer than Limits.MaxRecordBytes.
	ErrRecordTooLong = errors.New("record too long")
	// ErrTooManyRecords means a message has more than Limits.MaxRecords
	// records or more than Limits.MaxMessageBytes bytes.
	ErrTooManyRecords = errors.New("too many records")
	// ErrTooManyFields means a record has more than Limits.MaxFields fields.
	ErrTooManyFields = errors.New("too many fields")
)

// RecordError reports a problem in one record of a message. It names the
// record and field by number only: the field's contents may be patient data
// and never appear in the message.
type RecordError struct {
	Record int  // 1-based position of the record in the message
	Type   byte // record type letter ('H', 'R', ...), 0 if unknown
	Field  int  // 1-based E1394 field number (14 for H-14), 0 for the whole record
	Err    error
}

// Error implements error, e.g. "parse record 4 field R-13: invalid timestamp".
func (e *RecordError) Error() string {
	typ := ""
	if e.Type > ' ' && e.Type < 0x7f {
		typ = string(rune(e.Type))
	}
	switch {
	case e.Field > 0 && typ != "":
		return fmt.Sprintf("parse record %d field %s-%d: %v", e.Record, typ, e.Field, e.Err)
	case e.Field > 0:
		return fmt.Sprintf("parse record %d field %d: %v", e.Record, e.Field, e.Err)
	case typ != "":
		return fmt.Sprintf("parse record %d (%s): %v", e.Record, typ, e.Err)
	default:
		return fmt.Sprintf("parse record %d: %v", e.Record, e.Err)
	}
}

// Unwrap returns the sentinel or underlying error.
func (e *RecordError) Unwrap() error { return e.Err }

// Deviation is a set of departures from the standard that lenient mode
// tolerated. Strict mode rejects every one of them: the frame-level ones
// with NAK, the record-level ones with a RecordError.
type Deviation uint32

// What lenient mode tolerates. Anything not listed here is rejected in both
// modes: a checksum that is present but wrong or one digit long, bytes other
// than CR or LF after the checksum, a frame number that skips or goes back
// (other than an exact retransmission), frame numbers 8 and 9, frames over
// Limits.MaxFrameBytes, records or messages over Limits. Frames without a
// number cannot be told apart from retransmissions, so lenient mode takes
// each one as new.
const (
	// DevMissingENQ: a frame arrived while idle, with no ENQ before it. It is
	// taken as the start of a transmission.
	DevMissingENQ Deviation = 1 << iota
	// DevOversizedFrame: frame text longer than 240 bytes (up to
	// Limits.MaxFrameBytes), as Mindray BS-series analyzers send.
	DevOversizedFrame
	// DevNoFrameNumber: no FN digit after STX (Snibe Maglumi). The frame
	// number check is skipped for such frames.
	DevNoFrameNumber
	// DevFrameNumberStart: the first frame of a transmission is not numbered
	// 1 (some senders start at 0). Later frames must continue the sequence.
	DevFrameNumberStart
	// DevFrameNumberRepeat: a new frame (different text) reuses the previous
	// frame number instead of advancing it.
	DevFrameNumberRepeat
	// DevNoChecksum: no checksum after ETX or ETB.
	DevNoChecksum
	// DevLowercaseChecksum: the checksum is written in lowercase hex.
	DevLowercaseChecksum
	// DevFrameTerminator: the frame does not end with CR LF after the
	// checksum but with LF alone, CR alone, or nothing.
	DevFrameTerminator
	// DevMissingETX: the frame text ran into the next STX, EOT or ENQ with no
	// ETX or ETB; it is taken as a last (ETX) frame without checksum.
	DevMissingETX
	// DevLFInText: LF inside frame text. Records are then split at CR, LF or
	// CR LF, and empty lines are dropped.
	DevLFInText
	// DevControlInText: other control characters that LIS01-A2 forbids in
	// text (SOH, ACK, DLE, NAK, SYN, DC1-DC4); they are kept as text.
	DevControlInText
	// DevUnterminatedRecord: the text before ETX does not end with CR; ETX
	// ends the record anyway.
	DevUnterminatedRecord
	// DevNoHeader: the message does not start with an H record; the default
	// delimiters |\^& are assumed and Header is left empty.
	DevNoHeader
	// DevDelimiters: the H record's delimiter definition is malformed, e.g.
	// `H|\\^&` with a doubled repeat delimiter or an empty one; it is repaired
	// or the defaults are used.
	DevDelimiters
	// DevNoTerminator: the text ends without an L record (ParseMessage only;
	// a Receiver needs the L record to know a message is complete).
	DevNoTerminator
	// DevImplicitParent: an O record with no P before it, or an R record with
	// no O before it; an empty Patient or Order (Record.Num 0) holds it.
	DevImplicitParent
	// DevBadSequence: a sequence number (field 2) that is empty or not a
	// decimal integer; Seq is left 0.
	DevBadSequence
	// DevBadTimestamp: a date or time that is not YYYYMMDD[HHMM[SS]]; the
	// time.Time is left zero and the text stays in Record.Fields. (Lenient
	// mode reads YYYYMMDDHH and surrounding spaces without noting them.)
	DevBadTimestamp
	// DevUnknownRecord: a record type E1394 does not define; it is kept in
	// Message.Other.
	DevUnknownRecord

	numDeviations = iota
)

var deviationNames = [numDeviations]string{
	"missing-enq", "oversized-frame", "no-frame-number", "frame-number-start",
	"frame-number-repeat", "no-checksum", "lowercase-checksum", "frame-terminator",
	"missing-etx", "lf-in-text", "control-in-text", "unterminated-record",
	"no-header", "delimiters", "no-terminator", "implicit-parent", "bad-sequence",
	"bad-timestamp", "unknown-record",
}

// String returns the names of the deviations in d joined by "|", or "none".
func (d Deviation) String() string {
	if d == 0 {
		return "none"
	}
	var b strings.Builder
	for i := range numDeviations {
		if d&(1<<i) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		b.WriteString(deviationNames[i])
	}
	return b.String()
}

// Limits caps what one frame, record and message may hold, so that hostile
// or broken input cannot grow memory without bound. A zero field means the
// DefaultLimits value.
type Limits struct {
	// MaxFrameBytes caps the text of one frame in lenient mode. Strict mode
	// always enforces MaxFrameText.
	MaxFrameBytes int
	// MaxRecordBytes caps one record.
	MaxRecordBytes int
	// MaxFields caps the fields of one record.
	MaxFields int
	// MaxRecords caps the records of one message.
	MaxRecords int
	// MaxMessageBytes caps the text of one message, across all its frames.
	MaxMessageBytes int
}

// DefaultLimits are generous enough for lenient mode: a Mindray analyzer
// sends whole messages of several KiB in one frame, haematology analyzers
// add histograms in M records.
var DefaultLimits = Limits{
	MaxFrameBytes:   64 << 10,
	MaxRecordBytes:  64 << 10,
	MaxFields:       256,
	MaxRecords:      10000,
	MaxMessageBytes: 1 << 20,
}

// orDefault returns l with zero fields replaced by DefaultLimits.
func (l Limits) orDefault() Limits {
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = DefaultLimits.MaxFrameBytes
	}
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = DefaultLimits.MaxRecordBytes
	}
	if l.MaxFields <= 0 {
		l.MaxFields = DefaultLimits.MaxFields
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultLimits.MaxRecords
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultLimits.MaxMessageBytes
	}
	return l
}
