package serial_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/serial"
	"github.com/healthpost/healthpost/edge"
)

// PTY is a pseudo-terminal pair made by socat, standing in for a serial
// cable: the test plays the device on Dev, the node opens Host. Both are
// stable symlinks (socat's link= option) to the /dev/pts nodes socat
// printed, so a new socat on the same links is the same cable plugged back.
type PTY struct {
	Dev, Host       string // the links
	DevPTS, HostPTS string // the /dev/pts nodes socat reported
	cmd             *exec.Cmd
	exited          chan struct{}
}

var ptyLine = regexp.MustCompile(`PTY is (/dev/pts/\d+)`)

// MustStartPTY starts socat with a pty pair linked at dir/ttyDEV and
// dir/ttyHOST, and returns once socat reports both ptys and its data loop.
// The pair is unplugged when the test ends.
func MustStartPTY(tb testing.TB, dir string) *PTY {
	tb.Helper()
	p := &PTY{Dev: filepath.Join(dir, "ttyDEV"), Host: filepath.Join(dir, "ttyHOST"), exited: make(chan struct{})}
	p.cmd = exec.Command("socat", "-d", "-d", "pty,raw,echo=0,link="+p.Dev, "pty,raw,echo=0,link="+p.Host)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start socat (apt-get install socat): %v", err)
	}
	sc := bufio.NewScanner(stderr)
	var ptys []string
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if m := ptyLine.FindStringSubmatch(sc.Text()); m != nil {
			ptys = append(ptys, m[1])
		}
		if strings.Contains(sc.Text(), "starting data transfer loop") {
			break
		}
	}
	if len(ptys) != 2 {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		tb.Fatalf("socat did not report two ptys: %q", seen)
	}
	p.DevPTS, p.HostPTS = ptys[0], ptys[1]
	go func() {
		io.Copy(io.Discard, stderr)
		p.cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() { p.Unplug(tb) })
	return p
}

// Unplug ends socat (SIGTERM: it removes its links, and the ptys vanish)
// and waits until it has exited.
func (p *PTY) Unplug(tb testing.TB) { p.signal(tb, syscall.SIGTERM) }

// Yank kills socat outright (SIGKILL): the ptys vanish but the links stay,
// dangling, like a /dev/serial/by-id link whose adapter was pulled.
func (p *PTY) Yank(tb testing.TB) { p.signal(tb, syscall.SIGKILL) }

func (p *PTY) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	<-p.exited
}

// MustOpenDevice opens the device's end of a pty as the device would.
func MustOpenDevice(tb testing.TB, path string) *serial.Conn {
	tb.Helper()
	c, err := serial.Open(serial.Tarm{}, path, 115200, serial.Framing{DataBits: 8, Parity: "none", StopBits: 1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// MustOpenStore opens a store on a new file, and a separate connection to
// the same file for checking what committed.
func MustOpenStore(tb testing.TB) (*edge.Store, *sql.DB) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), edge.DBFileName)
	s := edge.NewStore(path)
	s.DiskCheckPeriod = 0
	s.LowFreeBytes, s.CriticalFreeBytes = 64<<20, 16<<20
	if err := s.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return s, db
}

// MustCreateDevice registers a serial device on port.
func MustCreateDevice(tb testing.TB, s *edge.Store, name, kind, codec string, st devices.Settings) edge.Device {
	tb.Helper()
	if st.Baud == 0 {
		st.Baud = 115200
	}
	b, err := json.Marshal(st)
	if err != nil {
		tb.Fatal(err)
	}
	d := edge.Device{Name: name, Kind: kind, Transport: "serial", Codec: codec, Settings: string(b)}
	if err := s.CreateDevice(context.Background(), &d); err != nil {
		tb.Fatal(err)
	}
	return d
}

// MustCreatePatient registers a patient and returns its local ID.
func MustCreatePatient(tb testing.TB, s *edge.Store) string {
	tb.Helper()
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "nurse"})
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 40}
	if err := s.CreatePatient(ctx, p); err != nil {
		tb.Fatal(err)
	}
	return p.LocalID
}

// MustCount runs a count query.
func MustCount(tb testing.TB, db *sql.DB, q string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// events records what a Ports reports, for tests to wait on.
type events struct {
	mu       sync.Mutex
	statuses []string
	status   chan string
	stored   chan string
	problems chan string
}

func newEvents() *events {
	return &events{status: make(chan string, 10000), stored: make(chan string, 100000), problems: make(chan string, 10000)}
}

// waitStatus returns the next status, from now on, containing want.
func (e *events) waitStatus(tb testing.TB, want string) string {
	tb.Helper()
	return e.wait(tb, e.status, want, "status")
}

// waitStatuses waits until each of wants has been contained in a status,
// in any order.
func (e *events) waitStatuses(tb testing.TB, wants ...string) {
	tb.Helper()
	left := append([]string(nil), wants...)
	timeout := time.After(30 * time.Second)
	for len(left) > 0 {
		select {
		case s := <-e.status:
			for i, w := range left {
				if strings.Contains(s, w) {
					left = append(left[:i], left[i+1:]...)
					break
				}
			}
		case <-timeout:
			e.mu.Lock()
			defer e.mu.Unlock()
			tb.Fatalf("no statuses containing %q within 30s; statuses so far %q", left, e.statuses)
		}
	}
}

// waitProblem returns the next problem containing want.
func (e *events) waitProblem(tb testing.TB, want string) string {
	tb.Helper()
	return e.wait(tb, e.problems, want, "problem")
}

// waitStored waits until n more messages of device name committed.
func (e *events) waitStored(tb testing.TB, name string, n int) {
	tb.Helper()
	for range n {
		e.wait(tb, e.stored, name+":", "stored message")
	}
}

func (e *events) wait(tb testing.TB, ch chan string, want, what string) string {
	tb.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case s := <-ch:
			if strings.Contains(s, want) {
				return s
			}
		case <-timeout:
			e.mu.Lock()
			defer e.mu.Unlock()
			tb.Fatalf("no %s containing %q within 30s; statuses so far %q", what, want, e.statuses)
			return ""
		}
	}
}

// MustOpenPorts opens a Ports for the store's serial devices with short
// backoff, closed when the test ends.
func MustOpenPorts(tb testing.TB, s *edge.Store, adjust func(*serial.Ports)) (*serial.Ports, *events) {
	tb.Helper()
	in := devices.NewIngestor(s, slog.New(slog.DiscardHandler))
	p := serial.NewPorts(s, in, slog.New(slog.DiscardHandler))
	p.MinBackoff, p.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	p.FlushInterval = 0
	p.LineRepeatWindow = 0
	p.LineProblemDelay = 50 * time.Millisecond
	ev := newEvents()
	p.OnStatus = func(d edge.Device, st string) {
		ev.mu.Lock()
		ev.statuses = append(ev.statuses, d.Name+": "+st)
		ev.mu.Unlock()
		ev.status <- d.Name + ": " + st
	}
	p.OnStored = func(d edge.Device, codec string) { ev.stored <- d.Name + ": " + codec }
	p.OnProblem = func(d edge.Device, problem string) { ev.problems <- d.Name + ": " + problem }
	if adjust != nil {
		adjust(p)
	}
	if err := p.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close(context.Background()) })
	return p, ev
}
