package serial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/astm"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/devices/line"
	"github.com/healthpost/healthpost/devices/mllp"
	"github.com/healthpost/healthpost/edge"
)

// Codec names readings and raw frames are stored under.
const (
	CodecHL7  = "hl7"
	CodecASTM = "astm"
	CodecLine = "line"
)

// rawKeep caps the bytes kept with one problem report.
const rawKeep = 64 << 10

// defaultMaxLineIngests bounds the line readings being stored at once. Line
// devices expect no answer, so a runner need not wait for each commit
// before reading the next line; bounding keeps a flood from piling up.
const defaultMaxLineIngests = 64

// stream is what a codec session reads and writes.
type stream = mllp.Stream

// serve speaks the device's codec on an open port until the port fails or
// the node stops.
func (p *Ports) serve(d *device, conn *Conn) error {
	var rw stream = conn
	codec := d.dev.Codec
	if codec == "auto" {
		var err error
		if codec, rw, err = p.detect(d, conn); err != nil {
			return err
		}
	}
	switch codec {
	case CodecHL7:
		return p.serveHL7(d, rw)
	case CodecASTM:
		return p.serveASTM(d, conn, rw)
	case CodecLine:
		if d.line == nil {
			problem := fmt.Sprintf("%s on %s prints lines of text, but has no \"pattern\" to read them; set its pattern (and code), then restart the node", d.dev.Name, d.st.Port)
			if pre, ok := rw.(*prefixed); ok {
				p.fail(d, CodecLine, pre.pre, problem) // what it printed, to write the pattern from
			}
			return &configError{problem}
		}
		return p.serveLine(d, rw)
	}
	return &configError{fmt.Sprintf("%s has codec %s, which does not run over a serial port", d.dev.Name, codec)}
}

// detect reads the first bytes of a connection and decides its codec: MLLP
// start byte 0x0B is HL7, ENQ or STX is ASTM, printable ASCII is a line
// device. CR and LF decide nothing; other bytes are noise, counted and kept
// raw. The bytes read are handed back with the stream.
func (p *Ports) detect(d *device, conn *Conn) (string, stream, error) {
	stop := context.AfterFunc(p.ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := p.ctx.Err(); err != nil {
		return "", nil, err
	}
	var noise []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		for i, c := range buf[:n] {
			codec := ""
			switch {
			case c == 0x0B:
				codec = CodecHL7
			case c == astm.ENQ || c == astm.STX:
				codec = CodecASTM
			case c >= 0x20 && c < 0x7f:
				codec = CodecLine
			case c == '\r' || c == '\n':
				continue
			default:
				if len(noise) < rawKeep {
					noise = append(noise, c)
				}
				continue
			}
			if !stop() { // the node is stopping: the deadline is in the past
				return "", nil, p.ctx.Err()
			}
			if len(noise) > 0 {
				p.fail(d, codec, noise,
					fmt.Sprintf("%s on %s sent %d bytes of noise before its first message; if this repeats, check the cable and the baud rate", d.dev.Name, d.st.Port, len(noise)))
			}
			p.Logger.Info("detected codec", edge.LogKeyDevice, d.dev.Name, "codec", codec)
			return codec, &prefixed{Conn: conn, pre: bytes.Clone(buf[i:n])}, nil
		}
		if err != nil {
			if cerr := p.ctx.Err(); cerr != nil {
				return "", nil, cerr
			}
			return "", nil, err
		}
	}
}

// prefixed replays bytes already read before reading the port again.
type prefixed struct {
	*Conn
	pre []byte
}

func (s *prefixed) Read(b []byte) (int, error) {
	if len(s.pre) > 0 {
		n := copy(b, s.pre)
		s.pre = s.pre[n:]
		return n, nil
	}
	return s.Conn.Read(b)
}

// serveHL7 runs an MLLP session on the port. Silence is the Conn's job.
func (p *Ports) serveHL7(d *device, rw stream) error {
	sess := &mllp.Session{
		Ingestor: p.Ingestor, Device: d.dev, Settings: d.st, Logger: p.Logger,
		Location: p.Location, MaxFrameSize: p.MaxFrameSize, IngestTimeout: p.IngestTimeout,
		OnMessage: func(code hl7.AckCode) {
			if code == hl7.AckAccept {
				p.stored(d, CodecHL7)
			} else {
				p.problem(d, fmt.Sprintf("%s on %s was answered %s", d.dev.Name, d.st.Port, code))
			}
		},
	}
	return sess.Serve(p.ctx, rw)
}

// errRefused makes the ASTM receiver NAK a message the node did not store.
var errRefused = errors.New("message refused")

