package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"
	"unicode/utf8"
)

// Encounter types.
const (
	EncounterOPD          = "opd"
	EncounterANC          = "anc"
	EncounterImmunization = "immunization"
	EncounterFollowUp     = "follow-up"
)

// Encounter statuses. A final encounter is corrected by an amendment
// (AmendEncounter), never edited in place; an amended one has version 2 or
// later.
const (
	EncounterDraft     = "draft"
	EncounterFinal     = "final"
	EncounterAmended   = "amended"
	EncounterCancelled = "cancelled"
)

// Encounter is one visit of a patient, with what was measured, found and
// prescribed.
type Encounter struct {
	ID             string    `json:"id"`
	PatientID      string    `json:"patient_id"`
	Type           string    `json:"type"`
	PractitionerID string    `json:"practitioner_id,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	EndedAt        time.Time `json:"ended_at,omitzero"`
	Complaint      string    `json:"complaint,omitempty"`
	Notes          string    `json:"notes,omitempty"`
	Status         string    `json:"status"`
	Version        int       `json:"version"`

	Observations  []Observation  `json:"observations,omitempty"`
	Diagnoses     []Diagnosis    `json:"diagnoses,omitempty"`
	Prescriptions []Prescription `json:"prescriptions,omitempty"`
	LabOrders     []LabOrder     `json:"lab_orders,omitempty"`
	Referral      *Referral      `json:"referral,omitempty"`
	Immunizations []Immunization `json:"immunizations,omitempty"`

	CreatedAt    time.Time `json:"created_at"`
	ClockSuspect bool      `json:"clock_suspect"`
}

// Observation is one measurement: a LOINC code, a value in a UCUM unit.
type Observation struct {
	ID          string    `json:"id"`
	LOINC       string    `json:"loinc"`
	Value       float64   `json:"value"`
	ValueText   string    `json:"value_text,omitempty"` // as typed or as the device sent it
	Unit        string    `json:"unit"`
	EffectiveAt time.Time `json:"effective_at"`
	Source      string    `json:"source"` // manual or device
	DeviceID    string    `json:"device_id,omitempty"`
}

// Diagnosis is a coded condition (ICD-10 from the built-in list).
type Diagnosis struct {
	ID      string `json:"id"`
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

// Prescription is one drug line from the facility's formulary.
type Prescription struct {
	ID           string `json:"id"`
	Drug         string `json:"drug"`
	Strength     string `json:"strength,omitempty"`
	Dose         string `json:"dose,omitempty"`
	Frequency    string `json:"frequency,omitempty"`
	DurationDays int    `json:"duration_days,omitempty"`
	Instructions string `json:"instructions,omitempty"`
}

// ICD10System is the FHIR system URI for ICD-10 codes.
const ICD10System = "http://hl7.org/fhir/sid/icd-10"

var loincRe = regexp.MustCompile(`^\d{1,7}-\d$`)

// Validate checks an encounter and its parts.
func (e *Encounter) Validate() error {
	fe := FieldErrors{}
	switch e.Type {
	case EncounterOPD, EncounterANC, EncounterImmunization, EncounterFollowUp:
	default:
		fe["type"] = "error.encounter_type_invalid"
	}
	if e.PatientID == "" {
		fe["patient_id"] = "error.required"
	}
	switch e.Status {
	case EncounterDraft, EncounterFinal:
	default:
		fe["status"] = "error.encounter_status_invalid"
	}
	if !utf8.ValidString(e.Complaint) || len(e.Complaint) > 2000 {
		fe["complaint"] = "error.text_invalid"
	}
	if !utf8.ValidString(e.Notes) || len(e.Notes) > 20000 {
		fe["notes"] = "error.text_invalid"
	}
	for i, o := range e.Observations {
		if !loincRe.MatchString(o.LOINC) {
			fe[fmt.Sprintf("observations.%d.loinc", i)] = "error.loinc_invalid"
		}
		if math.IsNaN(o.Value) || math.IsInf(o.Value, 0) {
			fe[fmt.Sprintf("observations.%d.value", i)] = "error.value_invalid"
		}
		if o.Source != "" && o.Source != "manual" && o.Source != "device" {
			fe[fmt.Sprintf("observations.%d.source", i)] = "error.source_invalid"
		}
	}
	for i, d := range e.Diagnoses {
		if d.Code == "" || len(d.Code) > 20 {
			fe[fmt.Sprintf("diagnoses.%d.code", i)] = "error.code_invalid"
		}
	}
	for i, p := range e.Prescriptions {
		if p.Drug == "" || !utf8.ValidString(p.Drug) || len(p.Drug) > 200 {
			fe[fmt.Sprintf("prescriptions.%d.drug", i)] = "error.drug_invalid"
		}
		if p.DurationDays < 0 || p.DurationDays > 3650 {
			fe[fmt.Sprintf("prescriptions.%d.duration_days", i)] = "error.duration_invalid"
		}
	}
	e.validateLabParts(fe)
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// CreateEncounter saves an encounter with its observations, diagnoses and
// prescriptions in one transaction. A final encounter also adds its outbox
// rows in that transaction; a draft adds none until FinalizeEncounter.
func (s *Store) CreateEncounter(ctx context.Context, e *Encounter) error {
	if e.Status == "" {
		e.Status = EncounterDraft
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if err := s.refuseIfCritical(); err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		if err := createEncounter(ctx, tx, e); err != nil {
			return err
		}
		if err := tx.audit(ActionEncounterCreate, "encounter", e.ID, e.PatientID, "status="+e.Status); err != nil {
			return err
		}
		if e.Status != EncounterFinal {
			return nil
		}
		saved := e.asStored()
		if err := snapshotEncounter(tx, &saved, ""); err != nil {
			return err
		}
		return appendEncounterOutbox(tx, e)
	})
}

func createEncounter(ctx context.Context, tx *Tx, e *Encounter) error {
	e.ID = NewID()
	e.Version = 1
	e.CreatedAt, e.ClockSuspect = tx.now, tx.suspect
	if e.StartedAt.IsZero() {
		e.StartedAt = tx.now
	}
	var ended any
	if !e.EndedAt.IsZero() {
		ended = e.EndedAt.UnixMilli()
	}
	if _, err := tx.exec(`INSERT INTO encounters (id, patient_id, type, practitioner_id, started_at, ended_at,
		complaint, notes, status, version, created_at, updated_at, node_seq, clock_suspect)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`,
		e.ID, e.PatientID, e.Type, nullString(e.PractitionerID), e.StartedAt.UnixMilli(), ended, e.Complaint, e.Notes,
		e.Status, tx.Now(), tx.Now(), tx.NextSeq(), tx.Suspect()); err != nil {
		if sqliteCode(err) == 19 {
			return FieldErrors{"patient_id": "error.patient_unknown"}
		}
		return fmt.Errorf("create encounter: %w", err)
	}
	return insertEncounterParts(ctx, tx, e, e.StartedAt)
}

// insertEncounterParts saves every part of an encounter: observations,
// diagnoses and prescriptions (insertClinicalParts), lab orders, referral
// and vaccines (insertLabParts); observations and orders without a time get
// defaultAt.
func insertEncounterParts(ctx context.Context, tx *Tx, e *Encounter, defaultAt time.Time) error {
	if err := insertClinicalParts(tx, e, defaultAt); err != nil {
		return err
	}
	return insertLabParts(tx, e, defaultAt)
}

// insertClinicalParts saves an encounter's observations, diagnoses and
// prescriptions; observations without a time get defaultAt.
func insertClinicalParts(tx *Tx, e *Encounter, defaultAt time.Time) error {
	for i := range e.Observations {
		o := &e.Observations[i]
		o.ID = NewID()
		if o.Source == "" {
			o.Source = "manual"
		}
		if o.EffectiveAt.IsZero() {
			o.EffectiveAt = defaultAt
		}
		if _, err := tx.exec(`INSERT INTO observations (id, patient_id, encounter_id, loinc, value, value_text,
			unit, effective_at, source, device_id, created_at, node_seq, clock_suspect) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, e.PatientID, e.ID, o.LOINC, o.Value, o.ValueText, o.Unit, o.EffectiveAt.UnixMilli(), o.Source,
			nullString(o.DeviceID), tx.Now(), tx.NextSeq(), tx.Suspect()); err != nil {
			return fmt.Errorf("save observation %d: %w", i, err)
		}
	}
	for i := range e.Diagnoses {
		d := &e.Diagnoses[i]
		d.ID = NewID()
		if d.System == "" {
			d.System = ICD10System
		}
		if _, err := tx.exec(`INSERT INTO diagnoses (id, encounter_id, system, code, display, created_at, node_seq)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, d.ID, e.ID, d.System, d.Code, d.Display, tx.Now(), tx.NextSeq()); err != nil {
			return fmt.Errorf("save diagnosis %d: %w", i, err)
		}
	}
	for i := range e.Prescriptions {
		p := &e.Prescriptions[i]
		p.ID = NewID()
		var days any
		if p.DurationDays > 0 {
			days = p.DurationDays
		}
		if _, err := tx.exec(`INSERT INTO prescriptions (id, encounter_id, drug, strength, dose, frequency,
			duration_days, instructions, created_at, node_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, e.ID, p.Drug, p.Strength, p.Dose, p.Frequency, days, p.Instructions, tx.Now(), tx.NextSeq()); err != nil {
			return fmt.Errorf("save prescription %d: %w", i, err)
		}
	}
	return nil
}

