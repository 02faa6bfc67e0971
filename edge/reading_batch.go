package edge

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// A batch of device readings is written table by table, many rows to an
// INSERT, rather than reading by reading: each statement SQLite runs opens and
// closes a cursor on its table and on every index of it, and database/sql and
// the driver add their own cost per statement, which together cost more than
// the rows themselves. Within the batch every reading keeps what it had when
// stored alone: its row, its raw frame (while disk allows), and when bound to
// a patient its observation, its outbox row (same transaction, invariant 2)
// and an audit entry naming it.

// maxInsertRows is the most rows one INSERT carries. Batches are cut into
// power-of-two chunks up to it, so a handful of prepared statements per table
// serve every batch size. 64 rows of the widest table (readings, 14 values a
// row) stay far below SQLite's limit on bound parameters.
const (
	maxInsertShift = 6
	maxInsertRows  = 1 << maxInsertShift
)

// rowsInsert is one INSERT of many rows, in every chunk size. What every row
// of a statement shares (the transaction's time and clock verdict, a kind of
// document) is bound once per statement, and node sequence numbers are
// counted from one base: binding a value costs the driver a call and often
// an allocation, about as much as SQLite's work for it
// (BenchmarkIngest/GroupCommit: 46.2 -> 43.9 us of CPU per reading).
type rowsInsert struct {
	width  int                        // values bound per row
	shared []string                   // names of the values bound once per statement, in binding order
	sql    [maxInsertShift + 1]string // sql[k] inserts 1<<k rows
}

// newRowsInsert builds the statement. head is the INSERT up to VALUES; row
// is one row: first a `?` for each value of its own, then what it shares
// with the other rows: literals, `:name` parameters bound once, and `{i}`,
// the row's position in the statement (as in `:seq + {i}`); tail follows
// the rows (an ON CONFLICT clause).
func newRowsInsert(head, row, tail string) *rowsInsert {
	m := &rowsInsert{width: strings.Count(row, "?")}
	if i := strings.IndexByte(row, ':'); i >= 0 && strings.Contains(row[i:], "?") {
		panic("rowsInsert: a row's own values must come before its shared ones: " + row)
	}
	// Shared values become numbered parameters ?N, N counting on from the
	// first row's own: the driver finds those by position, whereas a named
	// one makes it index every argument of the statement by name.
	var numbered strings.Builder
	for rest := row; ; {
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			numbered.WriteString(rest)
			break
		}
		numbered.WriteString(rest[:i])
		rest = rest[i+1:]
		end := strings.IndexFunc(rest, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r == '_') })
		name := rest[:end]
		rest = rest[end:]
		j := slices.Index(m.shared, name)
		if j < 0 {
			j = len(m.shared)
			m.shared = append(m.shared, name)
		}
		numbered.WriteString("?" + strconv.Itoa(m.width+1+j))
	}
	for k := range m.sql {
		var b strings.Builder
		b.WriteString(head + " VALUES ")
		for i := range 1 << k {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strings.ReplaceAll(numbered.String(), "{i}", strconv.Itoa(i)))
		}
		m.sql[k] = b.String() + tail
	}
	return m
}

// exec inserts n rows. row appends the values of row i to args; shared
// returns the shared values of a statement of n rows, in the order of
// m.shared. done, when not nil, is told how many rows each chunk [lo, hi)
// actually inserted (less than hi-lo when ON CONFLICT skipped some).
func (m *rowsInsert) exec(tx *Tx, n int, row func(i int, args []any) []any, shared func(n int) []any, done func(lo, hi int, inserted int64) error) error {
	for lo := 0; lo < n; {
		k := bits.Len(uint(min(n-lo, maxInsertRows))) - 1
		hi := lo + 1<<k
		// SQLite numbers parameters as they first appear: the first row's
		// own, then the shared ones, then the other rows'.
		vals := row(lo, tx.vals[:0])
		nv := tx.args[:0]
		for _, v := range vals {
			nv = append(nv, driver.NamedValue{Ordinal: len(nv) + 1, Value: driverValue(v)})
		}
		for _, v := range shared(hi - lo) {
			nv = append(nv, driver.NamedValue{Ordinal: len(nv) + 1, Value: driverValue(v)})
		}
		for i := lo + 1; i < hi; i++ {
			vals = row(i, vals[:0])
			for _, v := range vals {
				nv = append(nv, driver.NamedValue{Ordinal: len(nv) + 1, Value: driverValue(v)})
			}
		}
		tx.vals, tx.args = vals, nv
		res, err := tx.execRaw(m.sql[k], nv)
		clear(vals)
		clear(nv)
		if err != nil {
			return err
		}
		if done != nil {
			inserted, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if err := done(lo, hi, inserted); err != nil {
				return err
			}
		}
		lo = hi
	}
	return nil
}

// seqs hands out n consecutive node sequence numbers and returns the first.
func (tx *Tx) seqs(n int) int64 {
	first := tx.seq + 1
	tx.seq += int64(n)
	return first
}

