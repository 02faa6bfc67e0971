package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/healthpost/healthpost/edge"
)

// Entities an outbox row can name (edge writes them in appendOutbox).
const (
	// EntityEncounter rows carry Encounter; the document kind says which of
	// the encounter's documents to build.
	EntityEncounter = "encounter"
	// EntityObservation rows are device readings bound to a patient outside
	// any encounter; they become a WellnessRecord with one observation.
	EntityObservation = "observation"
	// EntityLabOrder rows are a resulted lab order; they carry the
	// Encounter that holds the order and become a DiagnosticReportRecord.
	EntityLabOrder = edge.EntityLabOrder
)

// Errors. Each is wrapped with the field or part it concerns ("patient.name:
// invalid text", "observation 2: unit does not match its code"); none carries
// a value from the record. All of them are permanent for the row: the same
// input gives the same error, so the engine should quarantine the row with
// the message rather than retry it.
var (
	// ErrUnsupportedDocument: the kind is not one this package builds, or
	// the entity cannot carry it (a DiagnosticReportRecord is of a lab
	// order, never of a whole encounter).
	ErrUnsupportedDocument = errors.New("document kind not supported")
	// ErrInconsistentInput: the records passed are not the ones the outbox
	// row names (another patient, entity or version). Nothing is built, so
	// one patient's data never lands in another's document.
	ErrInconsistentInput = errors.New("input does not match the outbox row")
	// ErrStaleVersion: the record has been amended since the row was
	// written. The row of the newer version carries the document; this one
	// may be marked superseded.
	ErrStaleVersion = errors.New("record has a newer version than the outbox row")
	// ErrNotFinal: the encounter is still a draft.
	ErrNotFinal = errors.New("record is not final")
	// ErrEmptyDocument: the record holds nothing the document's profile
	// can carry (every profile needs at least one section entry). For an
	// amended encounter the caller may retract the document instead
	// (DocumentInput.Retracted).
	ErrEmptyDocument = errors.New("nothing to put in the document")
	// ErrMissing: a value the IG requires is empty (facility HFR ID or
	// name, a time, an id, a diagnosis display).
	ErrMissing = errors.New("required value missing")
	// ErrInvalidText: not valid UTF-8, a control character other than tab
	// and newline, or longer than FHIR's 1 MB string limit.
	ErrInvalidText = errors.New("invalid text")
	// ErrInvalidValue: a gender, date, number or code of the wrong shape.
	ErrInvalidValue = errors.New("invalid value")
	// ErrInvalidIdentifier: an ABHA number, ABHA address or HPR ID that is
	// not well formed. Sending it would link the record to someone else.
	ErrInvalidIdentifier = errors.New("invalid identifier")
	// ErrUnknownCode: an observation's LOINC code is not in the node's
	// catalogue (devices/vitals), so its display is unknown; the IG requires
	// one.
	ErrUnknownCode = errors.New("code not in the node's catalogue")
	// ErrUnitMismatch: an observation's unit is not its code's UCUM unit.
	ErrUnitMismatch = errors.New("unit does not match its code")
	// ErrUnsupportedCodeSystem: a diagnosis coded in a system the IG's
	// Condition profile does not allow (only ICD-10 and SNOMED CT).
	ErrUnsupportedCodeSystem = errors.New("code system not allowed by the IG")
)

