package webui

import (
	"crypto/subtle"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// loginForm is the sign-in page's form.
type loginForm struct {
	Username string
	Next     string
	CSRF     string
	// WaitMinutes is set when too many attempts were made.
	WaitMinutes int
}

// showLogin shows the sign-in page; a signed-in tablet goes home.
func (s *Server) showLogin(w http.ResponseWriter, r *http.Request) {
	if lang := r.URL.Query().Get("lang"); lang != "" {
		if _, ok := s.tpl.cats.byLan[lang]; ok {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
				HttpOnly: true, SameSite: http.SameSiteLaxMode})
			r.AddCookie(&http.Cookie{Name: langCookie, Value: lang})
		}
	}
	next := localPath(r.URL.Query().Get("next"))
	if ss := sessionFrom(r.Context()); ss != nil && !ss.Locked {
		redirect(w, r, next)
		return
	}
	s.renderLogin(w, r, http.StatusOK, loginForm{Next: next}, nil)
}

// renderLogin shows the form with a fresh sign-in CSRF token: a cookie
// and the same value in the form (there is no session yet to hold it).
func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, f loginForm, errs edge.FieldErrors) {
	f.CSRF = edge.NewID()
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCooki, Value: f.CSRF, Path: "/login", MaxAge: 3600,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	v := s.view(r, "page.login")
	v.Data, v.Errors = f, errs
	s.render(w, r, status, "login", v)
}

// submitLogin signs a user in: rate limited per username and per tablet,
// audited either way, with the tablet's clock recorded for the clock check.
func (s *Server) submitLogin(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	errs := edge.FieldErrors{}
	f := loginForm{Username: formText(r, "username", errs), Next: localPath(r.PostFormValue("next"))}
	password := r.PostFormValue("password")
	c, err := r.Cookie(loginCSRFCooki)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		// An expired form (or a forged one): show a fresh form.
		s.renderLogin(w, r, http.StatusForbidden, f, edge.FieldErrors{"form": "error.form_expired"})
		return
	}
	if f.Username == "" || password == "" {
		s.renderLogin(w, r, http.StatusBadRequest, f, merge(errs, edge.FieldErrors{"username": "error.login_required"}))
		return
	}
	client := clientAddr(r)
	now := s.Store.Now()
	system := edge.WithActor(r.Context(), edge.Actor{Kind: edge.ActorSystem, ID: "webui"})
	if ok, wait := s.Limiter.Allow(now, f.Username, client); !ok {
		s.Store.Audit(system, edge.ActionUserLoginFailed, "username", f.Username, "", "reason=rate-limited client="+client)
		f.WaitMinutes = int(math.Ceil(wait.Minutes()))
		s.renderLogin(w, r, http.StatusTooManyRequests, f, edge.FieldErrors{"form": "error.login_rate_limited"})
		return
	}
	u, err := s.Store.Authenticate(r.Context(), f.Username, password)
	if errors.Is(err, edge.ErrNotFound) {
		s.Limiter.Fail(now, f.Username, client)
		if err := s.Store.Audit(system, edge.ActionUserLoginFailed, "username", f.Username, "", "client="+client); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.renderLogin(w, r, http.StatusUnauthorized, f, edge.FieldErrors{"form": "error.login_failed"})
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Limiter.Succeed(f.Username)
	hours := s.settings(r.Context()).SessionHours
	token, _, err := s.Store.CreateWebSession(r.Context(), u.ID, client, time.Duration(hours)*time.Hour)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", MaxAge: hours * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCooki, Path: "/login", MaxAge: -1})

	// The clock check: what the tablet's clock said when the form was sent.
	// Each sign-in judges the node's clock afresh.
	s.cache.clock.Store(nil)
	next := f.Next
	if ms, err := strconv.ParseInt(r.PostFormValue("tablet_time"), 10, 64); err == nil && ms > 0 {
		rep, err := s.Store.RecordClockReport(r.Context(), client, u.ID, time.UnixMilli(ms))
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if off := rep.Offset(); off > edge.DefaultClockDisagreement || off < -edge.DefaultClockDisagreement || s.Store.Clock().Suspect {
			if u.Role == edge.RoleAdmin {
				next = "/admin?done=clock_differs"
			} else if next == "/" {
				next = "/?done=clock_differs"
			}
		}
	}
	redirect(w, r, next)
}

// logout signs the tablet out.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	ss := sessionFrom(r.Context())
	if err := s.Store.EndWebSession(r.Context(), ss.token); err != nil {
		s.serverError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	redirect(w, r, "/login?done=signed_out")
}
