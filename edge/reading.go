package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Reading is one value a device measured, already decoded and normalized by
// the devices package.
type Reading struct {
	ID        string `json:"id"`
	DeviceID  string `json:"device_id"`
	MessageID string `json:"message_id,omitempty"` // the device's own ID; a replay of it is stored once
	// PatientID binds the reading to a patient. Empty: PatientRef, then an
	// active device binding decide; failing both the reading waits in the
	// unassigned inbox for a person to assign or discard. Never a guess.
	PatientID string `json:"patient_id,omitempty"`
	// PatientRef is the patient identifier the message carried (HL7 PID-3,
	// ASTM P-3, an MQTT field): a local ID such as P-000123 or an ABHA number.
	// One that matches no patient leaves the reading unassigned.
	PatientRef  string    `json:"patient_ref,omitempty"`
	LOINC       string    `json:"loinc"`
	Value       float64   `json:"value"`
	ValueText   string    `json:"value_text"`
	Unit        string    `json:"unit"`
	EffectiveAt time.Time `json:"effective_at"`
	// Rejected, when set, is why the value is impossible; the reading is kept
	// as rejected and never becomes an observation.
	Rejected string `json:"rejected,omitempty"`

	// Raw is the frame as received, kept for inspection while disk allows.
	Raw   []byte `json:"-"`
	Codec string `json:"codec,omitempty"`

	// Set when stored.
	ObservationID string `json:"observation_id,omitempty"`
}

// SaveReading hands a reading to the group-commit writer and returns once the
// transaction holding it has committed: only then may the device be
// acknowledged (invariant 1). ErrDuplicateReading means the same device
// message was stored before; it is durable, so acknowledge it again.
//
// If ctx ends first, SaveReading returns ctx.Err() and the reading may or may
// not be stored: do not acknowledge it; the device's retry is deduplicated by
// its message ID.
func (s *Store) SaveReading(ctx context.Context, r *Reading) error {
	if r.DeviceID == "" || !loincRe.MatchString(r.LOINC) || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		return fmt.Errorf("save reading: device, a LOINC code and a finite value are required")
	}
	if r.EffectiveAt.IsZero() {
		return fmt.Errorf("save reading: effective time is required")
	}
	if err := s.refuseIfCritical(); err != nil {
		return err
	}
	return s.ingest.submit(ctx, r)
}

// SaveReadings saves the readings of one device message and returns once all
// have committed, usually in one batch: a BP monitor's systolic, diastolic
// and pulse are acknowledged together. It returns the first error that is
// not ErrDuplicateReading; duplicates are durable and need no retry.
func (s *Store) SaveReadings(ctx context.Context, rs []*Reading) error {
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.SaveReading(ctx, r)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, ErrDuplicateReading) {
			return err
		}
	}
	return nil
}

// ingestQueue is the group-commit writer. Callers block on their own done
// channel; one goroutine commits whatever has queued up, up to BatchMax
// readings or BatchDelay after the first, in one transaction and one fsync.
type ingestQueue struct {
	s    *Store
	reqs chan *ingestReq

	mu      sync.RWMutex
	stopped bool
	done    chan struct{}

	batches, readings atomic.Int64
}

// IngestStats counts group commits: how many batches committed how many readings.
type IngestStats struct {
	Batches  int64 `json:"batches"`
	Readings int64 `json:"readings"`
}

// IngestStats reports the group-commit writer's counters since Open.
func (s *Store) IngestStats() IngestStats {
	return IngestStats{Batches: s.ingest.batches.Load(), Readings: s.ingest.readings.Load()}
}

type ingestReq struct {
	r    *Reading
	err  error
	done chan struct{}
}

var ingestReqPool = sync.Pool{New: func() any { return &ingestReq{done: make(chan struct{}, 1)} }}

func newIngestQueue(s *Store) *ingestQueue {
	return &ingestQueue{s: s, reqs: make(chan *ingestReq, s.BatchMax*4), done: make(chan struct{})}
}

func (q *ingestQueue) submit(ctx context.Context, r *Reading) error {
	req := ingestReqPool.Get().(*ingestReq)
	req.r, req.err = r, nil
	q.mu.RLock()
	if q.stopped {
		q.mu.RUnlock()
		ingestReqPool.Put(req)
		return ErrStopping
	}
	select {
	case q.reqs <- req:
		q.mu.RUnlock()
	case <-ctx.Done():
		q.mu.RUnlock()
		ingestReqPool.Put(req)
		return ctx.Err()
	}
	select {
	case <-req.done:
		err := req.err
		req.r, req.err = nil, nil
		ingestReqPool.Put(req)
		return err
	case <-ctx.Done():
		// The writer still owns req and will signal it; it is not reused.
		return ctx.Err()
	}
}

