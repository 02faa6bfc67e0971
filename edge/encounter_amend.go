package edge

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Audit actions of amendments and of reading a version.
const (
	ActionEncounterAmend   = "encounter.amend"
	ActionEncounterHistory = "encounter.history"
)

// maxAmendReason bounds the reason of an amendment, in bytes.
const maxAmendReason = 2000

// A finalized encounter is corrected by an amendment, never edited in
// place. Each finalized version is kept in encounter_versions as it was
// (the encounter with its parts, as JSON), written in the transaction that
// made the version: version 1 when the encounter is finalized, N+1 by each
// amendment. Rows there are never changed (triggers refuse it). The outbox
// row of version N maps to snapshot N, so a row still pending when a later
// version is written is sent with its own content, not the newer one.
//
// Encounters finalized before snapshots existed (schema 7 and earlier) have
// none. Their current row is their only finalized version, and it is what
// EncounterVersion returns for that version. The first amendment of such an
// encounter snapshots the current row as its version first (with the
// finalize time as when, and no author, which was not recorded), so that
// older version stays readable after the row changes.

// EncounterHistoryEntry is one finalized version of an encounter: when it
// was made, by whom and, for an amendment, why.
type EncounterHistoryEntry struct {
	Version int       `json:"version"`
	Status  string    `json:"status"` // final (version 1) or amended
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
	// AuthorID and AuthorName name the signed-in user who made the version;
	// both are empty when a system actor made it or it is not known.
	AuthorID     string `json:"author_id,omitempty"`
	AuthorName   string `json:"author_name,omitempty"`
	ClockSuspect bool   `json:"clock_suspect"`
}

// AmendEncounter corrects a finalized encounter: it replaces the
// complaint, notes, typed observations, diagnoses, prescriptions, referral
// and vaccines with e's (device observations attached to the visit stay,
// and those listed in attach are added, as SaveEncounter does), and the lab
// orders as amendLabParts says: an order with a result, or cancelled,
// stays as it was, a pending one may be resulted, cancelled or removed. It
// makes the encounter version N+1 with status amended, keeps that
// version's snapshot with the reason and the author, and adds, in the same
// transaction, an audit entry and an outbox row at the new version for
// every document the previous version or the new one produces, so that a
// document whose content the amendment removed is superseded upstream too,
// and the DiagnosticReportRecord row of each result entered in the
// amendment (a result's report is keyed by its order, not by the visit's
// version, so a kept result is never queued twice).
//
// The reason is required; a missing reason or an invalid part is returned
// as FieldErrors with nothing written, as is a change to an order that has
// a result or was cancelled (error.lab_order_fixed). The type of visit and its
// practitioner are those of the original. A draft or cancelled encounter
// is an *Error with code encounter_not_final; an unknown encounter, or one
// of another patient than e.PatientID, wraps ErrNotFound. On success e is
// the new version as stored.
func (s *Store) AmendEncounter(ctx context.Context, e *Encounter, reason string, attach []string) error {
	reason = strings.TrimSpace(reason)
	fe := FieldErrors{}
	check := *e
	check.Status = EncounterFinal
	if err := check.Validate(); err != nil {
		var v FieldErrors
		if !errors.As(err, &v) {
			return err
		}
		maps.Copy(fe, v)
	}
	switch {
	case reason == "":
		fe["reason"] = "error.amend_reason_required"
	case !utf8.ValidString(reason) || len(reason) > maxAmendReason:
		fe["reason"] = "error.text_invalid"
	}
	if len(fe) > 0 {
		return fe
	}
	if err := s.refuseIfCritical(); err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		old, err := readEncounter(ctx, tx, e.ID)
		if err != nil {
			return err
		}
		if old.PatientID != e.PatientID {
			return fmt.Errorf("encounter %s belongs to another patient: %w", e.ID, ErrNotFound)
		}
		if old.Status != EncounterFinal && old.Status != EncounterAmended {
			return &Error{Code: "encounter_not_final", Message: "only a finalized visit can be amended",
				Hint: "save the draft or finalize it instead"}
		}
		if e.Type != old.Type {
			return FieldErrors{"type": "error.amend_type_fixed"}
		}
		if err := ensureSnapshot(ctx, tx, &old); err != nil {
			return err
		}
		version := old.Version + 1
		if _, err := tx.exec(`UPDATE encounters SET complaint = ?, notes = ?, status = 'amended', version = ?, updated_at = ?
			WHERE id = ?`, e.Complaint, e.Notes, version, tx.Now(), e.ID); err != nil {
			return fmt.Errorf("amend encounter: %w", err)
		}
		for _, q := range []string{
			`DELETE FROM observations WHERE encounter_id = ? AND source = 'manual'`,
			`DELETE FROM diagnoses WHERE encounter_id = ?`,
			`DELETE FROM prescriptions WHERE encounter_id = ?`,
		} {
			if _, err := tx.exec(q, e.ID); err != nil {
				return fmt.Errorf("replace encounter parts: %w", err)
			}
		}
		if err := insertClinicalParts(tx, e, tx.now); err != nil {
			return err
		}
		e.StartedAt = old.StartedAt // the day vaccines without a date were given
		if err := amendLabParts(tx, &old, e, tx.now); err != nil {
			return err
		}
		if err := attachObservations(tx, e.ID, e.PatientID, attach); err != nil {
			return err
		}
		saved, err := readEncounter(ctx, tx, e.ID)
		if err != nil {
			return err
		}
		if err := snapshotEncounter(tx, &saved, reason); err != nil {
			return err
		}
		if err := tx.audit(ActionEncounterAmend, "encounter", e.ID, e.PatientID, fmt.Sprintf("version=%d", version)); err != nil {
			return err
		}
		docs := encounterDocuments(&saved)
		for _, d := range encounterDocuments(&old) {
			if !slices.Contains(docs, d) {
				docs = append(docs, d) // superseded: the new version no longer carries it
			}
		}
		for _, doc := range docs {
			if err := tx.appendOutbox(doc, LaneClinical, e.PatientID, "encounter", e.ID, version); err != nil {
				return err
			}
		}
		// A result entered in the amendment is a report of its own; one
		// already queued (kept unchanged) is not queued again.
		for i := range saved.LabOrders {
			if err := appendLabResultOutbox(tx, saved.PatientID, &saved.LabOrders[i]); err != nil {
				return err
			}
		}
		*e = saved
		return nil
	})
}

