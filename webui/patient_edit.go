package webui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// editPatient shows the registration form filled with a registered
// patient's details, for a correction. Reading the patient is audited.
func (s *Server) editPatient(w http.ResponseWriter, r *http.Request) {
	p, err := s.Store.Patient(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderPatientEdit(w, r, http.StatusOK, formOfPatient(p, s.Store.Now()), nil)
}

// formOfPatient is the form as it shows a saved patient. An age told
// earlier is shown carried forward to now; saving it unchanged keeps it.
func formOfPatient(p edge.Patient, now time.Time) patientForm {
	f := patientForm{ID: p.ID, LocalID: p.LocalID, Revision: strconv.FormatInt(p.Revision, 10),
		Name: p.Name, Gender: p.Gender, BirthDate: p.BirthDate, Phone: p.Phone, Village: p.Village, Address: p.Address,
		ABHANumber: edge.FormatABHANumber(p.ABHANumber), ABHAAddress: p.ABHAAddress}
	if p.BirthDate == "" {
		f.Age = strconv.Itoa(p.StatedAgeNow(now))
	}
	switch {
	case p.ConsentLink:
		f.Consent = "yes"
	case p.ABHANumber != "" || p.ABHAAddress != "" || !p.ConsentAt.IsZero():
		f.Consent = "no" // asked at registration (or withdrawn since), and not given
	}
	return f
}

func (s *Server) renderPatientEdit(w http.ResponseWriter, r *http.Request, status int, f patientForm, errs edge.FieldErrors) {
	v := s.view(r, "page.patient_edit")
	v.Data, v.Errors = f, errs
	s.render(w, r, status, "patient_form", v)
}

// updatePatient saves a correction and opens the patient's page. When
// someone else saved the patient after the form was filled, nothing is
// saved: the form comes back with what was typed, a plain warning, and
// what is saved now under each field that differs, ready to save again
// on purpose.
func (s *Server) updatePatient(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cur, err := s.Store.Patient(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, p, _, errs := readPatientForm(r)
	f.ID, f.LocalID, f.Revision = cur.ID, cur.LocalID, r.PostFormValue("revision")
	rev, err := strconv.ParseInt(f.Revision, 10, 64)
	if err != nil {
		// A form without the revision it was filled from cannot prove it
		// saw what is saved now.
		s.renderStalePatient(w, r, f, cur)
		return
	}
	if len(errs) > 0 {
		s.renderPatientEdit(w, r, http.StatusUnprocessableEntity, f, errs)
		return
	}
	p.ID, p.Revision = cur.ID, rev
	err = s.Store.UpdatePatient(ctx, p)
	switch {
	case err == nil:
		redirect(w, r, "/patients/"+p.ID+"?done=patient_saved")
	case errors.Is(err, edge.ErrStale):
		if cur, err = s.Store.Patient(ctx, cur.ID); err != nil {
			s.fail(w, r, err)
			return
		}
		s.renderStalePatient(w, r, f, cur)
	case fieldErrors(err) != nil:
		s.renderPatientEdit(w, r, http.StatusUnprocessableEntity, f, fieldErrors(err))
	default:
		s.fail(w, r, err)
	}
}

// renderStalePatient answers 409 with the form as typed, the revision now
// saved, and the saved value of each field that differs from what was typed.
func (s *Server) renderStalePatient(w http.ResponseWriter, r *http.Request, f patientForm, cur edge.Patient) {
	v := s.view(r, "page.patient_edit")
	c := s.tpl.cats.get(v.Lang)
	saved := formOfPatient(cur, s.Store.Now())
	f.Stale, f.Revision, f.Saved = true, saved.Revision, map[string]string{}
	same := func(a, b string) bool {
		fold := strings.NewReplacer(" ", "", "-", "")
		return strings.EqualFold(fold.Replace(a), fold.Replace(b))
	}
	answer := map[string]string{"yes": "patient.consent_yes", "no": "patient.consent_no"}
	for _, fd := range []struct {
		field, typed, saved string
		show                func(string) string
	}{
		{"name", f.Name, saved.Name, nil},
		{"gender", f.Gender, saved.Gender, func(g string) string { return c.T("gender." + g) }},
		{"birth_date", f.BirthDate, saved.BirthDate, func(d string) string { return formatISODate(c, d) }},
		{"stated_age", f.Age, saved.Age, nil},
		{"phone", f.Phone, saved.Phone, nil},
		{"village", f.Village, saved.Village, nil},
		{"address", f.Address, saved.Address, nil},
		{"abha_number", f.ABHANumber, saved.ABHANumber, nil},
		{"abha_address", f.ABHAAddress, saved.ABHAAddress, nil},
		{"consent", f.Consent, saved.Consent, func(a string) string { return c.T(answer[a]) }},
	} {
		switch {
		case same(fd.typed, fd.saved):
		case fd.saved == "":
			f.Saved[fd.field] = c.T("patient.saved_empty")
		case fd.show != nil:
			f.Saved[fd.field] = fd.show(fd.saved)
		default:
			f.Saved[fd.field] = fd.saved
		}
	}
	v.Data = f
	s.render(w, r, http.StatusConflict, "patient_form", v)
}
