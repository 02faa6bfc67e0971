package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Ownership: syncq decides what an upstream's answer means and calls
// SettleOutbox with its verdicts; edge records them, audits them and keeps the
// history of runs. An operator's retry or discard of a quarantined document
// is edge's, audited like any administrative action.

// Audit actions of sync administration.
const (
	ActionOutboxRetry   = "outbox.retry"
	ActionOutboxDiscard = "outbox.discard"
)

// ErrOutboxState means an outbox row is not in a state that allows the
// action asked for (retrying a delivered document, discarding a discarded one).
var ErrOutboxState = errors.New("outbox row is not in a state that allows this")

// OutboxOutcome is what one delivery attempt of an outbox row came to.
type OutboxOutcome struct {
	ID int64
	// State is OutboxDelivered, OutboxQuarantined, or OutboxPending for an
	// attempt that failed and is tried again at Next.
	State string
	// Receipt is what the upstream answered, for a delivered row.
	Receipt Receipt
	// Reason is what went wrong, for a quarantined or pending row: the
	// server's diagnostics or the network error. Never PHI.
	Reason string
	Next   time.Time
}

// SyncUsage is what one delivery pass cost and came to, added to its run.
type SyncUsage struct {
	Attempted int64
	BytesOut  int64
	BytesIn   int64
	// LastError replaces the run's last error when not empty.
	LastError string
}

// SettleOutbox records the outcomes of one delivery pass, and adds the pass
// to run runID (0 for none), in one transaction. A delivered row keeps the
// upstream's receipt and is audited as a disclosure; a quarantined row is
// audited with the server's reason. Rows that are no longer pending or
// exported (another process, such as `healthpost sync now` beside the
// running node, settled them first) are left as they are and counted in
// skipped.
func (s *Store) SettleOutbox(ctx context.Context, runID int64, outs []OutboxOutcome, use SyncUsage) (skipped int, err error) {
	err = s.write(ctx, func(tx *Tx) error {
		skipped = 0
		if tx.actor.Kind == "" {
			tx.actor = Actor{Kind: ActorSystem, ID: "syncq"}
		}
		var delivered, failed, quarantined int64
		for _, o := range outs {
			var res sql.Result
			var err error
			switch o.State {
			case OutboxDelivered:
				res, err = tx.exec(`UPDATE outbox SET state = 'delivered', attempts = attempts + 1, upstream = ?,
					remote_id = ?, remote_version = ?, delivered_at = ?, last_error = ''
					WHERE id = ? AND state IN ('pending', 'exported')`,
					o.Receipt.Upstream, o.Receipt.RemoteID, o.Receipt.RemoteVersion, o.Receipt.At.UnixMilli(), o.ID)
			case OutboxQuarantined:
				res, err = tx.exec(`UPDATE outbox SET state = 'quarantined', attempts = attempts + 1, last_error = ?
					WHERE id = ? AND state IN ('pending', 'exported')`, o.Reason, o.ID)
			case OutboxPending:
				// An exported row sent again online and failed is pending from now on.
				res, err = tx.exec(`UPDATE outbox SET state = 'pending', attempts = attempts + 1, last_error = ?, next_attempt_at = ?
					WHERE id = ? AND state IN ('pending', 'exported')`, o.Reason, o.Next.UnixMilli(), o.ID)
			default:
				return fmt.Errorf("settle outbox %d: unknown outcome %q", o.ID, o.State)
			}
			if err != nil {
				return fmt.Errorf("settle outbox %d: %w", o.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				skipped++
				continue
			}
			switch o.State {
			case OutboxDelivered:
				delivered++
				var patient string
				if err := tx.queryRow(`SELECT coalesce(patient_id, '') FROM outbox WHERE id = ?`, o.ID).Scan(&patient); err != nil {
					return fmt.Errorf("settle outbox %d: %w", o.ID, err)
				}
				detail := fmt.Sprintf("upstream=%s remote=%s version=%s", o.Receipt.Upstream, o.Receipt.RemoteID, o.Receipt.RemoteVersion)
				if err := tx.audit(ActionOutboxDeliver, "outbox", fmt.Sprint(o.ID), patient, detail); err != nil {
					return err
				}
			case OutboxQuarantined:
				quarantined++
				if err := tx.audit(ActionOutboxQuarant, "outbox", fmt.Sprint(o.ID), "", truncate(o.Reason, 500)); err != nil {
					return err
				}
			case OutboxPending:
				failed++
			}
		}
		if runID == 0 {
			return nil
		}
		_, err := tx.exec(`UPDATE sync_runs SET attempted = attempted + ?, delivered = delivered + ?, failed = failed + ?,
			quarantined = quarantined + ?, bytes_out = bytes_out + ?, bytes_in = bytes_in + ?,
			last_error = CASE WHEN ? = '' THEN last_error ELSE ? END WHERE id = ?`,
			use.Attempted, delivered, failed, quarantined, use.BytesOut, use.BytesIn, use.LastError, truncate(use.LastError, 1000), runID)
		if err != nil {
			return fmt.Errorf("update sync run %d: %w", runID, err)
		}
		return nil
	})
	return skipped, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n-- // do not cut a UTF-8 sequence
	}
	return s[:n] + "…"
}