// attachObservations puts the patient's device observations listed in ids,
// not yet in any visit, into encounter id.
func attachObservations(tx *Tx, id, patientID string, ids []string) error {
	for _, obs := range ids {
		if _, err := tx.exec(`UPDATE observations SET encounter_id = ? WHERE id = ? AND patient_id = ?
			AND encounter_id IS NULL AND source = 'device'`, id, obs, patientID); err != nil {
			return fmt.Errorf("attach observation: %w", err)
		}
	}
	return nil
}

// snapshotEncounter keeps e, as read back in tx, as the immutable record of
// its version, made now by the transaction's actor.
func snapshotEncounter(tx *Tx, e *Encounter, reason string) error {
	var author any
	if tx.actor.Kind == ActorUser {
		author = tx.actor.ID
	}
	return insertSnapshot(tx, e, reason, tx.actor.String(), author, tx.Now())
}

// ensureSnapshot snapshots a finalized encounter's current version when it
// has none (finalized before snapshots were kept): its row is still that
// version, unchanged since it was finalized at updated_at.
func ensureSnapshot(ctx context.Context, tx *Tx, e *Encounter) error {
	var n int
	if err := tx.queryRow(`SELECT count(*) FROM encounter_versions WHERE encounter_id = ? AND version = ?`,
		e.ID, e.Version).Scan(&n); err != nil {
		return fmt.Errorf("read encounter versions: %w", err)
	}
	if n > 0 {
		return nil
	}
	var at int64
	if err := tx.queryRow(`SELECT updated_at FROM encounters WHERE id = ?`, e.ID).Scan(&at); err != nil {
		return fmt.Errorf("read encounter: %w", err)
	}
	return insertSnapshot(tx, e, "", "", nil, at)
}

