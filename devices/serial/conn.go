package serial

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	tarm "github.com/tarm/serial"
	"golang.org/x/sys/unix"
)

// DefaultReadTick is how long one read of a silent port waits before it
// returns with nothing, so that a Conn can check deadlines, the device node
// and silence. 100 ms is the finest the termios VTIME timer allows.
const DefaultReadTick = 100 * time.Millisecond

// Errors a Conn returns from Read and Write.
var (
	// ErrUnplugged means the port's device node vanished or was replaced
	// by another: the USB adapter was unplugged (or unplugged and plugged
	// back, so this handle is dead).
	ErrUnplugged = errors.New("serial device unplugged")
	// ErrHungUp means the line hung up: reads end at once with no data
	// while the device node is still there.
	ErrHungUp = errors.New("serial line hung up")
	// ErrSilent means no byte arrived for the Conn's IdleTimeout.
	ErrSilent = errors.New("serial device silent")
	// ErrStopped means StopReading was called.
	ErrStopped = errors.New("serial reading stopped")
)

// Framing is the character framing of a serial line.
type Framing struct {
	DataBits int    // 5 to 8
	Parity   string // "none", "even" or "odd"
	StopBits int    // 1 or 2
}

// Opener opens serial ports. It hides the serial library so that it can be
// swapped (go.bug.st/serial, a test double).
//
// The port returned must not block in Read for long while the line is
// silent: Read returns within about a Conn's Tick with no bytes and a nil
// error or io.EOF. A Conn turns that into deadlines, node checks and
// silence detection.
type Opener interface {
	Open(port string, baud int, f Framing) (io.ReadWriteCloser, error)
}

// Tarm opens ports with github.com/tarm/serial.
type Tarm struct {
	// ReadTimeout is how long a read of a silent port waits (the termios
	// VTIME timer, in steps of 100 ms); 0 means DefaultReadTick.
	ReadTimeout time.Duration
}

// Open implements Opener.
func (t Tarm) Open(port string, baud int, f Framing) (io.ReadWriteCloser, error) {
	c := &tarm.Config{Name: port, Baud: baud, ReadTimeout: t.ReadTimeout, Size: byte(f.DataBits), StopBits: tarm.Stop1}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTick
	}
	if f.StopBits == 2 {
		c.StopBits = tarm.Stop2
	}
	switch f.Parity {
	case "even":
		c.Parity = tarm.ParityEven
	case "odd":
		c.Parity = tarm.ParityOdd
	default:
		c.Parity = tarm.ParityNone
	}
	p, err := tarm.OpenPort(c)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// nodeID identifies a device node: the same path may later name another
// device (a replugged adapter) with another inode or device number.
type nodeID struct{ dev, ino, rdev uint64 }

func statNode(path string) (nodeID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil { // follows symlinks such as /dev/serial/by-id/...
		return nodeID{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return nodeID{dev: uint64(st.Dev), ino: uint64(st.Ino), rdev: uint64(st.Rdev)}, nil
}

// Conn is an open serial port with read deadlines that notices when its
// device goes away. It satisfies mllp.Stream and the ASTM link's deadline
// interface.
//
// Read waits for data one Tick at a time. Between ticks it checks the read
// deadline, StopReading, the device node (stat: gone or replaced means
// ErrUnplugged), how long the port has been silent (ErrSilent after
// IdleTimeout) and whether reads have started to end at once with nothing,
// which is how a hung-up tty behaves (ErrHungUp, or ErrUnplugged when the
// node is gone too).
//
// One goroutine reads; another may write, set the deadline, stop reading or
// close. Set IdleTimeout and Tick before the first Read.
type Conn struct {
	// IdleTimeout ends reading with ErrSilent when no byte arrived for this
	// long; 0 means no limit.
	IdleTimeout time.Duration
	// Tick is the port's read timeout (how long a silent read waits);
	// 0 means DefaultReadTick.
	Tick time.Duration

	port io.ReadWriteCloser
	path string
	node nodeID

	mu       sync.Mutex
	deadline time.Time

	stopped, closed atomic.Bool
	gotData         atomic.Bool
	lastData        time.Time // reader goroutine only
	fast            int       // consecutive empty reads that ended at once
}

// Open opens the port at path with op and returns a Conn on it. A path that
// does not exist gives an error wrapping fs.ErrNotExist.
func Open(op Opener, path string, baud int, f Framing) (*Conn, error) {
	node, err := statNode(path)
	if err != nil {
		return nil, fmt.Errorf("open serial port: %w", err)
	}
	p, err := op.Open(path, baud, f)
	if err != nil {
		return nil, fmt.Errorf("open serial port %s: %w", path, err)
	}
	return &Conn{port: p, path: path, node: node, lastData: time.Now()}, nil
}

// Path returns the port's path as configured.
func (c *Conn) Path() string { return c.path }

// GotData reports whether any byte has been read.
func (c *Conn) GotData() bool { return c.gotData.Load() }

// SetReadDeadline makes reads fail with os.ErrDeadlineExceeded once t has
// passed (within a Tick). A zero t means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

// StopReading makes every read from now on fail with ErrStopped (within a
// Tick), while writes still work: a receiver stopping for shutdown can
// still acknowledge what it stored.
func (c *Conn) StopReading() { c.stopped.Store(true) }

// Read reads what the port has, waiting for at least one byte. See Conn for
// the errors.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	tick := c.Tick
	if tick <= 0 {
		tick = DefaultReadTick
	}
	for {
		switch {
		case c.closed.Load():
			return 0, os.ErrClosed
		case c.stopped.Load():
			return 0, ErrStopped
		}
		c.mu.Lock()
		deadline := c.deadline
		c.mu.Unlock()
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		start := time.Now()
		n, err := c.port.Read(p)
		if n > 0 {
			c.lastData, c.fast = time.Now(), 0
			c.gotData.Store(true)
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			if c.closed.Load() {
				return 0, os.ErrClosed
			}
			return 0, c.lost(err)
		}
		// Nothing within the port's read timeout, or a hung-up line that
		// answers every read at once.
		if time.Since(start) < tick/4 {
			if c.fast++; c.fast >= 3 {
				return 0, c.lost(ErrHungUp)
			}
		} else {
			c.fast = 0
		}
		if err := c.checkNode(); err != nil {
			return 0, err
		}
		if c.IdleTimeout > 0 && time.Since(c.lastData) >= c.IdleTimeout {
			return 0, ErrSilent
		}
	}
}

// Write writes to the port.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.port.Write(p)
	if err != nil {
		if c.closed.Load() {
			return n, os.ErrClosed
		}
		return n, c.lost(err)
	}
	return n, nil
}

// Close closes the port. A Read in progress returns within a Tick.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.port.Close()
}

// checkNode returns ErrUnplugged when the device node is gone or replaced.
func (c *Conn) checkNode() error {
	node, err := statNode(c.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", c.path, ErrUnplugged)
	case err != nil:
		return nil // cannot tell; reads will say
	case node != c.node:
		return fmt.Errorf("%s was replaced: %w", c.path, ErrUnplugged)
	}
	return nil
}

// lost explains an error that ended the port: unplugged when the node is
// gone, else the error itself.
func (c *Conn) lost(err error) error {
	if nerr := c.checkNode(); nerr != nil {
		return nerr
	}
	if errors.Is(err, ErrHungUp) {
		return fmt.Errorf("%s: %w", c.path, err)
	}
	return fmt.Errorf("serial port %s: %w", c.path, err)
}