// encounterDocuments lists the documents a final encounter becomes upstream.
// An immunization visit is an ImmunizationRecord, and also an
// OPConsultRecord when it ordered tests or referred the patient; any other
// visit is an OPConsultRecord, and also an ImmunizationRecord when vaccines
// were given (Td in an antenatal visit). Each resulted lab order is a
// DiagnosticReportRecord of its own (appendEncounterOutbox).
func encounterDocuments(e *Encounter) []string {
	var docs []string
	if e.Type == EncounterImmunization {
		docs = append(docs, DocImmunization)
		if len(e.LabOrders) > 0 || e.Referral != nil {
			docs = append(docs, DocOPConsult)
		}
	} else {
		docs = append(docs, DocOPConsult)
		if len(e.Immunizations) > 0 {
			docs = append(docs, DocImmunization)
		}
	}
	if len(e.Prescriptions) > 0 {
		docs = append(docs, DocPrescription)
	}
	if len(e.Observations) > 0 {
		docs = append(docs, DocWellness)
	}
	return docs
}

func appendEncounterOutbox(tx *Tx, e *Encounter) error {
	for _, doc := range encounterDocuments(e) {
		if err := tx.appendOutbox(doc, LaneClinical, e.PatientID, "encounter", e.ID, e.Version); err != nil {
			return err
		}
	}
	for i := range e.LabOrders {
		if err := appendLabResultOutbox(tx, e.PatientID, &e.LabOrders[i]); err != nil {
			return err
		}
	}
	return nil
}