func insertSnapshot(tx *Tx, e *Encounter, reason, actor string, author any, at int64) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode encounter version: %w", err)
	}
	status := EncounterFinal
	if e.Version > 1 {
		status = EncounterAmended
	}
	if _, err := tx.exec(`INSERT INTO encounter_versions (encounter_id, version, patient_id, status, snapshot, reason,
		actor, author_id, at, node_seq, clock_suspect) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.Version, e.PatientID, status, string(body), reason, actor, author, at, tx.NextSeq(), tx.Suspect()); err != nil {
		return fmt.Errorf("keep encounter version %d: %w", e.Version, err)
	}
	return nil
}

// EncounterVersion reads finalized version v of an encounter as it was
// when that version was made, and audits the read. A version that does not
// exist (or that the node cannot prove the content of) wraps ErrNotFound.
// An encounter finalized before snapshots were kept has its current row as
// its one version.
func (s *Store) EncounterVersion(ctx context.Context, id string, v int) (Encounter, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return Encounter{}, err
	}
	var e Encounter
	if err := s.snapshot(ctx, func(tx *sql.Tx) (err error) {
		e, err = readEncounterVersion(ctx, tx, id, v)
		return err
	}); err != nil {
		return Encounter{}, err
	}
	if err := s.auditRead(ctx, auditItem{ActionEncounterRead, "encounter", id, e.PatientID, fmt.Sprintf("version=%d", v)}); err != nil {
		return Encounter{}, err
	}
	return e, nil
}

func readEncounterVersion(ctx context.Context, q querier, id string, v int) (Encounter, error) {
	var e Encounter
	var body string
	err := q.QueryRowContext(ctx, `SELECT snapshot FROM encounter_versions WHERE encounter_id = ? AND version = ?`, id, v).Scan(&body)
	switch {
	case err == nil:
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			return e, fmt.Errorf("decode encounter %s version %d: %w", id, v, err)
		}
		e.localTimes()
		e.moveLegacyVaccines()
		return e, nil
	case !errors.Is(err, sql.ErrNoRows):
		return e, fmt.Errorf("read encounter version: %w", err)
	}
	cur, err := readEncounter(ctx, q, id)
	if err != nil {
		return e, err
	}
	// No snapshot: only the current version of an encounter finalized
	// before snapshots were kept is known. Any other version's content is
	// gone (or never was), and a document must never carry another
	// version's content under its number.
	if cur.Version != v || (cur.Status != EncounterFinal && cur.Status != EncounterAmended) {
		return e, fmt.Errorf("encounter %s version %d: %w", id, v, ErrNotFound)
	}
	return cur, nil
}

// asStored returns a copy of an encounter just written in full (every field
// and part set, as createEncounter leaves it) as readEncounter would read it
// back, without the reads: times cut to the millisecond in the local zone.
func (e *Encounter) asStored() Encounter {
	c := *e
	c.Observations = slices.Clone(e.Observations)
	c.Diagnoses = slices.Clone(e.Diagnoses)
	c.Prescriptions = slices.Clone(e.Prescriptions)
	c.LabOrders = slices.Clone(e.LabOrders)
	for i := range c.LabOrders {
		if r := c.LabOrders[i].Result; r != nil {
			rc := *r
			c.LabOrders[i].Result = &rc
		}
	}
	if e.Referral != nil {
		r := *e.Referral
		c.Referral = &r
	}
	c.Immunizations = slices.Clone(e.Immunizations)
	c.localTimes()
	return c
}

// localTimes gives a decoded snapshot's times the form readEncounter gives
// (Unix milliseconds in the local zone), so both read alike.
func (e *Encounter) localTimes() {
	norm := func(t *time.Time) {
		if !t.IsZero() {
			*t = time.UnixMilli(t.UnixMilli())
		}
	}
	norm(&e.StartedAt)
	norm(&e.EndedAt)
	norm(&e.CreatedAt)
	for i := range e.Observations {
		norm(&e.Observations[i].EffectiveAt)
	}
	for i := range e.LabOrders {
		o := &e.LabOrders[i]
		norm(&o.OrderedAt)
		norm(&o.CancelledAt)
		if o.Result != nil {
			norm(&o.Result.ResultedAt)
		}
	}
}

// EncounterHistory lists an encounter's finalized versions, oldest first,
// and audits the read. A draft, or an encounter finalized before versions
// were kept and never amended, has none. An unknown encounter wraps
// ErrNotFound.
func (s *Store) EncounterHistory(ctx context.Context, id string) ([]EncounterHistoryEntry, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return nil, err
	}
	var out []EncounterHistoryEntry
	var patientID string
	err := s.snapshot(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT patient_id FROM encounters WHERE id = ?`, id).Scan(&patientID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("encounter %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read encounter: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT v.version, v.status, v.reason, v.at, coalesce(v.author_id, ''),
			coalesce(u.display_name, ''), v.clock_suspect FROM encounter_versions v LEFT JOIN users u ON u.id = v.author_id
			WHERE v.encounter_id = ? ORDER BY v.version`, id)
		if err != nil {
			return fmt.Errorf("read encounter versions: %w", err)
		}
		for rows.Next() {
			var h EncounterHistoryEntry
			var at int64
			if err := rows.Scan(&h.Version, &h.Status, &h.Reason, &at, &h.AuthorID, &h.AuthorName, &h.ClockSuspect); err != nil {
				rows.Close()
				return fmt.Errorf("read encounter version: %w", err)
			}
			h.At = time.UnixMilli(at)
			out = append(out, h)
		}
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	if err := s.auditRead(ctx, auditItem{ActionEncounterHistory, "encounter", id, patientID, ""}); err != nil {
		return nil, err
	}
	return out, nil
}
