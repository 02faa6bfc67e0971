package astm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices/astm"
)

// TestSender_RetryLimit ensures a frame NAKed six times ends the
// transmission with EOT and ErrRetryLimit.
func TestSender_RetryLimit(t *testing.T) {
	lis, analyzer := MustPipe(t)
	s := astm.NewSender(analyzer)
	done := make(chan error, 1)
	go func() { done <- s.Send(context.Background(), smallMessage) }()
	p := &peer{tb: t, c: lis}
	p.expect(astm.ENQ)
	p.write(astm.ACK)
	first := p.readFrame()
	p.write(astm.ACK)
	var tries int
	for {
		c := p.readByte()
		if c == astm.EOT {
			break
		}
		if c != astm.STX {
			t.Fatalf("read %q, want STX or EOT", c)
		}
		f := append([]byte{c}, p.readFrame()...)
		if f[1] != '2' {
			t.Fatalf("frame %q, want frame 2 again", f)
		}
		tries++
		p.write(astm.NAK)
	}
	if got, want := tries, astm.DefaultMaxAttempts; got != want {
		t.Fatalf("tries=%d, want %d", got, want)
	}
	if err := <-done; !errors.Is(err, astm.ErrRetryLimit) {
		t.Fatalf("Send=%v, want ErrRetryLimit", err)
	}
	if first[1] != '1' {
		t.Fatalf("first frame %q, want number 1", first)
	}
}

// TestSender_ReplyTimeout ensures a silent receiver makes the Sender give up
// after ReplyTimeout, with EOT, both on ENQ and on a frame.
func TestSender_ReplyTimeout(t *testing.T) {
	for _, tr := range transports {
		for _, stage := range []string{"ENQ", "Frame"} {
			t.Run(tr.name+"/"+stage, func(t *testing.T) {
				lis, analyzer := tr.pair(t)
				s := astm.NewSender(analyzer)
				s.ReplyTimeout = 30 * time.Millisecond
				defer s.Close()
				done := make(chan error, 1)
				go func() { done <- s.Send(context.Background(), smallMessage) }()
				p := &peer{tb: t, c: asConn(lis)}
				p.expect(astm.ENQ)
				if stage == "Frame" {
					p.write(astm.ACK)
					p.readFrame()
				}
				p.expect(astm.EOT)
				if err := <-done; !errors.Is(err, astm.ErrTimeout) {
					t.Fatalf("Send=%v, want ErrTimeout", err)
				}
			})
		}
	}
}

// TestSender_Busy ensures a receiver that NAKs every ENQ gets MaxAttempts
// ENQs, BusyDelay apart, then ErrBusy.
func TestSender_Busy(t *testing.T) {
	lis, analyzer := MustPipe(t)
	s := astm.NewSender(analyzer)
	s.BusyDelay = 5 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- s.Send(context.Background(), smallMessage) }()
	p := &peer{tb: t, c: lis}
	start := time.Now()
	for range astm.DefaultMaxAttempts {
		p.expect(astm.ENQ)
		p.write(astm.NAK)
	}
	if err := <-done; !errors.Is(err, astm.ErrBusy) {
		t.Fatalf("Send=%v, want ErrBusy", err)
	}
	if got, min := time.Since(start), 5*s.BusyDelay; got < min {
		t.Fatalf("took %v, want at least %v between ENQs", got, min)
	}
}

