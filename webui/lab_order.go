package webui

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/catalogue"
)

// Lab orders, results, referral and vaccines on the visit form, and a lab
// result entered later from the patient's page.

// Limits and defaults of the visit form's lab rows.
const defaultLabRows = 1

// labLine is one lab row of the visit form as typed: the test, and the
// result when it is already known (a number, or an answer of the test).
// ID is the saved order the row shows, "" for a new row: an amendment
// keeps a pending order it still lists (edge.Store.AmendEncounter).
type labLine struct {
	ID, Test, Value, Answer, Interp string
}

// blank reports whether nothing was typed or chosen on the row: an empty
// row, or a saved pending order whose test was cleared to remove it.
func (l labLine) blank() bool {
	return l.Test == "" && l.Value == "" && l.Answer == "" && l.Interp == ""
}

// referralPlaces are the usual places a PHC refers to, offered as the
// facility field's suggestions; any name may be typed.
var referralPlaces = []string{"ref.place.chc", "ref.place.fru", "ref.place.sdh", "ref.place.dh", "ref.place.mch"}

// readLabForm reads the lab rows, referral and vaccines of the visit form.
func readLabForm(r *http.Request, f *encounterForm, errs edge.FieldErrors) {
	rows := min(max(atoi(r.PostFormValue("lab_rows")), 1), maxRows)
	for i := range rows {
		l := labLine{
			Test: formText(r, fmt.Sprintf("lab_test_%d", i), errs), Value: formText(r, fmt.Sprintf("lab_value_%d", i), errs),
			Answer: formText(r, fmt.Sprintf("lab_answer_%d", i), errs), Interp: formText(r, fmt.Sprintf("lab_interp_%d", i), errs),
		}
		if id := r.PostFormValue(fmt.Sprintf("lab_id_%d", i)); len(id) <= 64 {
			l.ID = id
		}
		f.Labs = append(f.Labs, l)
	}
	f.RefFacility = formText(r, "ref_facility", errs)
	f.RefReason = formText(r, "ref_reason", errs)
	f.RefUrgency = formText(r, "ref_urgency", errs)
	for _, v := range r.PostForm["vaccine"] {
		if _, ok := catalogue.DoseByKey(v); ok && !contains(f.Vaccines, v) {
			f.Vaccines = append(f.Vaccines, v)
		}
	}
	f.VaxDate = formText(r, "vax_date", errs)
}

// labParts turns the lab rows, referral and vaccines into the encounter's
// parts, adding field errors for what is wrong.
func (f *encounterForm) labParts(e *edge.Encounter, errs edge.FieldErrors) {
	for i, l := range f.Labs {
		if l.blank() {
			continue
		}
		t, ok := catalogue.Lab(l.Test)
		if !ok {
			errs[fmt.Sprintf("lab_test_%d", i)] = "error.lab_test_unknown"
			continue
		}
		o := edge.LabOrder{ID: l.ID, Test: t.Code, LOINC: t.LOINC, Status: edge.LabOrdered}
		if res, ok := f.labResult(i, t, l, errs); ok {
			o.Status, o.Result = edge.LabResulted, res
		}
		e.LabOrders = append(e.LabOrders, o)
	}
	if f.RefFacility != "" || f.RefReason != "" {
		urgency := f.RefUrgency
		if urgency == "" {
			urgency = edge.UrgencyRoutine
		}
		switch {
		case f.RefFacility == "":
			errs["ref_facility"] = "error.required"
		case len(f.RefFacility) > 200:
			errs["ref_facility"] = "error.text_too_long"
		}
		if len(f.RefReason) > 2000 {
			errs["ref_reason"] = "error.text_too_long"
		}
		if !contains(edge.Urgencies, urgency) {
			errs["ref_urgency"] = "error.urgency_invalid"
		}
		e.Referral = &edge.Referral{Facility: f.RefFacility, Reason: f.RefReason, Urgency: urgency}
	}
	if len(f.Vaccines) > 0 && f.VaxDate != "" {
		if _, err := time.Parse(time.DateOnly, f.VaxDate); err != nil {
			errs["vax_date"] = "error.date_invalid"
		}
	}
	for _, key := range f.Vaccines {
		d, _ := catalogue.DoseByKey(key)
		im := edge.Immunization{Vaccine: d.Vaccine, Booster: d.Booster, GivenOn: f.VaxDate}
		if d.Number >= 0 {
			n := d.Number
			im.Dose = &n
		}
		e.Immunizations = append(e.Immunizations, im)
	}
}

