package astm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices/astm"
)

// haematologyRecords is a message with records over 240 characters, so a
// Sender must split them into ETB frames, and more than 8 frames, so frame
// numbers wrap.
func haematologyRecords() []string {
	recs := []string{
		`H|\^&|||HemaCount 5D^4.0.7|||||HEALTHPOST||P|LIS2-A2|20250314101502`,
		`P|1||PID-000456||TESTPATIENT^RAVI||20190203|M`,
		`O|1|H250314-004||^^^CBC|R||20250314094500`,
	}
	for i := 1; i <= 12; i++ {
		recs = append(recs, fmt.Sprintf(`R|%d|^^^T%02d|%d.%d|g/dL|1-9|N||F||||20250314101455|HemaCount 5D`, i, i, i, i))
		if i == 1 {
			var hist []string
			for j := range 150 {
				hist = append(hist, fmt.Sprint(j%37))
			}
			recs = append(recs, "M|1|HIST^WBC|150|"+strings.Join(hist, "^"))
		}
	}
	return append(recs, `L|1|N`)
}

// TestSenderReceiver_RoundTrip ensures a Sender's transmission arrives
// intact at a Receiver over every transport, ETB splits and all.
func TestSenderReceiver_RoundTrip(t *testing.T) {
	recs := haematologyRecords()
	if len(recs[4]) <= astm.MaxFrameText {
		t.Fatalf("histogram record is %d bytes, want more than one frame", len(recs[4]))
	}
	for _, tr := range transports {
		for _, lenient := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/lenient=%v", tr.name, lenient), func(t *testing.T) {
				lis, analyzer := tr.pair(t)
				var c collector
				r := astm.NewReceiver(lis, c.handle)
				r.Lenient = lenient
				r.Location = ist
				runReceiver(t, r)

				s := astm.NewSender(analyzer)
				defer s.Close()
				for range 2 {
					if err := s.Send(context.Background(), recs); err != nil {
						t.Fatalf("Send: %v", err)
					}
				}
				ds := c.deliveries()
				if got, want := len(ds), 2; got != want {
					t.Fatalf("deliveries=%d, want %d", got, want)
				}
				if got, want := string(ds[0].Raw), strings.Join(recs, "\r")+"\r"; got != want {
					t.Fatalf("Raw=%q, want %q", got, want)
				}
				m := mustMessage(t, ds[1])
				o := m.Patients[0].Orders[0]
				if got, want := len(o.Results), 12; got != want {
					t.Fatalf("Results=%d, want %d", got, want)
				}
				if got, want := len(o.Results[0].Manufacturer[0].Components(5)), 150; got != want {
					t.Fatalf("histogram=%d, want %d", got, want)
				}
				if got, want := o.Results[11].Value, "12.12"; got != want {
					t.Fatalf("Value=%q, want %q", got, want)
				}
				st := r.Stats()
				if st.NAKs != 0 || st.Delivered != 2 || st.Transmissions != 2 || len(st.Deviations) != 0 {
					t.Fatalf("Stats=%+v", st)
				}
			})
		}
	}
}

// corruptOnce flips a byte in the first frame with frame number fn that
// passes through it, as line noise would.
type corruptOnce struct {
	io.ReadWriter
	fn   byte
	mu   sync.Mutex
	done bool
}

func (c *corruptOnce) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.done && len(p) > 10 && p[0] == astm.STX && p[1] == c.fn {
		c.done = true
		q := bytes.Clone(p)
		q[5] ^= 0x20
		c.mu.Unlock()
		return c.ReadWriter.Write(q)
	}
	c.mu.Unlock()
	return c.ReadWriter.Write(p)
}

// TestReceiver_NAKRetransmit ensures a damaged frame is NAKed and its
// retransmission accepted.
func TestReceiver_NAKRetransmit(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			lis, analyzer := tr.pair(t)
			var c collector
			r := astm.NewReceiver(lis, c.handle)
			runReceiver(t, r)

			s := astm.NewSender(&corruptOnce{ReadWriter: analyzer, fn: '3'})
			defer s.Close()
			if err := s.Send(context.Background(), smallMessage); err != nil {
				t.Fatalf("Send: %v", err)
			}
			st := r.Stats()
			if st.NAKs != 1 || st.ChecksumErrors != 1 || st.Delivered != 1 || st.Frames != 6 {
				t.Fatalf("Stats=%+v", st)
			}
			if got, want := c.deliveries()[0].Message.Patients[0].Orders[0].SpecimenID, "G-88"; got != want {
				t.Fatalf("SpecimenID=%q, want %q", got, want)
			}
		})
	}
}

