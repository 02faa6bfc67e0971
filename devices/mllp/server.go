package mllp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/edge"
)

// Server defaults.
const (
	// DefaultMaxConns is how many connections one device may hold open. A
	// monitor needs one; a few more cover reconnects after a reboot while
	// the old connection has not timed out yet.
	DefaultMaxConns = 4
	// DefaultIdleTimeout closes a connection that sent nothing for this
	// long. Monitors that keep a connection send at least every few minutes.
	DefaultIdleTimeout = 15 * time.Minute
	// DefaultFlushInterval is how often device counters are written.
	DefaultFlushInterval = 5 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between tries
	// to listen on an address that was busy.
	DefaultMinBackoff = 1 * time.Second
	DefaultMaxBackoff = 30 * time.Second
)

// Server is the node's HL7-over-MLLP subsystem: for every enabled device
// with transport "mllp" it listens on the device's Settings.Listen and runs
// a Session for each connection.
//
// A device's problem never fails Open: a device whose settings are wrong,
// or whose address is taken, gets a status saying so (the address is tried
// again with backoff) and the others run. Open fails only when the
// registry cannot be read.
//
// When a device opens more than MaxConns connections, the connection that
// has been quiet longest is closed: after a monitor reboots, its old
// connection may linger until IdleTimeout, and the new one is the one that
// works.
type Server struct {
	Store    *edge.Store
	Ingestor *devices.Ingestor
	Logger   *slog.Logger

	// Sessions.
	Location      *time.Location // nil: devices.DeviceLocation
	MaxFrameSize  int            // 0: DefaultMaxFrameSize
	IdleTimeout   time.Duration  // 0: no limit
	WriteTimeout  time.Duration  // 0: DefaultWriteTimeout
	IngestTimeout time.Duration  // 0: DefaultIngestTimeout

	// Connections and listening.
	MaxConns               int // per device; 0 or less: DefaultMaxConns
	MinBackoff, MaxBackoff time.Duration

	// FlushInterval is how often the Ingestor's counters are written to the
	// registry; 0 turns the flusher off (when another subsystem flushes the
	// same Ingestor). Close flushes once either way.
	FlushInterval time.Duration

	// OnStatus, if set, is called with each new status of a device, after
	// the Ingestor has it. It must not block.
	OnStatus func(dev edge.Device, status string)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	listeners map[string]*listener // by device ID
	status    map[string]string    // last status by device ID
}

// NewServer returns a Server with the defaults set.
func NewServer(store *edge.Store, in *devices.Ingestor, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		Store: store, Ingestor: in, Logger: logger.With(edge.LogKeySubsystem, "mllp"),
		IdleTimeout: DefaultIdleTimeout, MaxConns: DefaultMaxConns,
		MinBackoff: DefaultMinBackoff, MaxBackoff: DefaultMaxBackoff,
		FlushInterval: DefaultFlushInterval,
	}
}

// listener is one device's address and its connections.
type listener struct {
	dev  edge.Device
	st   devices.Settings
	addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[*conn]struct{}
}

// Open starts listening for every enabled MLLP device.
func (s *Server) Open(ctx context.Context) error {
	devs, err := s.Store.Devices(ctx)
	if err != nil {
		return fmt.Errorf("open mllp: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.listeners = map[string]*listener{}
	s.status = map[string]string{}
	byAddr := map[string]string{}
	for _, d := range devs {
		if !d.Enabled || d.Transport != "mllp" {
			continue
		}
		st, err := devices.ParseSettings(d)
		if err != nil {
			s.setStatus(d, err.Error())
			continue
		}
		if d.Codec != "hl7" && d.Codec != "auto" {
			s.setStatus(d, fmt.Sprintf("%s has codec %s, which does not run over MLLP; set its codec to hl7", d.Name, d.Codec))
			continue
		}
		if other, taken := byAddr[st.Listen]; taken {
			s.setStatus(d, fmt.Sprintf("%s listens on %s like %s; give each monitor its own port", d.Name, st.Listen, other))
			continue
		}
		if _, port, err := net.SplitHostPort(st.Listen); err != nil || port != "0" { // port 0: each gets its own
			byAddr[st.Listen] = d.Name
		}
		l := &listener{dev: d, st: st, addr: st.Listen, conns: map[*conn]struct{}{}}
		s.listeners[d.ID] = l
		if ln, err := net.Listen("tcp", st.Listen); err == nil {
			l.ln = ln
			s.setStatus(d, fmt.Sprintf("listening on %s for HL7", ln.Addr()))
			s.wg.Add(1)
			go s.accept(l)
		} else {
			s.setStatus(d, listenProblem(d, st.Listen, err))
			s.wg.Add(1)
			go s.retryListen(l)
		}
	}
	if s.FlushInterval > 0 {
		s.wg.Add(1)
		go s.flushLoop()
	}
	return nil
}

// Close stops accepting, stops reading every connection, lets messages
// being stored finish and be acknowledged, closes the connections and
// flushes the counters. If ctx ends first, connections are closed at once.
func (s *Server) Close(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.mu.Lock()
	for _, l := range s.listeners {
		l.mu.Lock()
		if l.ln != nil {
			l.ln.Close()
		}
		l.mu.Unlock()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.forEachConn(func(c *conn) { c.Conn.Close() })
		<-done
		err = fmt.Errorf("close mllp: %w", ctx.Err())
	}
	if ferr := s.Ingestor.Flush(context.WithoutCancel(ctx)); ferr != nil {
		err = errors.Join(err, fmt.Errorf("close mllp: flush counters: %w", ferr))
	}
	return err
}

// Addr returns the address a device (by ID or name) listens on, or nil.
// Tests listen on port 0 and ask for the port here.
func (s *Server) Addr(idOrName string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, l := range s.listeners {
		if id == idOrName || l.dev.Name == idOrName {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.ln == nil {
				return nil
			}
			return l.ln.Addr()
		}
	}
	return nil
}

func (s *Server) retryListen(l *listener) {
	defer s.wg.Done()
	wait := s.MinBackoff
	for {
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			s.setStatus(l.dev, listenProblem(l.dev, l.addr, err))
			wait = min(2*wait, s.MaxBackoff)
			continue
		}
		l.mu.Lock()
		if s.ctx.Err() != nil {
			l.mu.Unlock()
			ln.Close()
			return
		}
		l.ln = ln
		l.mu.Unlock()
		s.setStatus(l.dev, fmt.Sprintf("listening on %s for HL7", ln.Addr()))
		s.wg.Add(1)
		go s.accept(l)
		return
	}
}

func listenProblem(d edge.Device, addr string, err error) string {
	return fmt.Sprintf("the node cannot listen on %s for %s (%v); free the port or give the device another one (--listen)", addr, d.Name, err)
}

// accept takes connections until the listener closes.
func (s *Server) accept(l *listener) {
	defer s.wg.Done()
	var wait time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: back off briefly.
			wait = min(max(2*wait, 5*time.Millisecond), time.Second)
			s.Logger.Warn("accept mllp connection", edge.LogKeyDevice, l.dev.Name, "err", err)
			t := time.NewTimer(wait)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		wait = 0
		c := &conn{Conn: nc}
		c.touch()
		s.admit(l, c)
		s.wg.Add(1)
		go s.serve(l, c)
	}
}

