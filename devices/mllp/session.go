package mllp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/edge"
)

// Session defaults.
const (
	// DefaultMaxFrameSize caps one HL7 message: far above any ORU^R01.
	DefaultMaxFrameSize = hl7.DefaultMaxFrameSize
	// DefaultWriteTimeout bounds writing one ACK.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultIngestTimeout bounds storing one message. It is below the
	// 15-30 s most devices wait for an ACK, so a slow store answers AR
	// instead of leaving the device to time out.
	DefaultIngestTimeout = 10 * time.Second
	// DefaultRawKeep is how many of the most recent bytes read are kept
	// with a problem report (bytes outside frames, an oversized frame).
	DefaultRawKeep = 64 << 10
)

// Codec is the codec name readings and raw frames are stored under.
const Codec = "hl7"

// ErrIdle means a stream sent no byte for Session.IdleTimeout.
var ErrIdle = errors.New("no data within the idle timeout")

// Stream is what a Session speaks over: a TCP connection, or a serial port
// with read deadlines (devices/serial.Conn). A read after a deadline passed
// must fail with an error for which os.IsTimeout or net.Error.Timeout holds.
type Stream interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
}

// Session is one HL7-over-MLLP conversation with one device: it reads
// frames, decodes each ORU^R01, stores its readings through the Ingestor
// and answers with an ACK once they have committed.
//
// Answers: AA after Ingest returned nil; AE for a message that could not be
// read (AR when it is not an ORU^R01 at all, as hl7.AckCodeFor says), that
// held no storable value, or that was larger than MaxFrameSize; AR when the
// store failed, so the device sends it again. A message identical to the
// last one that failed is answered the same way without being stored raw a
// second time, so a device retrying a bad message does not fill the disk.
//
// Set the fields before Serve. A Session serves one stream from one
// goroutine.
type Session struct {
	Ingestor *devices.Ingestor
	Device   edge.Device
	Settings devices.Settings
	Logger   *slog.Logger // nil: discard

	// Location is the zone of the device's clock for timestamps without
	// one; nil means devices.DeviceLocation.
	Location *time.Location
	// MaxFrameSize caps one message; 0 means DefaultMaxFrameSize.
	MaxFrameSize int
	// IdleTimeout ends Serve with ErrIdle when no byte arrived for this
	// long; 0 means no limit (a serial port watches silence itself).
	IdleTimeout time.Duration
	// WriteTimeout bounds each ACK when the stream has SetWriteDeadline;
	// 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// IngestTimeout bounds storing one message; 0 means DefaultIngestTimeout.
	IngestTimeout time.Duration
	// Application and Facility name the node in ACKs to devices that left
	// their receiver empty (MSH-5, MSH-6).
	Application, Facility hl7.HD

	// OnMessage, if set, is called after each message was answered, with
	// the answer (for a device's status line). It must not block.
	OnMessage func(code hl7.AckCode)

	rec        *recorder
	lastFailed [sha256.Size]byte
	hasFailed  bool
	failedCode hl7.AckCode
	failedText string
	failedErr  error
	log        rateLog
}

// DefaultApplication is how the node names itself in ACKs.
var DefaultApplication = hl7.HD{NamespaceID: "HEALTHPOST"}