// TestReceiver_AckAfterCommit drives the Receiver byte by byte to prove that
// the frame completing a message is answered only after the Handler
// returned, with NAK when it failed and ACK when it succeeded.
func TestReceiver_AckAfterCommit(t *testing.T) {
	lis, analyzer := MustPipe(t)
	entered := make(chan *astm.Delivery)
	verdict := make(chan error)
	r := astm.NewReceiver(lis, func(ctx context.Context, d *astm.Delivery) error {
		entered <- d
		return <-verdict
	})
	runReceiver(t, r)
	p := &peer{tb: t, c: analyzer}

	p.write(astm.ENQ)
	p.expect(astm.ACK)
	fs := frames(1, smallMessage...)
	for _, f := range fs[:len(fs)-1] {
		p.write(f...)
		p.expect(astm.ACK)
	}
	last := fs[len(fs)-1]

	// Ensure the L frame gets no reply while the Handler is storing, and a
	// NAK when it fails.
	p.write(last...)
	d := <-entered
	if d.Err != nil || d.Message.Terminator.Code != "N" {
		t.Fatalf("Delivery=%+v", d)
	}
	p.silent(50 * time.Millisecond)
	verdict <- errors.New("disk full")
	p.expect(astm.NAK)

	// Ensure the retransmission reaches the Handler again, and is ACKed
	// only after it succeeded.
	p.write(last...)
	<-entered
	p.silent(50 * time.Millisecond)
	verdict <- nil
	p.expect(astm.ACK)

	// Ensure a retransmission after a lost ACK is ACKed without storing twice.
	p.write(last...)
	p.expect(astm.ACK)
	p.write(astm.EOT)

	// A new transmission proves the Receiver went back to idle.
	p.write(astm.ENQ)
	p.expect(astm.ACK)
	st := r.Stats()
	if st.HandlerErrors != 1 || st.Delivered != 1 || st.Duplicates != 1 || st.NAKs != 0 || st.Aborted != 0 || st.Transmissions != 2 {
		t.Fatalf("Stats=%+v", st)
	}
}

// TestReceiver_HandlerErrorSenderGivesUp ensures a Handler that keeps
// failing leaves the analyzer without its final ACK: the Sender retries 6
// times, aborts, and the records are discarded, not delivered.
func TestReceiver_HandlerErrorSenderGivesUp(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			lis, analyzer := tr.pair(t)
			c := collector{fail: func(int, *astm.Delivery) error { return errors.New("store closed") }}
			r := astm.NewReceiver(lis, c.handle)
			discarded := make(chan string, 1)
			r.OnDiscard = func(text []byte, err error) { discarded <- string(text) }
			runReceiver(t, r)

			s := astm.NewSender(analyzer)
			defer s.Close()
			err := s.Send(context.Background(), smallMessage)
			if !errors.Is(err, astm.ErrRetryLimit) {
				t.Fatalf("Send=%v, want ErrRetryLimit", err)
			}
			if got := <-discarded; !strings.HasPrefix(got, "H|") || strings.Contains(got, "L|1|N") {
				t.Fatalf("discarded=%q, want the records before L", got)
			}
			st := r.Stats()
			if st.HandlerErrors != 6 || st.Delivered != 0 || st.Aborted != 1 || st.Discarded != 1 || c.calls() != 6 {
				t.Fatalf("Stats=%+v calls=%d", st, c.calls())
			}
		})
	}
}

// TestReceiver_HandlerTimeout ensures the Handler's context carries
// HandlerTimeout, so a stuck store gives up in time to NAK.
func TestReceiver_HandlerTimeout(t *testing.T) {
	lis, analyzer := MustPipe(t)
	r := astm.NewReceiver(lis, func(ctx context.Context, d *astm.Delivery) error {
		<-ctx.Done()
		return ctx.Err()
	})
	r.HandlerTimeout = 20 * time.Millisecond
	runReceiver(t, r)
	p := &peer{tb: t, c: analyzer}
	p.write(astm.ENQ)
	p.expect(astm.ACK)
	p.write(astm.AppendFrame(nil, 1, []byte("H|\\^&\rL|1|N\r"), true)...)
	p.expect(astm.NAK)
}

