package fhir

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/catalogue"
)

// Lab orders, their results, referrals and vaccines. Codes and displays of
// tests, answers and vaccines come from edge/catalogue (each row there says
// where it was checked); the profiles' fixed codes are in codes.go.

// labTest returns an order's test from the catalogue, checked against the
// LOINC code the order was saved with.
func labTest(field string, o *edge.LabOrder) (catalogue.LabTest, error) {
	if err := checkID(field+".id", o.ID); err != nil {
		return catalogue.LabTest{}, err
	}
	t, ok := catalogue.Lab(o.Test)
	if !ok || t.LOINC != o.LOINC {
		return t, fmt.Errorf("%s.test: %w", field, ErrUnknownCode)
	}
	return t, nil
}

// labServiceRequest adds the ServiceRequest of one lab order (SD
// ServiceRequest). SD ServiceRequest fixes code.coding.system to SNOMED CT
// and the node holds no SNOMED code for its tests, so the test travels as
// code.text, the way the IG's OPConsult example writes the order's text;
// its LOINC code is on the DiagnosticReport of the result. The category is
// the IG example's "Laboratory procedure".
func (b *builder) labServiceRequest(field string, o *edge.LabOrder) (reference, error) {
	t, err := labTest(field, o)
	if err != nil {
		return reference{}, err
	}
	authored, err := instant(field+".ordered_at", o.OrderedAt)
	if err != nil {
		return reference{}, err
	}
	status := map[string]string{edge.LabOrdered: "active", edge.LabResulted: "completed", edge.LabCancelled: "revoked"}[o.Status]
	if status == "" {
		return reference{}, fmt.Errorf("%s.status: %w", field, ErrInvalidValue)
	}
	if b.status == "entered-in-error" {
		status = "entered-in-error"
	}
	requester := b.author // a copy: b.author may change after (labDocument)
	u := nameUUID("ServiceRequest", o.ID)
	for _, e := range b.clinical {
		if e.FullURL == urn(u) {
			return reference{Reference: urn(u)}, nil
		}
	}
	return b.addClinical(u, &serviceRequest{
		ResourceType: "ServiceRequest",
		ID:           u,
		Meta:         profiles(profileServiceRequest),
		Status:       status,
		Intent:       "order",
		Category:     []codeableConcept{concept(categoryLabProcedure)},
		Code:         &codeableConcept{Text: t.Name},
		Subject:      &b.patient,
		Encounter:    b.enc,
		AuthoredOn:   authored,
		Requester:    &requester,
	}), nil
}

