package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// MustListenNotify listens like systemd does for sd_notify datagrams, on a
// socket file in a temporary directory, and returns its $NOTIFY_SOCKET value.
func MustListenNotify(tb testing.TB) (*net.UnixConn, string) {
	tb.Helper()
	// Socket paths are limited to 108 bytes; t.TempDir() can exceed that.
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn, path
}

// MustReadNotify returns the next datagram; wait bounds a test that would
// otherwise hang, it is not how the test synchronises.
func MustReadNotify(tb testing.TB, conn *net.UnixConn, wait time.Duration) string {
	tb.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		tb.Fatalf("no sd_notify datagram within %v: %v", wait, err)
	}
	return string(buf[:n])
}

// pendingNotify returns the datagrams already queued on conn, without
// waiting: a datagram is queued by the time the sender's Write returns.
func pendingNotify(tb testing.TB, conn *net.UnixConn) []string {
	tb.Helper()
	raw, err := conn.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	buf := make([]byte, 4096)
	for {
		var n int
		var rerr error
		if err := raw.Control(func(fd uintptr) {
			n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
		}); err != nil {
			tb.Fatal(err)
		}
		if errors.Is(rerr, syscall.EAGAIN) {
			return out
		}
		if rerr != nil {
			tb.Fatal(rerr)
		}
		out = append(out, string(buf[:n]))
	}
}

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestSDNotifier_Env(t *testing.T) {
	pid := 4242
	cases := []struct {
		name     string
		env      []string
		socket   string
		watchdog time.Duration
	}{
		{"NotUnderSystemd", []string{"PATH=/usr/bin"}, "", 0},
		{"NotifyOnly", []string{"NOTIFY_SOCKET=/run/systemd/notify"}, "/run/systemd/notify", 0},
		{"Watchdog", []string{"NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=30000000"}, "/run/systemd/notify", 30 * time.Second},
		{"WatchdogForThisPID", []string{"NOTIFY_SOCKET=@sd", "WATCHDOG_USEC=500000", "WATCHDOG_PID=4242"}, "@sd", 500 * time.Millisecond},
		{"WatchdogForAnotherPID", []string{"NOTIFY_SOCKET=@sd", "WATCHDOG_USEC=500000", "WATCHDOG_PID=1"}, "@sd", 0},
		{"WatchdogGarbage", []string{"NOTIFY_SOCKET=@sd", "WATCHDOG_USEC=soon"}, "@sd", 0},
		{"WatchdogZero", []string{"NOTIFY_SOCKET=@sd", "WATCHDOG_USEC=0"}, "@sd", 0},
		{"LastValueWins", []string{"NOTIFY_SOCKET=/a", "NOTIFY_SOCKET=/b"}, "/b", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Ensure the variables are read as sd_watchdog_enabled(3) says.
			n := newSDNotifier(tc.env, pid, testLogger(io.Discard))
			if got, want := n.socket, tc.socket; got != want {
				t.Fatalf("socket=%q, want %q", got, want)
			}
			if got, want := n.watchdog, tc.watchdog; got != want {
				t.Fatalf("watchdog=%v, want %v", got, want)
			}
		})
	}
}

func TestSDNotifier_Notify(t *testing.T) {
	t.Run("ReadyAndStopping", func(t *testing.T) {
		// Ensure READY=1 carries a status and the main PID, and STOPPING=1 follows.
		conn, path := MustListenNotify(t)
		n := newSDNotifier([]string{"NOTIFY_SOCKET=" + path}, os.Getpid(), testLogger(io.Discard))
		n.ready("serving on http://0.0.0.0:8080")
		if got, want := MustReadNotify(t, conn, 5*time.Second), "READY=1\nSTATUS=serving on http://0.0.0.0:8080\nMAINPID="+strconv.Itoa(os.Getpid()); got != want {
			t.Fatalf("datagram=%q, want %q", got, want)
		}
		n.stopping()
		if got := MustReadNotify(t, conn, 5*time.Second); !strings.HasPrefix(got, "STOPPING=1\n") {
			t.Fatalf("datagram=%q, want STOPPING=1 first", got)
		}
	})

	t.Run("AbstractSocket", func(t *testing.T) {
		// Ensure "@name" reaches a socket in the abstract namespace, as systemd uses in containers.
		name := fmt.Sprintf("@healthpost-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		n := newSDNotifier([]string{"NOTIFY_SOCKET=" + name}, os.Getpid(), testLogger(io.Discard))
		if err := n.notify(sdWatchdog); err != nil {
			t.Fatal(err)
		}
		if got, want := MustReadNotify(t, conn, 5*time.Second), "WATCHDOG=1"; got != want {
			t.Fatalf("datagram=%q, want %q", got, want)
		}
	})

	t.Run("NotUnderSystemd", func(t *testing.T) {
		// Ensure nothing is sent and nothing fails without $NOTIFY_SOCKET.
		var log bytes.Buffer
		n := newSDNotifier(nil, os.Getpid(), testLogger(&log))
		if err := n.notify(sdReady); err != nil {
			t.Fatal(err)
		}
		n.ready("x")
		n.stopping()
		n.startWatchdog(context.Background(), func(context.Context) error { panic("pinged without systemd") })()
		if log.Len() != 0 {
			t.Fatalf("logged without systemd:\n%s", log.String())
		}
	})

	t.Run("ErrNoListener", func(t *testing.T) {
		// Ensure a gone socket is an error that names it, and ready only logs it.
		var log bytes.Buffer
		path := filepath.Join(t.TempDir(), "gone")
		n := newSDNotifier([]string{"NOTIFY_SOCKET=" + path}, os.Getpid(), testLogger(&log))
		if err := n.notify(sdReady); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("err=%v, want one naming %s", err, path)
		}
		n.ready("x")
		if !strings.Contains(log.String(), "cannot tell systemd the node is ready") {
			t.Fatalf("log:\n%s", log.String())
		}
	})

	t.Run("ErrUnsupportedSocket", func(t *testing.T) {
		// Ensure a vsock address (systemd 254+ for VMs) is refused by name, not misread as a path.
		n := newSDNotifier([]string{"NOTIFY_SOCKET=vsock:2:1234"}, os.Getpid(), testLogger(io.Discard))
		if err := n.notify(sdReady); err == nil || !strings.Contains(err.Error(), "vsock:2:1234") {
			t.Fatalf("err=%v", err)
		}
	})
}

