package line

import (
	"errors"
	"io"
)

// DefaultMaxLine is the longest line a Reader returns whole unless told
// otherwise. Device lines are tens of bytes; a Masimo-style status line is
// about 120.
const DefaultMaxLine = 512

// maxEmptyReads is how many (0, nil) reads in a row a Reader tolerates before
// it reports io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// Errors returned by Reader and Decoder.
var (
	// ErrLineTooLong means a line had more than MaxLine bytes. ReadLine
	// returns its first MaxLine bytes with this error and skips the rest of
	// the line, up to its terminator.
	ErrLineTooLong = errors.New("line too long")
	// ErrNotText means a line is not valid UTF-8: usually a wrong baud rate
	// or parity setting, or noise on the cable.
	ErrNotText = errors.New("line is not valid UTF-8 text")
	// ErrNoMatch means a line does not match the device's pattern.
	ErrNoMatch = errors.New("line does not match the device's pattern")
	// ErrNoValue means the pattern matched but its value group captured
	// nothing.
	ErrNoValue = errors.New("pattern matched without a value")
	// ErrNoCode means neither the line (code group) nor the settings (code)
	// say what was measured.
	ErrNoCode = errors.New("no code for the value")
)

// Reader cuts a byte stream into lines. A line ends at CR, LF or CR LF; a CR
// LF pair ends one line, not two, even when the LF arrives in a later read.
// Empty lines are skipped.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	// MaxLine caps one line, terminator excluded. Zero or less means
	// DefaultMaxLine.
	MaxLine int

	r          io.Reader
	buf        []byte
	start, end int    // unread bytes are buf[start:end]
	line       []byte // the line read so far
	afterCR    bool   // the last terminator was CR: an LF right after it is part of it
	discarding bool   // skipping the rest of a line that was too long
	err        error  // error from the last read, returned once its bytes are used
}

// NewReader returns a Reader on r with MaxLine set to DefaultMaxLine.
func NewReader(r io.Reader) *Reader {
	return &Reader{MaxLine: DefaultMaxLine, r: r, buf: make([]byte, 4096)}
}

// ReadLine returns the next non-empty line without its terminator, in a
// slice the caller owns. It blocks only in the underlying reader.
//
// Errors: ErrLineTooLong with the line's first MaxLine bytes, after which
// ReadLine may be called again; io.EOF when the stream ends between lines;
// io.ErrUnexpectedEOF with the partial line when it ends inside one;
// io.ErrNoProgress after many empty reads; any other error comes from the
// underlying reader, and then the partial line is kept, so that after a read
// deadline the next ReadLine carries on with it.
func (r *Reader) ReadLine() ([]byte, error) {
	max := r.MaxLine
	if max <= 0 {
		max = DefaultMaxLine
	}
	empty := 0
	for {
		for r.start < r.end {
			if r.afterCR {
				r.afterCR = false
				if r.buf[r.start] == '\n' {
					r.start++
					continue
				}
			}
			data := r.buf[r.start:r.end]
			i := indexEOL(data)
			if i < 0 {
				r.start = r.end
				if r.discarding {
					break
				}
				if len(r.line)+len(data) > max {
					return r.tooLong(data, max, true)
				}
				r.line = append(r.line, data...)
				break
			}
			seg := data[:i]
			r.afterCR = data[i] == '\r'
			r.start += i + 1
			if r.discarding {
				r.discarding = false
				continue
			}
			if len(r.line)+len(seg) > max {
				return r.tooLong(seg, max, false)
			}
			if len(r.line)+len(seg) == 0 {
				continue
			}
			out := make([]byte, 0, len(r.line)+len(seg))
			out = append(append(out, r.line...), seg...)
			r.line = r.line[:0]
			return out, nil
		}
		if r.err != nil {
			err := r.err
			r.err = nil
			if errors.Is(err, io.EOF) {
				r.discarding = false
				if len(r.line) > 0 {
					out := append([]byte(nil), r.line...)
					r.line = r.line[:0]
					return out, io.ErrUnexpectedEOF
				}
				return nil, io.EOF
			}
			return nil, err
		}
		n, err := r.r.Read(r.buf)
		if n < 0 || n > len(r.buf) {
			n, err = 0, errors.New("read line: invalid count from reader")
		}
		r.start, r.end, r.err = 0, n, err
		if n == 0 && err == nil {
			if empty++; empty >= maxEmptyReads {
				return nil, io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
}

// tooLong returns the first max bytes of the line being read plus more, and
// starts skipping the rest of it when the line has not ended yet.
func (r *Reader) tooLong(more []byte, max int, unfinished bool) ([]byte, error) {
	out := make([]byte, 0, max)
	out = append(out, r.line...)
	out = append(out, more[:max-len(r.line)]...)
	r.line = r.line[:0]
	r.discarding = unfinished
	return out, ErrLineTooLong
}

// indexEOL returns the index of the first CR or LF in b, or -1.
func indexEOL(b []byte) int {
	for i, c := range b {
		if c == '\r' || c == '\n' {
			return i
		}
	}
	return -1
}
