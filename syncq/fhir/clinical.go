package fhir

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/healthpost/healthpost/devices/vitals"
	"github.com/healthpost/healthpost/edge"
)

// codeRe is the shape of a FHIR code (R4 datatypes: no leading, trailing or
// double whitespace).
var codeRe = regexp.MustCompile(`^[^\s]+( [^\s]+)*$`)

func typed(r reference, resourceType string) reference {
	r.Type = resourceType
	return r
}

func (b *builder) addClinical(id string, res any) reference {
	r := reference{Reference: urn(id)}
	b.clinical = append(b.clinical, entry{FullURL: r.Reference, Resource: res})
	return r
}

// complaint adds the chief complaint as a Condition whose code is the text
// the health worker typed: the node holds no code for it, and the IG's
// Condition profile requires code but allows it as text alone.
func (b *builder) complaint() (*reference, error) {
	e := b.in.Encounter
	c, err := text("encounter.complaint", e.Complaint)
	if err != nil || c == "" {
		return nil, err
	}
	u := nameUUID("Condition", "complaint", e.ID)
	r := b.addClinical(u, &condition{
		ResourceType:       "Condition",
		ID:                 u,
		Meta:               profiles(profileCondition),
		VerificationStatus: b.conditionVerification(),
		Code:               codeableConcept{Text: c},
		Subject:            &b.patient,
		Encounter:          b.enc,
		Recorder:           b.practitioner,
	})
	return &r, nil
}

// withdrawn reports whether the document is sent as entered-in-error (a
// retracted document, or a cancelled encounter): its entries say so too,
// so that a reader of any one resource does not take it as valid.
func (b *builder) withdrawn() bool { return b.status == "entered-in-error" }

// entryStatus is the status of an Observation or MedicationRequest: the
// usual one, or entered-in-error in a withdrawn document.
func (b *builder) entryStatus(usual string) string {
	if b.withdrawn() {
		return "entered-in-error"
	}
	return usual
}

// conditionVerification is a Condition's verificationStatus: none is
// recorded, except entered-in-error in a withdrawn document.
func (b *builder) conditionVerification() *codeableConcept {
	if !b.withdrawn() {
		return nil
	}
	return codePtr(verificationEnteredInError)
}

// diagnoses adds each coded diagnosis as a Condition with category
// encounter-diagnosis. SD Condition slices code.coding closed by system:
// ICD-10 or SNOMED CT only, each with a display.
func (b *builder) diagnoses() ([]reference, error) {
	var refs []reference
	for i, d := range b.in.Encounter.Diagnoses {
		field := fmt.Sprintf("diagnosis %d", i)
		if err := checkID(field+".id", d.ID); err != nil {
			return nil, err
		}
		system := d.System
		if system == "" {
			system = edge.ICD10System
		}
		if system != systemICD10 && system != systemSNOMED {
			return nil, fmt.Errorf("%s.system: %w", field, ErrUnsupportedCodeSystem)
		}
		if !codeRe.MatchString(d.Code) || len(d.Code) > 64 {
			return nil, fmt.Errorf("%s.code: %w", field, ErrInvalidValue)
		}
		display, err := text(field+".display", d.Display)
		if err != nil {
			return nil, err
		}
		if display == "" {
			return nil, fmt.Errorf("%s.display: %w", field, ErrMissing)
		}
		u := nameUUID("Condition", d.ID)
		refs = append(refs, b.addClinical(u, &condition{
			ResourceType:       "Condition",
			ID:                 u,
			Meta:               profiles(profileCondition),
			VerificationStatus: b.conditionVerification(),
			Category:           []codeableConcept{concept(categoryEncounterDiagnos)},
			Code:               concept(coding{system, d.Code, display}),
			Subject:            &b.patient,
			Encounter:          b.enc,
			Recorder:           b.practitioner,
		}))
	}
	return refs, nil
}

// obsEntry is one Observation resource and the WellnessRecord section it
// belongs to.
type obsEntry struct {
	ref   reference
	group wellnessGroup
}

