package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Entities of outbox rows: the kind of record a row's document is built
// from (OutboxItem.Entity).
const (
	EntityEncounter   = "encounter"
	EntityObservation = "observation"
)

// OutboxRecords are the records one outbox row's document is built from, as
// ReadOutboxRecords read them, or why they could not be read.
type OutboxRecords struct {
	// Encounter is the version of the encounter an encounter row names, as
	// EncounterVersion reads it, or, for a lab order row, the encounter
	// holding the order as it is now (Encounter reads it); Practitioner is
	// the user the encounter names (nil when it names none), and
	// ResultedBy the user who entered a lab order's result (nil when none
	// did).
	Encounter    *Encounter
	Practitioner *User
	ResultedBy   *User

	// Observation is the device reading an observation row names, and
	// Devices the registered devices, which its DeviceID may name.
	Observation *Observation
	Devices     []Device

	// Patient is the patient the records belong to.
	Patient Patient

	// Err says why this row's records could not be read; the other fields
	// are then empty. A record that does not exist (or an encounter version
	// the node cannot prove the content of) wraps ErrNotFound.
	Err error
}

// ReadOutboxRecords reads, for each outbox row, the records its document is
// built from, in one read transaction on the reader pool, and audits those
// reads as the one-record reads (Patient, EncounterVersion, Encounter,
// LabOrder, Observation) do: one entry per record read, with the context's
// actor (syncq reads as system:syncq). All the entries of one call go to
// the read-audit writer together, so they commit in one write transaction
// (shared with whatever other reads are waiting), and nothing is returned
// unless they committed. A record several rows name is read, and audited,
// once. Users and devices are not patient data and are not audited, as
// elsewhere.
//
// Only the rows' Entity, EntityID and EntityVersion are used. The result
// has one OutboxRecords per row, in order. A row whose records are missing
// or unreadable gets its own Err, and the other rows are read regardless;
// an error of the database itself (or of the audit's commit) is returned
// with no result.
//
// One call per delivery request instead of a read and an audit entry to
// wait for per record matters because every write transaction ends with an
// fsync: a request of 20 documents waited for about 60 commits, one after
// the other.
func (s *Store) ReadOutboxRecords(ctx context.Context, items []OutboxItem) ([]OutboxRecords, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return nil, err
	}
	r := &recordReader{ctx: ctx, patients: map[string]patientRead{}, users: map[string]userRead{},
		encounters: map[encounterVersionKey]encounterRead{}}
	out := make([]OutboxRecords, len(items))
	if err := s.snapshot(ctx, func(tx *sql.Tx) error {
		r.q = tx
		for i, it := range items {
			rec, err := r.read(it)
			if err != nil {
				return err
			}
			out[i] = rec
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if len(r.audits) > 0 {
		if err := s.auditRead(ctx, r.audits...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recordReader reads the records of outbox rows in one read transaction,
// each record once, and lists the audit entries of the reads.
type recordReader struct {
	ctx        context.Context
	q          querier
	audits     []auditItem
	patients   map[string]patientRead
	users      map[string]userRead
	encounters map[encounterVersionKey]encounterRead
	devices    []Device
	devicesOK  bool
}

// encounterVersionKey names a version of an encounter; version 0 is the
// encounter as it is now.
type encounterVersionKey struct {
	id      string
	version int
}

type (
	patientRead struct {
		p   Patient
		err error
	}
	userRead struct {
		u   User
		err error
	}
	encounterRead struct {
		e   Encounter
		err error
	}
)

// read reads the records of one row. A problem of the row's records is
// returned in OutboxRecords.Err; the error returned is the database's, and
// ends the read.
func (r *recordReader) read(it OutboxItem) (OutboxRecords, error) {
	var rec OutboxRecords
	var patientID string
	var err error
	switch it.Entity {
	case EntityEncounter:
		var e Encounter
		if e, err = r.encounter(it.EntityID, it.EntityVersion); err != nil {
			break
		}
		rec.Encounter, patientID = &e, e.PatientID
		rec.Practitioner, err = r.practitioner(&e)
	case EntityLabOrder:
		var o LabOrder
		if o, _, err = readLabOrder(r.ctx, r.q, it.EntityID); err != nil {
			break
		}
		r.audit(auditItem{ActionLabRead, EntityLabOrder, it.EntityID, o.PatientID, ""})
		var e Encounter
		if e, err = r.encounter(o.EncounterID, 0); err != nil {
			break
		}
		rec.Encounter, patientID = &e, e.PatientID
		if rec.Practitioner, err = r.practitioner(&e); err != nil {
			break
		}
		if o.Result != nil && o.Result.ResultedBy != "" {
			var u User
			if u, err = r.user(o.Result.ResultedBy); err != nil {
				break
			}
			rec.ResultedBy = &u
		}
	case EntityObservation:
		var o Observation
		if o, patientID, err = readObservation(r.ctx, r.q, it.EntityID); err != nil {
			break
		}
		r.audit(auditItem{ActionObservationRead, "observation", it.EntityID, patientID, ""})
		rec.Observation = &o
		rec.Devices, err = r.allDevices()
	default:
		err = fmt.Errorf("outbox entity %q: no records are read for it: %w", it.Entity, ErrNotFound)
	}
	if err == nil {
		rec.Patient, err = r.patient(patientID)
	}
	if err != nil {
		if databaseError(err) {
			return OutboxRecords{}, err
		}
		return OutboxRecords{Err: err}, nil
	}
	return rec, nil
}

func (r *recordReader) audit(it auditItem) { r.audits = append(r.audits, it) }

// databaseError reports whether err came from the database (a failed
// query, a busy disk, a cancelled context) rather than from the records
// read: such an error ends the read.
func databaseError(err error) bool {
	return sqliteCode(err) != 0 || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, sql.ErrTxDone)
}

// encounter reads version v of an encounter as EncounterVersion does, or,
// with v 0, the encounter as it is now, as Encounter does.
func (r *recordReader) encounter(id string, v int) (Encounter, error) {
	k := encounterVersionKey{id, v}
	if got, ok := r.encounters[k]; ok {
		return got.e, got.err
	}
	var e Encounter
	var err error
	if v == 0 {
		if e, err = readEncounter(r.ctx, r.q, id); err == nil {
			r.audit(auditItem{ActionEncounterRead, "encounter", id, e.PatientID, ""})
		}
	} else {
		if e, err = readEncounterVersion(r.ctx, r.q, id, v); err == nil {
			r.audit(auditItem{ActionEncounterRead, "encounter", id, e.PatientID, fmt.Sprintf("version=%d", v)})
		}
	}
	r.encounters[k] = encounterRead{e, err}
	return e, err
}

// practitioner reads the user encounter e names, nil when it names none.
func (r *recordReader) practitioner(e *Encounter) (*User, error) {
	if e.PractitionerID == "" {
		return nil, nil
	}
	u, err := r.user(e.PractitionerID)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (r *recordReader) patient(id string) (Patient, error) {
	if got, ok := r.patients[id]; ok {
		return got.p, got.err
	}
	p, err := scanPatient(r.q.QueryRowContext(r.ctx, `SELECT `+patientColumns+` FROM patients WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = fmt.Errorf("patient %s: %w", id, ErrNotFound)
	case err != nil:
		return p, fmt.Errorf("read patient: %w", err)
	default:
		r.audit(auditItem{ActionPatientRead, "patient", id, id, ""})
	}
	r.patients[id] = patientRead{p, err}
	return p, err
}

func (r *recordReader) user(id string) (User, error) {
	if got, ok := r.users[id]; ok {
		return got.u, got.err
	}
	u, err := readUser(r.q.QueryRowContext(r.ctx, userByIDQuery, id), id)
	r.users[id] = userRead{u, err}
	return u, err
}

func (r *recordReader) allDevices() ([]Device, error) {
	if !r.devicesOK {
		var err error
		if r.devices, err = listDevices(r.ctx, r.q); err != nil {
			return nil, err
		}
		r.devicesOK = true
	}
	return r.devices, nil
}