// admit adds c to l's connections, stopping the quietest one when l is full.
func (s *Server) admit(l *listener, c *conn) {
	limit := s.MaxConns
	if limit <= 0 {
		limit = DefaultMaxConns
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) >= limit {
		var quietest *conn
		for o := range l.conns {
			if !o.isStopped() && (quietest == nil || o.lastRead.Load() < quietest.lastRead.Load()) {
				quietest = o
			}
		}
		if quietest != nil {
			s.Logger.Warn("too many connections; closing the quietest", edge.LogKeyDevice, l.dev.Name, "limit", limit, "remote", quietest.RemoteAddr().String())
			quietest.stop()
		}
	}
	l.conns[c] = struct{}{}
}

// serve runs a Session on one connection.
func (s *Server) serve(l *listener, c *conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
	}()
	remote := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	s.setStatus(l.dev, fmt.Sprintf("connected from %s", remote))
	sess := &Session{
		Ingestor: s.Ingestor, Device: l.dev, Settings: l.st, Logger: s.Logger,
		Location: s.Location, MaxFrameSize: s.MaxFrameSize, IdleTimeout: s.IdleTimeout,
		WriteTimeout: s.WriteTimeout, IngestTimeout: s.IngestTimeout,
		OnMessage: func(code hl7.AckCode) {
			if code == hl7.AckAccept {
				s.setStatus(l.dev, fmt.Sprintf("receiving from %s", remote))
			}
		},
	}
	err := sess.Serve(s.ctx, c)
	switch {
	case s.ctx.Err() != nil:
		return
	case c.isStopped():
		return // replaced by a newer connection, which sets the status
	case errors.Is(err, ErrIdle):
		s.setStatus(l.dev, fmt.Sprintf("%s stopped answering (nothing for %s), so its connection was closed; check its network cable", l.dev.Name, s.IdleTimeout.Round(time.Second)))
	case errors.Is(err, io.EOF):
		s.setStatus(l.dev, fmt.Sprintf("%s disconnected; waiting for it on %s", l.dev.Name, l.ln.Addr()))
	default:
		s.setStatus(l.dev, fmt.Sprintf("%s's connection failed (%v); waiting for it to reconnect on %s", l.dev.Name, err, l.ln.Addr()))
	}
}

// setStatus records a device's status when it changed, and logs it.
func (s *Server) setStatus(d edge.Device, status string) {
	s.mu.Lock()
	same := s.status[d.ID] == status
	s.status[d.ID] = status
	s.mu.Unlock()
	if same {
		return
	}
	s.Ingestor.SetStatus(d, status)
	s.Logger.Info("device status", edge.LogKeyDevice, d.Name, "status", status)
	if s.OnStatus != nil {
		s.OnStatus(d, status)
	}
}

func (s *Server) forEachConn(f func(*conn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		l.mu.Lock()
		for c := range l.conns {
			f(c)
		}
		l.mu.Unlock()
	}
}

func (s *Server) flushLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.Ingestor.Flush(s.ctx); err != nil && s.ctx.Err() == nil {
				s.Logger.Warn("flush device counters", "err", err)
			}
		}
	}
}

// conn is an accepted connection that can be stopped: once stopped, every
// read deadline is in the past, so the Session ends after the message in
// hand.
type conn struct {
	net.Conn
	lastRead atomic.Int64 // unix nanoseconds of the last read with data

	mu      sync.Mutex
	stopped bool
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *conn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		t = time.Unix(1, 0)
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
}

func (c *conn) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}
