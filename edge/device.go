package edge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Device kinds, transports and codecs the registry accepts.
var (
	DeviceKinds      = []string{"bp-monitor", "pulse-oximeter", "thermometer", "scale", "glucometer", "analyzer", "monitor"}
	DeviceTransports = []string{"serial", "mqtt", "mllp"}
	DeviceCodecs     = []string{"auto", "hl7", "astm", "senml", "json", "line"}
)

// Device is a registered medical device.
type Device struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Transport string `json:"transport"`
	Codec     string `json:"codec"`
	// Settings holds transport and codec settings as JSON (port, baud,
	// parity, line pattern, strict or lenient...), read by the devices package.
	Settings string `json:"settings"`
	Enabled  bool   `json:"enabled"`

	// What the device has done, flushed by the devices package.
	LastSeenAt time.Time `json:"last_seen_at,omitzero"`
	Frames     int64     `json:"frames"`
	Readings   int64     `json:"readings"`
	Errors     int64     `json:"errors"`
	Status     string    `json:"status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	HasSecret  bool      `json:"has_secret"`
}

var deviceNameRe = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,63}$`)

// Validate checks the device's fields.
func (d *Device) Validate() error {
	fe := FieldErrors{}
	if !deviceNameRe.MatchString(d.Name) {
		fe["name"] = "error.device_name_invalid"
	}
	if !slices.Contains(DeviceKinds, d.Kind) {
		fe["kind"] = "error.device_kind_invalid"
	}
	if !slices.Contains(DeviceTransports, d.Transport) {
		fe["transport"] = "error.device_transport_invalid"
	}
	if !slices.Contains(DeviceCodecs, d.Codec) {
		fe["codec"] = "error.device_codec_invalid"
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// CreateDevice registers a device.
func (s *Store) CreateDevice(ctx context.Context, d *Device) error {
	if d.Codec == "" {
		d.Codec = "auto"
	}
	if d.Settings == "" {
		d.Settings = "{}"
	}
	if err := d.Validate(); err != nil {
		return err
	}
	if d.ID == "" {
		d.ID = NewID()
	}
	return s.write(ctx, func(tx *Tx) error {
		if _, err := tx.exec(`INSERT INTO devices (id, name, kind, transport, codec, settings, enabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)`, d.ID, d.Name, d.Kind, d.Transport, d.Codec, d.Settings, tx.Now(), tx.Now()); err != nil {
			if sqliteCode(err) == 19 {
				return FieldErrors{"name": "error.device_name_taken"}
			}
			return fmt.Errorf("create device: %w", err)
		}
		d.Enabled = true
		if tx.actor.Kind == "" {
			return nil
		}
		return tx.audit("device.create", "device", d.ID, "", "kind="+d.Kind+" transport="+d.Transport)
	})
}

const deviceColumns = `id, name, kind, transport, codec, settings, enabled, coalesce(last_seen_at, 0), frames, readings,
	errors, status, last_error, secret_hash IS NOT NULL`

func scanDevice(row interface{ Scan(...any) error }) (Device, error) {
	var d Device
	var seen int64
	err := row.Scan(&d.ID, &d.Name, &d.Kind, &d.Transport, &d.Codec, &d.Settings, &d.Enabled, &seen, &d.Frames,
		&d.Readings, &d.Errors, &d.Status, &d.LastError, &d.HasSecret)
	if seen != 0 {
		d.LastSeenAt = time.UnixMilli(seen)
	}
	return d, err
}

// Devices lists the registered devices, enabled ones first, by name.
func (s *Store) Devices(ctx context.Context) ([]Device, error) {
	return listDevices(ctx, s.readers)
}

func listDevices(ctx context.Context, q querier) ([]Device, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY enabled DESC, name`)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Device returns the device with this ID or name.
func (s *Store) Device(ctx context.Context, idOrName string) (Device, error) {
	d, err := scanDevice(s.readers.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = ? OR name = ?`, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("device %q: %w", idOrName, ErrNotFound)
	}
	return d, err
}

// RemoveDevice takes a device out of service. Its readings stay, so the
// record of what it measured is never lost.
func (s *Store) RemoveDevice(ctx context.Context, idOrName string) error {
	return s.write(ctx, func(tx *Tx) error {
		var id string
		err := tx.queryRow(`UPDATE devices SET enabled = 0, secret_hash = NULL, updated_at = ? WHERE (id = ? OR name = ?) AND enabled = 1
			RETURNING id`, tx.Now(), idOrName, idOrName).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("device %q: %w", idOrName, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("remove device: %w", err)
		}
		if _, err := tx.exec(`DELETE FROM device_bindings WHERE device_id = ?`, id); err != nil {
			return err
		}
		if tx.actor.Kind == "" {
			return nil
		}
		return tx.audit("device.remove", "device", id, "", "")
	})
}

// NewDeviceSecret gives a device a new random token (for MQTT) and returns it
// once; only its hash is kept.
func (s *Store) NewDeviceSecret(ctx context.Context, idOrName string) (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	err := s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE devices SET secret_hash = ?, updated_at = ? WHERE (id = ? OR name = ?) AND enabled = 1`,
			sum[:], tx.Now(), idOrName, idOrName)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("device %q: %w", idOrName, ErrNotFound)
		}
		return nil
	})
	return token, err
}

// AuthenticateDevice returns the enabled device whose name and token match,
// or ErrNotFound.
func (s *Store) AuthenticateDevice(ctx context.Context, name, token string) (Device, error) {
	var hash []byte
	d, err := scanDevice(s.readers.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE name = ? AND enabled = 1`, name))
	if err == nil {
		err = s.readers.QueryRowContext(ctx, `SELECT secret_hash FROM devices WHERE id = ?`, d.ID).Scan(&hash)
	}
	sum := sha256.Sum256([]byte(token))
	if err != nil || len(hash) != len(sum) || subtle.ConstantTimeCompare(hash, sum[:]) != 1 {
		return Device{}, ErrNotFound
	}
	return d, nil
}

