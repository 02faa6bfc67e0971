package webui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/catalogue"
)

// encounterPage is what the visit form shows.
type encounterPage struct {
	Form         encounterForm
	Patient      edge.Patient
	Fields       []vitalField
	Dx           []dxOption
	Drugs        []drug
	Frequencies  []string
	Instructions []string
	Vaccines     []doseOption
	LabTests     []labTestOption
	Interps      []string
	Urgencies    []string
	Places       []string // translation keys of referralPlaces
	// Take from device.
	Devices  []edge.Device
	Bound    []boundDevice
	Readings []liveReading
	Since    int64 // the stream's start, Unix ms
	// Amend is set when the form corrects a finalized visit; Kept are then
	// its tests with a result or cancelled, which the amendment keeps as
	// they are, and KeptLabs how the form shows them.
	Amend    *amendFields
	Kept     []edge.LabOrder
	KeptLabs []labRow
}

type dxOption struct{ Code, Label string }

type boundDevice struct {
	Name  string
	Until time.Time
}

// liveReading is a device reading shown on the form, ticked to attach.
type liveReading struct {
	ObservationID string
	Name          string
	Value         string
	Unit          string
	Device        string
	At            time.Time
	Rejected      string
	Checked       bool
}

// newEncounter shows an empty visit form of the type asked for.
func (s *Server) newEncounter(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("type")
	if !slices.Contains(encounterTypes, typ) {
		typ = edge.EncounterOPD
	}
	f := encounterForm{PatientID: r.PathValue("id"), Type: typ, Vitals: map[string]string{}}
	s.renderEncounterForm(w, r, http.StatusOK, f, nil)
}

// createEncounter saves a new visit (or adds a row, or binds a device).
func (s *Server) createEncounter(w http.ResponseWriter, r *http.Request) {
	errs := edge.FieldErrors{}
	f := readEncounterForm(r, errs)
	f.PatientID = r.PathValue("id")
	s.handleEncounterForm(w, r, f, errs)
}