// RetryOutbox puts a quarantined (or waiting) document back in line for
// delivery now, and audits who did it. A delivered or discarded document
// cannot be retried.
func (s *Store) RetryOutbox(ctx context.Context, id int64) error {
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		res, err := tx.exec(`UPDATE outbox SET state = 'pending', next_attempt_at = ?
			WHERE id = ? AND state IN ('quarantined', 'pending')`, tx.Now(), id)
		if err != nil {
			return fmt.Errorf("retry outbox %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return outboxActionError(tx, id, "retried")
		}
		tx.touched = true // wake the delivery engine
		return tx.audit(ActionOutboxRetry, "outbox", fmt.Sprint(id), "", "")
	})
}

// DiscardOutbox gives up on a quarantined or waiting document for good: it
// will never be delivered. reason is required and goes to the audit log with
// who discarded it.
func (s *Store) DiscardOutbox(ctx context.Context, id int64, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return FieldErrors{"reason": "error.required"}
	}
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		res, err := tx.exec(`UPDATE outbox SET state = 'discarded', last_error = ?
			WHERE id = ? AND state IN ('quarantined', 'pending')`, "discarded: "+truncate(reason, 500), id)
		if err != nil {
			return fmt.Errorf("discard outbox %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return outboxActionError(tx, id, "discarded")
		}
		tx.touched = true // a later document of the patient may be due now
		return tx.audit(ActionOutboxDiscard, "outbox", fmt.Sprint(id), "", truncate(reason, 500))
	})
}