// labResult reads the result typed on a lab row (or on the result form),
// if any: a number for a numeric test, an answer for a coded one.
func (f *encounterForm) labResult(i int, t catalogue.LabTest, l labLine, errs edge.FieldErrors) (*edge.LabResult, bool) {
	return parseLabResult(t, l, errs, func(field string) string { return fmt.Sprintf("lab_%s_%d", field, i) })
}

func parseLabResult(t catalogue.LabTest, l labLine, errs edge.FieldErrors, key func(string) string) (*edge.LabResult, bool) {
	if l.Interp != "" && !contains(edge.Interpretations, l.Interp) {
		errs[key("interp")] = "error.interpretation_invalid"
	}
	if t.Numeric() {
		if l.Value == "" {
			return nil, false
		}
		v, err := strconv.ParseFloat(strings.Replace(l.Value, ",", ".", 1), 64)
		switch {
		case err != nil || len(l.Value) > 20:
			errs[key("value")] = "error.number_invalid"
			return nil, false
		case v < t.Min || v > t.Max:
			errs[key("value")] = "error.vital_implausible"
			return nil, false
		}
		return &edge.LabResult{Value: roundTo(v, t.Decimals), ValueText: l.Value, Unit: t.Unit, Interpretation: l.Interp}, true
	}
	if l.Answer == "" {
		if l.Value != "" {
			errs[key("answer")] = "error.answer_invalid"
		}
		return nil, false
	}
	if _, ok := t.Answer(l.Answer); !ok {
		errs[key("answer")] = "error.answer_invalid"
		return nil, false
	}
	return &edge.LabResult{Answer: l.Answer, Interpretation: l.Interp}, true
}

// labFormFromEncounter fills the lab rows, referral and vaccines of a draft.
func labFormFromEncounter(f *encounterForm, e edge.Encounter) {
	for _, o := range e.LabOrders {
		l := labLine{ID: o.ID, Test: o.Test}
		if r := o.Result; r != nil {
			l.Answer, l.Interp = r.Answer, r.Interpretation
			if r.Unit != "" {
				l.Value = strconv.FormatFloat(r.Value, 'f', -1, 64)
			}
		}
		f.Labs = append(f.Labs, l)
	}
	if r := e.Referral; r != nil {
		f.RefFacility, f.RefReason, f.RefUrgency = r.Facility, r.Reason, r.Urgency
	}
	for _, im := range e.Immunizations {
		d := catalogue.Dose{Vaccine: im.Vaccine, Number: -1, Booster: im.Booster}
		if im.Dose != nil {
			d.Number = *im.Dose
		}
		f.Vaccines = append(f.Vaccines, d.Key())
		f.VaxDate = im.GivenOn
	}
}

// amendLabRows sets the lab rows of an amendment's form, filled from
// final encounter e, to e's pending orders, to keep, result or remove. An
// order with a result, or cancelled, is no row (fixedLabOrders): an
// amendment keeps it as it is.
func amendLabRows(f *encounterForm, e edge.Encounter) {
	f.Labs = nil
	for _, o := range e.LabOrders {
		if o.Status == edge.LabOrdered {
			f.Labs = append(f.Labs, labLine{ID: o.ID, Test: o.Test})
		}
	}
}

