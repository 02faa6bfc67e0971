package fhir

import (
	"fmt"

	"github.com/healthpost/healthpost/edge"
)

// The documents of an encounter. Each Composition follows its SD in the IG package:
// Composition.type fixed coding (text for WellnessRecord), the sections the
// record has data for, each with the slice's fixed code (or, for
// WellnessRecord, its fixed title), and entries of the slice's target
// profile. A section is sent only when it has entries; every profile
// requires at least one section, so a record with nothing for any section
// is ErrEmptyDocument.

func codePtr(c coding) *codeableConcept {
	cc := concept(c)
	return &cc
}

func typedAll(refs []reference, resourceType string) []reference {
	out := make([]reference, len(refs))
	for i, r := range refs {
		out[i] = typed(r, resourceType)
	}
	return out
}

// opConsult builds an OPConsultRecord (SD OPConsultRecord): Chief complaints
// (422843007: the complaint), Physical exam (425044008: vital signs and body
// measurements), Clinical finding (404684003, the OtherObservations slice:
// every other measurement, blood sugar and lab values), Investigation advice
// (721963009: a ServiceRequest per lab order; results go in
// DiagnosticReportRecords of their own), Medications (721912009: the drug
// lines), Referral (306206005: a ServiceRequest) and the consultation
// report slice (371530004: the notes). Coded diagnoses have no slice in the profile; as
// in the IG's OPConsult example they are Conditions referenced from
// Encounter.diagnosis, and they also get a last section of their own with a
// title and no code, which the profile's openAtEnd slicing allows, so that a
// reader that shows sections shows them and a consultation recorded as a
// diagnosis alone is still a document.
//
// An immunization visit is an OPConsultRecord only while it orders tests
// or refers the patient (edge's encounterDocuments): without either, its
// complaint and notes belong to its ImmunizationRecord, and the
// consultation is ErrEmptyDocument, so that an amendment that removed the
// last order and the referral withdraws it.
func (b *builder) opConsult() (*composition, error) {
	if e := b.in.Encounter; e.Type == edge.EncounterImmunization && len(e.LabOrders) == 0 && e.Referral == nil {
		return nil, fmt.Errorf("consultation: immunization visit without orders or referral: %w", ErrEmptyDocument)
	}
	comp := b.newComposition("Consultation Report", concept(typeOPConsult))
	reason, err := b.complaint()
	if err != nil {
		return nil, err
	}
	if reason != nil {
		comp.Section = append(comp.Section, section{Title: "Chief complaints", Code: codePtr(sectionChiefComplaints),
			Entry: []reference{typed(*reason, "Condition")}})
	}
	obs, err := b.observations(b.in.Encounter.Observations)
	if err != nil {
		return nil, err
	}
	exam := section{Title: "Physical examination", Code: codePtr(sectionPhysicalExam)}
	other := section{Title: "Other observations", Code: codePtr(sectionOtherObs)}
	for _, o := range obs {
		if o.group == groupVitalSigns || o.group == groupBody {
			exam.Entry = append(exam.Entry, typed(o.ref, "Observation"))
		} else {
			other.Entry = append(other.Entry, typed(o.ref, "Observation"))
		}
	}
	for _, s := range []section{exam, other} {
		if len(s.Entry) > 0 {
			comp.Section = append(comp.Section, s)
		}
	}
	orders, err := b.labOrders()
	if err != nil {
		return nil, err
	}
	if len(orders) > 0 {
		comp.Section = append(comp.Section, section{Title: "Investigation advice", Code: codePtr(sectionInvestigation),
			Entry: typedAll(orders, "ServiceRequest")})
	}
	rx, err := b.medicationRequests()
	if err != nil {
		return nil, err
	}
	if len(rx) > 0 {
		comp.Section = append(comp.Section, section{Title: "Medications", Code: codePtr(sectionMedications),
			Entry: typedAll(rx, "MedicationRequest")})
	}
	ref, err := b.referral()
	if err != nil {
		return nil, err
	}
	if ref != nil {
		comp.Section = append(comp.Section, section{Title: "Referral", Code: codePtr(sectionReferral),
			Entry: []reference{typed(*ref, "ServiceRequest")}})
	}
	notes, err := b.notes()
	if err != nil {
		return nil, err
	}
	if notes != nil {
		comp.Section = append(comp.Section, section{Title: "Clinical notes", Code: codePtr(sectionOPDocument),
			Entry: []reference{typed(*notes, "DocumentReference")}})
	}
	diags, err := b.diagnoses()
	if err != nil {
		return nil, err
	}
	if len(diags) > 0 {
		comp.Section = append(comp.Section, section{Title: "Diagnoses", Entry: typedAll(diags, "Condition")})
	}
	if len(comp.Section) == 0 {
		return nil, fmt.Errorf("consultation: %w", ErrEmptyDocument)
	}
	return comp, b.addEncounter(reason, diags)
}