func outboxActionError(tx *Tx, id int64, verb string) error {
	var state string
	err := tx.queryRow(`SELECT state FROM outbox WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("outbox %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("outbox %d is %s and cannot be %s: %w", id, state, verb, ErrOutboxState)
}

// OutboxFilter selects outbox rows; nil fields match everything.
type OutboxFilter struct {
	State *string
	Lane  *int
	// Limit caps the rows returned; 0 means 100.
	Limit int
}

// OutboxItems lists outbox rows, oldest first.
func (s *Store) OutboxItems(ctx context.Context, f OutboxFilter) ([]OutboxItem, error) {
	q := `SELECT ` + outboxColumns + ` FROM outbox WHERE 1 = 1`
	var args []any
	if f.State != nil {
		q += ` AND state = ?`
		args = append(args, *f.State)
	}
	if f.Lane != nil {
		q += ` AND lane = ?`
		args = append(args, *f.Lane)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.readers.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("read outbox row: %w", err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// NextOutboxDue returns when the earliest pending row is next due, or
// ErrNotFound when nothing is pending. The delivery engine sleeps until then.
// Rows waiting on a USB export receipt (exported rows, and pending rows held
// back behind one) do not count: that wait is days long, and the engine's
// poll finds them when it ends.
func (s *Store) NextOutboxDue(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	if err := s.readers.QueryRowContext(ctx, `SELECT min(o.next_attempt_at) FROM outbox o WHERE o.state = 'pending'
		AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.patient_id = o.patient_id AND p.state = 'exported' AND p.id < o.id)`).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("read next due outbox row: %w", err)
	}
	if !next.Valid {
		return time.Time{}, ErrNotFound
	}
	return time.UnixMilli(next.Int64), nil
}

// DeliveredItem is a delivered outbox row with the upstream's receipt.
type DeliveredItem struct {
	OutboxItem
	Upstream      string    `json:"upstream"`
	RemoteID      string    `json:"remote_id"`
	RemoteVersion string    `json:"remote_version"`
	DeliveredAt   time.Time `json:"delivered_at"`
}

// DeliveredItems lists the documents delivered in [from, to), in the order
// they were delivered, with what the upstream answered.
func (s *Store) DeliveredItems(ctx context.Context, from, to time.Time) ([]DeliveredItem, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT `+outboxColumns+`, upstream, remote_id, remote_version, delivered_at
		FROM outbox WHERE state = 'delivered' AND delivered_at >= ? AND delivered_at < ? ORDER BY delivered_at, id`,
		from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list delivered outbox: %w", err)
	}
	defer rows.Close()
	var out []DeliveredItem
	for rows.Next() {
		var d DeliveredItem
		var next, created, at int64
		var suspect int
		it := &d.OutboxItem
		if err := rows.Scan(&it.ID, &it.Key, &it.Document, &it.Lane, &it.PatientID, &it.Entity, &it.EntityID,
			&it.EntityVersion, &it.State, &it.Attempts, &next, &it.LastError, &created, &suspect,
			&d.Upstream, &d.RemoteID, &d.RemoteVersion, &at); err != nil {
			return nil, fmt.Errorf("read delivered outbox row: %w", err)
		}
		it.NextAttemptAt, it.CreatedAt, it.ClockSuspect = time.UnixMilli(next), time.UnixMilli(created), suspect == 1
		d.DeliveredAt = time.UnixMilli(at)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Sync run triggers.
const (
	SyncTriggerAuto = "auto"
	SyncTriggerCLI  = "cli"
	SyncTriggerWeb  = "web"
)

// SyncRun is one stretch of delivery work: from the moment documents were due
// until nothing was due or the upstream stopped answering.
type SyncRun struct {
	ID          int64     `json:"id"`
	Trigger     string    `json:"trigger"`
	Upstream    string    `json:"upstream"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
	Attempted   int64     `json:"attempted"`
	Delivered   int64     `json:"delivered"`
	Failed      int64     `json:"failed"`
	Quarantined int64     `json:"quarantined"`
	BytesOut    int64     `json:"bytes_out"`
	BytesIn     int64     `json:"bytes_in"`
	LastError   string    `json:"last_error,omitempty"`
}

// StartSyncRun records the start of a run at the store's time and returns its ID.
func (s *Store) StartSyncRun(ctx context.Context, trigger, upstream string) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *Tx) error {
		return tx.queryRow(`INSERT INTO sync_runs (trigger, upstream, started_at) VALUES (?, ?, ?) RETURNING id`,
			trigger, upstream, tx.Now()).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("start sync run: %w", err)
	}
	return id, nil
}

// FinishSyncRun records the end of a run; lastErr, when not empty, replaces
// its last error.
func (s *Store) FinishSyncRun(ctx context.Context, id int64, lastErr string) error {
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.exec(`UPDATE sync_runs SET ended_at = ?, last_error = CASE WHEN ? = '' THEN last_error ELSE ? END
			WHERE id = ?`, tx.Now(), lastErr, truncate(lastErr, 1000), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish sync run %d: %w", id, err)
	}
	return nil
}

const syncRunColumns = `id, trigger, upstream, started_at, coalesce(ended_at, 0), attempted, delivered, failed,
	quarantined, bytes_out, bytes_in, last_error`

func scanSyncRun(row interface{ Scan(...any) error }) (SyncRun, error) {
	var r SyncRun
	var started, ended int64
	err := row.Scan(&r.ID, &r.Trigger, &r.Upstream, &started, &ended, &r.Attempted, &r.Delivered, &r.Failed,
		&r.Quarantined, &r.BytesOut, &r.BytesIn, &r.LastError)
	r.StartedAt = time.UnixMilli(started)
	if ended != 0 {
		r.EndedAt = time.UnixMilli(ended)
	}
	return r, err
}

// SyncRuns returns the latest runs, newest first; limit 0 means 20.
func (s *Store) SyncRuns(ctx context.Context, limit int) ([]SyncRun, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.readers.QueryContext(ctx, `SELECT `+syncRunColumns+` FROM sync_runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list sync runs: %w", err)
	}
	defer rows.Close()
	var out []SyncRun
	for rows.Next() {
		r, err := scanSyncRun(rows)
		if err != nil {
			return nil, fmt.Errorf("read sync run: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// LastSyncError returns the newest run that ended with an error, or
// ErrNotFound.
func (s *Store) LastSyncError(ctx context.Context) (SyncRun, error) {
	r, err := scanSyncRun(s.readers.QueryRowContext(ctx, `SELECT `+syncRunColumns+` FROM sync_runs
		WHERE last_error != '' ORDER BY id DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// SyncBytesSince is how many bytes delivery runs started at or after t have
// put on the wire, both ways: what the daily budget of a metered link counts.
func (s *Store) SyncBytesSince(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	if err := s.readers.QueryRowContext(ctx, `SELECT coalesce(sum(bytes_out + bytes_in), 0) FROM sync_runs
		WHERE started_at >= ?`, t.UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("sum sync bytes: %w", err)
	}
	return n, nil
}

// ExpediteOutbox makes every pending row that waits for a later retry due at
// now, for an operator who asks to sync now. It returns how many rows moved.
func (s *Store) ExpediteOutbox(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE outbox SET next_attempt_at = ? WHERE state = 'pending' AND next_attempt_at > ?`,
			now.UnixMilli(), now.UnixMilli())
		if err != nil {
			return fmt.Errorf("expedite outbox: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}
