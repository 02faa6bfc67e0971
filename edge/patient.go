package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Patient is a person registered at the facility.
type Patient struct {
	ID      string `json:"id"`
	LocalID string `json:"local_id"` // short facility number written on the OPD slip, e.g. P-000123

	// ABHA identity, both optional.
	ABHANumber  string `json:"abha_number,omitempty"` // 14 digits, no dashes
	ABHAAddress string `json:"abha_address,omitempty"`

	Name   string `json:"name"`
	Gender string `json:"gender"` // M, F, O (other), U (unknown)
	// Either BirthDate, or StatedAge (years) as told at StatedAgeAt.
	BirthDate   string    `json:"birth_date,omitempty"` // YYYY-MM-DD
	StatedAge   int       `json:"stated_age,omitempty"`
	StatedAgeAt time.Time `json:"stated_age_at,omitzero"`
	Phone       string    `json:"phone,omitempty"`
	Address     string    `json:"address,omitempty"`
	Village     string    `json:"village,omitempty"`

	// Consent to link this facility's records to the ABHA, recorded explicitly.
	ConsentLink bool      `json:"consent_link"`
	ConsentAt   time.Time `json:"consent_at,omitzero"`
	ConsentBy   string    `json:"consent_by,omitempty"`

	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	ClockSuspect bool      `json:"clock_suspect"`
	// Revision is the node sequence number of the patient's last write. A
	// correction names the revision it was made from, so a change someone
	// else saved meanwhile is never overwritten silently (UpdatePatient).
	Revision int64 `json:"revision"`
}

var (
	phoneRe       = regexp.MustCompile(`^(\+91)?[6-9]\d{9}$`)
	abhaAddressRe = regexp.MustCompile(`^[^@\s]+@[a-z]+$`)
)

// NormalizeABHANumber strips spaces and dashes from an ABHA number as typed
// (XX-XXXX-XXXX-XXXX) and returns the 14 digits, or an error key.
func NormalizeABHANumber(s string) (string, error) {
	digits := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, s)
	if len(digits) != 14 || strings.Trim(digits, "0123456789") != "" {
		return "", errors.New("error.abha_length")
	}
	if !luhnValid(digits) {
		return "", errors.New("error.abha_checksum")
	}
	return digits, nil
}

// FormatABHANumber shows 14 digits as XX-XXXX-XXXX-XXXX.
func FormatABHANumber(d string) string {
	if len(d) != 14 {
		return d
	}
	return d[:2] + "-" + d[2:6] + "-" + d[6:10] + "-" + d[10:]
}

// luhnValid is the mod-10 check that ABHA numbers pass (reference/abdm.md: no
// NHA text states it, but every real number seen passes it; NHA's own app
// checks only the length, so a failure is a typing mistake in practice).
func luhnValid(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// Validate checks the patient's fields and normalizes the ABHA number, phone
// and gender. It returns FieldErrors keyed by field.
func (p *Patient) Validate() error {
	fe := FieldErrors{}
	p.Name = strings.TrimSpace(p.Name)
	switch {
	case p.Name == "":
		fe["name"] = "error.required"
	case !utf8.ValidString(p.Name) || len(p.Name) > 200 || strings.ContainsAny(p.Name, "\x00<>"):
		fe["name"] = "error.name_invalid"
	}
	p.Gender = strings.ToUpper(strings.TrimSpace(p.Gender))
	switch p.Gender {
	case "M", "F", "O", "U":
	default:
		fe["gender"] = "error.gender_invalid"
	}
	switch {
	case p.BirthDate != "":
		d, err := time.Parse(time.DateOnly, p.BirthDate)
		if err != nil || d.Year() < 1900 || d.After(time.Now().AddDate(0, 0, 1)) {
			fe["birth_date"] = "error.birth_date_invalid"
		}
	case p.StatedAge > 0 || (p.StatedAge == 0 && !p.StatedAgeAt.IsZero()):
		if p.StatedAge < 0 || p.StatedAge > 130 {
			fe["stated_age"] = "error.age_invalid"
		}
	default:
		fe["birth_date"] = "error.birth_date_or_age"
	}
	if p.ABHANumber != "" {
		n, err := NormalizeABHANumber(p.ABHANumber)
		if err != nil {
			fe["abha_number"] = err.Error()
		}
		p.ABHANumber = n
	}
	if p.ABHAAddress != "" {
		p.ABHAAddress = strings.ToLower(strings.TrimSpace(p.ABHAAddress))
		if !abhaAddressRe.MatchString(p.ABHAAddress) || len(p.ABHAAddress) > 100 {
			fe["abha_address"] = "error.abha_address_invalid"
		}
	}
	if p.Phone != "" {
		p.Phone = strings.NewReplacer(" ", "", "-", "").Replace(p.Phone)
		if !phoneRe.MatchString(p.Phone) {
			fe["phone"] = "error.phone_invalid"
		}
	}
	for field, v := range map[string]string{"address": p.Address, "village": p.Village} {
		if !utf8.ValidString(v) || len(v) > 500 || strings.ContainsRune(v, 0) {
			fe[field] = "error.text_invalid"
		}
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// CreatePatient registers a patient and audits it. The node assigns the ID
// and the local ID.
func (s *Store) CreatePatient(ctx context.Context, p *Patient) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := s.refuseIfCritical(); err != nil {
		return err
	}
	p.ID = NewID()
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		return createPatient(ctx, tx, p)
	})
}