// TestReceiver_Timeout ensures a silent analyzer ends the transmission after
// FrameTimeout: partial records are discarded and the Receiver is idle again.
func TestReceiver_Timeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after []byte // what the analyzer sends before going silent
	}{
		{"BetweenFrames", nil},
		{"MidFrame", []byte("\x023R|1|^^^GLU|12")},
	} {
		for _, tr := range transports {
			t.Run(tc.name+"/"+tr.name, func(t *testing.T) {
				t.Parallel()
				lis, analyzer := tr.pair(t)
				var c collector
				r := astm.NewReceiver(lis, c.handle)
				// Long enough that a busy machine (the race detector, other
				// packages' tests) never stalls the scripted analyzer past
				// it between frames; the silence below waits for it once.
				r.FrameTimeout = 500 * time.Millisecond
				discarded := make(chan error, 1)
				r.OnDiscard = func(text []byte, err error) { discarded <- err }
				defer r.Close()
				done := make(chan error, 1)
				go func() { done <- r.Receive(context.Background()) }()

				p := &peer{tb: t, c: asConn(analyzer)}
				p.write(astm.ENQ)
				p.expect(astm.ACK)
				for _, f := range frames(1, smallMessage[:2]...) {
					p.write(f...)
					p.expect(astm.ACK)
				}
				if tc.after != nil {
					p.write(tc.after...)
				}
				if err := <-done; !errors.Is(err, astm.ErrTimeout) {
					t.Fatalf("Receive=%v, want ErrTimeout", err)
				}
				if err := <-discarded; !errors.Is(err, astm.ErrTimeout) {
					t.Fatalf("discard reason=%v, want ErrTimeout", err)
				}
				if st := r.Stats(); st.Timeouts != 1 || st.Discarded != 1 || st.Delivered != 0 {
					t.Fatalf("Stats=%+v", st)
				}

				// Ensure the next transmission is served from scratch.
				go func() { done <- r.Receive(context.Background()) }()
				p.write(astm.ENQ)
				p.expect(astm.ACK)
				for _, f := range frames(1, smallMessage...) {
					p.write(f...)
					p.expect(astm.ACK)
				}
				p.write(astm.EOT)
				if err := <-done; err != nil {
					t.Fatalf("Receive=%v", err)
				}
				if got, want := len(c.deliveries()), 1; got != want {
					t.Fatalf("deliveries=%d, want %d", got, want)
				}
			})
		}
	}
}

// TestReceiver_IdleWaitsForever ensures an idle Receiver applies no timeout
// and stops when its context is cancelled.
func TestReceiver_IdleWaitsForever(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			lis, _ := tr.pair(t)
			r := astm.NewReceiver(lis, (&collector{}).handle)
			r.FrameTimeout = time.Millisecond
			defer r.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			select {
			case err := <-done:
				t.Fatalf("Run returned early: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run=%v, want context.Canceled", err)
			}
		})
	}
}

// TestReceiver_Busy ensures Busy refuses an ENQ with NAK and the Sender
// retries after BusyDelay.
func TestReceiver_Busy(t *testing.T) {
	lis, analyzer := MustTCPPair(t)
	var c collector
	r := astm.NewReceiver(lis, c.handle)
	var mu sync.Mutex
	busy := 2
	r.Busy = func() bool {
		mu.Lock()
		defer mu.Unlock()
		busy--
		return busy >= 0
	}
	runReceiver(t, r)
	s := astm.NewSender(analyzer)
	s.BusyDelay = time.Millisecond
	if err := s.Send(context.Background(), smallMessage); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if st := r.Stats(); st.BusyRefusals != 2 || st.Transmissions != 1 || st.Delivered != 1 {
		t.Fatalf("Stats=%+v", st)
	}
}

