package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
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
	p, err := s.QueueReadings(ctx, []*Reading{r})
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.errs[0]
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SaveReadings saves the readings of one device message and returns once all
// have committed, in one batch: a BP monitor's systolic, diastolic and pulse
// are acknowledged together. It returns the first error that is not
// ErrDuplicateReading; duplicates are durable and need no retry. A reading
// whose ID is empty afterwards was not stored (a replay, or an error). If
// ctx ends first, it returns ctx.Err() as SaveReading does.
func (s *Store) SaveReadings(ctx context.Context, rs []*Reading) error {
	p, err := s.QueueReadings(ctx, rs)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// QueueReadings checks the readings of one device message and hands them to
// the group-commit writer without waiting for the commit; it waits only
// while the writer's queue is full, or until ctx ends. The readings have
// committed, or failed, once the returned PendingReadings' Done is closed:
// only then, and only when its Err is nil, may the device be acknowledged.
// A caller that stops waiting before must not acknowledge; the device's
// retry is deduplicated by its message ID. The store owns rs until Done.
//
// It lets a transport keep many messages committing without a goroutine
// waiting for each.
func (s *Store) QueueReadings(ctx context.Context, rs []*Reading) (*PendingReadings, error) {
	for _, r := range rs {
		if err := checkReading(r); err != nil {
			return nil, err
		}
	}
	if err := s.refuseIfCritical(); err != nil {
		return nil, err
	}
	p := &PendingReadings{rs: rs, errs: make([]error, len(rs)), done: make(chan struct{})}
	if len(rs) == 0 {
		close(p.done)
		return p, nil
	}
	if err := s.ingest.submit(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// PendingReadings are readings handed to the group-commit writer by
// QueueReadings.
type PendingReadings struct {
	rs   []*Reading
	errs []error       // per reading, set by the writer before done is closed
	done chan struct{} // closed by the writer once rs committed or failed
}

// Done is closed once the readings have committed or failed.
func (p *PendingReadings) Done() <-chan struct{} { return p.done }

// Err returns, once Done is closed, the first error that is not
// ErrDuplicateReading, or nil when every reading committed or was a replay
// of one that had. Each reading that was stored has its ID set.
func (p *PendingReadings) Err() error {
	for _, err := range p.errs {
		if err != nil && !errors.Is(err, ErrDuplicateReading) {
			return err
		}
	}
	return nil
}

// checkReading refuses a reading the store cannot keep.
func checkReading(r *Reading) error {
	if r.DeviceID == "" || !loincRe.MatchString(r.LOINC) || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		return fmt.Errorf("save reading: device, a LOINC code and a finite value are required")
	}
	if r.EffectiveAt.IsZero() {
		return fmt.Errorf("save reading: effective time is required")
	}
	return nil
}

// ingestQueue is the group-commit writer. Callers queue PendingReadings and
// wait on their done channels; one goroutine commits whatever has queued up,
// up to BatchMax readings or BatchDelay after the first, in one transaction
// and one fsync, then closes the done channel of each.
type ingestQueue struct {
	s    *Store
	reqs chan *PendingReadings

	mu      sync.RWMutex
	stopped bool
	done    chan struct{}

	batches, readings atomic.Int64
}

// IngestStats counts group commits: how many batches committed how many
// new readings (replays and failed readings are not counted).
type IngestStats struct {
	Batches  int64 `json:"batches"`
	Readings int64 `json:"readings"`
}

// IngestStats reports the group-commit writer's counters since Open.
func (s *Store) IngestStats() IngestStats {
	return IngestStats{Batches: s.ingest.batches.Load(), Readings: s.ingest.readings.Load()}
}

func newIngestQueue(s *Store) *ingestQueue {
	return &ingestQueue{s: s, reqs: make(chan *PendingReadings, s.BatchMax*4), done: make(chan struct{})}
}

// submit queues p for the writer, which closes p.done once it committed or
// failed. It returns an error, and p is not queued, when the store is
// stopping or ctx ends while the queue is full.
func (q *ingestQueue) submit(ctx context.Context, p *PendingReadings) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.stopped {
		return ErrStopping
	}
	select {
	case q.reqs <- p:
		return nil
	case <-ctx.Done():
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
	batch := make([]*PendingReadings, 0, q.s.BatchMax)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		first, ok := <-q.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], first)
		n := len(first.rs)
		timer.Reset(q.s.BatchDelay)
	collect:
		for n < q.s.BatchMax {
			select {
			case r, ok := <-q.reqs:
				if !ok {
					break collect
				}
				batch = append(batch, r)
				n += len(r.rs)
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
		clear(batch)
	}
}

// commit stores a batch. The common case is one transaction for all,
// written table by table (saveReadings); if that fails (an unknown device,
// say), the batch is retried with each reading in its own savepoint so that
// one bad reading fails alone.
func (q *ingestQueue) commit(batch []*PendingReadings) {
	ctx := context.Background() // the batch must finish even when callers give up
	var rs []*Reading
	var errs []*error
	for _, req := range batch {
		for i, r := range req.rs {
			rs = append(rs, r)
			errs = append(errs, &req.errs[i])
		}
	}
	dup := make([]bool, len(rs))
	err := q.s.write(ctx, func(tx *Tx) error {
		observed, err := saveReadings(tx, rs, dup)
		if err != nil {
			return &batchError{err}
		}
		return auditObservations(tx, observed)
	})
	var be *batchError
	switch {
	case errors.As(err, &be) && len(rs) == 1:
		err = be.err // alone already
	case errors.As(err, &be):
		err = q.s.write(ctx, func(tx *Tx) error {
			var observed []*Reading
			for i, r := range rs {
				if _, err := tx.ExecContext(ctx, `SAVEPOINT reading`); err != nil {
					return err
				}
				o, err := saveReadings(tx, rs[i:i+1], dup[i:i+1])
				if err == nil {
					observed = append(observed, o...)
				} else {
					*errs[i] = err
					r.ID, r.ObservationID = "", ""
					if _, err := tx.ExecContext(ctx, `ROLLBACK TO reading`); err != nil {
						return err
					}
				}
				if _, err := tx.ExecContext(ctx, `RELEASE reading`); err != nil {
					return err
				}
			}
			return auditObservations(tx, observed)
		})
	}
	stored := 0
	for i, r := range rs {
		switch {
		case err != nil:
			*errs[i] = err
			r.ID, r.ObservationID = "", ""
		case *errs[i] != nil:
		case dup[i]:
			*errs[i] = ErrDuplicateReading
		default:
			stored++
		}
	}
	if err == nil {
		q.batches.Add(1)
		q.readings.Add(int64(stored))
	}
	for _, req := range batch {
		close(req.done)
	}
}

// batchError is a batch that failed as a whole and may succeed reading by
// reading.
type batchError struct{ err error }

func (e *batchError) Error() string { return e.err.Error() }
func (e *batchError) Unwrap() error { return e.err }

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