// TestSender_Contention ensures the instrument keeps the line when both
// sides bid at once, and the computer yields.
func TestSender_Contention(t *testing.T) {
	// Ensure the instrument waits ContentionDelay and bids again.
	t.Run("InstrumentScripted", func(t *testing.T) {
		lis, analyzer := MustPipe(t)
		s := astm.NewSender(analyzer)
		s.ContentionDelay = 5 * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- s.Send(context.Background(), smallMessage[:1]) }()
		p := &peer{tb: t, c: lis}
		p.expect(astm.ENQ)
		p.write(astm.ENQ) // the computer bids too
		p.expect(astm.ENQ)
		p.write(astm.ACK)
		p.readFrame()
		p.write(astm.ACK)
		p.expect(astm.EOT)
		if err := <-done; err != nil {
			t.Fatalf("Send=%v", err)
		}
	})

	// Ensure a LIS that wants to send while the analyzer does yields,
	// receives the analyzer's message on the same line, then sends its own.
	t.Run("BothSides", func(t *testing.T) {
		lisConn, analyzerConn := MustTCPPair(t)
		var atLIS, atAnalyzer collector
		lis := astm.NewReceiver(lisConn, atLIS.handle)
		defer lis.Close()
		lisOut := lis.Sender()
		analyzer := astm.NewReceiver(analyzerConn, atAnalyzer.handle)
		defer analyzer.Close()
		analyzerOut := analyzer.Sender()
		analyzerOut.Role = astm.RoleInstrument
		analyzerOut.ContentionDelay = 20 * time.Millisecond

		order := []string{`H|\^&|||HEALTHPOST^1|||||HemaCount 5D||P|LIS2-A2|20250314100000`, `P|1||PID-9`, `O|1|H9||^^^CBC|R`, `L|1|N`}
		sent := make(chan error, 1)
		go func() { sent <- analyzerOut.Send(context.Background(), smallMessage) }()
		// Both sides have written ENQ before either reads, so each sees the
		// other's ENQ: the computer must yield.
		if err := lisOut.Send(context.Background(), order); !errors.Is(err, astm.ErrContention) {
			t.Fatalf("LIS Send=%v, want ErrContention", err)
		}
		if err := lis.Receive(context.Background()); err != nil {
			t.Fatalf("LIS Receive=%v", err)
		}
		if err := <-sent; err != nil {
			t.Fatalf("analyzer Send=%v", err)
		}
		if got, want := len(atLIS.deliveries()), 1; got != want {
			t.Fatalf("LIS deliveries=%d, want %d", got, want)
		}

		// Now the line is free: the LIS sends its order to the analyzer.
		received := make(chan error, 1)
		go func() { received <- analyzer.Receive(context.Background()) }()
		if err := lisOut.Send(context.Background(), order); err != nil {
			t.Fatalf("LIS Send=%v", err)
		}
		if err := <-received; err != nil {
			t.Fatalf("analyzer Receive=%v", err)
		}
		ds := atAnalyzer.deliveries()
		if len(ds) != 1 || ds[0].Message.Patients[0].Orders[0].SpecimenID != "H9" {
			t.Fatalf("analyzer deliveries=%+v", ds)
		}
	})
}

// TestSender_InvalidRecord ensures records that cannot be framed are refused
// before anything is sent.
func TestSender_InvalidRecord(t *testing.T) {
	for _, recs := range [][]string{{""}, {"H|\\^&", "P|1\rO|1"}, {"R|1|\x03"}, {"C|1|a\nb"}} {
		conn := newReplayConn(nil)
		s := astm.NewSender(conn)
		if err := s.Send(context.Background(), recs); !errors.Is(err, astm.ErrInvalidRecord) {
			t.Fatalf("Send(%q)=%v, want ErrInvalidRecord", recs, err)
		}
		if conn.w.Len() != 0 {
			t.Fatalf("Send(%q) wrote %q", recs, conn.w.Bytes())
		}
		s.Close()
	}
}

// TestSender_Cancel ensures a cancelled context stops a Sender waiting for
// a reply.
func TestSender_Cancel(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			lis, analyzer := tr.pair(t)
			s := astm.NewSender(analyzer)
			defer s.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Send(ctx, smallMessage) }()
			p := &peer{tb: t, c: asConn(lis)}
			p.expect(astm.ENQ)
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Send=%v, want context.Canceled", err)
			}
		})
	}
}