// TestReceiver_Scripted checks byte-exact protocol situations.
func TestReceiver_Scripted(t *testing.T) {
	// Ensure a second ENQ inside a transmission restarts it and drops the
	// partial message.
	t.Run("ENQRestart", func(t *testing.T) {
		lis, analyzer := MustPipe(t)
		var c collector
		r := astm.NewReceiver(lis, c.handle)
		runReceiver(t, r)
		p := &peer{tb: t, c: analyzer}
		p.write(astm.ENQ)
		p.expect(astm.ACK)
		p.write(frames(1, smallMessage[0])[0]...)
		p.expect(astm.ACK)
		p.write(astm.ENQ)
		p.expect(astm.ACK)
		for _, f := range frames(1, smallMessage...) {
			p.write(f...)
			p.expect(astm.ACK)
		}
		p.write(astm.EOT)
		p.write(astm.ENQ)
		p.expect(astm.ACK)
		if st := r.Stats(); st.Discarded != 1 || st.Delivered != 1 || st.Transmissions != 3 {
			t.Fatalf("Stats=%+v", st)
		}
	})

	// Ensure strict mode NAKs a frame number out of sequence and a frame
	// with a repeated number but new text.
	t.Run("FrameNumbers", func(t *testing.T) {
		lis, analyzer := MustPipe(t)
		r := astm.NewReceiver(lis, (&collector{}).handle)
		runReceiver(t, r)
		p := &peer{tb: t, c: analyzer}
		p.write(astm.ENQ)
		p.expect(astm.ACK)
		p.write(astm.AppendFrame(nil, 2, []byte("H|\\^&\r"), true)...) // must start at 1
		p.expect(astm.NAK)
		p.write(astm.AppendFrame(nil, 1, []byte("H|\\^&\r"), true)...)
		p.expect(astm.ACK)
		p.write(astm.AppendFrame(nil, 1, []byte("P|1\r"), true)...) // repeated number, new text
		p.expect(astm.NAK)
		p.write(astm.AppendFrame(nil, 3, []byte("P|1\r"), true)...) // skips 2
		p.expect(astm.NAK)
		p.write(astm.AppendFrame(nil, 2, []byte("P|1\r"), true)...)
		p.expect(astm.ACK)
		if st := r.Stats(); st.FrameNumberErrors != 3 {
			t.Fatalf("Stats=%+v", st)
		}
	})

	// Ensure lenient mode takes a frame that arrives without ENQ.
	t.Run("MissingENQ", func(t *testing.T) {
		for _, lenient := range []bool{false, true} {
			conn := newReplayConn(append(astm.AppendFrame(nil, 1, []byte(strings.Join(smallMessage, "\r")+"\r"), true), astm.EOT))
			var c collector
			r := astm.NewReceiver(conn, c.handle)
			r.Lenient = lenient
			if err := r.Run(context.Background()); !errors.Is(err, io.EOF) {
				t.Fatalf("Run=%v", err)
			}
			r.Close()
			want, replies := 0, ""
			if lenient {
				want, replies = 1, "A"
			}
			if got := len(c.deliveries()); got != want || conn.replies() != replies {
				t.Fatalf("lenient=%v: deliveries=%d replies=%q", lenient, got, conn.replies())
			}
			if lenient && r.Stats().Deviations[astm.DevMissingENQ] != 1 {
				t.Fatalf("Stats=%+v", r.Stats())
			}
		}
	})

	// Ensure a device that sends nothing after ETX and waits for the reply
	// is answered after TrailerTimeout: ACK in lenient mode, NAK in strict.
	t.Run("NothingAfterETX", func(t *testing.T) {
		for _, lenient := range []bool{false, true} {
			lis, analyzer := MustPipe(t)
			var c collector
			r := astm.NewReceiver(lis, c.handle)
			r.Lenient = lenient
			r.TrailerTimeout = 10 * time.Millisecond
			runReceiver(t, r)
			p := &peer{tb: t, c: analyzer}
			p.write(astm.ENQ)
			p.expect(astm.ACK)
			p.write(astm.STX)
			p.write([]byte(strings.Join(smallMessage, "\r") + "\r")...)
			p.write(astm.ETX)
			want := byte(astm.NAK)
			if lenient {
				want = astm.ACK
			}
			p.expect(want)
			p.write(astm.EOT)
			p.write(astm.ENQ) // the Receiver is idle again
			p.expect(astm.ACK)
			if got := len(c.deliveries()); lenient != (got == 1) {
				t.Fatalf("lenient=%v: deliveries=%d", lenient, got)
			}
		}
	})

	// Ensure two messages in one frame are delivered in order, and that a
	// failure of the second NAKs the frame, so the first comes again (at
	// least once, as the Handler doc says).
	t.Run("TwoMessagesOneFrame", func(t *testing.T) {
		lis, analyzer := MustPipe(t)
		c := collector{fail: func(n int, d *astm.Delivery) error {
			if n == 2 {
				return errors.New("busy")
			}
			return nil
		}}
		r := astm.NewReceiver(lis, c.handle)
		runReceiver(t, r)
		p := &peer{tb: t, c: analyzer}
		text := []byte(strings.Join(smallMessage, "\r") + "\r" + strings.Join(smallMessage, "\r") + "\r")
		p.write(astm.ENQ)
		p.expect(astm.ACK)
		p.write(astm.AppendFrame(nil, 1, text[:240], false)...)
		p.expect(astm.ACK)
		last := astm.AppendFrame(nil, 2, text[240:], true)
		p.write(last...)
		p.expect(astm.NAK)
		p.write(last...)
		p.expect(astm.ACK)
		p.write(astm.EOT)
		p.write(astm.ENQ)
		p.expect(astm.ACK)
		if got, want := c.calls(), 4; got != want {
			t.Fatalf("Handler calls=%d, want %d", got, want)
		}
		if st := r.Stats(); st.Delivered != 3 || st.HandlerErrors != 1 || st.Discarded != 0 {
			t.Fatalf("Stats=%+v", st)
		}
	})

	// Ensure EOT as the reply to a frame (receiver interrupt) counts as ACK.
	t.Run("ReceiverInterrupt", func(t *testing.T) {
		lis, analyzer := MustPipe(t)
		s := astm.NewSender(analyzer)
		done := make(chan error, 1)
		go func() { done <- s.Send(context.Background(), smallMessage[:2]) }()
		p := &peer{tb: t, c: lis}
		p.expect(astm.ENQ)
		p.write(astm.ACK)
		p.readFrame()
		p.write(astm.EOT)
		p.readFrame()
		p.write(astm.ACK)
		p.expect(astm.EOT)
		if err := <-done; err != nil {
			t.Fatalf("Send=%v", err)
		}
	})
}

