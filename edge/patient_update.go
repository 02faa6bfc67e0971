package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Audit actions of correcting a patient's details. Every correction is
// audited as ActionPatientUpdate with the names of the fields it changed
// (never their values: the audit detail holds no PHI). Two kinds of change
// get an entry of their own so that they stand out in the log.
const (
	// ActionPatientABHAChange: the ABHA number or address, the identity the
	// facility's records are linked to, was set, changed or removed.
	ActionPatientABHAChange = "patient.abha_change"
	// ActionPatientConsent: consent to link records with the ABHA was
	// given, withdrawn, or renewed for a new ABHA identity.
	ActionPatientConsent = "patient.consent"
)

// StatedAgeNow is the stated age carried forward to now: the years told
// plus the whole years since they were told.
func (p *Patient) StatedAgeNow(now time.Time) int {
	y := p.StatedAge
	if !p.StatedAgeAt.IsZero() && now.After(p.StatedAgeAt) {
		y += int(now.Sub(p.StatedAgeAt).Hours() / 24 / 365.25)
	}
	return y
}

// UpdatePatient corrects a registered patient's details in one transaction:
// p.ID names the patient and p.Revision the revision the correction was
// made from. When the patient was changed since that revision, nothing is
// saved and the error wraps ErrStale, so nobody's correction is lost
// silently. An ABHA number or address that another patient has is a field
// error. The local ID and the registration time stay; allergies are kept
// apart (AddAllergy).
//
// A stated age that equals the stored one carried forward to today keeps
// the stored age and the date it was told, so saving the form unchanged
// does not make the patient younger. A change of consent (given, withdrawn,
// or kept while the ABHA identity changes) records who and when. The search
// keys are rewritten in the same transaction, so a search right after
// finds the patient by the new name. The write is audited with the user;
// p receives the patient as saved, with the new revision. A correction that
// changes nothing writes nothing.
func (s *Store) UpdatePatient(ctx context.Context, p *Patient) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := s.refuseIfCritical(); err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		return updatePatient(tx, p)
	})
}

