package webui

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/healthpost/healthpost/edge"
)

// A finalized visit is corrected by an amendment, never edited in place:
// "Amend" opens the visit form filled from the visit, saving it needs a
// reason, and the store keeps every version (edge.Store.AmendEncounter).
// An amendment is never saved half-typed: the idle lock discards it rather
// than save it as a draft, since a correction of a signed-off record must be
// a deliberate act with its reason.

// amendFields is the amendment part of the visit form: the version being
// corrected and the reason as typed.
type amendFields struct {
	Version int
	Reason  string
}

// maxReasonLen bounds the reason field, in bytes (edge allows 2000).
const maxReasonLen = 2000

// editEncounterAmendment shows a finalized visit's form, filled from the
// visit, to amend it.
func (s *Server) editEncounterAmendment(w http.ResponseWriter, r *http.Request) {
	e, err := s.Store.Encounter(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !amendable(e) {
		s.fail(w, r, errNotFinal)
		return
	}
	v := s.view(r, "page.encounter")
	f := formFromEncounter(s.tpl.cats.get(v.Lang), e)
	amendLabRows(&f, e)
	s.renderEncounterPage(w, r, http.StatusOK, encounterPage{Form: f, Amend: &amendFields{Version: e.Version}, Kept: fixedLabOrders(e)}, nil)
}

// amendEncounter saves an amendment (or adds a row to the form).
func (s *Server) amendEncounter(w http.ResponseWriter, r *http.Request) {
	old, err := s.Store.Encounter(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !amendable(old) {
		s.fail(w, r, errNotFinal)
		return
	}
	if r.PostFormValue("lock") == "1" { // the idle lock: discard, never save half an amendment
		if err := s.Store.LockWebSession(r.Context(), sessionFrom(r.Context()).token); err != nil {
			s.serverError(w, r, err)
			return
		}
		redirect(w, r, "/lock?next="+url.QueryEscape("/encounters/"+old.ID+"/amend"))
		return
	}
	errs := edge.FieldErrors{}
	f := readEncounterForm(r, errs)
	f.ID, f.PatientID = old.ID, old.PatientID
	f.dropFixedLabs(fixedLabOrders(old), errs)
	amend := &amendFields{Version: old.Version, Reason: formText(r, "reason", errs)}
	if len(amend.Reason) > maxReasonLen {
		errs["reason"] = "error.text_too_long"
	}
	page := encounterPage{Form: f, Amend: amend, Kept: fixedLabOrders(old)}
	switch r.PostFormValue("action") {
	case "add_dx":
		page.Form.Diagnoses = append(page.Form.Diagnoses, "")
		s.renderEncounterPage(w, r, http.StatusOK, page, errs)
		return
	case "add_rx":
		page.Form.Rx = append(page.Form.Rx, rxLine{})
		s.renderEncounterPage(w, r, http.StatusOK, page, errs)
		return
	case "add_lab":
		page.Form.Labs = append(page.Form.Labs, labLine{})
		s.renderEncounterPage(w, r, http.StatusOK, page, errs)
		return
	case "amend":
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	e := f.encounter(s.tpl.cats.get(defaultLang), errs)
	if amend.Reason == "" && errs["reason"] == "" {
		errs["reason"] = "error.amend_reason_required"
	}
	if len(errs) > 0 {
		s.renderEncounterPage(w, r, http.StatusUnprocessableEntity, page, errs)
		return
	}
	if err := s.Store.AmendEncounter(r.Context(), e, amend.Reason, f.Attach); err != nil {
		if fe := fieldErrors(err); fe != nil {
			labOrderError(fe)
			s.renderEncounterPage(w, r, http.StatusUnprocessableEntity, page, fe)
			return
		}
		s.fail(w, r, err)
		return
	}
	redirect(w, r, "/encounters/"+e.ID+"?done=amended")
}

// showEncounterVersion shows an earlier version of a finalized visit as it
// was; the current version is the visit page itself.
func (s *Server) showEncounterVersion(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || n < 1 {
		s.notFound(w, r)
		return
	}
	e, err := s.Store.EncounterVersion(r.Context(), id, n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.Store.Patient(r.Context(), e.PatientID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := s.view(r, "page.encounter")
	ev := newEncounterView(s.tpl.cats.get(v.Lang), e, p)
	if err := s.addHistory(r.Context(), &ev); err != nil {
		s.fail(w, r, err)
		return
	}
	current := ev.History[len(ev.History)-1].Version
	if n == current {
		redirect(w, r, "/encounters/"+id)
		return
	}
	ev.Current = current
	v.Data = ev
	s.render(w, r, http.StatusOK, "encounter_show", v)
}

// addHistory fills the view's version history and, when the version shown
// is an amendment, who made it, when and why. A finalized visit without
// recorded versions (finalized before they were kept, never amended) has
// its current row as its one version.
func (s *Server) addHistory(ctx context.Context, ev *encounterView) error {
	h, err := s.Store.EncounterHistory(ctx, ev.E.ID)
	if err != nil {
		return err
	}
	if len(h) == 0 {
		at := ev.E.EndedAt
		if at.IsZero() {
			at = ev.E.CreatedAt
		}
		h = []edge.EncounterHistoryEntry{{Version: ev.E.Version, Status: ev.E.Status, At: at}}
	}
	ev.History = h
	for i := range h {
		if h[i].Version == ev.E.Version && h[i].Status == edge.EncounterAmended {
			ev.Amended = &h[i]
		}
	}
	return nil
}

func amendable(e edge.Encounter) bool {
	return e.Status == edge.EncounterFinal || e.Status == edge.EncounterAmended
}

var errNotFinal = &edge.Error{Code: "encounter_not_final", Message: "only a finalized visit can be amended",
	Hint: "save the draft or finalize it instead"}
