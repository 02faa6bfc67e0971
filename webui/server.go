// Package webui is the LAN web interface that health workers, doctors,
// admins and technicians use from tablets: the HTTP server, its handlers,
// the server-rendered pages with their embedded assets and English and Hindi
// catalogues, sessions, the mDNS advertisement and the LAN address QR code.
// Its sync page drives the delivery engine through SyncEngine only: webui
// never imports syncq.
//
// It must never show or change patient data without a signed-in, unlocked
// user whose role allows the action (invariant 7): every route is denied
// unless it is in the public allowlist (sign-in, static assets, the health
// probe), every state change needs the session's CSRF token, and every read
// or write of patient data goes through an audited store method with the
// user as actor. It never answers success before the store has committed,
// never loads anything from the internet, and never writes PHI to the log:
// unexpected errors are logged with a reference and IDs only.
package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// Defaults for the server.
const (
	DefaultAddr            = ":8080"
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultMaxBodyBytes bounds every request body; a visit form with long
	// notes is a few tens of kilobytes.
	DefaultMaxBodyBytes = 256 << 10
	// DefaultLiveReadings is how long a page watches a device for readings.
	DefaultLiveReadings = 10 * time.Minute
)

// Server is the web UI's HTTP server. Set the exported fields after
// NewServer and before Open.
type Server struct {
	// Addr is the listen address; ":0" picks a free port (tests).
	Addr   string
	Store  *edge.Store
	Logger *slog.Logger

	// LANURL is the address tablets use, shown as a QR code on the admin
	// page; empty means the first of LANURLs(Port()).
	LANURL string
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// Limiter refuses sign-in and unlock attempts that come too fast.
	Limiter *Limiter
	// SetClock sets the operating system's clock when an admin sets the
	// node's time from a tablet. The default runs date(1) when the process
	// is root and otherwise explains that it cannot; tests replace it.
	SetClock func(ctx context.Context, t time.Time) error
	// Sync is the running delivery engine the sync page shows and drives;
	// nil when no upstream is configured.
	Sync SyncEngine
	// LiveReadings bounds how long a page's live stream (device readings,
	// sync progress) stays open.
	LiveReadings time.Duration

	ln      net.Listener
	srv     *http.Server
	wg      sync.WaitGroup
	served  error
	ctx     context.Context // ends when Close begins, so streams stop
	cancel  context.CancelFunc
	handler http.Handler

	tpl    *engine
	static *assets
	cache  settingsCache
}

// NewServer returns a server for store with default settings. It parses
// the templates and catalogues, so a broken one panics here, at startup.
func NewServer(store *edge.Store, logger *slog.Logger) *Server {
	s := &Server{
		Addr:         DefaultAddr,
		Store:        store,
		Logger:       logger.With(edge.LogKeySubsystem, "webui"),
		MaxBodyBytes: DefaultMaxBodyBytes,
		Limiter:      NewLimiter(),
		SetClock:     SetSystemClock,
		LiveReadings: DefaultLiveReadings,
	}
	var err error
	if s.static, err = loadAssets(); err != nil {
		panic(fmt.Sprintf("webui: load assets: %v", err))
	}
	if s.tpl, err = newEngine(s.static); err != nil {
		panic(fmt.Sprintf("webui: parse templates: %v", err))
	}
	return s
}

// Handler returns the server's whole HTTP handler, middleware included.
func (s *Server) Handler() http.Handler {
	if s.handler == nil {
		if s.ctx == nil {
			s.ctx, s.cancel = context.WithCancel(context.Background())
		}
		s.handler = s.routes()
	}
	return s.handler
}

// Open listens on Addr (so a busy port fails here) and serves in the background.
func (s *Server) Open(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return &edge.Error{Code: "port_busy", Message: fmt.Sprintf("cannot listen on %s for the web UI: %v", s.Addr, err),
			Hint: "another program uses the port; stop it, or choose another with --http (HEALTHPOST_HTTP_LISTEN)", Err: err}
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handler = nil
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.served = err
			s.Logger.Error("web server stopped", "err", err)
		}
	}()
	// Index patients registered behind the UI's back (an import, a restore,
	// an upgrade) in the background: a large backlog must not delay the
	// node's start, and a search meanwhile indexes what it needs itself.
	go func() {
		defer s.wg.Done()
		if err := s.Store.IndexPatients(s.ctx); err != nil && s.ctx.Err() == nil {
			s.Logger.Error("indexing patients for search failed; searches index on demand", "err", err)
		}
	}()
	return nil
}

// URL is the address the server listens on, as a URL.
func (s *Server) URL() string {
	return "http://" + s.ln.Addr().String()
}

// Port is the port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops accepting requests, ends live streams and waits for the
// requests in flight.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	s.cancel()
	ctx, cancel := context.WithTimeout(ctx, DefaultShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.wg.Wait()
	return errors.Join(err, s.served)
}

// health answers monitoring (systemd, the doctor, a load balancer) with the
// node's state and no patient data.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	clock := s.Store.Clock()
	st := s.Store.Storage()
	status := http.StatusOK
	if st.Level == edge.StorageCritical {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"status":        map[bool]string{true: "ok", false: "degraded"}[status == http.StatusOK && !clock.Suspect],
		"version":       edge.Version(),
		"clock_suspect": clock.Suspect,
		"storage":       st.Level,
	})
}
