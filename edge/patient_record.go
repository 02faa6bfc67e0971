package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// ActionAllergyAdd is the audit action of recording an allergy.
const ActionAllergyAdd = "allergy.create"

// Allergy is a substance the patient reacts to, as told or known.
type Allergy struct {
	ID        string    `json:"id"`
	Substance string    `json:"substance"`
	Reaction  string    `json:"reaction,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks an allergy's text.
func (a *Allergy) Validate() error {
	fe := FieldErrors{}
	a.Substance, a.Reaction = strings.TrimSpace(a.Substance), strings.TrimSpace(a.Reaction)
	switch {
	case a.Substance == "":
		fe["substance"] = "error.required"
	case !utf8.ValidString(a.Substance) || len(a.Substance) > 200 || strings.ContainsRune(a.Substance, 0):
		fe["substance"] = "error.text_invalid"
	}
	if !utf8.ValidString(a.Reaction) || len(a.Reaction) > 500 || strings.ContainsRune(a.Reaction, 0) {
		fe["reaction"] = "error.text_invalid"
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// RegisterPatient registers a patient with the allergies they told of, in
// one transaction, audited. It is CreatePatient for the registration form.
func (s *Store) RegisterPatient(ctx context.Context, p *Patient, allergies []Allergy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	for i := range allergies {
		if err := allergies[i].Validate(); err != nil {
			return FieldErrors{"allergies": "error.text_invalid"}
		}
	}
	if err := s.refuseIfCritical(); err != nil {
		return err
	}
	p.ID = NewID()
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		if err := createPatient(ctx, tx, p); err != nil {
			return err
		}
		for i := range allergies {
			if err := addAllergy(tx, p.ID, &allergies[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddAllergy records an allergy of a patient, audited.
func (s *Store) AddAllergy(ctx context.Context, patientID string, a *Allergy) error {
	if err := a.Validate(); err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		return addAllergy(tx, patientID, a)
	})
}

func addAllergy(tx *Tx, patientID string, a *Allergy) error {
	a.ID, a.CreatedAt = NewID(), tx.now
	if _, err := tx.exec(`INSERT INTO patient_allergies (id, patient_id, substance, reaction, created_at, created_by,
		node_seq, clock_suspect) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, patientID, a.Substance, a.Reaction, tx.Now(),
		tx.actor.String(), tx.NextSeq(), tx.Suspect()); err != nil {
		if sqliteCode(err) == 19 {
			return FieldErrors{"patient_id": "error.patient_unknown"}
		}
		return fmt.Errorf("save allergy: %w", err)
	}
	return tx.audit(ActionAllergyAdd, "allergy", a.ID, patientID, "")
}

// EncounterSummary is one line of a patient's timeline.
type EncounterSummary struct {
	ID            string      `json:"id"`
	Type          string      `json:"type"`
	Status        string      `json:"status"`
	StartedAt     time.Time   `json:"started_at"`
	Complaint     string      `json:"complaint,omitempty"`
	Practitioner  string      `json:"practitioner,omitempty"` // display name
	Diagnoses     []Diagnosis `json:"diagnoses,omitempty"`
	Prescriptions int         `json:"prescriptions"`
	ClockSuspect  bool        `json:"clock_suspect"`
}

// ActivePrescription is a drug still being taken: prescribed in a final
// encounter whose duration has not run out.
type ActivePrescription struct {
	Prescription
	EncounterID string    `json:"encounter_id"`
	Start       time.Time `json:"start"`
	Until       time.Time `json:"until"`
}

// VitalPoint is one value of a series of observations.
type VitalPoint struct {
	At          time.Time `json:"at"`
	Value       float64   `json:"value"`
	Source      string    `json:"source"`
	EncounterID string    `json:"encounter_id,omitempty"`
}

// PatientRecord is everything the patient page shows.
type PatientRecord struct {
	Patient             Patient              `json:"patient"`
	Allergies           []Allergy            `json:"allergies"`
	Encounters          []EncounterSummary   `json:"encounters"` // newest first
	ActivePrescriptions []ActivePrescription `json:"active_prescriptions"`
	// PendingLabOrders are tests ordered in final visits still waiting for a result.
	PendingLabOrders []LabOrder `json:"pending_lab_orders"`
	// Vitals holds, per LOINC code asked for, the latest values oldest first.
	Vitals map[string][]VitalPoint `json:"vitals"`
}

// Limits of a patient record.
const (
	RecordEncounters  = 100
	RecordVitalPoints = 30
)

