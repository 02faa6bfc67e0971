package webui

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/healthpost/healthpost/edge"
)

// The idle lock: a shared tablet left alone locks (the page's timer, and the
// server on the next request after the idle time), and shows nothing until
// its user types their PIN (or password, when they have set no PIN).
// Too many wrong tries sign the tablet out.

type lockForm struct {
	Next   string
	HasPIN bool
}

func (s *Server) showLock(w http.ResponseWriter, r *http.Request) {
	ss := sessionFrom(r.Context())
	if !ss.Locked {
		if err := s.Store.LockWebSession(r.Context(), ss.token); err != nil {
			s.serverError(w, r, err)
			return
		}
		ss.Locked = true
	}
	s.renderLock(w, r, http.StatusOK, lockForm{Next: localPath(r.URL.Query().Get("next"))}, nil)
}

func (s *Server) renderLock(w http.ResponseWriter, r *http.Request, status int, f lockForm, errs edge.FieldErrors) {
	v := s.view(r, "page.lock")
	f.HasPIN = sessionFrom(r.Context()).HasPIN
	v.Data, v.Errors = f, errs
	s.render(w, r, status, "lock", v)
}

// unlock checks the PIN (or password) and unlocks the tablet.
func (s *Server) unlock(w http.ResponseWriter, r *http.Request) {
	ss := sessionFrom(r.Context())
	f := lockForm{Next: localPath(r.PostFormValue("next"))}
	client, now := clientAddr(r), s.Store.Now()
	if ok, _ := s.Limiter.Allow(now, ss.User.Username, client); !ok {
		s.signOutLocked(w, r, ss)
		return
	}
	secret := r.PostFormValue("secret")
	var ok bool
	var err error
	if ss.HasPIN {
		ok, err = s.Store.CheckPIN(r.Context(), ss.User.ID, secret)
	} else {
		_, err = s.Store.Authenticate(r.Context(), ss.User.Username, secret)
		ok = err == nil
		if errors.Is(err, edge.ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !ok {
		s.Limiter.Fail(now, ss.User.Username, client)
		if err := s.Store.Audit(r.Context(), edge.ActionUserLoginFailed, "user", ss.User.ID, "", "reason=unlock client="+client); err != nil {
			s.serverError(w, r, err)
			return
		}
		if ok, _ := s.Limiter.Allow(now, ss.User.Username, client); !ok {
			s.signOutLocked(w, r, ss)
			return
		}
		s.renderLock(w, r, http.StatusUnauthorized, f, edge.FieldErrors{"secret": "error.unlock_failed"})
		return
	}
	s.Limiter.Succeed(ss.User.Username)
	if err := s.Store.UnlockWebSession(r.Context(), ss.token); err != nil {
		s.fail(w, r, err)
		return
	}
	redirect(w, r, f.Next)
}

// signOutLocked ends a locked session after too many wrong tries: the user
// must sign in again with their password (which is rate limited too).
func (s *Server) signOutLocked(w http.ResponseWriter, r *http.Request, ss *session) {
	if err := s.Store.EndWebSession(r.Context(), ss.token); err != nil {
		s.serverError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	redirect(w, r, "/login?done=unlock_too_many&next="+url.QueryEscape("/"))
}

// lockNow locks the tablet at once ("lock" button, or the page's timer).
func (s *Server) lockNow(w http.ResponseWriter, r *http.Request) {
	ss := sessionFrom(r.Context())
	if err := s.Store.LockWebSession(r.Context(), ss.token); err != nil {
		s.serverError(w, r, err)
		return
	}
	redirect(w, r, "/lock?next="+url.QueryEscape(localPath(r.PostFormValue("next"))))
}

// ping records that someone is using the tablet (typing in a long form
// makes no requests); the middleware has already touched the session.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