// DeviceActivity is what a device did since the last flush.
type DeviceActivity struct {
	Frames, Readings, Errors int64
	LastSeen                 time.Time
	Status                   string // plain sentence, e.g. "listening on /dev/ttyUSB0"
	LastError                string // plain sentence with the fix; never PHI
}

// RecordDeviceActivity adds counters and sets status; the devices package
// calls it every few seconds per device, not per frame.
func (s *Store) RecordDeviceActivity(ctx context.Context, id string, a DeviceActivity) error {
	return s.write(ctx, func(tx *Tx) error {
		var seen any
		if !a.LastSeen.IsZero() {
			seen = a.LastSeen.UnixMilli()
		}
		_, err := tx.exec(`UPDATE devices SET frames = frames + ?, readings = readings + ?, errors = errors + ?,
			last_seen_at = coalesce(?, last_seen_at), status = ?, last_error = CASE WHEN ? = '' THEN last_error ELSE ? END
			WHERE id = ?`, a.Frames, a.Readings, a.Errors, seen, a.Status, a.LastError, a.LastError, id)
		return err
	})
}

// DefaultBindingTime is how long "take from device" binds a device to a patient.
const DefaultBindingTime = 5 * time.Minute

// BindDevice makes the device's readings that name no patient belong to this
// patient until the binding expires or is replaced. It is audited.
func (s *Store) BindDevice(ctx context.Context, deviceID, patientID string, d time.Duration) error {
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		if _, err := tx.exec(`INSERT INTO device_bindings (device_id, patient_id, bound_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET patient_id = excluded.patient_id,
			bound_by = excluded.bound_by, created_at = excluded.created_at, expires_at = excluded.expires_at`,
			deviceID, patientID, tx.actor.String(), tx.Now(), tx.Now()+d.Milliseconds()); err != nil {
			if sqliteCode(err) == 19 {
				return fmt.Errorf("bind device: %w", ErrNotFound)
			}
			return fmt.Errorf("bind device: %w", err)
		}
		return tx.audit("device.bind", "device", deviceID, patientID, fmt.Sprintf("for=%s", d))
	})
}

// UnbindDevice ends a device's binding.
func (s *Store) UnbindDevice(ctx context.Context, deviceID string) error {
	return s.write(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM device_bindings WHERE device_id = ?`, deviceID)
		return err
	})
}

// AssignReading gives an unassigned reading from the inbox to a patient: it
// becomes an observation with its outbox row, audited as the person's act.
func (s *Store) AssignReading(ctx context.Context, readingID, patientID string) error {
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		r := Reading{ID: readingID, PatientID: patientID, ObservationID: NewID()}
		var eff int64
		err := tx.queryRow(`SELECT device_id, loinc, coalesce(value, 0), value_text, unit, effective_at FROM readings
			WHERE id = ? AND state = 'unassigned'`, readingID).Scan(&r.DeviceID, &r.LOINC, &r.Value, &r.ValueText, &r.Unit, &eff)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("unassigned reading %s: %w", readingID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		r.EffectiveAt = time.UnixMilli(eff)
		if _, err := tx.exec(`UPDATE readings SET state = 'assigned', patient_id = ?, observation_id = ? WHERE id = ?`,
			patientID, r.ObservationID, readingID); err != nil {
			if sqliteCode(err) == 19 {
				return FieldErrors{"patient_id": "error.patient_unknown"}
			}
			return err
		}
		if err := observeReadings(tx, []*Reading{&r}); err != nil {
			return err
		}
		return auditObservations(tx, []*Reading{&r})
	})
}

// DiscardReading drops an unassigned reading from the inbox, keeping it with
// the reason (a test measurement, a stranger's finger).
func (s *Store) DiscardReading(ctx context.Context, readingID, reason string) error {
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		res, err := tx.exec(`UPDATE readings SET state = 'discarded', reject_reason = ? WHERE id = ? AND state = 'unassigned'`, reason, readingID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("unassigned reading %s: %w", readingID, ErrNotFound)
		}
		return tx.audit("reading.discard", "reading", readingID, "", "")
	})
}

// SaveRawFrame keeps a frame that yielded no reading (malformed, unknown
// codes), with the problem, for a technician to inspect. Frames are the
// first thing dropped when the disk runs low, so it does nothing then.
func (s *Store) SaveRawFrame(ctx context.Context, deviceID, codec string, raw []byte, problem string) error {
	if !s.keepRawFrames() || len(raw) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO device_messages (device_id, received_at, codec, raw, error) VALUES (?, ?, ?, ?, ?)`,
			deviceID, tx.Now(), codec, raw, problem)
		return err
	})
}
