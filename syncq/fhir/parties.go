package fhir

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/healthpost/healthpost/edge"
)

// abhaAddressRe is the ABHA address shape the node accepts
// (reference/abdm.md §1.2: any name@suffix, lower case).
var abhaAddressRe = regexp.MustCompile(`^[^@\s]+@[a-z]+$`)

// localIdentifier writes a node id as an identifier. A canonical UUID (every
// id edge.NewID makes) is globally unique, so it goes as urn:uuid under
// SystemURI; any other id is unique only at this facility, so it names the
// facility as its assigner.
func (b *builder) localIdentifier(typ *coding, id string) identifier {
	var t *codeableConcept
	if typ != nil {
		c := concept(*typ)
		t = &c
	}
	if u, err := uuid.Parse(id); err == nil && u.String() == id {
		return identifier{Type: t, System: SystemURI, Value: urn(id)}
	}
	org := b.org
	return identifier{Type: t, Value: id, Assigner: &org}
}

// addOrganization adds the facility, identified by its HFR ID (SD
// Organization: identifier with type, system and value, and name, required).
func (b *builder) addOrganization() error {
	f := b.in.Facility
	hfr, err := text("facility.hfr_id", f.HFRID)
	if err != nil {
		return err
	}
	if hfr == "" {
		return fmt.Errorf("facility.hfr_id: %w; set it in the config", ErrMissing)
	}
	if err := checkID("facility.hfr_id", hfr); err != nil {
		return err
	}
	name, err := text("facility.name", f.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("facility.name: %w; set it in the config", ErrMissing)
	}
	district, err := text("facility.district", f.District)
	if err != nil {
		return err
	}
	state, err := text("facility.state", f.State)
	if err != nil {
		return err
	}
	u := nameUUID("Organization", hfr)
	b.org = reference{Reference: urn(u)}
	hfrType := concept(typeHFR)
	o := &organization{
		ResourceType: "Organization",
		ID:           u,
		Meta:         profiles(profileOrganization),
		Identifier:   []identifier{{Type: &hfrType, System: SystemHFR, Value: hfr}},
		Name:         name,
	}
	if district != "" || state != "" {
		o.Address = []address{{District: district, State: state}}
	}
	b.parties = append(b.parties, entry{FullURL: b.org.Reference, Resource: o})
	return nil
}

// genders maps the node's codes to FHIR administrative-gender.
var genders = map[string]string{"M": "male", "F": "female", "O": "other", "U": "unknown"}

// addPatient adds the patient. Identifiers, in this order: the ABHA number
// (IG type HIN, written XX-XXXX-XXXX-XXXX as in the IG examples), the ABHA
// address (IG type ABHA), and the facility's patient number (v2-0203 MR,
// assigned by the facility). A patient without ABHA still gets a valid
// document: SD Patient requires one identifier of any type in
// ndhm-identifier-type-code, which includes v2-0203 MR, and the district
// hub needs every patient's records. What such a record cannot do is be
// linked to a PHR through ABDM; that is the hub's decision, not the
// mapper's.
func (b *builder) addPatient() error {
	p := b.in.Patient
	if err := checkID("patient.id", p.ID); err != nil {
		return err
	}
	u := nameUUID("Patient", p.ID)
	b.patient = reference{Reference: urn(u)}
	res := &patient{ResourceType: "Patient", ID: u, Meta: profiles(profilePatient)}

	if p.ABHANumber != "" {
		digits, err := edge.NormalizeABHANumber(p.ABHANumber)
		if err != nil {
			return fmt.Errorf("patient.abha_number: %w", ErrInvalidIdentifier)
		}
		t := concept(typeABHANumber)
		res.Identifier = append(res.Identifier, identifier{Type: &t, System: SystemABHA, Value: edge.FormatABHANumber(digits)})
	}
	if p.ABHAAddress != "" {
		addr := strings.ToLower(strings.TrimSpace(p.ABHAAddress))
		if !abhaAddressRe.MatchString(addr) || len(addr) > 100 {
			return fmt.Errorf("patient.abha_address: %w", ErrInvalidIdentifier)
		}
		t := concept(typeABHAAddress)
		res.Identifier = append(res.Identifier, identifier{Type: &t, System: SystemABHA, Value: addr})
	}
	local, err := text("patient.local_id", p.LocalID)
	if err != nil {
		return err
	}
	if local != "" {
		t := concept(typeMRN)
		org := b.org
		res.Identifier = append(res.Identifier, identifier{Type: &t, Value: local, Assigner: &org})
	}
	if len(res.Identifier) == 0 {
		return fmt.Errorf("patient.identifier: %w", ErrMissing)
	}

	name, err := text("patient.name", p.Name)
	if err != nil {
		return err
	}
	if name != "" {
		res.Name = []humanName{{Text: name}}
	}
	phone, err := text("patient.phone", p.Phone)
	if err != nil {
		return err
	}
	if phone != "" {
		res.Telecom = []contactPoint{{System: "phone", Value: phone}}
	}
	if p.Gender != "" {
		g, ok := genders[strings.ToUpper(p.Gender)]
		if !ok {
			return fmt.Errorf("patient.gender: %w", ErrInvalidValue)
		}
		res.Gender = g
	}
	// Only a recorded birth date is sent. A stated age gives the birth year
	// only to within one year, and the IG has no element for an estimate.
	if p.BirthDate != "" {
		if _, err := time.Parse(time.DateOnly, p.BirthDate); err != nil {
			return fmt.Errorf("patient.birth_date: %w", ErrInvalidValue)
		}
		res.BirthDate = p.BirthDate
	}
	line, err := text("patient.address", p.Address)
	if err != nil {
		return err
	}
	village, err := text("patient.village", p.Village)
	if err != nil {
		return err
	}
	if line != "" || village != "" {
		a := address{City: village}
		if line != "" {
			a.Line = []string{line}
		}
		res.Address = []address{a}
	}
	b.parties = append(b.parties, entry{FullURL: b.patient.Reference, Resource: res})
	return nil
}

