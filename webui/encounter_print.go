package webui

import (
	"net/http"

	"github.com/healthpost/healthpost/edge"
)

// ActionEncounterPrint is the audit action of printing a slip or summary.
const ActionEncounterPrint = "encounter.print"

// printPage is a prescription slip or a visit summary, bilingual, for A5,
// A4 or 80 mm thermal paper.
type printPage struct {
	encounterView
	Doc      string // slip or summary
	Paper    string // a5, a4 or 80mm
	Settings edge.FacilitySettings
	// Second is the other language printed under the first, for a
	// bilingual slip; empty when the page language is the only one.
	Second string
}

var papers = []string{"a5", "a4", "80mm"}

func (s *Server) printEncounter(w http.ResponseWriter, r *http.Request) {
	e, err := s.Store.Encounter(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.Store.Patient(r.Context(), e.PatientID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	doc := r.URL.Query().Get("doc")
	if doc != "summary" {
		doc = "slip"
	}
	paper := r.URL.Query().Get("paper")
	if !contains(papers, paper) {
		paper = "a5"
	}
	if err := s.Store.Audit(r.Context(), ActionEncounterPrint, "encounter", e.ID, e.PatientID, "doc="+doc+" paper="+paper); err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.view(r, "page.print")
	pp := printPage{encounterView: newEncounterView(s.tpl.cats.get(v.Lang), e, p), Doc: doc, Paper: paper, Settings: s.settings(r.Context())}
	if e.Version > 1 { // the slip says it was amended, when and why
		if err := s.addHistory(r.Context(), &pp.encounterView); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	// English and Hindi together: the other of the two, or Hindi under a
	// third language's labels.
	switch v.Lang {
	case "hi":
		pp.Second = "en"
	default:
		if _, ok := s.tpl.cats.byLan["hi"]; ok {
			pp.Second = "hi"
		}
	}
	v.Data = pp
	s.render(w, r, http.StatusOK, "encounter_print", v)
}