// serveASTM runs an ASTM receiver on the port. On shutdown the port stops
// reading but the receiver's context lives on, so that a message being
// stored is finished and its frame acknowledged.
func (p *Ports) serveASTM(d *device, conn *Conn, rw stream) error {
	rec := &recorder{stream: rw}
	var failed failure
	var dropped []string
	rcv := astm.NewReceiver(rec, func(ctx context.Context, del *astm.Delivery) error {
		if failed.same(del.Raw) {
			return errRefused
		}
		if del.Err != nil {
			failed.set(del.Raw)
			p.fail(d, CodecASTM, del.Raw, fmt.Sprintf("%s sent an ASTM message that could not be read (%v); it was refused (NAK)", d.dev.Name, del.Err))
			return errRefused
		}
		ms := devices.ASTMMeasurements(del.Message, p.Location, d.st.Codes)
		_, err := p.Ingestor.Ingest(ctx, d.dev, CodecASTM, del.Raw, ms, d.st.Codes)
		switch {
		case err == nil:
			failed.clear()
			p.stored(d, CodecASTM)
			return nil
		case errors.Is(err, devices.ErrNothingStored):
			failed.set(del.Raw) // kept raw by Ingest
			p.problem(d, fmt.Sprintf("%s sent an ASTM message with no value the node knows; it was refused (NAK); add its codes to the device's code table", d.dev.Name))
			return errRefused
		default:
			p.Logger.Warn("could not store an ASTM message; answered NAK", edge.LogKeyDevice, d.dev.Name, "err", err)
			return err
		}
	})
	rcv.Lenient = !d.st.Strict
	rcv.Location = p.Location
	if rcv.Location == nil {
		rcv.Location = devices.DeviceLocation
	}
	if p.IngestTimeout > 0 {
		rcv.HandlerTimeout = p.IngestTimeout
	}
	if p.ASTMFrameTimeout > 0 {
		rcv.FrameTimeout = p.ASTMFrameTimeout
	}
	rcv.OnDiscard = func(_ []byte, why error) {
		if len(dropped) < 10 {
			dropped = append(dropped, why.Error())
		}
	}
	defer rcv.Close()
	stop := context.AfterFunc(p.ctx, conn.StopReading)
	defer stop()
	ctx := context.WithoutCancel(p.ctx)
	for {
		rec.reset()
		before := rcv.Stats()
		err := rcv.Receive(ctx)
		if p.ctx.Err() == nil {
			p.reportASTM(d, before, rcv.Stats(), dropped, rec.recent())
		}
		dropped = dropped[:0]
		if err != nil && !errors.Is(err, astm.ErrTimeout) {
			if p.ctx.Err() != nil {
				return p.ctx.Err()
			}
			return err
		}
	}
}

// reportASTM turns what went wrong in one transmission into one problem.
func (p *Ports) reportASTM(d *device, before, after astm.Stats, dropped []string, raw []byte) {
	var problems []string
	add := func(n uint64, format string) {
		if n > 0 {
			problems = append(problems, fmt.Sprintf(format, n))
		}
	}
	add(after.ChecksumErrors-before.ChecksumErrors, "%d frames failed their checksum")
	add(after.FrameNumberErrors-before.FrameNumberErrors, "%d frames came out of sequence")
	bent := after.MalformedFrames - before.MalformedFrames + after.OversizedFrames - before.OversizedFrames
	if d.st.Strict {
		add(bent, "%d frames broke the ASTM framing (the device is set to strict; make it lenient if the analyzer is known to bend the standard)")
	} else {
		add(bent, "%d frames broke the ASTM framing")
	}
	add(after.LimitErrors-before.LimitErrors, "%d frames would have made a message too large")
	add(after.JunkBytes-before.JunkBytes, "%d bytes outside frames were ignored")
	add(after.Timeouts-before.Timeouts, "the analyzer went silent in the middle of a transmission (%d)")
	add(after.Aborted-before.Aborted, "the analyzer gave up on %d transmissions after refusals")
	for _, why := range dropped {
		problems = append(problems, "an incomplete message was dropped ("+why+")")
	}
	if len(problems) == 0 {
		return
	}
	p.fail(d, CodecASTM, raw, fmt.Sprintf("%s on %s: %s; refused frames were answered NAK for the analyzer to send again; check the cable and the baud rate",
		d.dev.Name, d.st.Port, strings.Join(problems, ", ")))
}

// fail counts a problem against the device and keeps raw.
func (p *Ports) fail(d *device, codec string, raw []byte, problem string) {
	p.Ingestor.Failed(context.WithoutCancel(p.ctx), d.dev, codec, raw, problem)
	p.problem(d, problem)
}

// problem logs a device's problem (at most once per interval) and calls
// OnProblem.
func (p *Ports) problem(d *device, problem string) {
	d.log.log(p.Logger, d.dev.Name, problem)
	if p.OnProblem != nil {
		p.OnProblem(d.dev, problem)
	}
}

// stored notes a message whose readings committed.
func (p *Ports) stored(d *device, codec string) {
	p.setStatus(d.dev, fmt.Sprintf("receiving on %s", d.st.Port))
	if p.OnStored != nil {
		p.OnStored(d.dev, codec)
	}
}

// rateLog logs a device's problems at most once per logInterval, with the
// number left out since.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// logInterval is the least time between two problem logs of one device.
const logInterval = 10 * time.Second

func (l *rateLog) log(logger *slog.Logger, device, problem string) {
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
	logger.Warn("device problem", args...)
}

