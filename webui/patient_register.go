package webui

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// patientForm is the registration form as typed, so a form that fails
// validation comes back with everything still in it.
type patientForm struct {
	Name, Gender, BirthDate, Age, Phone, Village, Address string
	ABHANumber, ABHAAddress, Consent, Allergies           string
	// Confirm is set once the health worker has seen the likely duplicates.
	Confirm bool
	// Scanned says the form was filled from an ABHA card's QR code.
	Scanned    bool
	QR         string
	Duplicates []edge.PatientMatch

	// A correction of a registered patient (patient_edit.go) names the
	// patient and the revision the form was filled from.
	ID, LocalID, Revision string
	// Stale says someone else saved the patient after this form was
	// filled; Saved then holds, by field, what is saved now where it
	// differs from what was typed.
	Stale bool
	Saved map[string]string
}

// newPatient shows an empty registration form, or one filled from the
// search that found nobody (?q=name).
func (s *Server) newPatient(w http.ResponseWriter, r *http.Request) {
	var f patientForm
	if q := strings.TrimSpace(r.URL.Query().Get("q")); q != "" {
		switch kind, v := edge.ClassifyQuery(q); kind {
		case edge.SearchByName:
			f.Name = v
		case edge.SearchByPhone:
			f.Phone = v
		case edge.SearchByABHANumber:
			f.ABHANumber = edge.FormatABHANumber(v)
		case edge.SearchByABHAAddress:
			f.ABHAAddress = v
		}
	}
	s.renderPatientForm(w, r, http.StatusOK, f, nil)
}

func (s *Server) renderPatientForm(w http.ResponseWriter, r *http.Request, status int, f patientForm, errs edge.FieldErrors) {
	v := s.view(r, "page.patient_new")
	v.Data, v.Errors = f, errs
	s.render(w, r, status, "patient_form", v)
}

// readPatientForm reads the form into a patient and its allergies, with the
// field errors found on the way (edge validates the rest).
func readPatientForm(r *http.Request) (patientForm, *edge.Patient, []edge.Allergy, edge.FieldErrors) {
	errs := edge.FieldErrors{}
	f := patientForm{
		Name: formText(r, "name", errs), Gender: formText(r, "gender", errs), BirthDate: formText(r, "birth_date", errs),
		Age: formText(r, "stated_age", errs), Phone: formText(r, "phone", errs), Village: formText(r, "village", errs),
		Address: formText(r, "address", errs), ABHANumber: formText(r, "abha_number", errs),
		ABHAAddress: formText(r, "abha_address", errs), Consent: formText(r, "consent", errs),
		Allergies: formText(r, "allergies", errs), Confirm: r.PostFormValue("confirm") == "1",
	}
	p := &edge.Patient{Name: f.Name, Gender: f.Gender, BirthDate: f.BirthDate, Phone: f.Phone, Village: f.Village,
		Address: f.Address, ABHANumber: f.ABHANumber, ABHAAddress: f.ABHAAddress, ConsentLink: f.Consent == "yes"}
	if f.BirthDate == "" && f.Age != "" {
		n, err := strconv.Atoi(f.Age)
		if err != nil || n < 0 || n > 130 {
			errs["stated_age"] = "error.age_invalid"
		} else {
			p.StatedAge = n
			if n == 0 {
				p.StatedAgeAt = time.Now() // a baby under a year; edge accepts age 0 with its date
			}
		}
	}
	if (f.ABHANumber != "" || f.ABHAAddress != "") && f.Consent != "yes" && f.Consent != "no" {
		errs["consent"] = "error.consent_required"
	}
	var allergies []edge.Allergy
	for _, a := range strings.FieldsFunc(f.Allergies, func(r rune) bool { return r == ',' || r == '\n' || r == ';' }) {
		if a = strings.TrimSpace(a); a != "" {
			allergies = append(allergies, edge.Allergy{Substance: a})
		}
	}
	if len(f.Allergies) > 1000 {
		errs["allergies"] = "error.text_invalid"
	}
	if err := p.Validate(); err != nil {
		errs = merge(errs, fieldErrors(err))
	}
	return f, p, allergies, errs
}