// addPractitioner adds the user who recorded the encounter, identified by
// the HPR ID (IG type HPIN, "Health Practitioner ID issued by NDHM", as HIN
// is the patient's) when the user has one. A user without one (an ANM or
// ASHA need not be in the HPR) still must be identified (SD Practitioner:
// identifier 1..*): by the node's user id, v2-0203 RI.
func (b *builder) addPractitioner() error {
	ref, err := b.practitionerRef("practitioner", b.in.Practitioner)
	if err != nil {
		return err
	}
	b.practitioner = &ref
	return nil
}

// practitionerRef returns the reference to a user's Practitioner resource,
// adding the resource the first time the user is met in the document.
func (b *builder) practitionerRef(field string, u *edge.User) (reference, error) {
	if err := checkID(field+".id", u.ID); err != nil {
		return reference{}, err
	}
	id := nameUUID("Practitioner", u.ID)
	ref := reference{Reference: urn(id)}
	for _, e := range b.parties {
		if e.FullURL == ref.Reference {
			return ref, nil
		}
	}
	res := &practitioner{ResourceType: "Practitioner", ID: id, Meta: profiles(profilePractitioner)}
	if u.HPRID != "" {
		digits := strings.NewReplacer("-", "", " ", "").Replace(u.HPRID)
		if len(digits) != 14 || strings.Trim(digits, "0123456789") != "" {
			return reference{}, fmt.Errorf("%s.hpr_id: %w", field, ErrInvalidIdentifier)
		}
		t := concept(typeHPR)
		res.Identifier = []identifier{{Type: &t, System: SystemHPR, Value: edge.FormatABHANumber(digits)}}
	} else {
		res.Identifier = []identifier{b.localIdentifier(&typeResourceID, u.ID)}
	}
	name, err := text(field+".display_name", u.DisplayName)
	if err != nil {
		return reference{}, err
	}
	if name != "" {
		res.Name = []humanName{{Text: name}}
	}
	b.parties = append(b.parties, entry{FullURL: ref.Reference, Resource: res})
	return ref, nil
}

// deviceRef returns the reference to a device, adding its Device resource
// the first time. Device has no IG profile; the core resource is used.
func (b *builder) deviceRef(field, id string) (reference, error) {
	if r, ok := b.devRefs[id]; ok {
		return r, nil
	}
	if err := checkID(field, id); err != nil {
		return reference{}, err
	}
	u := nameUUID("Device", id)
	r := reference{Reference: urn(u)}
	org := b.org
	res := &device{
		ResourceType: "Device",
		ID:           u,
		Identifier:   []identifier{b.localIdentifier(&typeResourceID, id)},
		Owner:        &org,
	}
	for _, d := range b.in.Devices {
		if d.ID != id {
			continue
		}
		name, err := text("device.name", d.Name)
		if err != nil {
			return reference{}, err
		}
		kind, err := text("device.kind", d.Kind)
		if err != nil {
			return reference{}, err
		}
		if name != "" {
			res.DeviceName = []deviceName{{Name: name, Type: "user-friendly-name"}}
		}
		if kind != "" {
			res.Type = &codeableConcept{Text: kind}
		}
		break
	}
	b.devRefs[id] = r
	b.devices = append(b.devices, entry{FullURL: r.Reference, Resource: res})
	return r, nil
}

// addEncounter adds the Encounter resource (SD Encounter). reason and
// diagnoses are the Conditions of the complaint and diagnoses, when the
// document carries them.
func (b *builder) addEncounter(reason *reference, diagnoses []reference) error {
	e := b.in.Encounter
	start, err := instant("encounter.started_at", e.StartedAt)
	if err != nil {
		return err
	}
	per := &period{Start: start}
	if !e.EndedAt.IsZero() {
		if per.End, err = instant("encounter.ended_at", e.EndedAt); err != nil {
			return err
		}
	}
	status := "finished"
	if e.Status == edge.EncounterCancelled {
		status = "cancelled"
	}
	res := &encounter{
		ResourceType:    "Encounter",
		ID:              strings.TrimPrefix(b.enc.Reference, "urn:uuid:"),
		Meta:            profiles(profileEncounter),
		Identifier:      []identifier{b.localIdentifier(nil, e.ID)},
		Status:          status,
		Class:           classAmbulatory,
		Subject:         &b.patient,
		Period:          per,
		ServiceProvider: &b.org,
	}
	if label, ok := encounterTypeText[e.Type]; ok {
		res.Type = []codeableConcept{{Text: label}}
	}
	if b.practitioner != nil {
		res.Participant = []encounterParticipant{{Individual: b.practitioner}}
	}
	if reason != nil {
		res.ReasonReference = []reference{*reason}
	}
	for i := range diagnoses {
		res.Diagnosis = append(res.Diagnosis, encounterDiagnosis{Condition: &diagnoses[i]})
	}
	b.encEntry = &entry{FullURL: b.enc.Reference, Resource: res}
	return nil
}