// TestReceiver_Limits ensures frames and messages over Limits are NAKed.
func TestReceiver_Limits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lim   astm.Limits
		text  string
		stats string
	}{
		{"FrameBytes", astm.Limits{MaxFrameBytes: 300}, "H|\\^&|" + strings.Repeat("x", 400) + "\r", "OversizedFrames"},
		{"MessageBytes", astm.Limits{MaxMessageBytes: 100}, "H|\\^&|" + strings.Repeat("x", 200) + "\r", "LimitErrors"},
		{"RecordBytes", astm.Limits{MaxRecordBytes: 100}, "H|\\^&|" + strings.Repeat("x", 200) + "\r", "LimitErrors"},
		{"Records", astm.Limits{MaxRecords: 3}, "H|\\^&\rP|1\rO|1\rR|1\r", "LimitErrors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			b = append(b, astm.ENQ)
			b = astm.AppendFrame(b, 1, []byte(tc.text), true)
			b = append(b, astm.EOT)
			conn := newReplayConn(b)
			r := astm.NewReceiver(conn, (&collector{}).handle)
			r.Lenient = true
			r.Limits = tc.lim
			defer r.Close()
			r.Run(context.Background())
			if got, want := conn.replies(), "AN"; got != want {
				t.Fatalf("replies=%s, want %s", got, want)
			}
			wantStat(tc.stats, 1)(t, r.Stats())
		})
	}
}

// TestReceiver_StatsConcurrent reads Stats while a transmission runs; under
// -race it proves the counters are guarded.
func TestReceiver_StatsConcurrent(t *testing.T) {
	lis, analyzer := MustTCPPair(t)
	r := astm.NewReceiver(lis, (&collector{}).handle)
	r.Lenient = true
	runReceiver(t, r)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				_ = r.Stats()
			}
		}
	}()
	s := astm.NewSender(analyzer)
	for range 5 {
		if err := s.Send(context.Background(), haematologyRecords()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
	if got, want := r.Stats().Delivered, uint64(5); got != want {
		t.Fatalf("Delivered=%d, want %d", got, want)
	}
}