// DocumentInput is everything one document is built from. The engine reads
// the outbox row and the records it names from the store and passes them
// here; BuildDocument checks they belong together.
type DocumentInput struct {
	// Item is the outbox row being delivered. Used: Key, Document, Entity,
	// EntityID, EntityVersion, PatientID and CreatedAt (the commit time of
	// this version, which becomes Composition.date and Bundle.timestamp).
	Item edge.OutboxItem

	// Facility is the node's identity from the config: Name and HFRID are
	// required (the IG requires Organization.identifier and name).
	Facility edge.FacilityConfig

	// Patient is the patient the row belongs to.
	Patient edge.Patient

	// Practitioner is the user the encounter names in PractitionerID, nil
	// when it names none. Without one, the facility is the author.
	Practitioner *edge.User

	// Encounter is the record of an EntityEncounter row, with its
	// observations, diagnoses and prescriptions, at Item.EntityVersion
	// (or, when Retracted, at the last earlier version that had content
	// for the row's document kind); for an EntityLabOrder row, the
	// encounter holding the order.
	Encounter *edge.Encounter
	// Retracted says an amendment (version Item.EntityVersion) removed
	// everything this document held: every prescription line, every
	// measurement. The document is then sent once more at the new version,
	// built from the last version that had content (Encounter), with
	// Composition.status entered-in-error and its entries marked the same
	// way: FHIR R4 defines that status as an amendment which marks the
	// whole series as not valid. The content goes along because every
	// profile requires at least one section entry; there is no conformant
	// empty document.
	Retracted bool
	// ResultedBy is the user who entered a lab order's result (its
	// Result.ResultedBy), for an EntityLabOrder row; nil when none did.
	ResultedBy *edge.User
	// Observation is the record of an EntityObservation row.
	Observation *edge.Observation

	// Devices describes the devices that observations name in DeviceID.
	// Optional: a device not listed is identified by its id alone.
	Devices []edge.Device
}

// Identifier is a FHIR identifier's system and value.
type Identifier struct {
	System string
	Value  string
}

// SearchToken is the identifier as a FHIR search parameter value
// (system|value), for Bundle?identifier= and If-None-Exist.
func (id Identifier) SearchToken() string { return id.System + "|" + id.Value }

// Document is one built FHIR document Bundle and what a delivery needs to
// know about it without parsing it.
type Document struct {
	// Kind is the document kind of the outbox row (edge.DocOPConsult, ...).
	Kind string
	// BundleID is Bundle.id: the same for every version of the document,
	// so PUT [base]/Bundle/{BundleID} updates it in place.
	BundleID string
	// Identifier is Bundle.identifier, also the same for every version:
	// a conditional create (If-None-Exist: identifier=SearchToken) never
	// makes a second copy.
	Identifier Identifier
	// VersionID is Bundle.meta.versionId, the record's version.
	VersionID string
	// Status is Composition.status: final, amended or entered-in-error.
	Status string
	// JSON is the Bundle, compact, UTF-8, byte-identical for equal input.
	JSON []byte
}

// namespace is the UUIDv5 namespace of every id this package writes. It
// must never change: every Bundle.id and identifier already delivered was
// derived from it, and a new namespace would make each retry a new document.
var namespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/healthpost/healthpost/syncq/fhir"))

// nameUUID is the UUIDv5 of the parts. The separator (US, 0x1f) cannot
// occur in a part: ids are checked by checkID.
func nameUUID(parts ...string) string {
	return uuid.NewSHA1(namespace, []byte(strings.Join(parts, "\x1f"))).String()
}

func urn(u string) string { return "urn:uuid:" + u }

// DocumentIdentity returns the Bundle.id and Bundle.identifier of the
// document an outbox row carries. They depend on the row's document kind,
// entity and entity id, not its version: every retry and every amendment of
// the document has the same ones. The row's Key must be the one edge writes
// (<document>/<entity>/<entity id>/v<version>).
func DocumentIdentity(it edge.OutboxItem) (bundleID string, ident Identifier, err error) {
	identity, err := documentIdentity(it)
	if err != nil {
		return "", Identifier{}, err
	}
	u := nameUUID("Bundle", identity)
	return u, Identifier{System: SystemURI, Value: urn(u)}, nil
}

