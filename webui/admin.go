package webui

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/healthpost/healthpost/edge"
)

type adminPage struct {
	URL       string
	QR        template.HTML
	Clock     edge.ClockStatus
	Consensus edge.ClockConsensus
	Storage   edge.StorageStatus
	Outbox    edge.OutboxStats
	Version   string
	NodeID    string
	// ClockError is why the clock could not be set, with the fix.
	ClockError *edge.Error
	Step       time.Duration
}

// lanURL is the address tablets use.
func (s *Server) lanURL() string {
	if s.LANURL != "" {
		return s.LANURL
	}
	if s.ln != nil {
		if urls := LANURLs(s.Port()); len(urls) > 0 {
			return urls[0]
		}
		return s.URL()
	}
	return "http://healthpost.local" + DefaultAddr
}

func (s *Server) showAdmin(w http.ResponseWriter, r *http.Request) {
	s.renderAdmin(w, r, http.StatusOK, nil, 0)
}

func (s *Server) renderAdmin(w http.ResponseWriter, r *http.Request, status int, clockErr *edge.Error, step time.Duration) {
	p := adminPage{URL: s.lanURL(), Clock: s.Store.Clock(), Storage: s.Store.Storage(), Version: edge.Version(),
		ClockError: clockErr, Step: step}
	var err error
	if p.QR, err = qrSVG(p.URL, 220); err != nil {
		s.serverError(w, r, err)
		return
	}
	if p.Consensus, err = s.Store.ClockConsensus(r.Context(), edge.DefaultClockReportWindow); err != nil {
		s.serverError(w, r, err)
		return
	}
	if p.Outbox, err = s.Store.OutboxStats(r.Context()); err != nil {
		s.serverError(w, r, err)
		return
	}
	p.NodeID, _ = s.Store.NodeID(r.Context())
	v := s.view(r, "page.admin")
	v.Data = p
	s.render(w, r, status, "admin", v)
}

// setClock sets the node's time to the tablet's, with one tap: the page's
// script puts the tablet's time in the form as it is sent. It is audited,
// and sessions move with the clock.
func (s *Server) setClock(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.ParseInt(r.PostFormValue("tablet_time"), 10, 64)
	to := time.UnixMilli(ms)
	if err != nil || to.Before(edge.BuildTime()) {
		s.renderAdmin(w, r, http.StatusUnprocessableEntity, &edge.Error{Code: "clock_tablet_wrong",
			Message: "the tablet's own clock is not plausible either", Hint: "set the tablet's time first"}, 0)
		return
	}
	from := s.Store.Now()
	err = s.SetClock(r.Context(), to)
	var ee *edge.Error
	if err != nil && !errors.As(err, &ee) {
		ee = &edge.Error{Code: "clock_set_failed", Message: "setting the system clock failed", Hint: "see the node's log", Err: err}
		s.Logger.Error("set system clock", "err", err)
	}
	s.cache.clock.Store(nil)
	if aerr := s.Store.RecordClockSet(r.Context(), from, to, err == nil); aerr != nil {
		s.serverError(w, r, aerr)
		return
	}
	if err != nil {
		s.renderAdmin(w, r, http.StatusConflict, ee, to.Sub(from))
		return
	}
	redirect(w, r, "/admin?done=clock_set")
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	ds, err := s.Store.Devices(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.view(r, "page.devices")
	v.Data = ds
	s.render(w, r, http.StatusOK, "devices", v)
}

type facilityPage struct {
	Facility edge.Facility
	Settings edge.FacilitySettings
	Form     map[string]string // as typed, when it failed
}

func (s *Server) showFacility(w http.ResponseWriter, r *http.Request) {
	st, err := s.Store.FacilitySettings(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.renderFacility(w, r, http.StatusOK, st, nil)
}

func (s *Server) renderFacility(w http.ResponseWriter, r *http.Request, status int, st edge.FacilitySettings, errs edge.FieldErrors) {
	f, err := s.Store.Facility(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.view(r, "page.facility")
	v.Data, v.Errors = facilityPage{Facility: f, Settings: st}, errs
	s.render(w, r, status, "facility", v)
}

func (s *Server) saveFacility(w http.ResponseWriter, r *http.Request) {
	errs := edge.FieldErrors{}
	st := edge.FacilitySettings{Address: formText(r, "address", errs), Phone: formText(r, "phone", errs),
		SlipFooter: formText(r, "slip_footer", errs), IdleLockMinutes: atoi(r.PostFormValue("idle_lock_minutes")),
		SessionHours: atoi(r.PostFormValue("session_hours"))}
	if len(errs) == 0 {
		err := s.Store.SaveFacilitySettings(r.Context(), st)
		if err == nil {
			s.cache.settings.Store(nil)
			redirect(w, r, "/admin/facility?done=settings_saved")
			return
		}
		if errs = fieldErrors(err); errs == nil {
			s.fail(w, r, err)
			return
		}
	}
	s.renderFacility(w, r, http.StatusUnprocessableEntity, st, errs)
}
