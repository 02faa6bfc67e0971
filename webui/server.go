// Package webui is the LAN web interface health workers use on tablets: the
// HTTP server, its handlers and pages.
//
// It must never serve patient data without a logged-in user of the right role
// (invariant 7): every route is denied unless it is in the public allowlist
// (sign-in and the health probe), and it never answers success before the
// store has committed.
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
)

// Server is the web UI's HTTP server.
type Server struct {
	// Addr is the listen address; ":0" picks a free port (tests).
	Addr   string
	Store  *edge.Store
	Logger *slog.Logger

	ln     net.Listener
	srv    *http.Server
	wg     sync.WaitGroup
	served error
}

// NewServer returns a server for store with default settings.
func NewServer(store *edge.Store, logger *slog.Logger) *Server {
	return &Server{Addr: DefaultAddr, Store: store, Logger: logger.With(edge.LogKeySubsystem, "webui")}
}

// Open listens on Addr (so a busy port fails here) and serves in the background.
func (s *Server) Open(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return &edge.Error{Code: "port_busy", Message: fmt.Sprintf("cannot listen on %s for the web UI: %v", s.Addr, err),
			Hint: "another program uses the port; stop it, or choose another with --http (HEALTHPOST_HTTP_LISTEN)", Err: err}
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.served = err
			s.Logger.Error("web server stopped", "err", err)
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

// Close stops accepting requests and waits for those in flight.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.wg.Wait()
	return errors.Join(err, s.served)
}

// routes lists every route. Only the allowlisted public ones answer without a
// session; the sign-in pages arrive with the web UI proper.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.health)
	mux.HandleFunc("/", s.signInRequired)
	return mux
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

func (s *Server) signInRequired(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprint(w, `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>healthpost</title><body style="font:18px sans-serif;margin:2em">
<h1>healthpost</h1>
<p>This node is running. Please sign in to continue.</p>
<p lang="hi">यह नोड चल रहा है। आगे बढ़ने के लिए कृपया साइन इन करें।</p>
</body></html>`)
}