// Serve reads and answers messages until the stream fails or ctx ends, and
// returns why: ctx.Err(), ErrIdle, io.EOF when the device closed the
// stream, or the stream's error. When ctx ends while a message is being
// stored, the message is still stored and acknowledged before Serve
// returns; reading stops at once otherwise.
func (s *Session) Serve(ctx context.Context, rw Stream) error {
	if s.Ingestor == nil {
		return errors.New("serve mllp: no ingestor")
	}
	s.rec = newRecorder(rw, DefaultRawKeep)
	r := hl7.NewReader(s.rec)
	r.MaxFrameSize = s.MaxFrameSize
	if r.MaxFrameSize <= 0 {
		r.MaxFrameSize = DefaultMaxFrameSize
	}
	stop := context.AfterFunc(ctx, func() { _ = rw.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var skipped int64
	absorb := false // the tail of an oversized frame is skipped next; it was reported
	for {
		var deadline time.Time
		if s.IdleTimeout > 0 {
			deadline = time.Now().Add(s.IdleTimeout)
		}
		if err := rw.SetReadDeadline(deadline); err != nil {
			return fmt.Errorf("serve mllp: set read deadline: %w", err)
		}
		// Checked after setting the deadline: ctx's AfterFunc runs after
		// ctx is done, so either it overrides our deadline or we see ctx.
		if err := ctx.Err(); err != nil {
			return err
		}
		frame, err := r.ReadFrame()
		if n := r.Skipped() - skipped; n > 0 {
			skipped = r.Skipped()
			if !absorb && !errors.Is(err, hl7.ErrFrameTooLarge) && ctx.Err() == nil {
				s.fail(ctx, s.rec.recent(), fmt.Sprintf("%s sent %d bytes that were not part of a complete HL7 message (noise, a message cut short, or a wrong baud rate); they were ignored", s.Device.Name, n))
				s.rec.mark()
			}
			absorb = false
		}
		switch {
		case err == nil:
			s.rec.mark()
			if err := s.answer(ctx, rw, frame); err != nil {
				return err
			}
		case errors.Is(err, hl7.ErrFrameTooLarge):
			skipped, absorb = r.Skipped(), true
			s.fail(ctx, s.rec.recent(), fmt.Sprintf("%s sent an HL7 message larger than %d bytes; it was refused (AE)", s.Device.Name, r.MaxFrameSize))
			s.rec.mark()
			ack := hl7.BuildACK(nil, hl7.ACK{Code: hl7.AckError, Text: "Message too large", Err: err, Application: s.app(), Facility: s.Facility})
			if err := s.write(rw, ack); err != nil {
				return err
			}
			s.answered(hl7.AckError)
		case isTimeout(err):
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return ErrIdle
		case errors.Is(err, io.ErrUnexpectedEOF):
			if ctx.Err() == nil {
				s.fail(ctx, s.rec.recent(), fmt.Sprintf("%s closed the connection in the middle of an HL7 message; it was not stored", s.Device.Name))
			}
			return io.EOF
		default:
			return err
		}
	}
}

// answer stores one message and writes its ACK.
func (s *Session) answer(ctx context.Context, rw Stream, frame []byte) error {
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.ingestTimeout())
	defer cancel()
	sum := sha256.Sum256(frame)
	ack := hl7.ACK{Application: s.app(), Facility: s.Facility}
	var hdr *hl7.Header
	if s.hasFailed && sum == s.lastFailed {
		hdr, _ = hl7.ParseHeader(frame)
		ack.Code, ack.Text, ack.Err = s.failedCode, s.failedText, s.failedErr
	} else if oru, err := hl7.ParseORU(frame); err != nil {
		hdr, _ = hl7.ParseHeader(frame)
		ack.Code, ack.Err = hl7.AckCodeFor(err), err
		s.fail(ictx, frame, fmt.Sprintf("%s sent an HL7 message that could not be read (%v); it was answered %s", s.Device.Name, err, ack.Code))
		s.remember(sum, ack)
	} else {
		hdr = &oru.Header
		ms := devices.ORUMeasurements(oru, s.Location)
		_, err := s.Ingestor.Ingest(ictx, s.Device, Codec, frame, ms, s.Settings.Codes)
		switch {
		case err == nil:
			ack.Code = hl7.AckAccept
			s.hasFailed = false
		case errors.Is(err, devices.ErrNothingStored):
			ack.Code, ack.Text = hl7.AckError, "No value with a code the node knows; nothing stored"
			s.logProblem("message held nothing the node could store", nil)
			s.remember(sum, ack)
		default:
			ack.Code, ack.Text = hl7.AckReject, "Could not store the message; send it again"
			s.logProblem("could not store a message; answered AR", err)
		}
	}
	if err := s.write(rw, hl7.BuildACK(hdr, ack)); err != nil {
		return err
	}
	s.answered(ack.Code)
	return nil
}

func (s *Session) remember(sum [sha256.Size]byte, ack hl7.ACK) {
	s.lastFailed, s.hasFailed = sum, true
	s.failedCode, s.failedText, s.failedErr = ack.Code, ack.Text, ack.Err
}

func (s *Session) answered(code hl7.AckCode) {
	if s.OnMessage != nil {
		s.OnMessage(code)
	}
}

// fail counts a problem against the device and keeps raw.
func (s *Session) fail(ctx context.Context, raw []byte, problem string) {
	s.Ingestor.Failed(context.WithoutCancel(ctx), s.Device, Codec, raw, problem)
	s.logProblem(problem, nil)
}

func (s *Session) logProblem(problem string, err error) {
	if s.Logger == nil {
		return
	}
	s.log.log(s.Logger, s.Device.Name, problem, err)
}

func (s *Session) write(rw Stream, ack []byte) error {
	if wd, ok := rw.(interface{ SetWriteDeadline(time.Time) error }); ok {
		timeout := s.WriteTimeout
		if timeout <= 0 {
			timeout = DefaultWriteTimeout
		}
		if err := wd.SetWriteDeadline(time.Now().Add(timeout)); err != nil && !errors.Is(err, os.ErrNoDeadline) {
			return fmt.Errorf("write ack: %w", err)
		}
	}
	if err := hl7.WriteFrame(rw, ack); err != nil {
		return fmt.Errorf("write ack: %w", err)
	}
	return nil
}

func (s *Session) app() hl7.HD {
	if s.Application.IsZero() {
		return DefaultApplication
	}
	return s.Application
}

func (s *Session) ingestTimeout() time.Duration {
	if s.IngestTimeout <= 0 {
		return DefaultIngestTimeout
	}
	return s.IngestTimeout
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// recorder remembers the bytes read through it since the last mark (the
// most recent max of them), so a problem report keeps what the device sent
// since the last message that was dealt with.
type recorder struct {
	r     io.Reader
	max   int
	buf   []byte
	start int // buf[start:] was read since the last mark
}

func newRecorder(r io.Reader, max int) *recorder { return &recorder{r: r, max: max} }

func (t *recorder) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.buf = append(t.buf, p[:n]...)
		if len(t.buf) > 2*t.max {
			keep := max(t.start, len(t.buf)-t.max)
			t.buf = append(t.buf[:0], t.buf[keep:]...)
			t.start = max(t.start-keep, 0)
		}
	}
	return n, err
}

// mark forgets what was read so far.
func (t *recorder) mark() { t.buf, t.start = t.buf[:0], 0 }

// recent returns a copy of the bytes read since the last mark, at most max.
func (t *recorder) recent() []byte {
	b := t.buf[t.start:]
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return bytes.Clone(b)
}

// rateLog logs a device's problems at most once per interval, with the
// number of problems left out since.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// logInterval is the least time between two problem logs of one device.
const logInterval = 10 * time.Second

func (l *rateLog) log(logger *slog.Logger, device, problem string, err error) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < logInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	args := []any{edge.LogKeyDevice, device, "problem", problem}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	if err != nil {
		args = append(args, "err", err)
	}
	logger.Warn("device problem", args...)
}
