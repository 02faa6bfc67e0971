package astm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices/astm"
)

// catalogueDir holds the sample transmissions shared by tests and fuzzing.
const catalogueDir = "../../testdata/astm"

// ist is the zone the tests read analyzer clocks in; the caller supplies it.
var ist = time.FixedZone("IST", 5*3600+1800)

// MustReadCase returns the bytes of testdata/astm/<name>.astm.
func MustReadCase(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(catalogueDir, name+".astm"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// MustCaseNames lists the catalogue's cases.
func MustCaseNames(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(catalogueDir, "*.astm"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no catalogue in %s: %v", catalogueDir, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".astm"))
	}
	return names
}

// frameTexts extracts the text of every STX...ETX/ETB frame in a
// transmission, dropping frame numbers: a test-side decoder, independent of
// the package, to turn a catalogue case into record text.
func frameTexts(b []byte) []byte {
	var out []byte
	for {
		i := bytes.IndexByte(b, astm.STX)
		if i < 0 {
			return out
		}
		b = b[i+1:]
		if len(b) > 0 && b[0] >= '0' && b[0] <= '7' {
			b = b[1:]
		}
		j := bytes.IndexAny(b, "\x02\x03\x04\x17")
		if j < 0 {
			return append(out, b...)
		}
		out = append(out, b[:j]...)
		b = b[j:]
	}
}

// replayConn plays a recorded analyzer: reads come from the recording, then
// io.EOF; writes (the LIS's replies) are collected. It has no read
// deadlines, so the Receiver uses its reader goroutine.
type replayConn struct {
	r  io.Reader
	mu sync.Mutex
	w  bytes.Buffer
}

func newReplayConn(b []byte) *replayConn { return &replayConn{r: bytes.NewReader(b)} }

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *replayConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}

// replies returns the replies written so far, ACK as A and NAK as N.
func (c *replayConn) replies() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return replyString(c.w.Bytes())
}

func replyString(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch c {
		case astm.ACK:
			s.WriteByte('A')
		case astm.NAK:
			s.WriteByte('N')
		case astm.ENQ:
			s.WriteByte('Q')
		case astm.EOT:
			s.WriteByte('E')
		default:
			s.WriteByte('?')
		}
	}
	return s.String()
}

// noDeadline hides a connection's deadline methods, as a serial port
// without them would, so the link falls back to its reader goroutine.
type noDeadline struct{ io.ReadWriter }

// deadlineUnsupported has deadline methods that always fail with
// os.ErrNoDeadline, like an *os.File the runtime cannot poll.
type deadlineUnsupported struct{ io.ReadWriter }

func (deadlineUnsupported) SetReadDeadline(time.Time) error  { return os.ErrNoDeadline }
func (deadlineUnsupported) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }

// asConn returns the net.Conn under a transport end, for a scripted peer.
func asConn(rw io.ReadWriter) net.Conn {
	switch x := rw.(type) {
	case noDeadline:
		rw = x.ReadWriter
	case deadlineUnsupported:
		rw = x.ReadWriter
	}
	return rw.(net.Conn)
}

// collector is a Handler that keeps every delivery and can be told to fail.
type collector struct {
	mu   sync.Mutex
	got  []*astm.Delivery
	fail func(n int, d *astm.Delivery) error // n counts calls from 1
	n    int
}

func (c *collector) handle(ctx context.Context, d *astm.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.fail != nil {
		if err := c.fail(c.n, d); err != nil {
			return err
		}
	}
	c.got = append(c.got, d)
	return nil
}

func (c *collector) deliveries() []*astm.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*astm.Delivery(nil), c.got...)
}

func (c *collector) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// MustTCPPair returns both ends of a loopback TCP connection.
func MustTCPPair(tb testing.TB) (lis, analyzer net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	analyzer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		tb.Fatal(r.err)
	}
	tb.Cleanup(func() { r.c.Close(); analyzer.Close() })
	return r.c, analyzer
}

