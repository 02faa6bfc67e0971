package webui

import (
	"crypto/rand"
	"errors"
	"net/http"

	"github.com/healthpost/healthpost/edge"
)

// What a health worker sees is apart from what the log holds: a domain
// error (edge.Error) shows its translated message; anything else shows
// "Something went wrong (ref 7KQ2M)" and the log gets the same ref with the
// error, the route and the user's ID, never patient data.

// errorPage is what the error page shows.
type errorPage struct {
	Ref     string
	Key     string // translation key of the message, or ""
	Message string // plain English, when the catalogue has no key for it
	Hint    string
}

const refAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

func newRef() string {
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = refAlphabet[int(b[i])%len(refAlphabet)]
	}
	return string(b)
}

// serverError answers 500 with a reference that is also logged.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	ref := newRef()
	attrs := []any{"ref", ref, "method", r.Method, "route", r.Pattern, "err", err}
	if ss := sessionFrom(r.Context()); ss != nil {
		attrs = append(attrs, "user", ss.User.ID)
	}
	s.Logger.Error("request failed", attrs...)
	v := s.view(r, "page.error")
	v.Data = errorPage{Ref: ref}
	s.render(w, r, http.StatusInternalServerError, "error", v)
}

// notFound answers 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	v := s.view(r, "page.not_found")
	s.render(w, r, http.StatusNotFound, "not_found", v)
}

// fail answers an error a handler cannot handle itself.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ee *edge.Error
	switch {
	case errors.Is(err, edge.ErrNotFound):
		s.notFound(w, r)
	case errors.As(err, &ee):
		status := http.StatusConflict
		if errors.Is(err, edge.ErrDiskCritical) {
			status = http.StatusInsufficientStorage
		}
		s.Logger.Warn("request refused", "code", ee.Code, "route", r.Pattern)
		v := s.view(r, "page.error")
		p := errorPage{Message: ee.Message, Hint: ee.Hint}
		if s.tpl.cats.get(v.Lang).Has("error." + ee.Code) {
			p.Key = "error." + ee.Code
		}
		v.Data = p
		s.render(w, r, status, "error", v)
	default:
		s.serverError(w, r, err)
	}
}