// fixedLabOrders are e's orders with a result, or cancelled, which the
// amendment form shows as they are.
func fixedLabOrders(e edge.Encounter) []edge.LabOrder {
	var out []edge.LabOrder
	for _, o := range e.LabOrders {
		if o.Status != edge.LabOrdered {
			out = append(out, o)
		}
	}
	return out
}

// dropFixedLabs handles the rows of an amendment's form whose order got a
// result, or was cancelled, after the form was opened (from the patient's
// page, say): a row with nothing but its test goes, since the order stays
// as it now is and the form lists it so; a row with a result typed gets
// error.lab_order_fixed, so that what was typed is not lost unseen.
func (f *encounterForm) dropFixedLabs(fixed []edge.LabOrder, errs edge.FieldErrors) {
	ids := map[string]bool{}
	for _, o := range fixed {
		ids[o.ID] = true
	}
	var rows []labLine
	for _, l := range f.Labs {
		if l.ID != "" && ids[l.ID] && l.Value == "" && l.Answer == "" && l.Interp == "" {
			continue
		}
		rows = append(rows, l)
	}
	f.Labs = rows
	for i, l := range f.Labs {
		if l.ID != "" && ids[l.ID] {
			errs[fmt.Sprintf("lab_test_%d", i)] = "error.lab_order_fixed"
		}
	}
}

// labOrderError moves an error the store gave on a lab order of the
// encounter (lab_orders.N.*, N counting only the rows filled) to the form's
// lab section.
func labOrderError(fe edge.FieldErrors) {
	for k, v := range fe {
		if strings.HasPrefix(k, "lab_orders.") {
			fe["labs"] = v
		}
	}
}

// doseOption is one vaccine dose the form offers.
type doseOption struct{ Key, Label string }

// doseLabel names a dose: "OPV 1", "Hepatitis B birth dose", "PCV booster".
func doseLabel(c *catalog, d catalogue.Dose) string {
	v, _ := catalogue.VaccineByCode(d.Vaccine)
	name := v.VaccineName(c.lang)
	switch {
	case d.Booster && d.Number > 0:
		return name + " " + c.T("vax.booster") + " " + strconv.Itoa(d.Number)
	case d.Booster:
		return name + " " + c.T("vax.booster")
	case d.Number == 0:
		return name + " " + c.T("vax.birth_dose")
	case d.Number > 0:
		return name + " " + strconv.Itoa(d.Number)
	}
	return name
}

// immunizationLabel names a vaccine given.
func immunizationLabel(c *catalog, im edge.Immunization) string {
	d := catalogue.Dose{Vaccine: im.Vaccine, Number: -1, Booster: im.Booster}
	if im.Dose != nil {
		d.Number = *im.Dose
	}
	if _, ok := catalogue.VaccineByCode(im.Vaccine); !ok {
		return im.Vaccine
	}
	return doseLabel(c, d)
}

// labRow is a lab order as the visit page, the print and the patient page
// show it.
type labRow struct {
	ID       string
	Name     string
	Status   string
	Result   string // "9.8 g/dL" or the answer's name; "" while pending
	Interp   string // translation key, or ""
	At       time.Time
	Resulted bool
}

func labRowOf(c *catalog, o edge.LabOrder) labRow {
	row := labRow{ID: o.ID, Name: o.Test, Status: o.Status, At: o.OrderedAt}
	t, ok := catalogue.Lab(o.Test)
	if ok {
		row.Name = t.LabName(c.lang)
	}
	if r := o.Result; r != nil {
		row.Resulted, row.At = true, r.ResultedAt
		if r.Interpretation != "" {
			row.Interp = "lab.interp." + r.Interpretation
		}
		switch {
		case r.Unit != "":
			row.Result = FormatNumber(r.Value, t.Decimals) + " " + unitLabel(r.Unit)
		case ok:
			if a, found := t.Answer(r.Answer); found {
				row.Result = a.AnswerName(c.lang)
			}
		}
		if row.Result == "" {
			row.Result = r.Answer
		}
	}
	return row
}