// serveLine reads lines, decodes them with the device's pattern and stores
// each reading. Line devices expect no answer, so readings are stored
// concurrently (up to MaxLineIngests at once); the runner waits for all of
// them before it returns. Lines that give no reading are gathered for
// LineProblemDelay and reported together.
func (p *Ports) serveLine(d *device, rw stream) error {
	lr := line.NewReader(rw)
	stop := context.AfterFunc(p.ctx, func() { _ = rw.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	limit := p.MaxLineIngests
	if limit <= 0 {
		limit = defaultMaxLineIngests
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	defer wg.Wait()
	var bad lineProblems
	defer func() { p.reportLines(d, &bad) }()
	var last []byte
	var lastAt time.Time
	for {
		var deadline time.Time
		if bad.n > 0 {
			deadline = bad.since.Add(p.LineProblemDelay)
		}
		if err := rw.SetReadDeadline(deadline); err != nil {
			return err
		}
		if err := p.ctx.Err(); err != nil {
			return err
		}
		l, err := lr.ReadLine()
		now := time.Now()
		switch {
		case err == nil:
		case errors.Is(err, line.ErrLineTooLong):
			bad.add(l, "too long", now)
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			if cerr := p.ctx.Err(); cerr != nil {
				return cerr
			}
			p.reportLines(d, &bad)
			continue
		default:
			return err
		}
		if p.LineRepeatWindow > 0 && bytes.Equal(l, last) && now.Sub(lastAt) < p.LineRepeatWindow {
			lastAt = now
			continue
		}
		last, lastAt = l, now
		m, err := d.line.Decode(l, now)
		if err != nil {
			why := "did not match the pattern"
			if errors.Is(err, line.ErrNotText) {
				why = "not valid text"
			}
			bad.add(l, why, now)
			if p.LineProblemDelay <= 0 || len(bad.raw) >= rawKeep {
				p.reportLines(d, &bad)
			}
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p.storeLine(d, l, m)
		}()
	}
}

// storeLine stores one line's reading.
func (p *Ports) storeLine(d *device, raw []byte, m devices.Measurement) {
	timeout := p.IngestTimeout
	if timeout <= 0 {
		timeout = mllp.DefaultIngestTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), timeout)
	defer cancel()
	_, err := p.Ingestor.Ingest(ctx, d.dev, CodecLine, raw, []devices.Measurement{m}, d.st.Codes)
	switch {
	case err == nil:
		p.stored(d, CodecLine)
	case errors.Is(err, devices.ErrNothingStored):
		// Kept raw and counted by Ingest.
		p.problem(d, fmt.Sprintf("%s sent a line with a code the node does not know; add it to the device's code table", d.dev.Name))
	default:
		p.Logger.Warn("could not store a reading", edge.LogKeyDevice, d.dev.Name, "err", err)
	}
}

// lineProblems gathers lines that gave no reading.
type lineProblems struct {
	n     int
	since time.Time
	raw   []byte
	why   map[string]int
}

func (b *lineProblems) add(l []byte, why string, now time.Time) {
	if b.n == 0 {
		b.since = now
		b.why = map[string]int{}
	}
	b.n++
	b.why[why]++
	if len(b.raw)+len(l)+2 <= rawKeep {
		b.raw = append(append(b.raw, l...), '\r', '\n')
	}
}

// reportLines reports and clears the gathered lines.
func (p *Ports) reportLines(d *device, b *lineProblems) {
	if b.n == 0 {
		return
	}
	var parts []string
	for _, why := range []string{"did not match the pattern", "not valid text", "too long"} {
		if n := b.why[why]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, why))
		}
	}
	hint := "if it printed readings, fix the device's \"pattern\""
	if b.why["not valid text"] > 0 || b.why["too long"] > 0 {
		hint = "check the baud rate, parity and cable, and the device's \"pattern\""
	}
	p.fail(d, CodecLine, b.raw, fmt.Sprintf("%s on %s sent %d lines that gave no reading (%s); %s",
		d.dev.Name, d.st.Port, b.n, strings.Join(parts, ", "), hint))
	*b = lineProblems{}
}

// failure remembers the last message that was refused, so that a device
// resending it is refused again without keeping it raw again.
type failure struct {
	mu   sync.Mutex
	last []byte
}

func (f *failure) same(b []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last != nil && bytes.Equal(f.last, b)
}

func (f *failure) set(b []byte) {
	f.mu.Lock()
	f.last = bytes.Clone(b)
	f.mu.Unlock()
}

func (f *failure) clear() {
	f.mu.Lock()
	f.last = nil
	f.mu.Unlock()
}

// recorder keeps the bytes of the current transmission (up to rawKeep) for
// a problem report, and passes deadlines through to the port.
type recorder struct {
	stream
	mu  sync.Mutex
	buf []byte
}

func (r *recorder) Read(b []byte) (int, error) {
	n, err := r.stream.Read(b)
	if n > 0 {
		r.mu.Lock()
		if room := rawKeep - len(r.buf); room > 0 {
			r.buf = append(r.buf, b[:min(n, room)]...)
		}
		r.mu.Unlock()
	}
	return n, err
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.buf = r.buf[:0]
	r.mu.Unlock()
}

func (r *recorder) recent() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf)
}

var _ io.ReadWriter = (*recorder)(nil)
