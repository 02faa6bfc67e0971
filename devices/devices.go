// Package devices brings medical device readings into the node: transports
// (serial ports, MQTT, HL7 over MLLP on TCP), protocol codecs (HL7 v2,
// ASTM E1381/E1394, SenML and JSON, line-oriented ASCII, in sub-packages),
// and the Ingestor that turns what a codec decoded into normalized readings
// saved through edge.Store's group commit.
//
// What it must never do:
//   - acknowledge a device (MQTT PUBACK, HL7 ACK, ASTM ACK) before the
//     readings of its message have committed (invariant 1): every transport
//     answers only after Ingestor.Ingest returned nil;
//   - guess a patient or a code: a reading without a known patient waits in
//     the unassigned inbox; an unknown code is an error, kept raw;
//   - log PHI: log lines carry device names and counts, never values, names
//     or identifiers from the messages;
//   - stop the node because of a device: malformed frames are counted, kept
//     raw and answered with NAK/AE where the protocol has one.
package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/healthpost/healthpost/devices/vitals"
	"github.com/healthpost/healthpost/edge"
)

// Measurement is one value as a codec decoded it, before normalization.
type Measurement struct {
	// System and Code identify what was measured as the device coded it:
	// ("MDC", "150021"), ("LN", "8480-6"), or ("", "GLU") for a vendor code
	// looked up in the device's local table.
	System, Code string
	Value        string // as sent
	Unit         string // as sent
	At           time.Time
	// PatientRef is the patient identifier the message carried, if any.
	PatientRef string
	// MessageID identifies this value among everything the device ever sent
	// (message control ID plus position), so a replay is stored once.
	MessageID string
}

// Ingestor normalizes decoded measurements and saves them durably.
type Ingestor struct {
	Store  *edge.Store
	Logger *slog.Logger

	mu       sync.Mutex
	counters map[string]*deviceCounters
}

// NewIngestor returns an ingestor writing to store.
func NewIngestor(store *edge.Store, logger *slog.Logger) *Ingestor {
	return &Ingestor{Store: store, Logger: logger.With(edge.LogKeySubsystem, "devices"), counters: map[string]*deviceCounters{}}
}

// ErrNothingStored means a message decoded to no storable reading.
var ErrNothingStored = errors.New("message held no reading that could be stored")

// Ingest normalizes every measurement of one device message, saves them
// (rejected values too, with the reason, when their code is known) and the
// raw frame, and returns once all have committed. Only then may the caller
// acknowledge the device. local maps the device's vendor codes to LOINC.
// It returns an error only when nothing durable happened, so the device
// should retry or be refused.
func (in *Ingestor) Ingest(ctx context.Context, dev edge.Device, codec string, raw []byte, ms []Measurement, local map[string]string) (stored int, err error) {
	q, err := in.Queue(ctx, dev, codec, raw, ms, local)
	if err != nil {
		return 0, err
	}
	select {
	case <-q.Done():
		return q.Result()
	case <-ctx.Done():
		return 0, q.Abandon(ctx.Err())
	}
}