// documentIdentity is the outbox key without its version suffix.
func documentIdentity(it edge.OutboxItem) (string, error) {
	if it.EntityVersion < 1 {
		return "", fmt.Errorf("outbox.entity_version: %w", ErrInconsistentInput)
	}
	for _, f := range [...][2]string{{"outbox.document", it.Document}, {"outbox.entity", it.Entity}, {"outbox.entity_id", it.EntityID}} {
		if err := checkID(f[0], f[1]); err != nil {
			return "", err
		}
	}
	identity := it.Document + "/" + it.Entity + "/" + it.EntityID
	if it.Key != identity+"/v"+strconv.Itoa(it.EntityVersion) {
		return "", fmt.Errorf("outbox.key: %w", ErrInconsistentInput)
	}
	return identity, nil
}

// BuildDocument maps one outbox row and its records to a FHIR R4 document
// Bundle following the IG profile the row's document kind names:
//
//	edge.DocOPConsult     Encounter  -> OPConsultRecord
//	edge.DocPrescription  Encounter  -> PrescriptionRecord
//	edge.DocWellness      Encounter  -> WellnessRecord (its observations)
//	edge.DocWellness      Observation -> WellnessRecord (one device reading, Device author)
//	edge.DocImmunization  Encounter  -> ImmunizationRecord
//	edge.DocDiagnosticReport  LabOrder (in its Encounter) -> DiagnosticReportRecord
//
// It is pure: no I/O, no clock, and equal input gives byte-identical JSON.
// Errors are the sentinels above, wrapped with the field concerned, and
// carry no PHI.
func BuildDocument(in DocumentInput) (Document, error) {
	b, err := newBuilder(&in)
	if err != nil {
		return Document{}, err
	}
	var comp *composition
	switch {
	case in.Item.Entity == EntityEncounter && in.Encounter != nil && in.Observation == nil:
		comp, err = b.encounterDocument()
	case in.Item.Entity == EntityObservation && in.Observation != nil && in.Encounter == nil && !in.Retracted:
		comp, err = b.readingDocument()
	case in.Item.Entity == EntityLabOrder && in.Encounter != nil && in.Observation == nil && !in.Retracted:
		if in.Item.Document != edge.DocDiagnosticReport {
			err = fmt.Errorf("outbox.document: %w", ErrUnsupportedDocument)
			break
		}
		comp, err = b.labDocument()
	case in.Item.Entity != EntityEncounter && in.Item.Entity != EntityObservation && in.Item.Entity != EntityLabOrder:
		err = fmt.Errorf("outbox.entity: %w", ErrUnsupportedDocument)
	default:
		err = fmt.Errorf("record for outbox.entity: %w", ErrInconsistentInput)
	}
	if err != nil {
		return Document{}, err
	}
	return b.finish(comp)
}

// builder holds one document under construction.
type builder struct {
	in       *DocumentInput
	identity string
	version  int
	status   string // Composition.status
	date     string // Item.CreatedAt as an instant

	// References every resource needs.
	patient, org, author reference
	practitioner, enc    *reference

	// Entries after the Composition, in bundle order.
	parties  []entry // Organization, Patient, Practitioner
	devices  []entry
	encEntry *entry
	clinical []entry
	devRefs  map[string]reference
}

func newBuilder(in *DocumentInput) (*builder, error) {
	identity, err := documentIdentity(in.Item)
	if err != nil {
		return nil, err
	}
	b := &builder{in: in, identity: identity, version: in.Item.EntityVersion, devRefs: map[string]reference{}}
	if b.date, err = instant("outbox.created_at", in.Item.CreatedAt); err != nil {
		return nil, err
	}
	if in.Item.PatientID != "" && in.Item.PatientID != in.Patient.ID {
		return nil, fmt.Errorf("patient.id: %w", ErrInconsistentInput)
	}
	if err := b.addOrganization(); err != nil {
		return nil, err
	}
	if err := b.addPatient(); err != nil {
		return nil, err
	}
	if in.Practitioner != nil {
		if err := b.addPractitioner(); err != nil {
			return nil, err
		}
	}
	b.author = b.org
	if b.practitioner != nil {
		b.author = *b.practitioner
	}
	return b, nil
}

