package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ActionSettingsSave is the audit action of saving facility settings.
const ActionSettingsSave = "facility.settings"

// Facility is the facility's identity, as the config file sets it.
type Facility struct {
	Name     string `json:"name"`
	HFRID    string `json:"hfr_id"`
	District string `json:"district"`
	State    string `json:"state"`
}

// Facility returns the facility's identity; empty fields when none was set.
func (s *Store) Facility(ctx context.Context) (Facility, error) {
	var f Facility
	err := s.readers.QueryRowContext(ctx, `SELECT name, hfr_id, district, state FROM facility WHERE id = 1`).
		Scan(&f.Name, &f.HFRID, &f.District, &f.State)
	if errors.Is(err, sql.ErrNoRows) {
		return f, nil
	}
	return f, err
}

// Defaults of the facility settings.
const (
	DefaultIdleLockMinutes = 5
	DefaultSessionHours    = 12
)

// FacilitySettings are what an admin sets for the facility from a tablet.
type FacilitySettings struct {
	// Printed under the facility name on slips and summaries.
	Address string `json:"address"`
	Phone   string `json:"phone"`
	// SlipFooter is printed at the foot of prescription slips.
	SlipFooter string `json:"slip_footer"`
	// IdleLockMinutes locks a tablet left alone this long (1 to 60).
	IdleLockMinutes int `json:"idle_lock_minutes"`
	// SessionHours signs a tablet out this long after sign-in (1 to 24).
	SessionHours int `json:"session_hours"`
}

// DefaultFacilitySettings are the settings of a new node.
func DefaultFacilitySettings() FacilitySettings {
	return FacilitySettings{IdleLockMinutes: DefaultIdleLockMinutes, SessionHours: DefaultSessionHours}
}

// Validate checks the settings.
func (f *FacilitySettings) Validate() error {
	fe := FieldErrors{}
	for field, v := range map[string]string{"address": f.Address, "phone": f.Phone, "slip_footer": f.SlipFooter} {
		if !utf8.ValidString(v) || len(v) > 500 || strings.ContainsRune(v, 0) {
			fe[field] = "error.text_invalid"
		}
	}
	if f.IdleLockMinutes < 1 || f.IdleLockMinutes > 60 {
		fe["idle_lock_minutes"] = "error.idle_lock_invalid"
	}
	if f.SessionHours < 1 || f.SessionHours > 24 {
		fe["session_hours"] = "error.session_hours_invalid"
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// FacilitySettings returns the saved settings, defaults for those never saved.
func (s *Store) FacilitySettings(ctx context.Context) (FacilitySettings, error) {
	f := DefaultFacilitySettings()
	rows, err := s.readers.QueryContext(ctx, `SELECT key, value FROM settings`)
	if err != nil {
		return f, fmt.Errorf("read settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return f, err
		}
		switch k {
		case "address":
			f.Address = v
		case "phone":
			f.Phone = v
		case "slip_footer":
			f.SlipFooter = v
		case "idle_lock_minutes":
			if n, err := strconv.Atoi(v); err == nil {
				f.IdleLockMinutes = n
			}
		case "session_hours":
			if n, err := strconv.Atoi(v); err == nil {
				f.SessionHours = n
			}
		}
	}
	return f, rows.Err()
}

// SaveFacilitySettings validates and saves the settings, audited.
func (s *Store) SaveFacilitySettings(ctx context.Context, f FacilitySettings) error {
	f.Address, f.Phone, f.SlipFooter = strings.TrimSpace(f.Address), strings.TrimSpace(f.Phone), strings.TrimSpace(f.SlipFooter)
	if err := f.Validate(); err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		for k, v := range map[string]string{"address": f.Address, "phone": f.Phone, "slip_footer": f.SlipFooter,
			"idle_lock_minutes": strconv.Itoa(f.IdleLockMinutes), "session_hours": strconv.Itoa(f.SessionHours)} {
			if _, err := tx.exec(`INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
				updated_by = excluded.updated_by`, k, v, tx.Now(), tx.actor.String()); err != nil {
				return fmt.Errorf("save setting %s: %w", k, err)
			}
		}
		return tx.audit(ActionSettingsSave, "facility", "1", "", "")
	})
}
