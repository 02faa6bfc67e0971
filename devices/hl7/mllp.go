package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MLLP framing bytes: <VT> message <FS><CR>.
const (
	mllpStart = 0x0B
	mllpEnd   = 0x1C
	mllpCR    = 0x0D
)

// DefaultMaxFrameSize is the largest MLLP frame a Reader accepts unless told
// otherwise: 1 MiB, far above any ORU^R01 a monitor or analyzer sends.
const DefaultMaxFrameSize = 1 << 20

// Reader pulls MLLP frames out of a byte stream (a TCP connection, or a
// serial line carrying MLLP).
//
// It is lenient where devices are sloppy and strict where memory is at stake:
// bytes outside frames are skipped and counted; a start byte inside a frame
// means the sender gave up on that frame and began another, so the partial
// frame is dropped; the CR after the end byte is optional and never waited
// for (the frame is returned as soon as the end byte arrives); but a frame
// longer than MaxFrameSize is an error, after which the Reader skips to the
// next start byte instead of growing its buffer.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	// MaxFrameSize caps one message, framing bytes excluded. Zero or less
	// means DefaultMaxFrameSize.
	MaxFrameSize int

	br       *bufio.Reader
	skipped  int64
	afterEnd bool   // an end byte was just read; a CR may follow
	inFrame  bool   // a start byte was read and its frame is not finished
	frame    []byte // the frame read so far while inFrame
}

// NewReader returns a Reader on r with MaxFrameSize set to DefaultMaxFrameSize.
func NewReader(r io.Reader) *Reader {
	return &Reader{MaxFrameSize: DefaultMaxFrameSize, br: bufio.NewReader(r)}
}

// Skipped returns how many bytes the Reader has read and thrown away: bytes
// outside frames, frames cut short by a new start byte or by the end of the
// stream, and oversized frames. The framing bytes of returned frames are not
// counted.
func (r *Reader) Skipped() int64 { return r.skipped }

// ReadFrame returns the next message, without its framing bytes, in a slice
// the caller owns. It blocks only in the underlying reader.
//
// Errors: io.EOF when the stream ends between frames; io.ErrUnexpectedEOF
// when it ends inside a frame; ErrFrameTooLarge (wrapped) when a frame passes
// MaxFrameSize, after which ReadFrame may be called again; any other error
// comes from the underlying reader. After such an error (a read deadline on a
// net.Conn, say) the partial frame is kept, and the next ReadFrame carries on
// with it.
func (r *Reader) ReadFrame() ([]byte, error) {
	limit := r.MaxFrameSize
	if limit <= 0 {
		limit = DefaultMaxFrameSize
	}
	if !r.inFrame {
		if r.afterEnd {
			c, err := r.br.ReadByte()
			if err != nil {
				return nil, err
			}
			r.afterEnd = false
			if c != mllpCR {
				_ = r.br.UnreadByte() // cannot fail right after ReadByte
			}
		}
		if err := r.skipToStart(); err != nil {
			return nil, err
		}
		r.inFrame, r.frame = true, nil
	}
	for {
		buf, err := r.br.ReadSlice(mllpEnd)
		ended := err == nil
		data := buf
		if ended {
			data = buf[:len(buf)-1]
		}
		if i := bytes.LastIndexByte(data, mllpStart); i >= 0 {
			// The sender restarted: drop what we had, keep what follows.
			r.skipped += 1 + int64(len(r.frame)) + int64(i)
			r.frame = r.frame[:0]
			data = data[i+1:]
		}
		if len(r.frame)+len(data) > limit {
			r.skipped += 1 + int64(len(r.frame)) + int64(len(data))
			if ended {
				r.skipped++ // the end byte
			}
			// Whatever follows, CR included, is skipped up to the next start.
			r.inFrame, r.frame, r.afterEnd = false, nil, false
			return nil, fmt.Errorf("read mllp frame: %w: more than %d bytes", ErrFrameTooLarge, limit)
		}
		r.frame = append(r.frame, data...)
		switch {
		case ended:
			frame := r.frame
			r.inFrame, r.frame, r.afterEnd = false, nil, true
			return frame, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			r.skipped += 1 + int64(len(r.frame))
			r.inFrame, r.frame = false, nil
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// skipToStart discards bytes up to and including the next start byte.
func (r *Reader) skipToStart() error {
	for {
		buf, err := r.br.ReadSlice(mllpStart)
		if err == nil {
			r.skipped += int64(len(buf) - 1)
			return nil
		}
		r.skipped += int64(len(buf))
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// WriteFrame writes msg to w as one MLLP frame, <VT>msg<FS><CR>, in a single
// Write call. It returns ErrFrameByte when msg holds a start or end byte.
func WriteFrame(w io.Writer, msg []byte) error {
	if bytes.IndexByte(msg, mllpStart) >= 0 || bytes.IndexByte(msg, mllpEnd) >= 0 {
		return fmt.Errorf("write mllp frame: %w", ErrFrameByte)
	}
	buf := make([]byte, 0, len(msg)+3)
	buf = append(buf, mllpStart)
	buf = append(buf, msg...)
	buf = append(buf, mllpEnd, mllpCR)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write mllp frame: %w", err)
	}
	return nil
}
