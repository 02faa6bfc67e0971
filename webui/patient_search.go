package webui

import (
	"net/http"
	"strings"

	"github.com/healthpost/healthpost/edge"
)

type searchPage struct {
	Query   string
	Kind    edge.SearchKind
	Results []edge.PatientMatch
	// Searched is false before anything was typed.
	Searched bool
}

// searchPatients finds patients by name (any spelling, Latin or
// Devanagari), phone, ABHA number or address, or local ID.
func (s *Server) searchPatients(w http.ResponseWriter, r *http.Request) {
	q := strings.ToValidUTF8(strings.TrimSpace(r.URL.Query().Get("q")), "")
	if len(q) > 200 {
		q = q[:200]
	}
	p := searchPage{Query: q}
	if q != "" {
		var err error
		p.Results, p.Kind, err = s.Store.SearchPatients(r.Context(), q, edge.DefaultSearchLimit)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Searched = true
	}
	v := s.view(r, "page.patients")
	v.Data = p
	s.render(w, r, http.StatusOK, "patient_search", v)
}