// FinalizeEncounter closes a draft encounter, keeps it as version 1 and
// queues its documents.
func (s *Store) FinalizeEncounter(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		e, err := readEncounter(ctx, tx, id)
		if err != nil {
			return err
		}
		if e.Status != EncounterDraft {
			return fmt.Errorf("encounter %s is %s; only a draft can be finalized", id, e.Status)
		}
		_, err = finalizeEncounter(ctx, tx, &e)
		return err
	})
}

// finalizeEncounter closes the draft e in tx, audits it, keeps the snapshot
// of version 1 and adds the outbox rows; it returns the encounter as stored.
func finalizeEncounter(ctx context.Context, tx *Tx, e *Encounter) (Encounter, error) {
	if _, err := tx.exec(`UPDATE encounters SET status = 'final', ended_at = coalesce(ended_at, ?),
		updated_at = ? WHERE id = ?`, tx.Now(), tx.Now(), e.ID); err != nil {
		return Encounter{}, fmt.Errorf("finalize encounter: %w", err)
	}
	if err := tx.audit(ActionEncounterFinal, "encounter", e.ID, e.PatientID, ""); err != nil {
		return Encounter{}, err
	}
	saved, err := readEncounter(ctx, tx, e.ID)
	if err != nil {
		return Encounter{}, err
	}
	if err := snapshotEncounter(tx, &saved, ""); err != nil {
		return Encounter{}, err
	}
	return saved, appendEncounterOutbox(tx, &saved)
}