// observations adds one Observation per measurement, in the order given,
// except that a systolic and a diastolic taken at the same moment by the
// same source become one blood pressure panel (the IG codes blood pressure
// only as the 85354-9 panel, "with all children optional", so a lone
// systolic or diastolic is a panel with one component).
func (b *builder) observations(list []edge.Observation) ([]obsEntry, error) {
	used := make([]bool, len(list))
	var out []obsEntry
	for i := range list {
		if used[i] {
			continue
		}
		used[i] = true
		o := &list[i]
		field := fmt.Sprintf("observation %d", i)
		if o.LOINC != loincSystolic && o.LOINC != loincDiastolic {
			e, err := b.observation(field, o)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			continue
		}
		parts := []*edge.Observation{o}
		fields := []string{field}
		other := loincSystolic
		if o.LOINC == loincSystolic {
			other = loincDiastolic
		}
		for j := i + 1; j < len(list); j++ {
			p := &list[j]
			if !used[j] && p.LOINC == other && p.EffectiveAt.Equal(o.EffectiveAt) && p.DeviceID == o.DeviceID && p.Source == o.Source {
				used[j] = true
				parts = append(parts, p)
				fields = append(fields, fmt.Sprintf("observation %d", j))
				break
			}
		}
		if len(parts) == 2 && parts[0].LOINC == loincDiastolic {
			parts[0], parts[1] = parts[1], parts[0]
			fields[0], fields[1] = fields[1], fields[0]
		}
		e, err := b.bloodPressure(fields, parts)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// measured returns the LOINC coding and the quantity of an observation,
// checked against the node's catalogue: the code must be known (its display
// is required by SD Observation's LOINC slice) and the unit must be the
// code's canonical UCUM unit, which the IG examples use (mm[Hg], /min, %,
// Cel, kg, cm, kg/m2, mg/dL).
func measured(field string, o *edge.Observation) (coding, *quantity, error) {
	if err := checkID(field+".loinc", o.LOINC); err != nil {
		return coding{}, nil, err
	}
	m, ok := vitals.ByLOINC(o.LOINC)
	if !ok {
		return coding{}, nil, fmt.Errorf("%s.loinc: %w", field, ErrUnknownCode)
	}
	if o.Unit != m.Unit {
		return coding{}, nil, fmt.Errorf("%s.unit: %w", field, ErrUnitMismatch)
	}
	if math.IsNaN(o.Value) || math.IsInf(o.Value, 0) {
		return coding{}, nil, fmt.Errorf("%s.value: %w", field, ErrInvalidValue)
	}
	q := &quantity{
		Value:  json.Number(strconv.FormatFloat(o.Value, 'f', -1, 64)),
		Unit:   unitText(o.LOINC, o.Unit),
		System: systemUCUM,
		Code:   o.Unit,
	}
	return coding{systemLOINC, m.LOINC, m.Display}, q, nil
}

// baseObservation fills what every Observation has.
func (b *builder) baseObservation(field string, o *edge.Observation, id string, g wellnessGroup) (*observation, error) {
	if err := checkID(field+".id", o.ID); err != nil {
		return nil, err
	}
	eff, err := instant(field+".effective_at", o.EffectiveAt)
	if err != nil {
		return nil, err
	}
	p := []string{profileObservation}
	if g.profile != "" {
		p = append(p, g.profile)
	}
	res := &observation{
		ResourceType:      "Observation",
		ID:                id,
		Meta:              profiles(p...),
		Status:            b.entryStatus("final"),
		Subject:           &b.patient,
		Encounter:         b.enc,
		EffectiveDateTime: eff,
	}
	if g.category {
		res.Category = []codeableConcept{concept(categoryVitalSigns)}
	}
	switch {
	case o.DeviceID != "":
		r, err := b.deviceRef(field+".device_id", o.DeviceID)
		if err != nil {
			return nil, err
		}
		res.Device = &r
	case o.Source != "device" && b.practitioner != nil:
		res.Performer = []reference{*b.practitioner}
	}
	return res, nil
}

func (b *builder) observation(field string, o *edge.Observation) (obsEntry, error) {
	c, q, err := measured(field, o)
	if err != nil {
		return obsEntry{}, err
	}
	g, ok := wellnessGroups[o.LOINC]
	if !ok {
		g = groupOther
	}
	u := nameUUID("Observation", o.ID)
	res, err := b.baseObservation(field, o, u, g)
	if err != nil {
		return obsEntry{}, err
	}
	res.Code = concept(c)
	if o.LOINC == loincSpO2Oximetr {
		// The IG's SpO2 code first, then the oximeter's own: see wellnessGroups.
		spo2, _ := vitals.ByLOINC(loincSpO2)
		res.Code.Coding = []coding{{systemLOINC, spo2.LOINC, spo2.Display}, c}
	}
	res.ValueQuantity = q
	return obsEntry{ref: b.addClinical(u, res), group: g}, nil
}

// bloodPressure makes the 85354-9 panel of one or two readings, systolic
// first, as in the IG's WellnessRecord example.
func (b *builder) bloodPressure(fields []string, parts []*edge.Observation) (obsEntry, error) {
	ids := []string{"Observation"}
	for _, p := range parts {
		ids = append(ids, p.ID)
	}
	u := nameUUID(ids...)
	res, err := b.baseObservation(fields[0], parts[0], u, groupVitalSigns)
	if err != nil {
		return obsEntry{}, err
	}
	res.Code = concept(coding{systemLOINC, loincBPPanel, displayBPPanel})
	for i, p := range parts {
		if err := checkID(fields[i]+".id", p.ID); err != nil {
			return obsEntry{}, err
		}
		c, q, err := measured(fields[i], p)
		if err != nil {
			return obsEntry{}, err
		}
		res.Component = append(res.Component, component{Code: concept(c), ValueQuantity: q})
	}
	return obsEntry{ref: b.addClinical(u, res), group: groupVitalSigns}, nil
}

// medicationRequests adds one MedicationRequest per drug line. The drug is
// free text from the formulary, so medication is a CodeableConcept with
// text only (SD MedicationRequest allows it; a coding would need a SNOMED
// code the node does not hold). Dose and frequency are free text too and go
// to dosageInstruction.text; the duration also goes, structured, to
// timing.repeat.boundsDuration. SD MedicationRequest requires
// dosageInstruction: a line written without any dosage says so with
// data-absent-reason "unknown" rather than a made-up instruction.
func (b *builder) medicationRequests() ([]reference, error) {
	e := b.in.Encounter
	authored, err := instant("encounter.started_at", e.StartedAt)
	if err != nil {
		return nil, err
	}
	var refs []reference
	for i, p := range e.Prescriptions {
		field := fmt.Sprintf("prescription %d", i)
		if err := checkID(field+".id", p.ID); err != nil {
			return nil, err
		}
		var v [5]string
		for k, f := range [...][2]string{{"drug", p.Drug}, {"strength", p.Strength}, {"dose", p.Dose}, {"frequency", p.Frequency}, {"instructions", p.Instructions}} {
			if v[k], err = text(field+"."+f[0], f[1]); err != nil {
				return nil, err
			}
		}
		drug, strength, dose, freq, instr := v[0], v[1], v[2], v[3], v[4]
		if drug == "" {
			return nil, fmt.Errorf("%s.drug: %w", field, ErrMissing)
		}
		if p.DurationDays < 0 {
			return nil, fmt.Errorf("%s.duration_days: %w", field, ErrInvalidValue)
		}
		med := drug
		if strength != "" {
			med += " " + strength
		}
		var words []string
		for _, s := range []string{dose, freq} {
			if s != "" {
				words = append(words, s)
			}
		}
		d := dosage{PatientInstruction: instr}
		switch {
		case p.DurationDays == 1:
			words = append(words, "for 1 day")
		case p.DurationDays > 1:
			words = append(words, fmt.Sprintf("for %d days", p.DurationDays))
		}
		if p.DurationDays > 0 {
			d.Timing = &timing{Repeat: &timingRepeat{BoundsDuration: &quantity{
				Value: json.Number(strconv.Itoa(p.DurationDays)), Unit: "days", System: systemUCUM, Code: "d",
			}}}
		}
		d.Text = strings.Join(words, ", ")
		if d.Text == "" && d.PatientInstruction == "" {
			d.Extension = []extension{{URL: urlDataAbsentReason, ValueCode: "unknown"}}
		}
		u := nameUUID("MedicationRequest", p.ID)
		refs = append(refs, b.addClinical(u, &medicationRequest{
			ResourceType:              "MedicationRequest",
			ID:                        u,
			Meta:                      profiles(profileMedicationRequest),
			Status:                    b.entryStatus("active"),
			Intent:                    "order",
			MedicationCodeableConcept: codeableConcept{Text: med},
			Subject:                   &b.patient,
			Encounter:                 b.enc,
			AuthoredOn:                authored,
			Requester:                 &b.author,
			DosageInstruction:         []dosage{d},
		}))
	}
	return refs, nil
}

// notes adds the encounter's free-text notes as a text/plain
// DocumentReference (SD DocumentReference requires attachment contentType
// and data). Base64 carries the text exactly, whatever it holds.
func (b *builder) notes() (*reference, error) {
	e := b.in.Encounter
	n, err := text("encounter.notes", e.Notes)
	if err != nil || n == "" {
		return nil, err
	}
	status := "current"
	if b.withdrawn() {
		status = "entered-in-error"
	}
	u := nameUUID("DocumentReference", "notes", e.ID)
	org := b.org
	r := b.addClinical(u, &documentReference{
		ResourceType: "DocumentReference",
		ID:           u,
		Meta:         profiles(profileDocumentReference),
		Status:       status,
		DocStatus:    b.status,
		Type:         &codeableConcept{Text: "Clinical notes"},
		Subject:      &b.patient,
		Author:       []reference{b.author},
		Custodian:    &org,
		Content: []documentContent{{Attachment: attachment{
			ContentType: "text/plain; charset=utf-8",
			Data:        base64.StdEncoding.EncodeToString([]byte(n)),
			Title:       "Clinical notes",
		}}},
		Context: &documentRefContext{Encounter: []reference{*b.enc}},
	})
	return &r, nil
}
