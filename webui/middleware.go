package webui

import (
	"compress/gzip"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// contentSecurityPolicy allows nothing but this node: no inline script, no
// inline style attributes, nothing from the internet.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; manifest-src 'self'"

// touchEvery is how often a session's activity is written; the idle lock is
// minutes, so a write a minute at most per tablet is plenty.
const touchEvery = 30 * time.Second

// outer is the middleware every request passes first: a panic becomes
// "something went wrong (ref …)", every answer gets the security headers,
// bodies are bounded and text answers compressed.
func (s *Server) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")
		r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
		gw := newGzipWriter(w, r)
		defer gw.Close()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.serverError(gw, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(gw, r)
	})
}

// session is the signed-in tablet behind a request.
type session struct {
	edge.WebSession
	token string
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	ss, _ := ctx.Value(sessionKey{}).(*session)
	return ss
}

const (
	sessionCookie  = "hp_session"
	loginCSRFCooki = "hp_login"
	langCookie     = "hp_lang"
)

// loadSession returns the request's session, or nil.
func (s *Server) loadSession(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil
	}
	ws, err := s.Store.WebSession(r.Context(), c.Value)
	if err != nil {
		return nil
	}
	return &session{WebSession: ws, token: c.Value}
}

// guard is the access middleware, in the order STYLE.md gives: session →
// role → CSRF → audit. The route's policy comes from the route table; a
// request matching no route gets the same answer as a protected one to a
// stranger.
func (s *Server) guard(mux *http.ServeMux, policy map[string]access) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		acc, known := policy[pattern]
		ss := s.loadSession(r)
		if ss != nil {
			r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, ss))
		}
		if err := cop.Check(r); err != nil {
			s.deny(w, r, ss, "cross-origin")
			return
		}
		if known && acc.public {
			mux.ServeHTTP(w, r)
			return
		}
		// Session.
		if ss == nil {
			s.needLogin(w, r)
			return
		}
		if !known {
			s.notFound(w, r)
			return
		}
		now := s.Store.Now()
		if !ss.Locked && now.Sub(ss.LastSeenAt) > s.idleLock(r.Context()) {
			if err := s.Store.LockWebSession(r.Context(), ss.token); err != nil {
				s.serverError(w, r, err)
				return
			}
			ss.Locked = true
		}
		if ss.Locked && !acc.whileLocked {
			if r.Method == http.MethodGet && !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
				http.Redirect(w, r, "/lock?next="+url.QueryEscape(localPath(r.URL.RequestURI())), http.StatusSeeOther)
				return
			}
			http.Error(w, "locked: unlock the tablet with your PIN", http.StatusUnauthorized)
			return
		}
		// Role.
		if !acc.allows(ss.User.Role) {
			s.deny(w, r, ss, "role")
			return
		}
		// CSRF. The form is read here, so a body over the limit is refused
		// as too large rather than as a missing token.
		if !safeMethod(r.Method) {
			if !s.readForm(w, r) {
				return
			}
			if !validCSRF(r, ss.CSRFToken) {
				s.deny(w, r, ss, "csrf")
				return
			}
		}
		// Audit: every store access in the handler is made as this user.
		r = r.WithContext(edge.WithActor(r.Context(), edge.Actor{Kind: edge.ActorUser, ID: ss.User.ID}))
		// A live stream reconnects by itself, so it is not a sign that
		// someone is at the tablet.
		if !ss.Locked && now.Sub(ss.LastSeenAt) > touchEvery && !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			if err := s.Store.TouchWebSession(r.Context(), ss.token); err != nil {
				s.serverError(w, r, err)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// readForm parses a form body and answers 413 or 400 when it cannot.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) bool {
	err := r.ParseForm()
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		v := s.view(r, "page.too_large")
		s.render(w, r, http.StatusRequestEntityTooLarge, "too_large", v)
		return false
	}
	http.Error(w, "the form could not be read; go back and send it again", http.StatusBadRequest)
	return false
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// validCSRF checks the token a form (field csrf) or script (header
// X-CSRF-Token) sent against the session's.
func validCSRF(r *http.Request, want string) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// needLogin answers a request without a session: pages redirect to the
// sign-in page (and come back after), everything else gets 401.
func (s *Server) needLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(localPath(r.URL.RequestURI())), http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "sign in first", http.StatusUnauthorized)
}

// deny answers 403 and audits the refusal.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, ss *session, why string) {
	if ss != nil {
		ctx := edge.WithActor(r.Context(), edge.Actor{Kind: edge.ActorUser, ID: ss.User.ID})
		if err := s.Store.Audit(ctx, edge.ActionAccessDenied, "route", r.Method+" "+r.URL.Path, "", "reason="+why); err != nil {
			s.Logger.Error("audit refusal", "err", err)
		}
	}
	s.Logger.Info("request refused", "method", r.Method, "path", r.URL.Path, "reason", why)
	v := s.view(r, "page.forbidden")
	v.Data = why
	s.render(w, r, http.StatusForbidden, "forbidden", v)
}

// localPath keeps only a path on this node, for ?next= redirects.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

// gzipWriter compresses text answers when the client accepts gzip. It
// decides at the first write, when the content type is known; event streams
// pass through so they flush.
type gzipWriter struct {
	http.ResponseWriter
	accept  bool
	decided bool
	gz      *gzip.Writer
}

var gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed); return w }}

func newGzipWriter(w http.ResponseWriter, r *http.Request) *gzipWriter {
	return &gzipWriter{ResponseWriter: w, accept: strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")}
}

func (g *gzipWriter) decide() {
	if g.decided {
		return
	}
	g.decided = true
	h := g.Header()
	h.Add("Vary", "Accept-Encoding")
	ct := h.Get("Content-Type")
	if !g.accept || h.Get("Content-Encoding") != "" || strings.HasPrefix(ct, "text/event-stream") ||
		!(strings.HasPrefix(ct, "text/") || strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "image/svg")) {
		return
	}
	h.Set("Content-Encoding", "gzip")
	h.Del("Content-Length")
	g.gz = gzipPool.Get().(*gzip.Writer)
	g.gz.Reset(g.ResponseWriter)
}

func (g *gzipWriter) WriteHeader(code int) {
	if code != http.StatusNoContent && code != http.StatusNotModified && code >= 200 {
		g.decide()
	} else {
		g.decided = true
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(b []byte) (int, error) {
	if !g.decided {
		if g.Header().Get("Content-Type") == "" {
			g.Header().Set("Content-Type", http.DetectContentType(b))
		}
		g.decide()
	}
	if g.gz != nil {
		return g.gz.Write(b)
	}
	return g.ResponseWriter.Write(b)
}

// Flush sends what is buffered, compressed or not.
func (g *gzipWriter) Flush() {
	if g.gz != nil {
		g.gz.Flush()
	}
	http.NewResponseController(g.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (g *gzipWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// Close finishes the gzip stream.
func (g *gzipWriter) Close() {
	if g.gz != nil {
		g.gz.Close()
		gzipPool.Put(g.gz)
		g.gz = nil
	}
}
