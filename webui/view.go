package webui

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// view is what every page gets: the user, language, CSRF token and the
// banners, pre-filled by Server.view, plus the page's own Data and, for
// forms, the field errors.
type view struct {
	Lang     string
	Langs    []langChoice
	Title    string // translation key
	User     *edge.User
	Locked   bool // the tablet is locked: no menu, no patient data
	CSRF     string
	Facility edge.Facility
	// IdleLock is the idle lock in seconds, for the page's own timer.
	IdleLock int
	Clock    *clockBanner
	// Flash is a translation key shown once, after a redirect.
	Flash  string
	Errors edge.FieldErrors
	Data   any
	Now    time.Time
	Path   string
}

type langChoice struct {
	Code, Name string
	Current    bool
}

// clockBanner warns that the node's clock looks wrong; admins get the
// one-tap form to set it.
type clockBanner struct {
	Suspect bool          // the node's own check (behind build time, went back)
	Offset  time.Duration // what the tablets say, when they disagree
	Tablets int
	Admin   bool
}

// OffsetMinutes is the tablets' disagreement in whole minutes.
func (c *clockBanner) OffsetMinutes() int { return int(c.Offset.Round(time.Minute) / time.Minute) }

func (s *Server) view(r *http.Request, title string) *view {
	v := &view{Title: title, Now: s.Store.Now(), Path: r.URL.Path}
	ss := sessionFrom(r.Context())
	var userLang string
	if ss != nil {
		u := ss.User
		v.User, v.CSRF, userLang, v.Locked = &u, ss.CSRFToken, u.Language, ss.Locked
	}
	v.Lang = s.tpl.cats.pick(r, userLang)
	for _, l := range s.tpl.cats.langs {
		v.Langs = append(v.Langs, langChoice{Code: l, Name: s.tpl.cats.get(l).Name(), Current: l == v.Lang})
	}
	v.Facility = s.facility(r.Context())
	if v.User != nil && !ss.Locked {
		v.IdleLock = int(s.idleLock(r.Context()) / time.Second)
		v.Clock = s.clockBanner(r.Context(), v.User)
	}
	if done := r.URL.Query().Get("done"); done != "" && s.tpl.cats.get(v.Lang).Has("flash."+done) {
		v.Flash = "flash." + done
	}
	return v
}

// clockBanner returns a warning when the node's clock looks wrong: always
// when the node itself flags it, and for admins also when several tablets
// disagree with it.
func (s *Server) clockBanner(ctx context.Context, u *edge.User) *clockBanner {
	st := s.clockState(ctx)
	b := &clockBanner{Suspect: st.suspect, Admin: u.Role == edge.RoleAdmin}
	if b.Admin && st.consensus.Disagrees(2, edge.DefaultClockDisagreement) {
		b.Offset, b.Tablets = st.consensus.Offset, st.consensus.Tablets
	}
	if !b.Suspect && b.Tablets == 0 {
		return nil
	}
	return b
}

// clockCheckEvery is how long the clock verdict is reused: judging it takes
// the store's write lock, which a page should not wait on.
const clockCheckEvery = 10 * time.Second

type clockState struct {
	at        time.Time
	suspect   bool
	consensus edge.ClockConsensus
}

func (s *Server) clockState(ctx context.Context) clockState {
	if p := s.cache.clock.Load(); p != nil && time.Since(p.at) < clockCheckEvery {
		return *p
	}
	st := clockState{at: time.Now(), suspect: s.Store.Clock().Suspect}
	if cons, err := s.Store.ClockConsensus(ctx, edge.DefaultClockReportWindow); err == nil {
		st.consensus = cons
	}
	s.cache.clock.Store(&st)
	return st
}

// settingsCache holds the facility settings and identity, read once and
// dropped when an admin saves them.
type settingsCache struct {
	settings atomic.Pointer[edge.FacilitySettings]
	facility atomic.Pointer[edge.Facility]
	clock    atomic.Pointer[clockState] // dropped when the clock is set or reported
}

func (s *Server) settings(ctx context.Context) edge.FacilitySettings {
	if p := s.cache.settings.Load(); p != nil {
		return *p
	}
	f, err := s.Store.FacilitySettings(ctx)
	if err != nil {
		s.Logger.Warn("read facility settings; using defaults", "err", err)
		return edge.DefaultFacilitySettings()
	}
	s.cache.settings.Store(&f)
	return f
}

func (s *Server) facility(ctx context.Context) edge.Facility {
	if p := s.cache.facility.Load(); p != nil {
		return *p
	}
	f, err := s.Store.Facility(ctx)
	if err != nil {
		return f
	}
	s.cache.facility.Store(&f)
	return f
}

func (s *Server) idleLock(ctx context.Context) time.Duration {
	return time.Duration(s.settings(ctx).IdleLockMinutes) * time.Minute
}

// render writes a page. Pages hold patient data, so no cache keeps them.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	body, err := s.tpl.render(v.Lang, page, v)
	if err != nil {
		if page == "error" {
			s.Logger.Error("render error page", "err", err)
			http.Error(w, "Something went wrong", http.StatusInternalServerError)
			return
		}
		s.serverError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// redirect answers a form that committed: see the result at url.
func redirect(w http.ResponseWriter, r *http.Request, url string) {
	http.Redirect(w, r, url, http.StatusSeeOther)
}