func TestSDNotifier_WatchdogStep(t *testing.T) {
	conn, path := MustListenNotify(t)
	var log bytes.Buffer
	n := newSDNotifier([]string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"}, os.Getpid(), testLogger(&log))
	ctx := context.Background()
	errDB := errors.New("disk I/O error")

	// Ensure a healthy database gets systemd pinged, once per step.
	if err := n.watchdogStep(ctx, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := pendingNotify(t, conn); len(got) != 1 || got[0] != "WATCHDOG=1" {
		t.Fatalf("datagrams=%q, want one WATCHDOG=1", got)
	}

	// Ensure a failing database gets no ping, and the streak is logged once.
	for range 3 {
		if err := n.watchdogStep(ctx, func(context.Context) error { return errDB }); !errors.Is(err, errDB) {
			t.Fatalf("err=%v, want %v", err, errDB)
		}
	}
	if got := pendingNotify(t, conn); len(got) != 0 {
		t.Fatalf("pinged systemd while the database failed: %q", got)
	}
	if got, want := strings.Count(log.String(), "systemd watchdog not pinged"), 1; got != want {
		t.Fatalf("failure logged %d times, want %d:\n%s", got, want, log.String())
	}

	// Ensure a database that hangs is given up on within the period, without a ping.
	hung := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	if err := n.watchdogStep(ctx, hung); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err=%v, want a deadline", err)
	}
	if got := pendingNotify(t, conn); len(got) != 0 {
		t.Fatalf("pinged systemd while the database hung: %q", got)
	}

	// Ensure recovery pings again and says how many checks were missed.
	if err := n.watchdogStep(ctx, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := pendingNotify(t, conn); len(got) != 1 || got[0] != "WATCHDOG=1" {
		t.Fatalf("datagrams=%q, want one WATCHDOG=1", got)
	}
	if !strings.Contains(log.String(), "systemd watchdog pinged again") || !strings.Contains(log.String(), "missed=4") {
		t.Fatalf("recovery not logged:\n%s", log.String())
	}
}

func TestSDNotifier_WatchdogLoop(t *testing.T) {
	conn, path := MustListenNotify(t)
	n := newSDNotifier([]string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=100000"}, os.Getpid(), testLogger(io.Discard))
	var stopped atomic.Bool
	stop := n.startWatchdog(context.Background(), func(context.Context) error {
		if stopped.Load() {
			t.Error("database pinged after stop returned")
		}
		return nil
	})
	// Ensure the loop pings right away and then every period.
	for range 3 {
		if got := MustReadNotify(t, conn, 10*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("datagram=%q", got)
		}
	}
	// Ensure stop returns only once the loop has finished, so the store can close.
	stop()
	stopped.Store(true)
	pendingNotify(t, conn)
	stop = n.startWatchdog(context.Background(), func(context.Context) error { return nil })
	stop()
}

// syncBuffer is a bytes.Buffer safe for the serve goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestServe_NotifiesSystemd(t *testing.T) {
	conn, path := MustListenNotify(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "healthpost.toml")
	if err := os.WriteFile(cfgFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000",
		"HEALTHPOST_CONFIG=" + cfgFile, "HEALTHPOST_DATA_DIR=" + filepath.Join(dir, "data"),
		"HEALTHPOST_HTTP_LISTEN=127.0.0.1:0", "HEALTHPOST_MQTT_LISTEN=127.0.0.1:0", "HEALTHPOST_HTTP_MDNS=false",
	}
	var stdout, stderr syncBuffer
	root := newRootCommand(&stdout, &stderr, strings.NewReader(""), env)
	root.SetArgs([]string{"serve"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	// Ensure READY=1 comes once the web server listens, then watchdog pings.
	ready := MustReadNotify(t, conn, 60*time.Second)
	if !strings.HasPrefix(ready, "READY=1\nSTATUS=serving on http://127.0.0.1:") {
		t.Fatalf("first datagram=%q, want READY=1 with the URL\n%s", ready, stderr.String())
	}
	if !strings.Contains(stdout.String(), "listening on http://127.0.0.1:") {
		t.Fatalf("READY=1 before the web server listened:\n%s", stdout.String())
	}
	for range 2 {
		if got := MustReadNotify(t, conn, 10*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("datagram=%q, want WATCHDOG=1", got)
		}
	}

	// Ensure a stop says STOPPING=1, then the node stops cleanly and pings no more.
	cancel()
	for {
		got := MustReadNotify(t, conn, 30*time.Second)
		if strings.HasPrefix(got, "STOPPING=1\n") {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("datagram=%q while stopping", got)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return within 30 s of the stop")
	}
	if got := pendingNotify(t, conn); len(got) != 0 {
		t.Fatalf("datagrams after STOPPING=1: %q", got)
	}
	if !strings.Contains(stderr.String(), "msg=stopped") {
		t.Fatalf("no clean stop in the log:\n%s", stderr.String())
	}
}
