package edge

import (
	"context"
	"fmt"
)

// ActionEncounterUpdate is the audit action of changing a draft encounter.
const ActionEncounterUpdate = "encounter.update"

// SaveEncounter saves the visit form in one transaction: it creates the
// draft (e.ID empty) or replaces a draft's complaint, notes, typed
// observations, diagnoses and prescriptions; attaches the patient's device
// observations listed in attach (readings taken during the visit); and with
// finalize closes the encounter, keeps it as version 1 and adds its outbox
// rows, as FinalizeEncounter does. A final encounter cannot be saved again:
// it is corrected by an amendment (AmendEncounter).
func (s *Store) SaveEncounter(ctx context.Context, e *Encounter, attach []string, finalize bool) error {
	e.Status = EncounterDraft
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
		if e.ID == "" {
			if err := createEncounter(ctx, tx, e); err != nil {
				return err
			}
			if err := tx.audit(ActionEncounterCreate, "encounter", e.ID, e.PatientID, "status=draft"); err != nil {
				return err
			}
		} else if err := updateDraft(ctx, tx, e); err != nil {
			return err
		}
		if err := attachObservations(tx, e.ID, e.PatientID, attach); err != nil {
			return err
		}
		if !finalize {
			return nil
		}
		saved, err := finalizeEncounter(ctx, tx, e)
		if err != nil {
			return err
		}
		*e = saved
		return nil
	})
}

// updateDraft replaces a draft's fields and parts; device observations
// attached to it stay.
func updateDraft(ctx context.Context, tx *Tx, e *Encounter) error {
	old, err := readEncounter(ctx, tx, e.ID)
	if err != nil {
		return err
	}
	if old.PatientID != e.PatientID {
		return fmt.Errorf("encounter %s belongs to another patient: %w", e.ID, ErrNotFound)
	}
	if old.Status != EncounterDraft {
		return &Error{Code: "encounter_final", Message: "this visit is already finalized and cannot be changed",
			Hint: "record a correction as an amendment"}
	}
	e.StartedAt, e.CreatedAt, e.Version = old.StartedAt, old.CreatedAt, old.Version
	if _, err := tx.exec(`UPDATE encounters SET type = ?, practitioner_id = ?, complaint = ?, notes = ?, updated_at = ?
		WHERE id = ?`, e.Type, nullString(e.PractitionerID), e.Complaint, e.Notes, tx.Now(), e.ID); err != nil {
		return fmt.Errorf("update encounter: %w", err)
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
	if err := deleteLabParts(tx, e.ID); err != nil {
		return err
	}
	if err := insertEncounterParts(ctx, tx, e, tx.now); err != nil {
		return err
	}
	return tx.audit(ActionEncounterUpdate, "encounter", e.ID, e.PatientID, "")
}
