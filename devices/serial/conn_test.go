package serial_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices/serial"
)

// fakePort behaves like a tarm port with a read timeout: a silent read
// waits one tick and returns io.EOF; after hangUp every read returns io.EOF
// at once, as a hung-up tty does.
type fakePort struct {
	tick   time.Duration
	hungUp atomic.Bool
	closed chan struct{}
}

func (p *fakePort) Read(b []byte) (int, error) {
	if p.hungUp.Load() {
		return 0, io.EOF
	}
	select {
	case <-time.After(p.tick):
	case <-p.closed:
	}
	return 0, io.EOF
}

func (p *fakePort) Write(b []byte) (int, error) { return len(b), nil }
func (p *fakePort) Close() error                { close(p.closed); return nil }

type fakeOpener struct{ port *fakePort }

func (o fakeOpener) Open(string, int, serial.Framing) (io.ReadWriteCloser, error) { return o.port, nil }

// MustOpenFake opens a Conn on a fake port whose device node is a file.
func MustOpenFake(tb testing.TB) (*serial.Conn, *fakePort, string) {
	tb.Helper()
	node := filepath.Join(tb.TempDir(), "ttyFAKE")
	if err := os.WriteFile(node, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	p := &fakePort{tick: 20 * time.Millisecond, closed: make(chan struct{})}
	c, err := serial.Open(fakeOpener{p}, node, 9600, serial.Framing{DataBits: 8, Parity: "none", StopBits: 1})
	if err != nil {
		tb.Fatal(err)
	}
	c.Tick = p.tick
	tb.Cleanup(func() { c.Close() })
	return c, p, node
}

func TestConn(t *testing.T) {
	buf := make([]byte, 16)

	// Ensure a missing node fails Open with fs.ErrNotExist.
	t.Run("Absent", func(t *testing.T) {
		_, err := serial.Open(fakeOpener{}, filepath.Join(t.TempDir(), "nothing"), 9600, serial.Framing{})
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Open=%v, want not exist", err)
		}
	})

	// Ensure reads that end at once with nothing, while the node is still
	// there, are a hang-up, not an endless loop of empty reads.
	t.Run("HungUp", func(t *testing.T) {
		c, p, _ := MustOpenFake(t)
		p.hungUp.Store(true)
		if _, err := c.Read(buf); !errors.Is(err, serial.ErrHungUp) {
			t.Fatalf("Read=%v, want ErrHungUp", err)
		}
	})

	// Ensure a node that vanished, or was replaced by another device on the
	// same path, is unplugged.
	t.Run("Vanished", func(t *testing.T) {
		c, _, node := MustOpenFake(t)
		os.Remove(node)
		if _, err := c.Read(buf); !errors.Is(err, serial.ErrUnplugged) {
			t.Fatalf("Read=%v, want ErrUnplugged", err)
		}
	})
	t.Run("Replaced", func(t *testing.T) {
		c, _, node := MustOpenFake(t)
		other := node + ".new"
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, node); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); !errors.Is(err, serial.ErrUnplugged) {
			t.Fatalf("Read=%v, want ErrUnplugged", err)
		}
	})

	// Ensure silence past the idle timeout ends reading.
	t.Run("Silent", func(t *testing.T) {
		c, _, _ := MustOpenFake(t)
		c.IdleTimeout = 100 * time.Millisecond
		if _, err := c.Read(buf); !errors.Is(err, serial.ErrSilent) {
			t.Fatalf("Read=%v, want ErrSilent", err)
		}
	})

	// Ensure a read deadline in the past, or StopReading, ends a read that
	// is waiting, with the errors the codecs expect.
	t.Run("Deadline", func(t *testing.T) {
		c, _, _ := MustOpenFake(t)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(buf); !os.IsTimeout(err) {
			t.Fatalf("Read=%v, want a timeout", err)
		}
	})
	t.Run("StopReading", func(t *testing.T) {
		c, _, _ := MustOpenFake(t)
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(buf)
			done <- err
		}()
		c.StopReading()
		if err := <-done; !errors.Is(err, serial.ErrStopped) {
			t.Fatalf("Read=%v, want ErrStopped", err)
		}
		if _, err := c.Write([]byte{0x06}); err != nil {
			t.Fatalf("Write after StopReading=%v; an acknowledgement must still go out", err)
		}
	})
	t.Run("Close", func(t *testing.T) {
		c, _, _ := MustOpenFake(t)
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(buf)
			done <- err
		}()
		c.Close()
		if err := <-done; !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read=%v, want os.ErrClosed", err)
		}
	})
}