// Encounter reads one encounter with its parts, and audits the read.
func (s *Store) Encounter(ctx context.Context, id string) (Encounter, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return Encounter{}, err
	}
	var e Encounter
	if err := s.snapshot(ctx, func(tx *sql.Tx) (err error) {
		e, err = readEncounter(ctx, tx, id)
		return err
	}); err != nil {
		return Encounter{}, err
	}
	if err := s.auditRead(ctx, auditItem{ActionEncounterRead, "encounter", id, e.PatientID, ""}); err != nil {
		return Encounter{}, err
	}
	return e, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readEncounter(ctx context.Context, q querier, id string) (Encounter, error) {
	var e Encounter
	var started, created int64
	var ended sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT id, patient_id, type, coalesce(practitioner_id, ''), started_at, ended_at,
		complaint, notes, status, version, created_at, clock_suspect FROM encounters WHERE id = ?`, id).
		Scan(&e.ID, &e.PatientID, &e.Type, &e.PractitionerID, &started, &ended, &e.Complaint, &e.Notes, &e.Status,
			&e.Version, &created, &e.ClockSuspect)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("encounter %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("read encounter: %w", err)
	}
	e.StartedAt, e.CreatedAt = time.UnixMilli(started), time.UnixMilli(created)
	if ended.Valid {
		e.EndedAt = time.UnixMilli(ended.Int64)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, loinc, coalesce(value, 0), value_text, unit, effective_at, source,
		coalesce(device_id, '') FROM observations WHERE encounter_id = ? ORDER BY node_seq`, id)
	if err != nil {
		return e, err
	}
	for rows.Next() {
		var o Observation
		var eff int64
		if err := rows.Scan(&o.ID, &o.LOINC, &o.Value, &o.ValueText, &o.Unit, &eff, &o.Source, &o.DeviceID); err != nil {
			rows.Close()
			return e, err
		}
		o.EffectiveAt = time.UnixMilli(eff)
		e.Observations = append(e.Observations, o)
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, `SELECT id, system, code, display FROM diagnoses WHERE encounter_id = ? ORDER BY node_seq`, id)
	if err != nil {
		return e, err
	}
	for rows.Next() {
		var d Diagnosis
		if err := rows.Scan(&d.ID, &d.System, &d.Code, &d.Display); err != nil {
			rows.Close()
			return e, err
		}
		e.Diagnoses = append(e.Diagnoses, d)
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, `SELECT id, drug, strength, dose, frequency, coalesce(duration_days, 0), instructions
		FROM prescriptions WHERE encounter_id = ? ORDER BY node_seq`, id)
	if err != nil {
		return e, err
	}
	for rows.Next() {
		var p Prescription
		if err := rows.Scan(&p.ID, &p.Drug, &p.Strength, &p.Dose, &p.Frequency, &p.DurationDays, &p.Instructions); err != nil {
			rows.Close()
			return e, err
		}
		e.Prescriptions = append(e.Prescriptions, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return e, err
	}
	return e, readLabParts(ctx, q, &e)
}
