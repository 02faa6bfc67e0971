package astm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Role says which side of the line a Sender is on. It decides line
// contention: when both sides send ENQ at once, the instrument keeps the
// line and the computer system yields.
type Role int

const (
	// RoleInstrument is the analyzer: after contention it waits
	// ContentionDelay and sends ENQ again.
	RoleInstrument Role = iota
	// RoleComputer is the LIS: after contention Send returns ErrContention,
	// and the caller should receive the instrument's transmission before
	// trying again (LIS01-A2 asks it to wait at least 20 s).
	RoleComputer
)

// Sender is the sending side of E1381: it bids for the line with ENQ, sends
// each record in frames of at most MaxFrameText characters of text, waits
// for ACK or NAK with retries and timeouts, and ends with EOT. The device
// simulator and the tests play the analyzer with it; a LIS gets one from
// Receiver.Sender to send on the same line.
//
// Set the exported fields before the first Send. A Sender is used from one
// goroutine.
type Sender struct {
	// Role decides line contention; the zero value is RoleInstrument.
	Role Role
	// ReplyTimeout is how long to wait for the reply to ENQ or to a frame
	// (15 s in LIS01-A2); then the Sender sends EOT and gives up. 0 means
	// no limit.
	ReplyTimeout time.Duration
	// BusyDelay is how long to wait after a NAK to ENQ (10 s).
	BusyDelay time.Duration
	// ContentionDelay is how long the instrument waits after contention
	// before its next ENQ (1 s).
	ContentionDelay time.Duration
	// MaxAttempts is how often a frame, or an ENQ, is tried (6); 0 means
	// DefaultMaxAttempts.
	MaxAttempts int
	// FrameText is the most text per frame, MaxFrameText by default. A
	// simulator may raise it to imitate analyzers that send oversized frames.
	FrameText int

	l *link
}

// NewSender returns a Sender on rw with the LIS01-A2 timers. If rw has
// SetReadDeadline, timeouts use it; otherwise a goroutine reads rw, and
// Close stops it.
func NewSender(rw io.ReadWriter) *Sender {
	s := &Sender{
		ReplyTimeout:    DefaultReplyTimeout,
		BusyDelay:       DefaultBusyDelay,
		ContentionDelay: DefaultContentionDelay,
		MaxAttempts:     DefaultMaxAttempts,
		FrameText:       MaxFrameText,
	}
	if rw != nil {
		s.l = newLink(rw)
	}
	return s
}

// Close stops the goroutine that reads connections without read deadlines,
// once its current Read returns. It does not close the connection. A Sender
// from Receiver.Sender shares its link: closing either closes both.
func (s *Sender) Close() error {
	if s.l != nil {
		s.l.close()
	}
	return nil
}

// Send sends records (each without its CR; the Sender adds it) as one
// transmission: ENQ, frames, EOT. It returns nil once every frame was
// acknowledged and EOT was sent. Errors wrap ErrInvalidRecord (nothing was
// sent), ErrBusy, ErrContention (RoleComputer), ErrTimeout, ErrRetryLimit,
// ctx.Err() or the connection's error; after a failure inside the
// transmission the Sender has sent EOT.
func (s *Sender) Send(ctx context.Context, records []string) error {
	if s.l == nil {
		return errors.New("send: no connection")
	}
	frames, err := s.frames(records)
	if err != nil {
		return err
	}
	stop := s.l.watch(ctx)
	defer stop()
	if err := s.establish(ctx); err != nil {
		return err
	}
	for i, f := range frames {
		if err := s.sendFrame(ctx, f); err != nil {
			err = fmt.Errorf("send frame %d of %d: %w", i+1, len(frames), err)
			if ctx.Err() == nil {
				if eerr := s.write(ctx, EOT); eerr != nil {
					err = errors.Join(err, eerr)
				}
			}
			return err
		}
	}
	return s.write(ctx, EOT)
}

