package webui

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/healthpost/healthpost/edge"
)

// Limits of the visit form.
const (
	defaultDxRows = 2
	defaultRxRows = 3
	maxRows       = 20
)

// rxLine is one prescription row as typed.
type rxLine struct {
	Drug, Dose, Frequency, Days, Instructions string
}

// encounterForm is the visit form as typed.
type encounterForm struct {
	ID        string
	PatientID string
	Type      string
	Complaint string
	Notes     string
	Vitals    map[string]string // vitalField.Key → as typed
	Diagnoses []string          // "J06.9 Acute upper respiratory infection", as typed
	Vaccines  []string          // catalogue.Dose keys ticked
	VaxDate   string            // the day the vaccines were given, YYYY-MM-DD; empty: the visit's
	Rx        []rxLine
	Labs      []labLine
	// Referral, all empty when there is none.
	RefFacility, RefReason, RefUrgency string
	Attach                             []string // device observation IDs ticked
	Device                             string   // the device chosen for "take from device"
}

// readEncounterForm reads the posted form. It does not validate.
func readEncounterForm(r *http.Request, errs edge.FieldErrors) encounterForm {
	f := encounterForm{
		Type: r.PostFormValue("type"), Complaint: formText(r, "complaint", errs), Notes: formText(r, "notes", errs),
		Vitals: map[string]string{}, Device: r.PostFormValue("device"),
	}
	for _, vf := range vitalFields {
		if v := formText(r, "v_"+vf.Key, errs); v != "" {
			f.Vitals[vf.Key] = v
		}
	}
	dxRows := min(max(atoi(r.PostFormValue("dx_rows")), 1), maxRows)
	for i := range dxRows {
		f.Diagnoses = append(f.Diagnoses, formText(r, fmt.Sprintf("dx_%d", i), errs))
	}
	rxRows := min(max(atoi(r.PostFormValue("rx_rows")), 1), maxRows)
	for i := range rxRows {
		f.Rx = append(f.Rx, rxLine{
			Drug: formText(r, fmt.Sprintf("rx_drug_%d", i), errs), Dose: formText(r, fmt.Sprintf("rx_dose_%d", i), errs),
			Frequency: formText(r, fmt.Sprintf("rx_freq_%d", i), errs), Days: formText(r, fmt.Sprintf("rx_days_%d", i), errs),
			Instructions: formText(r, fmt.Sprintf("rx_instr_%d", i), errs),
		})
	}
	readLabForm(r, &f, errs)
	for _, id := range r.PostForm["attach"] {
		if len(id) <= 64 && !slices.Contains(f.Attach, id) {
			f.Attach = append(f.Attach, id)
		}
	}
	return f
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// encounter turns the form into an encounter, adding field errors for what
// is wrong: values outside what a living patient can have, diagnoses,
// drugs and lab tests not in the built-in lists.
func (f *encounterForm) encounter(en *catalog, errs edge.FieldErrors) *edge.Encounter {
	e := &edge.Encounter{ID: f.ID, PatientID: f.PatientID, Type: f.Type, Complaint: f.Complaint, Notes: f.Notes}
	if !slices.Contains(encounterTypes, f.Type) {
		errs["type"] = "error.encounter_type_invalid"
	}
	for _, vf := range vitalFields {
		typed, ok := f.Vitals[vf.Key]
		if !ok || !vf.shows(f.Type) {
			continue
		}
		v, err := strconv.ParseFloat(strings.Replace(typed, ",", ".", 1), 64)
		if err != nil {
			errs["v_"+vf.Key] = "error.number_invalid"
			continue
		}
		if vf.Key == "temp" && v > 50 { // typed in °F, as many thermometers show
			v = (v - 32) * 5 / 9
		}
		if v < vf.Min || v > vf.Max {
			errs["v_"+vf.Key] = "error.vital_implausible"
			continue
		}
		e.Observations = append(e.Observations, edge.Observation{LOINC: vf.LOINC, Value: roundTo(v, vf.Decimals),
			ValueText: typed, Unit: vf.Unit, Source: "manual"})
	}
	_, sys := f.Vitals["sys"]
	_, dia := f.Vitals["dia"]
	if sys != dia && errs["v_sys"] == "" && errs["v_dia"] == "" {
		errs[map[bool]string{true: "v_dia", false: "v_sys"}[sys]] = "error.bp_both"
	}
	if sys && dia && errs["v_sys"] == "" && errs["v_dia"] == "" {
		var s, d float64
		for _, o := range e.Observations {
			switch o.LOINC {
			case "8480-6":
				s = o.Value
			case "8462-4":
				d = o.Value
			}
		}
		if s <= d {
			errs["v_sys"] = "error.bp_order"
		}
	}
	for i, typed := range f.Diagnoses {
		if typed == "" {
			continue
		}
		code, _, _ := strings.Cut(typed, " ")
		code = strings.ToUpper(strings.TrimSpace(code))
		if !icd10Known(code) {
			errs[fmt.Sprintf("dx_%d", i)] = "error.diagnosis_unknown"
			continue
		}
		if slices.ContainsFunc(e.Diagnoses, func(d edge.Diagnosis) bool { return d.Code == code }) {
			continue
		}
		e.Diagnoses = append(e.Diagnoses, edge.Diagnosis{System: edge.ICD10System, Code: code, Display: en.T("dx." + code)})
	}
	if !showsVaccines(f.Type) {
		f.Vaccines = nil
	}
	f.labParts(e, errs)
	for i, l := range f.Rx {
		if l == (rxLine{}) {
			continue
		}
		d, ok := drugByLabel(l.Drug)
		if !ok {
			errs[fmt.Sprintf("rx_drug_%d", i)] = "error.drug_unknown"
			continue
		}
		p := edge.Prescription{Drug: d.Name, Strength: strings.TrimSpace(d.Strength + " " + d.Form), Dose: l.Dose,
			Frequency: l.Frequency, Instructions: l.Instructions}
		if l.Frequency != "" && !slices.Contains(frequencies, l.Frequency) {
			errs[fmt.Sprintf("rx_freq_%d", i)] = "error.frequency_invalid"
		}
		if l.Days != "" {
			n, err := strconv.Atoi(l.Days)
			if err != nil || n < 0 || n > 365 {
				errs[fmt.Sprintf("rx_days_%d", i)] = "error.duration_invalid"
			}
			p.DurationDays = n
		}
		for field, v := range map[string]string{"dose": l.Dose, "instr": l.Instructions} {
			if len(v) > 200 {
				errs[fmt.Sprintf("rx_%s_%d", field, i)] = "error.text_invalid"
			}
		}
		e.Prescriptions = append(e.Prescriptions, p)
	}
	if len(f.Complaint) > 2000 {
		errs["complaint"] = "error.text_too_long"
	}
	if len(f.Notes) > 20000 {
		errs["notes"] = "error.text_too_long"
	}
	return e
}

func roundTo(v float64, decimals int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', decimals, 64), 64)
	return p
}

// formFromEncounter fills the form from a saved draft.
func formFromEncounter(c *catalog, e edge.Encounter) encounterForm {
	f := encounterForm{ID: e.ID, PatientID: e.PatientID, Type: e.Type, Complaint: e.Complaint, Notes: e.Notes,
		Vitals: map[string]string{}}
	for _, o := range e.Observations {
		if o.Source != "manual" {
			f.Attach = append(f.Attach, o.ID)
			continue
		}
		for _, vf := range vitalFields {
			if vf.LOINC == o.LOINC {
				f.Vitals[vf.Key] = strconv.FormatFloat(o.Value, 'f', -1, 64)
			}
		}
	}
	labFormFromEncounter(&f, e)
	for _, d := range e.Diagnoses {
		f.Diagnoses = append(f.Diagnoses, d.Code+" "+diagnosisName(c, d.Code))
	}
	for _, p := range e.Prescriptions {
		l := rxLine{Drug: strings.TrimSpace(p.Drug + " " + p.Strength), Dose: p.Dose, Frequency: p.Frequency, Instructions: p.Instructions}
		if p.DurationDays > 0 {
			l.Days = strconv.Itoa(p.DurationDays)
		}
		f.Rx = append(f.Rx, l)
	}
	return f
}

// pad gives the form at least the default number of empty rows.
func (f *encounterForm) pad() {
	for len(f.Diagnoses) < defaultDxRows {
		f.Diagnoses = append(f.Diagnoses, "")
	}
	for len(f.Rx) < defaultRxRows {
		f.Rx = append(f.Rx, rxLine{})
	}
	for len(f.Labs) < defaultLabRows {
		f.Labs = append(f.Labs, labLine{})
	}
}

// showsVaccines reports whether the form of an encounter type offers the
// vaccines: immunization visits, and antenatal visits for Td.
func showsVaccines(typ string) bool {
	return typ == edge.EncounterImmunization || typ == edge.EncounterANC
}
