package mllp_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/devices/mllp"
)

// shutdownStream hands over one framed message and, in the same Read, ends
// the session's context: the node is stopping just as a message arrives.
type shutdownStream struct {
	mu       sync.Mutex
	data     []byte
	cancel   context.CancelFunc
	deadline time.Time
	written  bytes.Buffer
}

func (s *shutdownStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.data) > 0 {
		n := copy(p, s.data)
		s.data = s.data[n:]
		s.cancel()
		return n, nil
	}
	return 0, os.ErrDeadlineExceeded
}

func (s *shutdownStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written.Write(p)
}

func (s *shutdownStream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = t
	return nil
}

func TestSession_ShutdownFinishesMessageInHand(t *testing.T) {
	s, db := MustOpenStore(t)
	dev := MustCreateDevice(t, s, "Ward monitor", devices.Settings{Listen: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	var framed bytes.Buffer
	if err := hl7.WriteFrame(&framed, oru("LAST-1", "", 120, 80)); err != nil {
		t.Fatal(err)
	}
	stream := &shutdownStream{data: framed.Bytes(), cancel: cancel}
	sess := &mllp.Session{Ingestor: devices.NewIngestor(s, slog.New(slog.DiscardHandler)), Device: dev}

	// Ensure a message read just as the node stops is still stored and
	// acknowledged with AA, and then the session ends without reading on.
	if err := sess.Serve(ctx, stream); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve=%v, want context.Canceled", err)
	}
	if !bytes.Contains(stream.written.Bytes(), []byte("MSA|AA|LAST-1")) {
		t.Fatalf("answered %q, want AA for LAST-1", stream.written.Bytes())
	}
	if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE message_id LIKE 'LAST-1/%'`); got != 2 {
		t.Fatalf("readings=%d, want 2", got)
	}
}

func TestClient_NoACK(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 4096)) // take the message, answer nothing
			c.Read(make([]byte, 1))
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := mllp.NewClient(nc)
	c.ReplyTimeout = 100 * time.Millisecond
	// Ensure a receiver that never answers is reported as no ACK.
	if _, err := c.Send(context.Background(), oru("X-1", "", 120, 80)); !errors.Is(err, mllp.ErrNoACK) {
		t.Fatalf("Send=%v, want ErrNoACK", err)
	}
}