// frames cuts records into frames, numbered from 1.
func (s *Sender) frames(records []string) ([][]byte, error) {
	max := s.FrameText
	if max <= 0 {
		max = MaxFrameText
	}
	var frames [][]byte
	fn := 1
	for i, rec := range records {
		if rec == "" {
			return nil, fmt.Errorf("check record %d: %w", i+1, ErrInvalidRecord)
		}
		for j := 0; j < len(rec); j++ {
			if rec[j] < ' ' && rec[j] != '\t' {
				return nil, fmt.Errorf("check record %d: %w", i+1, ErrInvalidRecord)
			}
		}
		text := []byte(rec + "\r")
		for len(text) > 0 {
			n := min(max, len(text))
			frames = append(frames, AppendFrame(nil, fn, text[:n], n == len(text)))
			fn++
			text = text[n:]
		}
	}
	return frames, nil
}

// establish bids for the line until the receiver answers ACK.
func (s *Sender) establish(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		if err := s.write(ctx, ENQ); err != nil {
			return err
		}
		c, err := s.awaitReply(ctx, true)
		if err != nil {
			if errors.Is(err, ErrTimeout) && ctx.Err() == nil {
				err = errors.Join(err, s.write(ctx, EOT))
			}
			return fmt.Errorf("establish link: %w", err)
		}
		var delay time.Duration
		switch c {
		case ACK:
			return nil
		case NAK:
			if attempt >= s.maxAttempts() {
				return fmt.Errorf("establish link: %w", ErrBusy)
			}
			delay = s.BusyDelay
		case ENQ:
			if s.Role == RoleComputer || attempt >= s.maxAttempts() {
				return fmt.Errorf("establish link: %w", ErrContention)
			}
			delay = s.ContentionDelay
		}
		if err := wait(ctx, delay); err != nil {
			return fmt.Errorf("establish link: %w", err)
		}
	}
}

// sendFrame sends one frame until it is acknowledged.
func (s *Sender) sendFrame(ctx context.Context, f []byte) error {
	for attempt := 1; ; attempt++ {
		if err := s.l.write(ctx, f, s.ReplyTimeout); err != nil {
			return fmt.Errorf("write frame: %w", err)
		}
		c, err := s.awaitReply(ctx, false)
		if err != nil {
			return err
		}
		switch c {
		case ACK, EOT: // EOT is a receiver interrupt: the frame was accepted
			return nil
		case NAK:
			if attempt >= s.maxAttempts() {
				return ErrRetryLimit
			}
		}
	}
}

func (s *Sender) maxAttempts() int {
	if s.MaxAttempts <= 0 {
		return DefaultMaxAttempts
	}
	return s.MaxAttempts
}

// awaitReply reads until ACK or NAK arrives (or ENQ while establishing, or
// EOT while transferring), ignoring anything else, for at most ReplyTimeout.
func (s *Sender) awaitReply(ctx context.Context, establishing bool) (byte, error) {
	deadline := time.Now().Add(s.ReplyTimeout)
	for {
		var left time.Duration // 0: no limit
		if s.ReplyTimeout > 0 {
			if left = time.Until(deadline); left <= 0 {
				return 0, fmt.Errorf("wait for reply: %w", ErrTimeout)
			}
		}
		c, err := s.l.readByte(ctx, left)
		if errors.Is(err, errReadTimeout) {
			return 0, fmt.Errorf("wait for reply: %w", ErrTimeout)
		}
		if err != nil {
			if ctx.Err() != nil {
				return 0, err
			}
			return 0, fmt.Errorf("wait for reply: %w", err)
		}
		switch {
		case c == ACK || c == NAK:
			return c, nil
		case c == ENQ && establishing, c == EOT && !establishing:
			return c, nil
		}
	}
}

func (s *Sender) write(ctx context.Context, c byte) error {
	if err := s.l.write(ctx, []byte{c}, s.ReplyTimeout); err != nil {
		return fmt.Errorf("write control: %w", err)
	}
	return nil
}

// wait waits for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