// labOrders adds the ServiceRequests of an encounter's lab orders.
func (b *builder) labOrders() ([]reference, error) {
	var refs []reference
	for i := range b.in.Encounter.LabOrders {
		r, err := b.labServiceRequest(fmt.Sprintf("lab order %d", i), &b.in.Encounter.LabOrders[i])
		if err != nil {
			return nil, err
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// priorities maps the node's urgencies to ServiceRequest.priority.
var priorities = map[string]string{edge.UrgencyRoutine: "routine", edge.UrgencyUrgent: "urgent", edge.UrgencyEmergency: "stat"}

// referral adds the ServiceRequest of the encounter's referral. The
// facility is a name, often typed, with no HFR ID, so it cannot be an
// Organization (SD Organization requires an identifier with a system): it
// is locationCode text, where FHIR puts "the preferred location ... in
// coded or free text form". The reason is reasonCode text.
func (b *builder) referral() (*reference, error) {
	r := b.in.Encounter.Referral
	if r == nil {
		return nil, nil
	}
	if err := checkID("referral.id", r.ID); err != nil {
		return nil, err
	}
	facility, err := text("referral.facility", r.Facility)
	if err != nil {
		return nil, err
	}
	if facility == "" {
		return nil, fmt.Errorf("referral.facility: %w", ErrMissing)
	}
	reason, err := text("referral.reason", r.Reason)
	if err != nil {
		return nil, err
	}
	priority, ok := priorities[r.Urgency]
	if !ok {
		return nil, fmt.Errorf("referral.urgency: %w", ErrInvalidValue)
	}
	authored, err := instant("encounter.started_at", b.in.Encounter.StartedAt)
	if err != nil {
		return nil, err
	}
	status := "active"
	if b.status == "entered-in-error" {
		status = "entered-in-error"
	}
	requester := b.author
	res := &serviceRequest{
		ResourceType: "ServiceRequest",
		ID:           nameUUID("ServiceRequest", "referral", r.ID),
		Meta:         profiles(profileServiceRequest),
		Status:       status,
		Intent:       "order",
		Priority:     priority,
		Code:         &codeableConcept{Text: "Referral"},
		Subject:      &b.patient,
		Encounter:    b.enc,
		AuthoredOn:   authored,
		Requester:    &requester,
		LocationCode: []codeableConcept{{Text: facility}},
	}
	if reason != "" {
		res.ReasonCode = []codeableConcept{{Text: reason}}
	}
	ref := b.addClinical(res.ID, res)
	return &ref, nil
}

// interpretations are the HL7 v3 ObservationInterpretation displays of the
// codes edge stores.
var interpretations = map[string]string{
	edge.InterpNormal: "Normal", edge.InterpAbnormal: "Abnormal", edge.InterpLow: "Low", edge.InterpHigh: "High",
	edge.InterpCriticalLow: "Critical low", edge.InterpCriticalHigh: "Critical high",
}

// labDocument builds the DiagnosticReportRecord of one resulted lab order
// (SD DiagnosticReportRecord): Composition type 721981007, one section
// coded with the test's report kind holding the DiagnosticReport (SD
// DiagnosticReportLab: LOINC code, resultsInterpreter, result and
// conclusion required), which is based on the order's ServiceRequest and
// has the result's Observation. The person who entered the result is the
// author and the interpreter; without one, the facility.
func (b *builder) labDocument() (*composition, error) {
	e := b.in.Encounter
	if e.PatientID != b.in.Patient.ID {
		return nil, fmt.Errorf("encounter.patient_id: %w", ErrInconsistentInput)
	}
	if err := b.checkPractitioner(e); err != nil {
		return nil, err
	}
	var o *edge.LabOrder
	for i := range e.LabOrders {
		if e.LabOrders[i].ID == b.in.Item.EntityID {
			o = &e.LabOrders[i]
		}
	}
	if o == nil {
		return nil, fmt.Errorf("lab order: %w", ErrInconsistentInput)
	}
	switch e.Status {
	case edge.EncounterFinal, edge.EncounterAmended:
	default:
		return nil, fmt.Errorf("encounter.status: %w", ErrNotFinal)
	}
	r := o.Result
	if o.Status != edge.LabResulted || r == nil {
		return nil, fmt.Errorf("lab order.status: %w", ErrNotFinal)
	}
	switch {
	case r.Version > b.version:
		return nil, fmt.Errorf("lab order.result version: %w", ErrStaleVersion)
	case r.Version != b.version:
		return nil, fmt.Errorf("lab order.result version: %w", ErrInconsistentInput)
	}
	b.status = "final"
	if b.version > 1 {
		b.status = "amended"
	}
	if err := checkID("encounter.id", e.ID); err != nil {
		return nil, err
	}
	b.enc = &reference{Reference: urn(nameUUID("Encounter", e.ID))}

	// The order's requester is the encounter's author, set before the
	// result's interpreter becomes this document's author.
	order, err := b.labServiceRequest("lab order", o)
	if err != nil {
		return nil, err
	}
	interpreter := b.org
	switch u := b.in.ResultedBy; {
	case u == nil && r.ResultedBy != "":
		return nil, fmt.Errorf("resulted_by: %w", ErrMissing)
	case u != nil && u.ID != r.ResultedBy:
		return nil, fmt.Errorf("resulted_by.id: %w", ErrInconsistentInput)
	case u != nil:
		ref, err := b.practitionerRef("resulted_by", u)
		if err != nil {
			return nil, err
		}
		interpreter = ref
	}
	b.author = interpreter

	t, err := labTest("lab order", o)
	if err != nil {
		return nil, err
	}
	at, err := instant("lab order.resulted_at", r.ResultedAt)
	if err != nil {
		return nil, err
	}
	obs := &observation{
		ResourceType:      "Observation",
		ID:                nameUUID("Observation", "lab", o.ID),
		Meta:              profiles(profileObservation),
		Status:            b.status,
		Category:          []codeableConcept{concept(categoryLaboratory)},
		Code:              concept(coding{systemLOINC, t.LOINC, t.Display}),
		Subject:           &b.patient,
		Encounter:         b.enc,
		EffectiveDateTime: at,
		Issued:            at,
		Performer:         []reference{interpreter},
	}
	var said string
	if t.Numeric() {
		if r.Unit != t.Unit {
			return nil, fmt.Errorf("lab order.unit: %w", ErrUnitMismatch)
		}
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			return nil, fmt.Errorf("lab order.value: %w", ErrInvalidValue)
		}
		v := strconv.FormatFloat(r.Value, 'f', -1, 64)
		obs.ValueQuantity = &quantity{Value: json.Number(v), Unit: t.Unit, System: systemUCUM, Code: t.Unit}
		said = v + " " + t.Unit
	} else {
		a, ok := t.Answer(r.Answer)
		if !ok {
			return nil, fmt.Errorf("lab order.answer: %w", ErrUnknownCode)
		}
		vc := &codeableConcept{Text: a.Name}
		if a.SNOMED != "" {
			vc.Coding = []coding{{systemSNOMED, a.SNOMED, a.SNOMEDDisplay}}
		}
		obs.ValueConcept = vc
		said = a.Name
	}
	if r.Interpretation != "" {
		d, ok := interpretations[r.Interpretation]
		if !ok {
			return nil, fmt.Errorf("lab order.interpretation: %w", ErrInvalidValue)
		}
		obs.Interpretation = []codeableConcept{concept(coding{systemInterpretation, r.Interpretation, d})}
		said += " (" + strings.ToLower(d) + ")"
	}
	obsRef := b.addClinical(obs.ID, obs)
	dr := &diagnosticReport{
		ResourceType:       "DiagnosticReport",
		ID:                 nameUUID("DiagnosticReport", o.ID),
		Meta:               profiles(profileDiagnosticReportLab),
		BasedOn:            []reference{typed(order, "ServiceRequest")},
		Status:             b.status,
		Code:               codeableConcept{Coding: []coding{{systemLOINC, t.LOINC, t.Display}}, Text: t.Name},
		Subject:            &b.patient,
		Encounter:          b.enc,
		EffectiveDateTime:  at,
		Issued:             at,
		Performer:          []reference{b.org},
		ResultsInterpreter: []reference{interpreter},
		Result:             []reference{typed(obsRef, "Observation")},
		// SD DiagnosticReportLab requires a conclusion; the node's is the
		// result as entered, in words, not a clinical judgement.
		Conclusion: t.Name + ": " + said,
	}
	drRef := b.addClinical(dr.ID, dr)
	comp := b.newComposition("Laboratory report", concept(typeDiagnosticReport))
	comp.Author = []reference{b.author}
	comp.Section = []section{{Title: t.Report.Display, Code: codePtr(coding{systemSNOMED, t.Report.SNOMED, t.Report.Display}),
		Entry: []reference{typed(drRef, "DiagnosticReport")}}}
	return comp, b.addEncounter(nil, nil)
}

// immunizations adds one Immunization per vaccine given (SD Immunization):
// vaccineCode the IG value set's SNOMED CT coding with the vaccine's name
// as text; Vitamin A, in no vaccine value set, as text alone (the binding
// is preferred). The dose goes to protocolApplied when the schedule numbers
// it: a positive number as doseNumberPositiveInt, a birth dose (0, which
// positiveInt cannot hold) and an unnumbered booster as doseNumberString,
// and a numbered booster with series "Booster".
func (b *builder) immunizations() ([]reference, error) {
	e := b.in.Encounter
	status := "completed"
	if b.status == "entered-in-error" {
		status = "entered-in-error"
	}
	var refs []reference
	for i, im := range e.Immunizations {
		field := fmt.Sprintf("immunization %d", i)
		if err := checkID(field+".id", im.ID); err != nil {
			return nil, err
		}
		v, ok := catalogue.VaccineByCode(im.Vaccine)
		if !ok {
			return nil, fmt.Errorf("%s.vaccine: %w", field, ErrUnknownCode)
		}
		if _, err := time.Parse(time.DateOnly, im.GivenOn); err != nil {
			return nil, fmt.Errorf("%s.given_on: %w", field, ErrInvalidValue)
		}
		vc := codeableConcept{Text: v.Name}
		if v.SNOMED != "" {
			vc.Coding = []coding{{systemSNOMED, v.SNOMED, v.SNOMEDDisplay}}
		}
		res := &immunization{
			ResourceType:       "Immunization",
			ID:                 nameUUID("Immunization", im.ID),
			Meta:               profiles(profileImmunization),
			Status:             status,
			VaccineCode:        vc,
			Patient:            &b.patient,
			Encounter:          b.enc,
			OccurrenceDateTime: im.GivenOn,
			PrimarySource:      true,
		}
		if b.practitioner != nil {
			res.Performer = []immunizationPerformer{{Actor: b.practitioner}}
		}
		var pa protocolApplied
		switch {
		case im.Dose != nil && (*im.Dose < 0 || *im.Dose > 20):
			return nil, fmt.Errorf("%s.dose: %w", field, ErrInvalidValue)
		case im.Dose != nil && *im.Dose > 0:
			pa.DoseNumberPositiveInt = *im.Dose
		case im.Dose != nil:
			pa.DoseNumberString = "0 (birth dose)"
		case im.Booster:
			pa.DoseNumberString = "Booster"
		}
		if im.Booster && pa.DoseNumberPositiveInt > 0 {
			pa.Series = "Booster"
		}
		if pa != (protocolApplied{}) {
			res.ProtocolApplied = []protocolApplied{pa}
		}
		refs = append(refs, b.addClinical(res.ID, res))
	}
	return refs, nil
}