// Queue is Ingest without the wait: it hands the readings to the store's
// group commit and returns at once (waiting only while the store's queue is
// full), so that a transport can keep many messages committing without a
// goroutine for each. The device may be acknowledged only once Done is
// closed and Result returned no error. A message with no storable value is
// counted and kept raw here, and Queue returns ErrNothingStored.
func (in *Ingestor) Queue(ctx context.Context, dev edge.Device, codec string, raw []byte, ms []Measurement, local map[string]string) (*Queued, error) {
	c := in.countersFor(dev.ID)
	c.frames.Add(1)
	c.lastSeen.Store(time.Now().UnixMilli())
	rs := make([]*edge.Reading, 0, len(ms))
	var unknown int
	for _, m := range ms {
		meas, err := vitals.Lookup(m.System, m.Code, local)
		if err != nil {
			unknown++
			continue
		}
		r := &edge.Reading{DeviceID: dev.ID, MessageID: m.MessageID, PatientRef: m.PatientRef, EffectiveAt: m.At,
			LOINC: meas.LOINC, ValueText: m.Value, Unit: m.Unit, Codec: codec}
		if r.EffectiveAt.IsZero() {
			r.EffectiveAt = time.Now()
		}
		norm, err := vitals.NormalizeText(meas, m.Value, m.Unit)
		var rej *vitals.Rejection
		switch {
		case errors.As(err, &rej):
			r.Rejected = rej.Reason
		case err != nil:
			r.Rejected = err.Error()
		default:
			r.LOINC, r.Value, r.Unit = norm.LOINC, norm.Value, norm.Unit
		}
		if len(rs) == 0 {
			r.Raw = raw // the frame is kept once, with the first reading
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		problem := fmt.Sprintf("%s sent a message with no value the node knows (%d unknown codes); add its codes to the device's code table", dev.Name, unknown)
		in.keepBad(ctx, dev, c, codec, raw, problem)
		return nil, ErrNothingStored
	}
	p, err := in.Store.QueueReadings(ctx, rs)
	if err != nil {
		c.errors.Add(1)
		return nil, err
	}
	return &Queued{p: p, c: c, dev: dev, rs: rs, unknown: unknown}, nil
}

// Queued is a device message's readings handed to the store by Queue.
type Queued struct {
	p       *edge.PendingReadings
	c       *deviceCounters
	dev     edge.Device
	rs      []*edge.Reading
	unknown int
}

// Done is closed once the readings have committed or failed.
func (q *Queued) Done() <-chan struct{} { return q.p.Done() }

// Result returns, once Done is closed, how many readings were stored
// (replays of readings stored before are not counted), and counts them for
// the device page. An error means nothing durable happened: do not
// acknowledge. Call it once.
func (q *Queued) Result() (stored int, err error) {
	if err := q.p.Err(); err != nil {
		q.c.errors.Add(1)
		return 0, err
	}
	for _, r := range q.rs {
		if r.ID != "" { // not a replay
			stored++
		}
	}
	q.c.readings.Add(int64(stored))
	if q.unknown > 0 {
		q.c.setError(fmt.Sprintf("%s sent %d values with codes the node does not know; they were not stored", q.dev.Name, q.unknown))
	}
	return stored, nil
}

// Abandon records that the caller stopped waiting before Done (the device
// is not acknowledged and will send the message again) and returns err.
func (q *Queued) Abandon(err error) error {
	q.c.errors.Add(1)
	return err
}

// Failed counts a frame that could not be used, keeps it raw for inspection,
// and records a plain sentence for the device page ("checksum mismatch in
// frame 3; check the cable"). problem must not contain PHI.
func (in *Ingestor) Failed(ctx context.Context, dev edge.Device, codec string, raw []byte, problem string) {
	c := in.countersFor(dev.ID)
	c.frames.Add(1)
	c.lastSeen.Store(time.Now().UnixMilli())
	in.keepBad(ctx, dev, c, codec, raw, problem)
}

func (in *Ingestor) keepBad(ctx context.Context, dev edge.Device, c *deviceCounters, codec string, raw []byte, problem string) {
	c.errors.Add(1)
	c.setError(problem)
	if err := in.Store.SaveRawFrame(ctx, dev.ID, codec, raw, problem); err != nil {
		in.Logger.Warn("could not keep a bad frame", edge.LogKeyDevice, dev.Name, "err", err)
	}
}

// SetStatus records what the transport is doing ("listening on /dev/ttyUSB0",
// "BP monitor on /dev/ttyUSB0 stopped answering; check the cable").
func (in *Ingestor) SetStatus(dev edge.Device, status string) {
	c := in.countersFor(dev.ID)
	c.mu.Lock()
	c.status = status
	c.mu.Unlock()
}

type deviceCounters struct {
	frames, readings, errors atomic.Int64
	lastSeen                 atomic.Int64
	mu                       sync.Mutex
	status, lastError        string
}

func (c *deviceCounters) setError(s string) {
	c.mu.Lock()
	c.lastError = s
	c.mu.Unlock()
}

func (in *Ingestor) countersFor(id string) *deviceCounters {
	in.mu.Lock()
	defer in.mu.Unlock()
	c, ok := in.counters[id]
	if !ok {
		c = &deviceCounters{}
		in.counters[id] = c
	}
	return c
}

// Flush writes the counters gathered since the last flush to the registry.
func (in *Ingestor) Flush(ctx context.Context) error {
	in.mu.Lock()
	ids := make(map[string]*deviceCounters, len(in.counters))
	for id, c := range in.counters {
		ids[id] = c
	}
	in.mu.Unlock()
	var errs []error
	for id, c := range ids {
		a := edge.DeviceActivity{Frames: c.frames.Swap(0), Readings: c.readings.Swap(0), Errors: c.errors.Swap(0)}
		if ms := c.lastSeen.Load(); ms != 0 {
			a.LastSeen = time.UnixMilli(ms)
		}
		c.mu.Lock()
		a.Status, a.LastError, c.lastError = c.status, c.lastError, ""
		c.mu.Unlock()
		if err := in.Store.RecordDeviceActivity(ctx, id, a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