var (
	insertReadings = newRowsInsert(`INSERT INTO readings (id, device_id, message_id, patient_id, patient_ref, observation_id,
		loinc, value, value_text, unit, effective_at, state, reject_reason, raw_message_id, received_at, node_seq, clock_suspect)`,
		`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, :now, :seq + {i}, :suspect)`,
		` ON CONFLICT (device_id, message_id) WHERE message_id IS NOT NULL DO NOTHING`)
	insertRawFrames = newRowsInsert(`INSERT INTO device_messages (id, device_id, codec, raw, received_at)`,
		`(?, ?, ?, ?, :now)`, "")
	insertObservations = newRowsInsert(`INSERT INTO observations (id, patient_id, loinc, value, value_text, unit, effective_at,
		device_id, encounter_id, source, created_at, node_seq, clock_suspect)`,
		`(?, ?, ?, ?, ?, ?, ?, ?, NULL, 'device', :now, :seq + {i}, :suspect)`, "")
)

// saveReadings writes a batch of readings in tx and reports in dup which
// were replays of a device message already stored (they change nothing).
// It returns the readings that became observations, which the caller must
// audit (auditObservations) before commit. An error fails the whole batch;
// the caller then retries each reading alone so that only the bad one fails.
func saveReadings(tx *Tx, rs []*Reading, dup []bool) (observed []*Reading, err error) {
	keepRaw := tx.store.keepRawFrames()
	resolve := patientResolver{tx: tx}
	patients := make([]any, len(rs)) // nil or the patient ID, as bound to the row
	obs := make([]any, len(rs))
	raws := make([]any, len(rs))
	for i, r := range rs {
		dup[i] = false
		patientID := r.PatientID
		if patientID == "" {
			var err error
			if patientID, err = resolve.patientOf(r); err != nil {
				return nil, err
			}
		}
		r.ID, r.ObservationID = NewID(), ""
		patients[i], obs[i], raws[i] = nil, nil, nil
		if patientID != "" {
			patients[i] = patientID
		}
		if r.Rejected == "" && patientID != "" {
			r.ObservationID = NewID()
			obs[i] = r.ObservationID
		}
		if keepRaw && len(r.Raw) > 0 {
			id, err := tx.nextRawFrameID()
			if err != nil {
				return nil, err
			}
			raws[i] = id
		}
	}

	// The observations before their readings: readings.observation_id is a
	// deferred foreign key, and an observation written after its reading
	// would first count as a violation and then be looked up in readings
	// to uncount it.
	var observedPatients []string
	for i, r := range rs {
		if obs[i] != nil {
			observed = append(observed, r)
			observedPatients = append(observedPatients, patients[i].(string))
		}
	}
	if err := insertObservationsOf(tx, observed, observedPatients); err != nil {
		return nil, err
	}

	// Then the readings: ON CONFLICT skips a replayed message ID, also one
	// that appears twice in this batch, and the chunk's count of inserted
	// rows tells whether any was skipped. Only then is it worth asking which.
	now, suspect := tx.Now(), tx.Suspect()
	err = insertReadings.exec(tx, len(rs), func(i int, args []any) []any {
		r := rs[i]
		state := "unassigned"
		switch {
		case r.Rejected != "":
			state = "rejected"
		case patients[i] != nil:
			state = "assigned"
		}
		return append(args, r.ID, r.DeviceID, nullString(r.MessageID), patients[i], r.PatientRef, obs[i], r.LOINC, r.Value,
			r.ValueText, r.Unit, r.EffectiveAt.UnixMilli(), state, r.Rejected, raws[i])
	}, func(n int) []any {
		return []any{now, tx.seqs(n), suspect}
	}, func(lo, hi int, inserted int64) error {
		if inserted == int64(hi-lo) {
			return nil
		}
		for i := lo; i < hi; i++ {
			var one int
			err := tx.queryRow(`SELECT 1 FROM readings WHERE id = ?`, rs[i].ID).Scan(&one)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				dup[i] = true
			case err != nil:
				return fmt.Errorf("look for replayed readings: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("save readings: %w", err)
	}

	// A replay's frame is already kept with the first copy, and a replay
	// becomes no second observation.
	var frames []*Reading
	var frameIDs []any
	observed = observed[:0]
	for i, r := range rs {
		if dup[i] {
			if obs[i] != nil {
				if _, err := tx.exec(`DELETE FROM observations WHERE id = ?`, r.ObservationID); err != nil {
					return nil, fmt.Errorf("drop the observation of a replay: %w", err)
				}
			}
			r.ID, r.ObservationID = "", ""
			continue
		}
		if raws[i] != nil {
			frames = append(frames, r)
			frameIDs = append(frameIDs, raws[i])
		}
		if obs[i] != nil {
			r.PatientID = patients[i].(string)
			observed = append(observed, r)
		}
	}
	if err := insertRawFrames.exec(tx, len(frames), func(i int, args []any) []any {
		return append(args, frameIDs[i], frames[i].DeviceID, frames[i].Codec, frames[i].Raw)
	}, func(int) []any {
		return []any{now}
	}, nil); err != nil {
		return nil, fmt.Errorf("save raw frames: %w", err)
	}
	if err := appendObservationOutbox(tx, observed); err != nil {
		return nil, err
	}
	return observed, nil
}

// observeReadings turns assigned readings into observations, each with its
// outbox row. The caller audits them (auditObservations).
func observeReadings(tx *Tx, rs []*Reading) error {
	patients := make([]string, len(rs))
	for i, r := range rs {
		patients[i] = r.PatientID
	}
	if err := insertObservationsOf(tx, rs, patients); err != nil {
		return err
	}
	return appendObservationOutbox(tx, rs)
}

// insertObservationsOf writes the observations of readings, reading i's for
// patient i.
func insertObservationsOf(tx *Tx, rs []*Reading, patients []string) error {
	now, suspect := tx.Now(), tx.Suspect()
	if err := insertObservations.exec(tx, len(rs), func(i int, args []any) []any {
		r := rs[i]
		return append(args, r.ObservationID, patients[i], r.LOINC, r.Value, r.ValueText, r.Unit,
			r.EffectiveAt.UnixMilli(), r.DeviceID)
	}, func(n int) []any {
		return []any{now, tx.seqs(n), suspect}
	}, nil); err != nil {
		return fmt.Errorf("save observations: %w", err)
	}
	return nil
}

// appendObservationOutbox adds the outbox rows of observations made of
// readings (invariant 2).
func appendObservationOutbox(tx *Tx, rs []*Reading) error {
	return tx.appendOutboxRows(DocWellness, LaneBulk, "observation", 1, len(rs), func(i int) (string, string) {
		return rs[i].PatientID, rs[i].ObservationID
	})
}

// auditObservations audits the observations made of readings in this
// transaction: one entry per patient and per party that wrote (the person
// assigning, or else each device), naming every such observation.
func auditObservations(tx *Tx, rs []*Reading) error {

	type audited struct {
		actor     Actor
		patientID string
		ids       []string
	}
	var groups []*audited
	for _, r := range rs {
		actor := tx.actor
		if actor.Kind == "" || actor.Kind == ActorDevice {
			actor = Actor{Kind: ActorDevice, ID: r.DeviceID}
		}
		var g *audited
		for _, h := range groups {
			if h.actor == actor && h.patientID == r.PatientID {
				g = h
				break
			}
		}
		if g == nil {
			g = &audited{actor: actor, patientID: r.PatientID}
			groups = append(groups, g)
		}
		g.ids = append(g.ids, r.ObservationID)
	}
	actor := tx.actor
	defer func() { tx.actor = actor }()
	for _, g := range groups {
		tx.actor = g.actor
		if err := tx.audit(ActionReadingStore, "observation", strings.Join(g.ids, ","), g.patientID, ""); err != nil {
			return err
		}
	}
	return nil
}

// nextRawFrameID hands out the ID of the next raw frame. IDs are given
// before the frames are written, so that a reading can name its frame and a
// replay's frame is never written at all.
func (tx *Tx) nextRawFrameID() (int64, error) {
	if tx.rawFrameID == 0 {
		if err := tx.queryRow(`SELECT coalesce(max(id), 0) FROM device_messages`).Scan(&tx.rawFrameID); err != nil {
			return 0, fmt.Errorf("number raw frames: %w", err)
		}
	}
	tx.rawFrameID++
	return tx.rawFrameID, nil
}

// patientResolver finds the patients of a batch's readings that name none,
// asking the database once per identifier and once per device.
type patientResolver struct {
	tx       *Tx
	byRef    map[string]string
	byDevice map[string]string
}

// patientOf finds the patient of a reading that names none: by the
// identifier the message carried, else by an unexpired binding of its
// device. An identifier that matches no one resolves to nobody, binding or
// not. It returns "" for nobody.
func (p *patientResolver) patientOf(r *Reading) (string, error) {
	var id string
	var err error
	if ref := strings.TrimSpace(r.PatientRef); ref != "" {
		if id, ok := p.byRef[ref]; ok {
			return id, nil
		}
		abha, _ := NormalizeABHANumber(ref)
		err = p.tx.queryRow(`SELECT id FROM patients WHERE local_id = ? OR abha_number = ? LIMIT 1`, ref, abha).Scan(&id)
		if err == nil || errors.Is(err, sql.ErrNoRows) {
			if p.byRef == nil {
				p.byRef = map[string]string{}
			}
			p.byRef[ref], err = id, nil
		}
	} else {
		if id, ok := p.byDevice[r.DeviceID]; ok {
			return id, nil
		}
		err = p.tx.queryRow(`SELECT patient_id FROM device_bindings WHERE device_id = ? AND expires_at > ?`, r.DeviceID, p.tx.Now()).Scan(&id)
		if err == nil || errors.Is(err, sql.ErrNoRows) {
			if p.byDevice == nil {
				p.byDevice = map[string]string{}
			}
			p.byDevice[r.DeviceID], err = id, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("resolve patient of reading: %w", err)
	}
	return id, nil
}