// prescription builds a PrescriptionRecord (SD PrescriptionRecord): one
// section coded 440545006 whose entries, sliced closed by Reference.type,
// are the MedicationRequests.
func (b *builder) prescription() (*composition, error) {
	comp := b.newComposition("Prescription record", concept(typePrescription))
	rx, err := b.medicationRequests()
	if err != nil {
		return nil, err
	}
	if len(rx) == 0 {
		return nil, fmt.Errorf("prescription: %w", ErrEmptyDocument)
	}
	comp.Section = []section{{Title: "Prescription record", Code: codePtr(typePrescription),
		Entry: typedAll(rx, "MedicationRequest")}}
	return comp, b.addEncounter(nil, nil)
}

// wellness builds a WellnessRecord (SD WellnessRecord): type.text "Wellness
// Record", sections sliced by title, each observation in the section of
// the value set its code belongs to (see wellnessGroups), sections in the
// profile's slice order. For a device reading outside an encounter the
// caller makes the device the author.
func (b *builder) wellness(list []edge.Observation) (*composition, error) {
	comp := b.newComposition(wellnessTypeText, codeableConcept{Text: wellnessTypeText})
	obs, err := b.observations(list)
	if err != nil {
		return nil, err
	}
	if len(obs) == 0 {
		return nil, fmt.Errorf("wellness: %w", ErrEmptyDocument)
	}
	for _, title := range []string{wellnessVitalSigns, wellnessBodyMeasurement, wellnessGeneralAssessment, wellnessOtherObservations} {
		s := section{Title: title}
		for _, o := range obs {
			if o.group.section == title {
				s.Entry = append(s.Entry, typed(o.ref, "Observation"))
			}
		}
		if len(s.Entry) > 0 {
			comp.Section = append(comp.Section, s)
		}
	}
	if b.in.Encounter != nil {
		return comp, b.addEncounter(nil, nil)
	}
	return comp, nil
}

// immunization builds an ImmunizationRecord (SD ImmunizationRecord): one
// section coded 41000179103 whose entries, sliced closed by Reference.type,
// may be Immunization, ImmunizationRecommendation or DocumentReference:
// an Immunization per vaccine given (see immunizations), then what the
// health worker wrote in the notes as a DocumentReference. The complaint
// and diagnoses, if any, hang off the Encounter. An immunization visit
// with neither vaccines nor notes is ErrEmptyDocument, and so is any other
// visit without vaccines (its notes are in its OPConsultRecord): an
// amendment that removed the last vaccine withdraws the record.
func (b *builder) immunization() (*composition, error) {
	comp := b.newComposition("Immunization record", concept(typeImmunization))
	given, err := b.immunizations()
	if err != nil {
		return nil, err
	}
	if len(given) == 0 && b.in.Encounter.Type != edge.EncounterImmunization {
		return nil, fmt.Errorf("immunization: no vaccines: %w", ErrEmptyDocument)
	}
	notes, err := b.notes()
	if err != nil {
		return nil, err
	}
	entries := typedAll(given, "Immunization")
	if notes != nil {
		entries = append(entries, typed(*notes, "DocumentReference"))
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("immunization: no vaccines and no notes: %w", ErrEmptyDocument)
	}
	comp.Section = []section{{Title: "Immunization record", Code: codePtr(typeImmunization), Entry: entries}}
	reason, err := b.complaint()
	if err != nil {
		return nil, err
	}
	diags, err := b.diagnoses()
	if err != nil {
		return nil, err
	}
	return comp, b.addEncounter(reason, diags)
}