// profileFor is the Composition profile of each document kind.
var profileFor = map[string]string{
	edge.DocOPConsult:        ProfileOPConsultRecord,
	edge.DocPrescription:     ProfilePrescriptionRecord,
	edge.DocWellness:         ProfileWellnessRecord,
	edge.DocImmunization:     ProfileImmunizationRecord,
	edge.DocDiagnosticReport: ProfileDiagnosticReport,
}

func (b *builder) encounterDocument() (*composition, error) {
	e := b.in.Encounter
	if e.ID != b.in.Item.EntityID {
		return nil, fmt.Errorf("encounter.id: %w", ErrInconsistentInput)
	}
	if e.PatientID != b.in.Patient.ID {
		return nil, fmt.Errorf("encounter.patient_id: %w", ErrInconsistentInput)
	}
	switch {
	case b.in.Retracted:
		// The content of an earlier version, withdrawn at this one.
		if e.Version >= b.version {
			return nil, fmt.Errorf("encounter.version: %w", ErrInconsistentInput)
		}
	case e.Version > b.version:
		return nil, fmt.Errorf("encounter.version: %w", ErrStaleVersion)
	case e.Version != b.version:
		return nil, fmt.Errorf("encounter.version: %w", ErrInconsistentInput)
	}
	if err := b.checkPractitioner(e); err != nil {
		return nil, err
	}
	switch e.Status {
	case edge.EncounterFinal, edge.EncounterAmended:
		b.status = "final"
		switch {
		case b.in.Retracted:
			b.status = "entered-in-error"
		case e.Status == edge.EncounterAmended || b.version > 1:
			b.status = "amended"
		}
	case edge.EncounterCancelled:
		b.status = "entered-in-error"
	default:
		return nil, fmt.Errorf("encounter.status: %w", ErrNotFinal)
	}
	if err := checkID("encounter.id", e.ID); err != nil {
		return nil, err
	}
	b.enc = &reference{Reference: urn(nameUUID("Encounter", e.ID))}

	switch b.in.Item.Document {
	case edge.DocOPConsult:
		return b.opConsult()
	case edge.DocPrescription:
		return b.prescription()
	case edge.DocWellness:
		return b.wellness(e.Observations)
	case edge.DocImmunization:
		return b.immunization()
	}
	return nil, fmt.Errorf("outbox.document: %w", ErrUnsupportedDocument)
}

// checkPractitioner checks that the practitioner passed is the one the
// encounter names.
func (b *builder) checkPractitioner(e *edge.Encounter) error {
	switch {
	case e.PractitionerID == "" && b.in.Practitioner != nil,
		e.PractitionerID != "" && b.in.Practitioner != nil && e.PractitionerID != b.in.Practitioner.ID:
		return fmt.Errorf("practitioner.id: %w", ErrInconsistentInput)
	case e.PractitionerID != "" && b.in.Practitioner == nil:
		return fmt.Errorf("practitioner: %w", ErrMissing)
	}
	return nil
}

func (b *builder) readingDocument() (*composition, error) {
	o := b.in.Observation
	if b.in.Item.Document != edge.DocWellness {
		return nil, fmt.Errorf("outbox.document: %w", ErrUnsupportedDocument)
	}
	if o.ID != b.in.Item.EntityID {
		return nil, fmt.Errorf("observation.id: %w", ErrInconsistentInput)
	}
	b.status = "final"
	if b.version > 1 {
		b.status = "amended"
	}
	comp, err := b.wellness([]edge.Observation{*o})
	if err != nil {
		return nil, err
	}
	if o.DeviceID != "" {
		comp.Author = []reference{b.devRefs[o.DeviceID]}
	}
	return comp, nil
}