// stop refuses new readings and lets run drain the queue before returning.
func (q *ingestQueue) stop() {
	q.mu.Lock()
	if !q.stopped {
		q.stopped = true
		close(q.reqs)
	}
	q.mu.Unlock()
	<-q.done
}

func (q *ingestQueue) run(ctx context.Context) {
	defer close(q.done)
	batch := make([]*ingestReq, 0, q.s.BatchMax)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		first, ok := <-q.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], first)
		timer.Reset(q.s.BatchDelay)
	collect:
		for len(batch) < q.s.BatchMax {
			select {
			case r, ok := <-q.reqs:
				if !ok {
					break collect
				}
				batch = append(batch, r)
			case <-timer.C:
				break collect
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		q.commit(batch)
	}
}

// itemError is the failure of one reading in a batch.
type itemError struct {
	i   int
	err error
}

func (e *itemError) Error() string { return e.err.Error() }
func (e *itemError) Unwrap() error { return e.err }

// commit stores a batch. The common case is one transaction for all; if one
// reading fails (an unknown device, say), the batch is retried with each
// reading in its own savepoint so that one bad reading fails alone.
func (q *ingestQueue) commit(batch []*ingestReq) {
	ctx := context.Background() // the batch must finish even when callers give up
	dup := make([]bool, len(batch))
	err := q.s.write(ctx, func(tx *Tx) error {
		for i, req := range batch {
			d, err := insertReading(ctx, tx, req.r)
			if err != nil {
				return &itemError{i, err}
			}
			dup[i] = d
		}
		return nil
	})
	var ie *itemError
	if errors.As(err, &ie) {
		errs := make([]error, len(batch))
		err = q.s.write(ctx, func(tx *Tx) error {
			for i, req := range batch {
				if _, err := tx.ExecContext(ctx, `SAVEPOINT reading`); err != nil {
					return err
				}
				d, err := insertReading(ctx, tx, req.r)
				if err != nil {
					errs[i] = err
					if _, err := tx.ExecContext(ctx, `ROLLBACK TO reading`); err != nil {
						return err
					}
				}
				dup[i] = d
				if _, err := tx.ExecContext(ctx, `RELEASE reading`); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			for i, req := range batch {
				req.err = errs[i]
			}
		}
	}
	if err == nil {
		q.batches.Add(1)
		q.readings.Add(int64(len(batch)))
	}
	for i, req := range batch {
		switch {
		case err != nil:
			req.err = err
		case req.err == nil && dup[i]:
			req.err = ErrDuplicateReading
		}
		req.done <- struct{}{}
	}
}

// insertReading writes one reading, its raw frame (unless storage is low), and
// for a reading bound to a patient its observation, outbox row and audit entry.
// It reports whether the device message was already stored.
func insertReading(ctx context.Context, tx *Tx, r *Reading) (duplicate bool, err error) {
	var rawID any
	if len(r.Raw) > 0 && tx.store.keepRawFrames() {
		res, err := tx.exec(`INSERT INTO device_messages (device_id, received_at, codec, raw) VALUES (?, ?, ?, ?)`,
			r.DeviceID, tx.Now(), r.Codec, r.Raw)
		if err != nil {
			return false, fmt.Errorf("save raw frame: %w", err)
		}
		if rawID, err = res.LastInsertId(); err != nil {
			return false, fmt.Errorf("save raw frame: %w", err)
		}
	}
	patientID := r.PatientID
	if patientID == "" {
		var err error
		if patientID, err = resolvePatient(tx, r); err != nil {
			return false, err
		}
	}
	state := "unassigned"
	switch {
	case r.Rejected != "":
		state = "rejected"
	case patientID != "":
		state = "assigned"
	}
	r.ID = NewID()
	r.ObservationID = ""
	var obsID any
	if state == "assigned" {
		r.ObservationID = NewID()
		obsID = r.ObservationID
	}
	res, err := tx.exec(`INSERT INTO readings (id, device_id, message_id, patient_id, patient_ref, observation_id, loinc, value,
		value_text, unit, effective_at, state, reject_reason, raw_message_id, received_at, node_seq, clock_suspect)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (device_id, message_id) WHERE message_id IS NOT NULL DO NOTHING`, r.ID, r.DeviceID, nullString(r.MessageID),
		nullString(patientID), r.PatientRef, obsID, r.LOINC, r.Value, r.ValueText, r.Unit, r.EffectiveAt.UnixMilli(), state, r.Rejected,
		rawID, tx.Now(), tx.NextSeq(), tx.Suspect())
	if err != nil {
		return false, fmt.Errorf("save reading: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// A replay: its frame is already kept with the first copy. Deleting
		// here keeps the common path free of a lookup.
		if rawID != nil {
			if _, err := tx.exec(`DELETE FROM device_messages WHERE id = ?`, rawID); err != nil {
				return false, fmt.Errorf("drop replayed frame: %w", err)
			}
		}
		r.ID, r.ObservationID = "", ""
		return true, nil
	}
	if state != "assigned" {
		return false, nil
	}
	r.PatientID = patientID
	return false, observeReading(tx, r)
}

// observeReading turns an assigned reading into an observation, with its
// outbox row and its audit entry (by the device, or by the person assigning).
func observeReading(tx *Tx, r *Reading) error {
	// readings.observation_id is a deferred foreign key: the observation
	// written next satisfies it by commit.
	if _, err := tx.exec(`INSERT INTO observations (id, patient_id, encounter_id, loinc, value, value_text, unit,
		effective_at, source, device_id, created_at, node_seq, clock_suspect) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, 'device', ?, ?, ?, ?)`, r.ObservationID, r.PatientID, r.LOINC,
		r.Value, r.ValueText, r.Unit, r.EffectiveAt.UnixMilli(), r.DeviceID, tx.Now(), tx.NextSeq(), tx.Suspect()); err != nil {
		return fmt.Errorf("save observation: %w", err)
	}
	if err := tx.appendOutbox(DocWellness, LaneBulk, r.PatientID, "observation", r.ObservationID, 1); err != nil {
		return err
	}
	actor := tx.actor
	if actor.Kind == "" || actor.Kind == ActorDevice {
		tx.actor = Actor{Kind: ActorDevice, ID: r.DeviceID}
	}
	err := tx.audit(ActionReadingStore, "observation", r.ObservationID, r.PatientID, "")
	tx.actor = actor
	return err
}

// resolvePatient finds the patient of a reading that names none: by the
// identifier the message carried, else by an unexpired binding of its device.
// An identifier that matches no one resolves to nobody, binding or not.
func resolvePatient(tx *Tx, r *Reading) (string, error) {
	var id string
	var err error
	if ref := strings.TrimSpace(r.PatientRef); ref != "" {
		abha, _ := NormalizeABHANumber(ref)
		err = tx.queryRow(`SELECT id FROM patients WHERE local_id = ? OR abha_number = ? LIMIT 1`, ref, abha).Scan(&id)
	} else {
		err = tx.queryRow(`SELECT patient_id FROM device_bindings WHERE device_id = ? AND expires_at > ?`, r.DeviceID, tx.Now()).Scan(&id)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("resolve patient of reading: %w", err)
	}
	return id, nil
}

// UnassignedReadings lists readings waiting for a person to assign or discard.
func (s *Store) UnassignedReadings(ctx context.Context, limit int) ([]Reading, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT id, device_id, coalesce(message_id, ''), loinc, coalesce(value, 0),
		value_text, unit, effective_at FROM readings WHERE state = 'unassigned' ORDER BY received_at LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list unassigned readings: %w", err)
	}
	defer rows.Close()
	var out []Reading
	for rows.Next() {
		var r Reading
		var eff int64
		if err := rows.Scan(&r.ID, &r.DeviceID, &r.MessageID, &r.LOINC, &r.Value, &r.ValueText, &r.Unit, &eff); err != nil {
			return nil, err
		}
		r.EffectiveAt = time.UnixMilli(eff)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Observation reads one observation (a device reading outside any visit, for
// syncq) and audits the read. It returns the observation and its patient.
func (s *Store) Observation(ctx context.Context, id string) (Observation, string, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return Observation{}, "", err
	}
	o, patientID, err := readObservation(ctx, s.readers, id)
	if err != nil {
		return Observation{}, "", err
	}
	if err := s.auditRead(ctx, auditItem{ActionObservationRead, "observation", id, patientID, ""}); err != nil {
		return Observation{}, "", err
	}
	return o, patientID, nil
}

// readObservation reads one observation and its patient.
func readObservation(ctx context.Context, q querier, id string) (Observation, string, error) {
	var o Observation
	var patientID string
	var eff int64
	err := q.QueryRowContext(ctx, `SELECT id, patient_id, loinc, coalesce(value, 0), value_text, unit, effective_at, source,
		coalesce(device_id, '') FROM observations WHERE id = ?`, id).
		Scan(&o.ID, &patientID, &o.LOINC, &o.Value, &o.ValueText, &o.Unit, &eff, &o.Source, &o.DeviceID)
	if errors.Is(err, sql.ErrNoRows) {
		return o, "", fmt.Errorf("observation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return o, "", fmt.Errorf("read observation: %w", err)
	}
	o.EffectiveAt = time.UnixMilli(eff)
	return o, patientID, nil
}