// MustPipe returns both ends of a net.Pipe.
func MustPipe(tb testing.TB) (lis, analyzer net.Conn) {
	tb.Helper()
	a, b := net.Pipe()
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// transports are the connections the low-level tests run over.
var transports = []struct {
	name string
	pair func(testing.TB) (io.ReadWriter, io.ReadWriter)
}{
	{"TCP", func(tb testing.TB) (io.ReadWriter, io.ReadWriter) { return MustTCPPair(tb) }},
	{"Pipe", func(tb testing.TB) (io.ReadWriter, io.ReadWriter) { return MustPipe(tb) }},
	{"TCPNoDeadline", func(tb testing.TB) (io.ReadWriter, io.ReadWriter) {
		a, b := MustTCPPair(tb)
		return noDeadline{a}, noDeadline{b}
	}},
	{"PipeNoDeadline", func(tb testing.TB) (io.ReadWriter, io.ReadWriter) {
		a, b := MustPipe(tb)
		return noDeadline{a}, noDeadline{b}
	}},
	{"PipeDeadlineUnsupported", func(tb testing.TB) (io.ReadWriter, io.ReadWriter) {
		a, b := MustPipe(tb)
		return deadlineUnsupported{a}, deadlineUnsupported{b}
	}},
}

// peer is a scripted analyzer (or LIS) for byte-exact protocol tests. Every
// read has a generous deadline so a broken test fails instead of hanging.
type peer struct {
	tb testing.TB
	c  net.Conn
}

func (p *peer) write(b ...byte) {
	p.tb.Helper()
	if err := p.c.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		p.tb.Fatal(err)
	}
	if _, err := p.c.Write(b); err != nil {
		p.tb.Fatalf("peer write: %v", err)
	}
}

func (p *peer) readByte() byte {
	p.tb.Helper()
	if err := p.c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		p.tb.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(p.c, b[:]); err != nil {
		p.tb.Fatalf("peer read: %v", err)
	}
	return b[0]
}

// expect reads one byte and fails unless it is want.
func (p *peer) expect(want byte) {
	p.tb.Helper()
	if got := p.readByte(); got != want {
		p.tb.Fatalf("peer read %q, want %q", replyString([]byte{got}), replyString([]byte{want}))
	}
}

// readFrame reads one frame, STX through LF.
func (p *peer) readFrame() []byte {
	p.tb.Helper()
	var f []byte
	for {
		c := p.readByte()
		f = append(f, c)
		if c == astm.LF {
			return f
		}
	}
}

// silent fails if a byte arrives within d: proof that nothing was sent.
func (p *peer) silent(d time.Duration) {
	p.tb.Helper()
	if err := p.c.SetReadDeadline(time.Now().Add(d)); err != nil {
		p.tb.Fatal(err)
	}
	var b [1]byte
	n, err := p.c.Read(b[:])
	if n > 0 {
		p.tb.Fatalf("peer read %q, want silence", replyString(b[:n]))
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		p.tb.Fatalf("peer read: %v, want timeout", err)
	}
}

// frames frames records the way a Sender does, numbered from fn.
func frames(fn int, records ...string) [][]byte {
	var out [][]byte
	for _, r := range records {
		out = append(out, astm.AppendFrame(nil, fn, []byte(r+"\r"), true))
		fn++
	}
	return out
}

// smallMessage is a short valid message, record by record.
var smallMessage = []string{
	`H|\^&|||GlucoStat^1.0|||||||P|LIS2-A2|20250318090000`,
	`P|1||PID-020||TESTPATIENT^MEENA`,
	`O|1|G-88||^^^GLU|R`,
	`R|1|^^^GLU|126|mg/dL|70-110|H||F||||20250318085800|GlucoStat`,
	`L|1|N`,
}

// running is a Receiver.Run in a goroutine.
type running struct {
	done chan struct{}
	err  error
}

// runReceiver runs r.Run in a goroutine; the test's cleanup cancels it,
// waits for it and closes r.
func runReceiver(tb testing.TB, r *astm.Receiver) *running {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	x := &running{done: make(chan struct{})}
	go func() {
		defer close(x.done)
		x.err = r.Run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-x.done
		r.Close()
	})
	return x
}

// wait waits for Run to return and returns its error.
func (x *running) wait(tb testing.TB) error {
	tb.Helper()
	select {
	case <-x.done:
		return x.err
	case <-time.After(10 * time.Second):
		tb.Fatal("Run did not return")
		return nil
	}
}
