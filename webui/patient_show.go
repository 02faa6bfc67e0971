package webui

import (
	"net/http"

	"github.com/healthpost/healthpost/edge"
)

type patientPage struct {
	edge.PatientRecord
	PendingLabs []labRow
	Charts      []vitalChart
	Types       []string
	// Allergy is the add-allergy form as typed, when it failed.
	Allergy edge.Allergy
}

// showPatient is the patient's page: summary, new visit buttons, timeline
// and charts. Reading it is audited once, as the user.
func (s *Server) showPatient(w http.ResponseWriter, r *http.Request) {
	s.renderPatient(w, r, http.StatusOK, edge.Allergy{}, nil)
}

func (s *Server) renderPatient(w http.ResponseWriter, r *http.Request, status int, a edge.Allergy, errs edge.FieldErrors) {
	rec, err := s.Store.PatientRecord(r.Context(), r.PathValue("id"), chartLOINCs())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := s.view(r, "page.patient")
	page := patientPage{PatientRecord: rec, Charts: buildCharts(rec.Vitals), Types: encounterTypes, Allergy: a}
	for _, o := range rec.PendingLabOrders {
		page.PendingLabs = append(page.PendingLabs, labRowOf(s.tpl.cats.get(v.Lang), o))
	}
	v.Data = page
	v.Errors = errs
	s.render(w, r, status, "patient_show", v)
}

// addAllergy records an allergy from the patient page.
func (s *Server) addAllergy(w http.ResponseWriter, r *http.Request) {
	errs := edge.FieldErrors{}
	a := edge.Allergy{Substance: formText(r, "substance", errs), Reaction: formText(r, "reaction", errs)}
	if len(errs) == 0 {
		err := s.Store.AddAllergy(r.Context(), r.PathValue("id"), &a)
		if err == nil {
			redirect(w, r, "/patients/"+r.PathValue("id")+"?done=allergy_saved#allergies")
			return
		}
		if errs = fieldErrors(err); errs == nil {
			s.fail(w, r, err)
			return
		}
	}
	if errs["patient_id"] != "" {
		s.notFound(w, r)
		return
	}
	s.renderPatient(w, r, http.StatusUnprocessableEntity, a, errs)
}
