package webui

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// The device inbox: readings that arrived naming no patient (no identifier,
// no binding) wait here for a person to assign or discard them.

type inboxRow struct {
	ID     string
	Device string
	Name   string
	Value  string
	Unit   string
	At     time.Time
}

type inboxPage struct {
	Rows    []inboxRow
	Reading *inboxRow // the one being assigned
	Search  searchPage
	Reasons []string
}

// discardReasons are why a reading may be discarded, as catalogue keys
// inbox.reason.<code>; the code is kept with the reading.
var discardReasons = []string{"test", "wrong_person", "device_fault", "duplicate"}

func (s *Server) inboxRows(r *http.Request, c *catalog) ([]inboxRow, error) {
	rs, err := s.Store.UnassignedReadings(r.Context(), 200)
	if err != nil {
		return nil, err
	}
	devices, err := s.Store.Devices(r.Context())
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, d := range devices {
		names[d.ID] = d.Name
	}
	var rows []inboxRow
	for _, rd := range rs {
		lr := liveReadingOf(c, edge.PatientReading{LOINC: rd.LOINC, Value: rd.Value, ValueText: rd.ValueText, Unit: rd.Unit}, false)
		rows = append(rows, inboxRow{ID: rd.ID, Device: names[rd.DeviceID], Name: lr.Name, Value: lr.Value, Unit: lr.Unit, At: rd.EffectiveAt})
	}
	return rows, nil
}

func (s *Server) showInbox(w http.ResponseWriter, r *http.Request) {
	v := s.view(r, "page.inbox")
	rows, err := s.inboxRows(r, s.tpl.cats.get(v.Lang))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v.Data = inboxPage{Rows: rows, Reasons: discardReasons}
	s.render(w, r, http.StatusOK, "inbox", v)
}

// chooseReadingPatient finds the patient a reading belongs to.
func (s *Server) chooseReadingPatient(w http.ResponseWriter, r *http.Request) {
	v := s.view(r, "page.inbox_assign")
	rows, err := s.inboxRows(r, s.tpl.cats.get(v.Lang))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	page := inboxPage{Reasons: discardReasons}
	for i := range rows {
		if rows[i].ID == r.PathValue("id") {
			page.Reading = &rows[i]
		}
	}
	if page.Reading == nil {
		redirect(w, r, "/inbox?done=reading_gone")
		return
	}
	if q := strings.ToValidUTF8(strings.TrimSpace(r.URL.Query().Get("q")), ""); q != "" {
		page.Search.Query, page.Search.Searched = q, true
		if page.Search.Results, page.Search.Kind, err = s.Store.SearchPatients(r.Context(), q, edge.DefaultSearchLimit); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	v.Data = page
	s.render(w, r, http.StatusOK, "inbox_assign", v)
}

func (s *Server) assignReading(w http.ResponseWriter, r *http.Request) {
	err := s.Store.AssignReading(r.Context(), r.PathValue("id"), r.PostFormValue("patient_id"))
	switch {
	case errors.Is(err, edge.ErrNotFound):
		redirect(w, r, "/inbox?done=reading_gone")
	case fieldErrors(err) != nil:
		s.notFound(w, r)
	case err != nil:
		s.fail(w, r, err)
	default:
		redirect(w, r, "/inbox?done=assigned")
	}
}

func (s *Server) discardReading(w http.ResponseWriter, r *http.Request) {
	reason := r.PostFormValue("reason")
	if !contains(discardReasons, reason) {
		http.Error(w, "choose why the reading is discarded", http.StatusBadRequest)
		return
	}
	err := s.Store.DiscardReading(r.Context(), r.PathValue("id"), reason)
	switch {
	case errors.Is(err, edge.ErrNotFound):
		redirect(w, r, "/inbox?done=reading_gone")
	case err != nil:
		s.fail(w, r, err)
	default:
		redirect(w, r, "/inbox?done=discarded")
	}
}