func createPatient(ctx context.Context, tx *Tx, p *Patient) error {
	fe := FieldErrors{}
	for field, q := range map[string]string{
		"abha_number":  `SELECT count(*) FROM patients WHERE abha_number = ?`,
		"abha_address": `SELECT count(*) FROM patients WHERE abha_address = ?`,
	} {
		v := map[string]string{"abha_number": p.ABHANumber, "abha_address": p.ABHAAddress}[field]
		if v == "" {
			continue
		}
		var n int
		if err := tx.queryRow(q, v).Scan(&n); err != nil {
			return fmt.Errorf("check %s: %w", field, err)
		}
		if n > 0 {
			fe[field] = "error." + field + "_taken"
		}
	}
	if len(fe) > 0 {
		return fe
	}
	var n int64
	if err := tx.queryRow(`INSERT INTO meta (key, value) VALUES ('last_local_id', '1')
		ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING CAST(value AS INTEGER)`).Scan(&n); err != nil {
		return fmt.Errorf("number patient: %w", err)
	}
	p.LocalID = fmt.Sprintf("P-%06d", n)
	p.CreatedAt, p.UpdatedAt, p.ClockSuspect = tx.now, tx.now, tx.suspect
	if p.StatedAge > 0 && p.StatedAgeAt.IsZero() {
		p.StatedAgeAt = tx.now
	}
	if p.ConsentLink && p.ConsentAt.IsZero() {
		p.ConsentAt, p.ConsentBy = tx.now, tx.actor.String()
	}
	var statedAge, statedAt, consentAt any
	if p.BirthDate == "" {
		statedAge, statedAt = p.StatedAge, p.StatedAgeAt.UnixMilli()
	}
	if p.ConsentLink {
		consentAt = p.ConsentAt.UnixMilli()
	}
	p.Revision = tx.NextSeq()
	if _, err := tx.exec(`INSERT INTO patients (id, local_id, abha_number, abha_address, name, gender,
		birth_date, stated_age, stated_age_at, phone, address, village, consent_link, consent_at, consent_by,
		created_at, updated_at, node_seq, clock_suspect) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.LocalID, nullString(p.ABHANumber), nullString(p.ABHAAddress), p.Name, p.Gender, nullString(p.BirthDate),
		statedAge, statedAt, nullString(p.Phone), p.Address, p.Village, p.ConsentLink, consentAt, nullString(p.ConsentBy),
		tx.Now(), tx.Now(), p.Revision, tx.Suspect()); err != nil {
		return fmt.Errorf("create patient: %w", err)
	}
	return tx.audit(ActionPatientCreate, "patient", p.ID, p.ID, "")
}

const patientColumns = `id, local_id, coalesce(abha_number, ''), coalesce(abha_address, ''), name, gender,
	coalesce(birth_date, ''), coalesce(stated_age, 0), coalesce(stated_age_at, 0), coalesce(phone, ''), address, village,
	consent_link, coalesce(consent_at, 0), coalesce(consent_by, ''), created_at, updated_at, clock_suspect, node_seq`

func scanPatient(row interface{ Scan(...any) error }) (Patient, error) {
	var p Patient
	var statedAt, consentAt, created, updated int64
	err := row.Scan(&p.ID, &p.LocalID, &p.ABHANumber, &p.ABHAAddress, &p.Name, &p.Gender, &p.BirthDate, &p.StatedAge,
		&statedAt, &p.Phone, &p.Address, &p.Village, &p.ConsentLink, &consentAt, &p.ConsentBy, &created, &updated, &p.ClockSuspect,
		&p.Revision)
	if statedAt != 0 {
		p.StatedAgeAt = time.UnixMilli(statedAt)
	}
	if consentAt != 0 {
		p.ConsentAt = time.UnixMilli(consentAt)
	}
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return p, err
}

// Patient reads one patient and audits the read (invariant 7).
func (s *Store) Patient(ctx context.Context, id string) (Patient, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return Patient{}, err
	}
	p, err := scanPatient(s.readers.QueryRowContext(ctx, `SELECT `+patientColumns+` FROM patients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Patient{}, fmt.Errorf("patient %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Patient{}, fmt.Errorf("read patient: %w", err)
	}
	if err := s.auditRead(ctx, auditItem{ActionPatientRead, "patient", id, id, ""}); err != nil {
		return Patient{}, err
	}
	return p, nil
}

// reconcileCounters makes sure the local patient number counter is past every
// local ID in the table (a database restored or imported from elsewhere).
// It scans only when the counter is missing.
func (s *Store) reconcileCounters(ctx context.Context) error {
	var have int
	if err := s.writer.QueryRowContext(ctx, `SELECT count(*) FROM meta WHERE key = 'last_local_id'`).Scan(&have); err != nil || have == 1 {
		return err
	}
	_, err := s.writer.ExecContext(ctx, `INSERT INTO meta (key, value)
		SELECT 'last_local_id', coalesce(max(CAST(substr(local_id, 3) AS INTEGER)), 0) FROM patients`)
	return err
}