// showEncounter shows a draft as its form, a final visit as a record.
func (s *Server) showEncounter(w http.ResponseWriter, r *http.Request) {
	e, err := s.Store.Encounter(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if e.Status == edge.EncounterDraft {
		v := s.view(r, "page.encounter")
		s.renderEncounterForm(w, r, http.StatusOK, formFromEncounter(s.tpl.cats.get(v.Lang), e), nil)
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
	v.Data = ev
	s.render(w, r, http.StatusOK, "encounter_show", v)
}

// saveEncounter saves a draft again, or finalizes it.
func (s *Server) saveEncounter(w http.ResponseWriter, r *http.Request) {
	old, err := s.Store.Encounter(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if old.Status != edge.EncounterDraft {
		s.fail(w, r, &edge.Error{Code: "encounter_final", Message: "this visit is already finalized and cannot be changed"})
		return
	}
	errs := edge.FieldErrors{}
	f := readEncounterForm(r, errs)
	f.ID, f.PatientID = old.ID, old.PatientID
	s.handleEncounterForm(w, r, f, errs)
}

// handleEncounterForm acts on the button pressed: add a row, save the
// draft, bind a device (after saving), or finalize.
func (s *Server) handleEncounterForm(w http.ResponseWriter, r *http.Request, f encounterForm, errs edge.FieldErrors) {
	action := r.PostFormValue("action")
	switch action {
	case "add_dx":
		f.Diagnoses = append(f.Diagnoses, "")
		s.renderEncounterForm(w, r, http.StatusOK, f, errs)
		return
	case "add_rx":
		f.Rx = append(f.Rx, rxLine{})
		s.renderEncounterForm(w, r, http.StatusOK, f, errs)
		return
	case "add_lab":
		f.Labs = append(f.Labs, labLine{})
		s.renderEncounterForm(w, r, http.StatusOK, f, errs)
		return
	case "save", "finalize", "bind":
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	var device edge.Device
	if action == "bind" {
		var err error
		if device, err = s.Store.Device(r.Context(), f.Device); err != nil || !device.Enabled || f.Device == "" {
			errs["device"] = "error.device_choose"
		}
	}
	e := f.encounter(s.tpl.cats.get(defaultLang), errs)
	e.PractitionerID = sessionFrom(r.Context()).User.ID
	if len(errs) > 0 {
		s.renderEncounterForm(w, r, http.StatusUnprocessableEntity, f, errs)
		return
	}
	if err := s.Store.SaveEncounter(r.Context(), e, f.Attach, action == "finalize"); err != nil {
		if fe := fieldErrors(err); fe != nil {
			if fe["patient_id"] != "" {
				s.notFound(w, r)
				return
			}
			s.renderEncounterForm(w, r, http.StatusUnprocessableEntity, f, fe)
			return
		}
		s.fail(w, r, err)
		return
	}
	switch action {
	case "bind":
		if err := s.Store.BindDevice(r.Context(), device.ID, e.PatientID, edge.DefaultBindingTime); err != nil {
			s.fail(w, r, err)
			return
		}
		redirect(w, r, "/encounters/"+e.ID+"?done=device_bound#device")
	case "finalize":
		redirect(w, r, "/encounters/"+e.ID+"?done=finalized")
	case "save":
		if r.PostFormValue("lock") == "1" { // the idle lock saved the form first
			if err := s.Store.LockWebSession(r.Context(), sessionFrom(r.Context()).token); err != nil {
				s.serverError(w, r, err)
				return
			}
			redirect(w, r, "/lock?next="+url.QueryEscape("/encounters/"+e.ID))
			return
		}
		redirect(w, r, "/encounters/"+e.ID+"?done=draft_saved")
	default:
		redirect(w, r, "/encounters/"+e.ID+"?done=draft_saved")
	}
}

// renderEncounterForm shows the visit form with what was typed, the
// patient's banner and the readings of devices bound to the patient.
func (s *Server) renderEncounterForm(w http.ResponseWriter, r *http.Request, status int, f encounterForm, errs edge.FieldErrors) {
	s.renderEncounterPage(w, r, status, encounterPage{Form: f}, errs)
}

// renderEncounterPage shows the visit form of page.Form, for a draft or,
// with page.Amend, for an amendment.
func (s *Server) renderEncounterPage(w http.ResponseWriter, r *http.Request, status int, page encounterPage, errs edge.FieldErrors) {
	f := page.Form
	p, err := s.Store.Patient(r.Context(), f.PatientID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := s.view(r, "page.encounter")
	c := s.tpl.cats.get(v.Lang)
	f.pad()
	page.Form, page.Patient, page.Drugs, page.Frequencies, page.Instructions = f, p, formulary, frequencies, instructionKeys
	page.Interps, page.Urgencies, page.Places = edge.Interpretations, edge.Urgencies, referralPlaces
	if showsVaccines(f.Type) {
		for _, d := range catalogue.Schedule() {
			page.Vaccines = append(page.Vaccines, doseOption{Key: d.Key(), Label: doseLabel(c, d)})
		}
	}
	page.LabTests = labTestOptions(c)
	for _, o := range page.Kept {
		page.KeptLabs = append(page.KeptLabs, labRowOf(c, o))
	}
	for _, vf := range vitalFields {
		if vf.shows(f.Type) {
			page.Fields = append(page.Fields, vf)
		}
	}
	for _, code := range icd10Codes {
		page.Dx = append(page.Dx, dxOption{Code: code, Label: code + " " + diagnosisName(c, code)})
	}
	devices, err := s.Store.Devices(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	names := map[string]string{}
	for _, d := range devices {
		names[d.ID] = d.Name
		if d.Enabled {
			page.Devices = append(page.Devices, d)
		}
	}
	bindings, err := s.Store.PatientBindings(r.Context(), p.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	since := s.Store.Now()
	for _, b := range bindings {
		page.Bound = append(page.Bound, boundDevice{Name: names[b.DeviceID], Until: b.ExpiresAt})
		if b.CreatedAt.Before(since) {
			since = b.CreatedAt
		}
	}
	page.Since = since.UnixMilli()
	if len(bindings) > 0 || len(f.Attach) > 0 {
		from := since
		if len(f.Attach) > 0 {
			from = since.Add(-12 * time.Hour)
		}
		rs, err := s.Store.PatientReadings(r.Context(), p.ID, 0, from, 100)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		for _, rd := range rs {
			checked := slices.Contains(f.Attach, rd.ObservationID)
			if !checked && rd.EffectiveAt.Before(since.Add(-time.Minute)) {
				continue
			}
			page.Readings = append(page.Readings, liveReadingOf(c, rd, checked || (r.Method == http.MethodGet && rd.State == "assigned")))
		}
	}
	v.Data, v.Errors = page, errs
	s.render(w, r, status, "encounter_form", v)
}

func liveReadingOf(c *catalog, rd edge.PatientReading, checked bool) liveReading {
	lr := liveReading{ObservationID: rd.ObservationID, Name: vitalName(c, rd.LOINC), Unit: unitLabel(rd.Unit),
		Device: rd.DeviceName, At: rd.EffectiveAt, Rejected: rd.Rejected, Checked: checked && rd.ObservationID != ""}
	lr.Value = rd.ValueText
	if lr.Value == "" {
		lr.Value = strings.TrimRight(strings.TrimRight(FormatNumber(rd.Value, 2), "0"), ".")
	}
	return lr
}

// encounterView is a saved visit for reading and printing.
type encounterView struct {
	E        edge.Encounter
	Patient  edge.Patient
	Vitals   []vitalRow
	Dx       []edge.Diagnosis
	Vaccines []string // labels of the vaccines given
	Labs     []labRow
	// History lists the finalized versions; Amended is the amendment that
	// made the version shown, nil for version 1. Current is the current
	// version when the page shows an earlier one. See addHistory.
	History []edge.EncounterHistoryEntry
	Amended *edge.EncounterHistoryEntry
	Current int
}

type vitalRow struct {
	LOINC  string
	Value  float64
	Places int
	Unit   string
	Device bool
}

func newEncounterView(c *catalog, e edge.Encounter, p edge.Patient) encounterView {
	ev := encounterView{E: e, Patient: p}
	for _, o := range e.Observations {
		places := 0
		for _, vf := range vitalFields {
			if vf.LOINC == o.LOINC {
				places = vf.Decimals
			}
		}
		if o.Value != float64(int64(o.Value)) && places == 0 {
			places = 1
		}
		ev.Vitals = append(ev.Vitals, vitalRow{LOINC: o.LOINC, Value: o.Value, Places: places, Unit: unitLabel(o.Unit), Device: o.Source == "device"})
	}
	ev.Dx = e.Diagnoses
	for _, im := range e.Immunizations {
		ev.Vaccines = append(ev.Vaccines, immunizationLabel(c, im))
	}
	for _, o := range e.LabOrders {
		ev.Labs = append(ev.Labs, labRowOf(c, o))
	}
	return ev
}