// newComposition starts the Composition every document has.
func (b *builder) newComposition(title string, typ codeableConcept) *composition {
	u := nameUUID("Composition", b.identity)
	return &composition{
		ResourceType: "Composition",
		ID:           u,
		Meta:         &meta{VersionID: strconv.Itoa(b.version), LastUpdated: b.date, Profile: []string{profileFor[b.in.Item.Document]}},
		Identifier:   &identifier{System: SystemURI, Value: urn(u)},
		Status:       b.status,
		Type:         typ,
		Subject:      &b.patient,
		Encounter:    b.enc,
		Date:         b.date,
		Author:       []reference{b.author},
		Title:        title,
		Custodian:    &b.org,
	}
}

// finish assembles the Bundle: Composition first (FHIR bdl-11), then the
// parties, the encounter, devices and the clinical resources in section
// order.
func (b *builder) finish(comp *composition) (Document, error) {
	bundleID, ident, err := DocumentIdentity(b.in.Item)
	if err != nil {
		return Document{}, err
	}
	entries := make([]entry, 0, 4+len(b.parties)+len(b.devices)+len(b.clinical))
	entries = append(entries, entry{FullURL: urn(comp.ID), Resource: comp})
	entries = append(entries, b.parties...)
	if b.encEntry != nil {
		entries = append(entries, *b.encEntry)
	}
	entries = append(entries, b.devices...)
	entries = append(entries, b.clinical...)
	bd := bundle{
		ResourceType: "Bundle",
		ID:           bundleID,
		Meta: &meta{
			VersionID:   strconv.Itoa(b.version),
			LastUpdated: b.date,
			Profile:     []string{ProfileDocumentBundle},
			Security:    []coding{securityVeryRestricted},
		},
		Identifier: &identifier{System: ident.System, Value: ident.Value},
		Type:       "document",
		Timestamp:  b.date,
		Entry:      entries,
	}
	data, err := json.Marshal(bd)
	if err != nil {
		// Only a bug can get here: every value was checked above.
		return Document{}, fmt.Errorf("encode bundle: %w", err)
	}
	return Document{
		Kind:       b.in.Item.Document,
		BundleID:   bundleID,
		Identifier: ident,
		VersionID:  strconv.Itoa(b.version),
		Status:     comp.Status,
		JSON:       data,
	}, nil
}

// ist is India Standard Time. Every time is written in it, whatever the
// machine's zone, so output does not depend on TZ.
var ist = time.FixedZone("IST", 5*3600+30*60)

// instant writes t as a FHIR instant (also a valid dateTime), to the
// millisecond the store keeps.
func instant(field string, t time.Time) (string, error) {
	if t.IsZero() {
		return "", fmt.Errorf("%s: %w", field, ErrMissing)
	}
	t = t.In(ist)
	if t.Year() < 1 || t.Year() > 9999 {
		return "", fmt.Errorf("%s: %w", field, ErrInvalidValue)
	}
	return t.Format("2006-01-02T15:04:05.000-07:00"), nil
}

// maxText is FHIR's limit on a string (http://hl7.org/fhir/R4/datatypes.html#string).
const maxText = 1 << 20

// text checks a string from the record and trims it. FHIR strings are
// Unicode; encoding/json would silently turn invalid UTF-8 into U+FFFD, so
// it is refused here instead. Control characters other than tab, CR and LF
// are refused too (FHIR says strings should not hold them, and no keyboard
// types them).
func text(field, s string) (string, error) {
	if !validText(s) || len(s) > maxText {
		return "", fmt.Errorf("%s: %w", field, ErrInvalidText)
	}
	return strings.TrimSpace(s), nil
}

func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return false
		}
	}
	return true
}

// checkID checks a node id or code that is hashed into a UUID name or
// written as an identifier: not empty, valid text, no whitespace, at most
// 200 bytes.
func checkID(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s: %w", field, ErrMissing)
	}
	if !utf8.ValidString(s) || len(s) > 200 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%s: %w", field, ErrInvalidValue)
	}
	return nil
}