// PatientRecord reads a patient's summary, timeline and the series of the
// given observation codes, and audits the read once.
func (s *Store) PatientRecord(ctx context.Context, id string, loincs []string) (PatientRecord, error) {
	var rec PatientRecord
	if _, err := ActorFrom(ctx); err != nil {
		return rec, err
	}
	p, err := scanPatient(s.readers.QueryRowContext(ctx, `SELECT `+patientColumns+` FROM patients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return rec, fmt.Errorf("patient %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return rec, fmt.Errorf("read patient: %w", err)
	}
	rec.Patient = p
	if rec.Allergies, err = s.allergies(ctx, id); err != nil {
		return rec, err
	}
	if rec.Encounters, err = s.encounterSummaries(ctx, id); err != nil {
		return rec, err
	}
	if rec.ActivePrescriptions, err = s.activePrescriptions(ctx, id); err != nil {
		return rec, err
	}
	if rec.PendingLabOrders, err = s.pendingLabOrders(ctx, id); err != nil {
		return rec, err
	}
	rec.Vitals = map[string][]VitalPoint{}
	for _, code := range loincs {
		pts, err := s.vitalSeries(ctx, id, code)
		if err != nil {
			return rec, err
		}
		if len(pts) > 0 {
			rec.Vitals[code] = pts
		}
	}
	if err := s.auditRead(ctx, auditItem{ActionPatientRead, "patient", id, id, "record"}); err != nil {
		return PatientRecord{}, err
	}
	return rec, nil
}

func (s *Store) allergies(ctx context.Context, patientID string) ([]Allergy, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT id, substance, reaction, created_at FROM patient_allergies
		WHERE patient_id = ? ORDER BY node_seq`, patientID)
	if err != nil {
		return nil, fmt.Errorf("read allergies: %w", err)
	}
	defer rows.Close()
	var out []Allergy
	for rows.Next() {
		var a Allergy
		var at int64
		if err := rows.Scan(&a.ID, &a.Substance, &a.Reaction, &at); err != nil {
			return nil, err
		}
		a.CreatedAt = time.UnixMilli(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *Store) encounterSummaries(ctx context.Context, patientID string) ([]EncounterSummary, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT e.id, e.type, e.status, e.started_at, e.complaint,
		coalesce(nullif(u.display_name, ''), u.username, ''), e.clock_suspect,
		(SELECT count(*) FROM prescriptions p WHERE p.encounter_id = e.id)
		FROM encounters e LEFT JOIN users u ON u.id = e.practitioner_id
		WHERE e.patient_id = ? ORDER BY e.started_at DESC, e.node_seq DESC LIMIT ?`, patientID, RecordEncounters)
	if err != nil {
		return nil, fmt.Errorf("read encounters: %w", err)
	}
	var out []EncounterSummary
	idx := map[string]int{}
	for rows.Next() {
		var e EncounterSummary
		var at int64
		if err := rows.Scan(&e.ID, &e.Type, &e.Status, &at, &e.Complaint, &e.Practitioner, &e.ClockSuspect, &e.Prescriptions); err != nil {
			rows.Close()
			return nil, err
		}
		e.StartedAt = time.UnixMilli(at)
		idx[e.ID] = len(out)
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	rows, err = s.readers.QueryContext(ctx, `SELECT d.encounter_id, d.id, d.system, d.code, d.display FROM diagnoses d
		JOIN encounters e ON e.id = d.encounter_id WHERE e.patient_id = ? ORDER BY d.node_seq`, patientID)
	if err != nil {
		return nil, fmt.Errorf("read diagnoses: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var encID string
		var d Diagnosis
		if err := rows.Scan(&encID, &d.ID, &d.System, &d.Code, &d.Display); err != nil {
			return nil, err
		}
		if i, ok := idx[encID]; ok {
			out[i].Diagnoses = append(out[i].Diagnoses, d)
		}
	}
	return out, rows.Err()
}

func (s *Store) activePrescriptions(ctx context.Context, patientID string) ([]ActivePrescription, error) {
	now := s.Now()
	rows, err := s.readers.QueryContext(ctx, `SELECT p.id, p.drug, p.strength, p.dose, p.frequency,
		coalesce(p.duration_days, 0), p.instructions, e.id, e.started_at
		FROM prescriptions p JOIN encounters e ON e.id = p.encounter_id
		WHERE e.patient_id = ? AND e.status IN ('final', 'amended') AND p.duration_days IS NOT NULL
		  AND e.started_at + p.duration_days * 86400000 >= ?
		ORDER BY e.started_at DESC, p.node_seq`, patientID, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read active prescriptions: %w", err)
	}
	defer rows.Close()
	var out []ActivePrescription
	for rows.Next() {
		var a ActivePrescription
		var at int64
		if err := rows.Scan(&a.ID, &a.Drug, &a.Strength, &a.Dose, &a.Frequency, &a.DurationDays, &a.Instructions,
			&a.EncounterID, &at); err != nil {
			return nil, err
		}
		a.Start = time.UnixMilli(at)
		a.Until = a.Start.AddDate(0, 0, a.DurationDays)
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *Store) vitalSeries(ctx context.Context, patientID, loinc string) ([]VitalPoint, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT value, effective_at, source, coalesce(encounter_id, '') FROM observations
		WHERE patient_id = ? AND loinc = ? AND value IS NOT NULL ORDER BY effective_at DESC LIMIT ?`,
		patientID, loinc, RecordVitalPoints)
	if err != nil {
		return nil, fmt.Errorf("read observations %s: %w", loinc, err)
	}
	defer rows.Close()
	var out []VitalPoint
	for rows.Next() {
		var v VitalPoint
		var at int64
		if err := rows.Scan(&v.Value, &at, &v.Source, &v.EncounterID); err != nil {
			return nil, err
		}
		v.At = time.UnixMilli(at)
		out = append(out, v)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, rows.Err()
}

// PatientReading is a device reading that arrived for a patient, for the
// live panel of a visit.
type PatientReading struct {
	ID            string    `json:"id"`
	Seq           int64     `json:"seq"` // node sequence; resume after it
	DeviceID      string    `json:"device_id"`
	DeviceName    string    `json:"device_name"`
	LOINC         string    `json:"loinc"`
	Value         float64   `json:"value"`
	ValueText     string    `json:"value_text"`
	Unit          string    `json:"unit"`
	EffectiveAt   time.Time `json:"effective_at"`
	State         string    `json:"state"` // assigned or rejected
	Rejected      string    `json:"rejected,omitempty"`
	ObservationID string    `json:"observation_id,omitempty"`
}

// PatientReadings returns the readings stored for a patient after node
// sequence afterSeq and received at or after since, oldest first. It
// requires an actor but does not audit: the caller audits once when it
// starts watching.
func (s *Store) PatientReadings(ctx context.Context, patientID string, afterSeq int64, since time.Time, limit int) ([]PatientReading, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return nil, err
	}
	rows, err := s.readers.QueryContext(ctx, `SELECT r.id, r.node_seq, r.device_id, d.name, r.loinc, coalesce(r.value, 0),
		r.value_text, r.unit, r.effective_at, r.state, r.reject_reason, coalesce(r.observation_id, '')
		FROM readings r JOIN devices d ON d.id = r.device_id
		WHERE r.patient_id = ? AND r.node_seq > ? AND r.received_at >= ? AND r.state IN ('assigned', 'rejected')
		ORDER BY r.node_seq LIMIT ?`, patientID, afterSeq, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("read patient readings: %w", err)
	}
	defer rows.Close()
	var out []PatientReading
	for rows.Next() {
		var r PatientReading
		var eff int64
		if err := rows.Scan(&r.ID, &r.Seq, &r.DeviceID, &r.DeviceName, &r.LOINC, &r.Value, &r.ValueText, &r.Unit, &eff,
			&r.State, &r.Rejected, &r.ObservationID); err != nil {
			return nil, err
		}
		r.EffectiveAt = time.UnixMilli(eff)
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeviceBinding is a device's current binding to a patient.
type DeviceBinding struct {
	DeviceID  string    `json:"device_id"`
	PatientID string    `json:"patient_id"`
	BoundBy   string    `json:"bound_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PatientBindings lists the unexpired bindings of devices to a patient.
func (s *Store) PatientBindings(ctx context.Context, patientID string) ([]DeviceBinding, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT device_id, patient_id, bound_by, created_at, expires_at
		FROM device_bindings WHERE patient_id = ? AND expires_at > ? ORDER BY created_at`, patientID, s.Now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read device bindings: %w", err)
	}
	defer rows.Close()
	var out []DeviceBinding
	for rows.Next() {
		var b DeviceBinding
		var c, e int64
		if err := rows.Scan(&b.DeviceID, &b.PatientID, &b.BoundBy, &c, &e); err != nil {
			return nil, err
		}
		b.CreatedAt, b.ExpiresAt = time.UnixMilli(c), time.UnixMilli(e)
		out = append(out, b)
	}
	return out, rows.Err()
}