// labResultPage is the form that records a pending order's result.
type labResultPage struct {
	Order   edge.LabOrder
	Patient edge.Patient
	Test    catalogue.LabTest
	Name    string
	Answers []labAnswer
	Form    labLine
	Interps []string
}

type labAnswer struct{ Code, Name string }

// showLabResult shows the result form of a pending order.
func (s *Server) showLabResult(w http.ResponseWriter, r *http.Request) {
	s.renderLabResult(w, r, http.StatusOK, labLine{}, nil)
}

func (s *Server) renderLabResult(w http.ResponseWriter, r *http.Request, status int, l labLine, errs edge.FieldErrors) {
	o, err := s.Store.LabOrder(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.Store.Patient(r.Context(), o.PatientID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, ok := catalogue.Lab(o.Test)
	if !ok {
		s.serverError(w, r, fmt.Errorf("lab order %s: test not in the catalogue", o.ID))
		return
	}
	v := s.view(r, "page.lab_result")
	c := s.tpl.cats.get(v.Lang)
	page := labResultPage{Order: o, Patient: p, Test: t, Name: t.LabName(v.Lang), Form: l, Interps: edge.Interpretations}
	for _, a := range t.Answers {
		page.Answers = append(page.Answers, labAnswer{a.Code, a.AnswerName(c.lang)})
	}
	v.Data, v.Errors = page, errs
	s.render(w, r, status, "lab_result", v)
}

// recordLabResult records the result of a pending order, or cancels it.
func (s *Server) recordLabResult(w http.ResponseWriter, r *http.Request) {
	errs := edge.FieldErrors{}
	l := labLine{Value: formText(r, "value", errs), Answer: formText(r, "answer", errs), Interp: formText(r, "interp", errs)}
	o, err := s.Store.LabOrder(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, ok := catalogue.Lab(o.Test)
	if !ok {
		s.serverError(w, r, fmt.Errorf("lab order %s: test not in the catalogue", o.ID))
		return
	}
	res, ok := parseLabResult(t, l, errs, func(field string) string { return field })
	if !ok && len(errs) == 0 {
		if t.Numeric() {
			errs["value"] = "error.required"
		} else {
			errs["answer"] = "error.required"
		}
	}
	if len(errs) > 0 {
		s.renderLabResult(w, r, http.StatusUnprocessableEntity, l, errs)
		return
	}
	if err := s.Store.RecordLabResult(r.Context(), o.ID, res); err != nil {
		if fe := fieldErrors(err); fe != nil {
			s.renderLabResult(w, r, http.StatusUnprocessableEntity, l, fe)
			return
		}
		s.fail(w, r, err)
		return
	}
	redirect(w, r, "/patients/"+o.PatientID+"?done=lab_saved#labs")
}

// cancelLabOrder cancels a pending order from the patient's page.
func (s *Server) cancelLabOrder(w http.ResponseWriter, r *http.Request) {
	o, err := s.Store.LabOrder(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Store.CancelLabOrder(r.Context(), o.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	redirect(w, r, "/patients/"+o.PatientID+"?done=lab_cancelled#labs")
}

// labTestOption is one test the form's lab rows offer, with its answers.
type labTestOption struct {
	Code, Name, Unit string
	Answers          []labAnswer
}

func labTestOptions(c *catalog) []labTestOption {
	var out []labTestOption
	for _, t := range catalogue.LabTests() {
		o := labTestOption{Code: t.Code, Name: t.LabName(c.lang), Unit: unitLabel(t.Unit)}
		for _, a := range t.Answers {
			o.Answers = append(o.Answers, labAnswer{a.Code, a.AnswerName(c.lang)})
		}
		out = append(out, o)
	}
	return out
}