// registerPatient registers the patient after showing likely duplicates
// once, then opens their page.
func (s *Server) registerPatient(w http.ResponseWriter, r *http.Request) {
	f, p, allergies, errs := readPatientForm(r)
	if len(errs) > 0 {
		s.renderPatientForm(w, r, http.StatusUnprocessableEntity, f, errs)
		return
	}
	if !f.Confirm {
		dups, err := s.Store.LikelyDuplicates(r.Context(), p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if len(dups) > 0 {
			f.Duplicates, f.Confirm = dups, true
			s.renderPatientForm(w, r, http.StatusOK, f, nil)
			return
		}
	}
	if err := s.Store.RegisterPatient(r.Context(), p, allergies); err != nil {
		if fe := fieldErrors(err); fe != nil {
			s.renderPatientForm(w, r, http.StatusUnprocessableEntity, f, fe)
			return
		}
		s.fail(w, r, err)
		return
	}
	redirect(w, r, "/patients/"+p.ID+"?done=registered")
}

// abhaQR is the JSON an ABHA card's QR code holds (reference/abdm.md §2):
// keys differ by issuer, "-" means empty.
type abhaQR struct {
	HIDN     string `json:"hidn"`
	HID      string `json:"hid"`
	PHR      string `json:"phr"`
	Name     string `json:"name"`
	Gender   string `json:"gender"`
	DOB      string `json:"dob"`
	Mobile   string `json:"mobile"`
	Address  string `json:"address"`
	District string `json:"district_name"`
	Dist     string `json:"dist name"`
	State    string `json:"state name"`
	Pincode  string `json:"pincode"`
}

// scanPatientQR fills the registration form from an ABHA card's QR code,
// as a USB or Bluetooth scanner types it into the scan field. A scan is not
// proof of identity: the health worker checks and saves.
func (s *Server) scanPatientQR(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimSpace(r.PostFormValue("qr"))
	f, err := parseABHAQR(raw)
	if err != nil {
		s.renderPatientForm(w, r, http.StatusUnprocessableEntity, patientForm{QR: strings.ToValidUTF8(raw, "\uFFFD")},
			edge.FieldErrors{"qr": "error.qr_invalid"})
		return
	}
	s.renderPatientForm(w, r, http.StatusOK, f, nil)
}

func parseABHAQR(raw string) (patientForm, error) {
	var q abhaQR
	if err := json.Unmarshal([]byte(raw), &q); err != nil {
		return patientForm{}, err
	}
	clean := func(v string) string {
		v = strings.TrimSpace(v)
		if v == "-" {
			return ""
		}
		return v
	}
	f := patientForm{Scanned: true, Name: clean(q.Name), ABHANumber: clean(q.HIDN), ABHAAddress: clean(q.HID)}
	if f.ABHAAddress == "" {
		f.ABHAAddress = clean(q.PHR)
	}
	switch strings.ToUpper(clean(q.Gender)) {
	case "M":
		f.Gender = "M"
	case "F":
		f.Gender = "F"
	case "O", "T":
		f.Gender = "O"
	}
	// dob is d/M/yyyy or d-M-yyyy; the day or month may be hidden as "xx".
	if parts := strings.FieldsFunc(clean(q.DOB), func(r rune) bool { return r == '/' || r == '-' }); len(parts) == 3 {
		d, errD := strconv.Atoi(parts[0])
		m, errM := strconv.Atoi(parts[1])
		y, errY := strconv.Atoi(parts[2])
		switch {
		case errY != nil:
		case errD == nil && errM == nil:
			if t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC); t.Day() == d && int(t.Month()) == m {
				f.BirthDate = t.Format(time.DateOnly)
			}
		default:
			f.Age = strconv.Itoa(time.Now().Year() - y)
		}
	} else if len(parts) == 1 {
		if y, err := strconv.Atoi(parts[0]); err == nil && y > 1900 {
			f.Age = strconv.Itoa(time.Now().Year() - y)
		}
	}
	if m := clean(q.Mobile); len(m) == 10 && strings.Trim(m, "0123456789") == "" {
		f.Phone = m
	}
	var addr []string
	for _, a := range []string{clean(q.Address), clean(q.District), clean(q.Dist), clean(q.State), clean(q.Pincode)} {
		if a != "" {
			addr = append(addr, a)
		}
	}
	f.Address = strings.Join(addr, ", ")
	return f, nil
}