func updatePatient(tx *Tx, p *Patient) error {
	old, err := scanPatient(tx.queryRow(`SELECT `+patientColumns+` FROM patients WHERE id = ?`, p.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("patient %s: %w", p.ID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read patient: %w", err)
	}
	if old.Revision != p.Revision {
		return &Error{Code: "patient_changed", Message: "someone else changed this patient's details after the form was opened",
			Hint: "check the details saved now and make the correction again", Err: ErrStale}
	}
	fe := FieldErrors{}
	for _, c := range []struct{ field, query, value, was string }{
		{"abha_number", `SELECT count(*) FROM patients WHERE abha_number = ? AND id != ?`, p.ABHANumber, old.ABHANumber},
		{"abha_address", `SELECT count(*) FROM patients WHERE abha_address = ? AND id != ?`, p.ABHAAddress, old.ABHAAddress},
	} {
		if c.value == "" || c.value == c.was {
			continue
		}
		var n int
		if err := tx.queryRow(c.query, c.value, p.ID).Scan(&n); err != nil {
			return fmt.Errorf("check %s: %w", c.field, err)
		}
		if n > 0 {
			fe[c.field] = "error." + c.field + "_taken"
		}
	}
	if len(fe) > 0 {
		return fe
	}

	switch {
	case p.BirthDate != "":
		p.StatedAge, p.StatedAgeAt = 0, time.Time{}
	case old.BirthDate == "" && p.StatedAge == old.StatedAgeNow(tx.now):
		p.StatedAge, p.StatedAgeAt = old.StatedAge, old.StatedAgeAt
	default:
		p.StatedAgeAt = tx.now
	}

	abhaChanged := p.ABHANumber != old.ABHANumber || p.ABHAAddress != old.ABHAAddress
	var consent string
	switch {
	case p.ConsentLink && !old.ConsentLink:
		consent = "given"
	case !p.ConsentLink && old.ConsentLink:
		consent = "withdrawn"
	case p.ConsentLink && abhaChanged:
		consent = "renewed" // asked again, for the new identity
	}
	if consent != "" {
		p.ConsentAt, p.ConsentBy = tx.now, tx.actor.String()
	} else {
		p.ConsentAt, p.ConsentBy = old.ConsentAt, old.ConsentBy
	}

	var changed []string
	for _, f := range []struct {
		name    string
		changed bool
	}{
		{"name", p.Name != old.Name},
		{"gender", p.Gender != old.Gender},
		{"birth_date", p.BirthDate != old.BirthDate},
		{"stated_age", p.StatedAge != old.StatedAge || p.StatedAgeAt.UnixMilli() != old.StatedAgeAt.UnixMilli()},
		{"phone", p.Phone != old.Phone},
		{"address", p.Address != old.Address},
		{"village", p.Village != old.Village},
		{"abha_number", p.ABHANumber != old.ABHANumber},
		{"abha_address", p.ABHAAddress != old.ABHAAddress},
		{"consent", consent != ""},
	} {
		if f.changed {
			changed = append(changed, f.name)
		}
	}
	p.LocalID, p.CreatedAt = old.LocalID, old.CreatedAt
	if len(changed) == 0 {
		p.UpdatedAt, p.ClockSuspect, p.Revision = old.UpdatedAt, old.ClockSuspect, old.Revision
		return nil
	}

	var statedAge, statedAt, consentAt any
	if p.BirthDate == "" {
		statedAge, statedAt = p.StatedAge, p.StatedAgeAt.UnixMilli()
	}
	if !p.ConsentAt.IsZero() {
		consentAt = p.ConsentAt.UnixMilli()
	}
	rev := tx.NextSeq()
	res, err := tx.exec(`UPDATE patients SET abha_number = ?, abha_address = ?, name = ?, gender = ?, birth_date = ?,
		stated_age = ?, stated_age_at = ?, phone = ?, address = ?, village = ?, consent_link = ?, consent_at = ?,
		consent_by = ?, updated_at = ?, node_seq = ?, clock_suspect = max(clock_suspect, ?)
		WHERE id = ? AND node_seq = ?`,
		nullString(p.ABHANumber), nullString(p.ABHAAddress), p.Name, p.Gender, nullString(p.BirthDate), statedAge, statedAt,
		nullString(p.Phone), p.Address, p.Village, p.ConsentLink, consentAt, nullString(p.ConsentBy), tx.Now(), rev,
		tx.Suspect(), p.ID, old.Revision)
	if err != nil {
		return fmt.Errorf("update patient: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("update patient %s: %w", p.ID, ErrStale)
	}
	p.UpdatedAt, p.ClockSuspect, p.Revision = tx.now, old.ClockSuspect || tx.suspect, rev
	if err := indexPatient(tx, p, true); err != nil {
		return fmt.Errorf("index patient for search: %w", err)
	}

	if err := tx.audit(ActionPatientUpdate, "patient", p.ID, p.ID, "fields="+strings.Join(changed, ",")); err != nil {
		return err
	}
	if abhaChanged {
		var parts []string
		for _, f := range []struct{ name, now, was string }{
			{"abha_number", p.ABHANumber, old.ABHANumber},
			{"abha_address", p.ABHAAddress, old.ABHAAddress},
		} {
			switch {
			case f.now == f.was:
			case f.was == "":
				parts = append(parts, f.name+"=set")
			case f.now == "":
				parts = append(parts, f.name+"=removed")
			default:
				parts = append(parts, f.name+"=changed")
			}
		}
		if err := tx.audit(ActionPatientABHAChange, "patient", p.ID, p.ID, strings.Join(parts, " ")); err != nil {
			return err
		}
	}
	if consent != "" {
		if err := tx.audit(ActionPatientConsent, "patient", p.ID, p.ID, "consent="+consent); err != nil {
			return err
		}
	}
	return nil
}
