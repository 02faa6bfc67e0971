package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// The service manager protocol (sd_notify(3)), spoken without libsystemd: a
// datagram of newline-separated KEY=VALUE lines sent to the AF_UNIX socket
// named by $NOTIFY_SOCKET ("@name" is Linux's abstract namespace). Outside
// systemd the variable is unset and every call below does nothing, so
// `healthpost serve` behaves the same on a developer's laptop.
const (
	sdReady    = "READY=1"
	sdStopping = "STOPPING=1"
	sdWatchdog = "WATCHDOG=1"
)

// sdNotifier tells systemd that the node is up, that it is stopping, and,
// while the database answers, that it is alive. The unit file asks for
// Type=notify and WatchdogSec=, so systemd waits for READY=1 before it calls
// the node started, and restarts the node when the WATCHDOG=1 pings stop.
type sdNotifier struct {
	// socket is $NOTIFY_SOCKET; "" when not started by systemd.
	socket string
	// watchdog is $WATCHDOG_USEC when $WATCHDOG_PID is unset or names this
	// process; 0 when systemd expects no pings.
	watchdog time.Duration

	logger *slog.Logger

	// failed counts consecutive failed watchdog steps, so that a database
	// that stops answering is logged once, not every few seconds.
	failed int
}

// newSDNotifier reads the service manager's variables from env, as the
// process with ID pid.
func newSDNotifier(env []string, pid int, logger *slog.Logger) *sdNotifier {
	n := &sdNotifier{socket: lookupEnv(env, "NOTIFY_SOCKET"), logger: logger.With(edge.LogKeySubsystem, "systemd")}
	usec, err := strconv.ParseInt(lookupEnv(env, "WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return n
	}
	if p := lookupEnv(env, "WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return n // the pings are expected from another process (a wrapper)
	}
	n.watchdog = time.Duration(usec) * time.Microsecond
	return n
}

// notify sends one datagram of state lines. It returns nil and sends nothing
// when the node was not started by systemd.
func (n *sdNotifier) notify(state ...string) error {
	if n.socket == "" {
		return nil
	}
	if !strings.HasPrefix(n.socket, "/") && !strings.HasPrefix(n.socket, "@") {
		return fmt.Errorf("notify systemd: unsupported NOTIFY_SOCKET %q (want a path or @abstract name)", n.socket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer conn.Close()
	msg := strings.Join(state, "\n")
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify systemd (%s): %w", strings.ReplaceAll(msg, "\n", " "), err)
	}
	return nil
}

// ready says the node serves: systemd then reports the start as done and
// starts units ordered after it.
func (n *sdNotifier) ready(status string) {
	if err := n.notify(sdReady, "STATUS="+status, "MAINPID="+strconv.Itoa(os.Getpid())); err != nil {
		n.logger.Warn("cannot tell systemd the node is ready", "err", err)
	}
}

// stopping says a clean stop has begun, so systemd waits for it instead of
// calling the service dead.
func (n *sdNotifier) stopping() {
	if err := n.notify(sdStopping, "STATUS=stopping: finishing what is in flight"); err != nil {
		n.logger.Warn("cannot tell systemd the node is stopping", "err", err)
	}
}

// watchdogPeriod is how often the database is pinged: half the watchdog
// timeout, as sd_watchdog_enabled(3) advises, so one slow ping is not fatal.
func (n *sdNotifier) watchdogPeriod() time.Duration { return n.watchdog / 2 }

// watchdogStep pings the database and, only when it answered, pings systemd.
// A node whose database hangs or fails therefore stops pinging, and systemd
// restarts it (Restart=on-failure) after WatchdogSec. A streak of failures is
// logged once, when it starts, and once more when it ends.
func (n *sdNotifier) watchdogStep(ctx context.Context, ping func(context.Context) error) error {
	err := n.pingWatchdog(ctx, ping)
	if ctx.Err() != nil {
		return err // stopping: a ping cut short is no news
	}
	if err != nil {
		n.failed++
		if n.failed == 1 {
			n.logger.Error("systemd watchdog not pinged; systemd restarts the node if this goes on", "err", err)
		}
		return err
	}
	if n.failed > 0 {
		n.logger.Info("systemd watchdog pinged again", "missed", n.failed)
		n.failed = 0
	}
	return nil
}

func (n *sdNotifier) pingWatchdog(ctx context.Context, ping func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, n.watchdogPeriod())
	defer cancel()
	if err := ping(ctx); err != nil {
		return fmt.Errorf("database did not answer: %w", err)
	}
	return n.notify(sdWatchdog)
}

// startWatchdog runs watchdogStep every watchdogPeriod until ctx ends or the
// returned stop is called; stop returns once the loop has finished, so the
// store may be closed after it. Without a watchdog it starts nothing.
func (n *sdNotifier) startWatchdog(ctx context.Context, ping func(context.Context) error) (stop func()) {
	if n.socket == "" || n.watchdog <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(n.watchdogPeriod())
		defer t.Stop()
		for {
			n.watchdogStep(ctx, ping) // logs its own failures
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// lookupEnv returns the value of name in env, or "".
func lookupEnv(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}
