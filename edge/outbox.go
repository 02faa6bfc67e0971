package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Ownership: edge writes outbox rows, in the transaction of the clinical write
// they describe (invariant 2). syncq reads due rows and records what the
// upstream answered through the methods below; it never scans domain tables to
// guess what changed.

// Document kinds, named after the ABDM FHIR document profiles they become.
const (
	DocOPConsult        = "OPConsultRecord"
	DocPrescription     = "PrescriptionRecord"
	DocWellness         = "WellnessRecord"
	DocDiagnosticReport = "DiagnosticReportRecord"
	DocImmunization     = "ImmunizationRecord"
)

// Lanes order delivery when the link is scarce: alerts first, then clinical
// documents, then bulk device data.
const (
	LaneAlert    = 0
	LaneClinical = 1
	LaneBulk     = 2
)

// Outbox states. Delivered, quarantined and discarded are terminal until a
// person acts; exported means written to a USB export file and awaiting the
// upstream's receipt.
const (
	OutboxPending     = "pending"
	OutboxExported    = "exported"
	OutboxDelivered   = "delivered"
	OutboxQuarantined = "quarantined"
	OutboxDiscarded   = "discarded"
)

// OutboxItem is one document waiting for, or past, delivery.
type OutboxItem struct {
	ID            int64     `json:"id"`
	Key           string    `json:"key"` // idempotency key
	Document      string    `json:"document"`
	Lane          int       `json:"lane"`
	PatientID     string    `json:"patient_id,omitempty"`
	Entity        string    `json:"entity"`
	EntityID      string    `json:"entity_id"`
	EntityVersion int       `json:"entity_version"`
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	ClockSuspect  bool      `json:"clock_suspect"`
}

// appendOutbox adds a pending row in tx. The idempotency key is derived from
// the document, entity and version, so it is the same on every retry and on
// every node restart.
func (tx *Tx) appendOutbox(document string, lane int, patientID, entity, entityID string, version int) error {
	return tx.appendOutboxRows(document, lane, entity, version, 1, func(int) (string, string) { return patientID, entityID })
}

var insertOutbox = newRowsInsert(`INSERT INTO outbox
	(key, patient_id, entity_id, document, lane, entity, entity_version, next_attempt_at, created_at, node_seq, clock_suspect)`,
	`(?, ?, ?, :document, :lane, :entity, :version, :now, :now, :seq + {i}, :suspect)`, "")

// appendOutboxRows adds n pending rows of one kind of document in tx, in
// order; row i is about entity i of patient i.
func (tx *Tx) appendOutboxRows(document string, lane int, entity string, version int, n int, item func(i int) (patientID, entityID string)) error {
	prefix, v := document+"/"+entity+"/", "/v"+strconv.Itoa(version)
	now, suspect := tx.Now(), tx.Suspect()
	if err := insertOutbox.exec(tx, n, func(i int, args []any) []any {
		patientID, entityID := item(i)
		return append(args, prefix+entityID+v, nullString(patientID), entityID)
	}, func(n int) []any {
		return []any{document, lane, entity, version, now, tx.seqs(n), suspect}
	}, nil); err != nil {
		return fmt.Errorf("append outbox %s: %w", document, err)
	}
	tx.touched = true
	return nil
}

const outboxColumns = `id, key, document, lane, coalesce(patient_id, ''), entity, entity_id, entity_version,
	state, attempts, next_attempt_at, last_error, created_at, clock_suspect`

func scanOutbox(rows *sql.Rows) (OutboxItem, error) {
	var it OutboxItem
	var next, created int64
	var suspect int
	err := rows.Scan(&it.ID, &it.Key, &it.Document, &it.Lane, &it.PatientID, &it.Entity, &it.EntityID,
		&it.EntityVersion, &it.State, &it.Attempts, &next, &it.LastError, &created, &suspect)
	it.NextAttemptAt, it.CreatedAt, it.ClockSuspect = time.UnixMilli(next), time.UnixMilli(created), suspect == 1
	return it, err
}

// DueOutbox returns up to limit rows whose next attempt is due at now:
// pending rows, and exported rows whose wait for their USB export receipt
// is over. They come by lane, then longest due first, then in commit order
// (a row never tried is due from its commit, so untried rows come in
// commit order). A row is held back while an earlier row of the same
// patient is still pending or exported, so each patient's documents arrive
// in the order they were written; quarantined rows do not hold others back.
//
// The order is that of the index outbox_due within each state, so SQLite
// stops reading at limit rows: a read costs what it returns (and the rows
// held back before them), not the size of the backlog. Ordering by lane
// and id instead sorted every due row on every read, which made draining
// weeks of backlog quadratic.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox o
		WHERE o.state IN ('pending', 'exported') AND o.next_attempt_at <= ?
		  AND (o.patient_id IS NULL OR NOT EXISTS (
			SELECT 1 FROM outbox p WHERE p.patient_id = o.patient_id
			  AND p.state IN ('pending', 'exported') AND p.id < o.id))
		ORDER BY o.lane, o.next_attempt_at, o.id LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("read due outbox: %w", err)
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

// OutboxItem returns one outbox row.
func (s *Store) OutboxItem(ctx context.Context, id int64) (OutboxItem, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE id = ?`, id)
	if err != nil {
		return OutboxItem{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return OutboxItem{}, err
		}
		return OutboxItem{}, ErrNotFound
	}
	return scanOutbox(rows)
}

// Receipt is what an upstream answered for a delivered document.
type Receipt struct {
	Upstream      string
	RemoteID      string
	RemoteVersion string
	At            time.Time
}

// MarkDelivered records that the upstream confirmed the document. Only a
// pending or exported row can become delivered; delivering twice is a no-op
// that reports ErrNotFound for a row that does not exist.
func (s *Store) MarkDelivered(ctx context.Context, id int64, r Receipt) error {
	return s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE outbox SET state = 'delivered', upstream = ?, remote_id = ?,
			remote_version = ?, delivered_at = ?, last_error = '' WHERE id = ? AND state IN ('pending', 'exported')`,
			r.Upstream, r.RemoteID, r.RemoteVersion, r.At.UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("mark outbox %d delivered: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return outboxStateError(ctx, tx, id)
		}
		return nil
	})
}

// MarkFailed records a failed attempt that may be retried at next.
func (s *Store) MarkFailed(ctx context.Context, id int64, reason string, next time.Time) error {
	return s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
			WHERE id = ? AND state = 'pending'`, reason, next.UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("mark outbox %d failed: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return outboxStateError(ctx, tx, id)
		}
		return nil
	})
}

// Quarantine takes a row out of delivery because the upstream refused it for
// good; reason is what the server said. A person must retry or discard it.
func (s *Store) Quarantine(ctx context.Context, id int64, reason string) error {
	return s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE outbox SET state = 'quarantined', attempts = attempts + 1, last_error = ?
			WHERE id = ? AND state IN ('pending', 'exported')`, reason, id)
		if err != nil {
			return fmt.Errorf("quarantine outbox %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return outboxStateError(ctx, tx, id)
		}
		if tx.actor.Kind == "" {
			tx.actor = Actor{Kind: ActorSystem, ID: "syncq"}
		}
		return tx.audit(ActionOutboxQuarant, "outbox", fmt.Sprint(id), "", "")
	})
}

func outboxStateError(ctx context.Context, tx *Tx, id int64) error {
	var state string
	err := tx.queryRow(`SELECT state FROM outbox WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("outbox %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("outbox %d is %s, not pending", id, state)
}

// OutboxCount is the number of rows in one state and lane.
type OutboxCount struct {
	State string `json:"state"`
	Lane  int    `json:"lane"`
	Count int64  `json:"count"`
}

// OutboxStats summarises the outbox for status pages.
type OutboxStats struct {
	Counts        []OutboxCount `json:"counts"`
	OldestPending time.Time     `json:"oldest_pending,omitzero"`
	LastDelivered time.Time     `json:"last_delivered,omitzero"`
}

// OutboxStats counts rows by state and lane.
func (s *Store) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	rows, err := s.readers.QueryContext(ctx, `SELECT state, lane, count(*) FROM outbox GROUP BY state, lane ORDER BY state, lane`)
	if err != nil {
		return st, fmt.Errorf("count outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c OutboxCount
		if err := rows.Scan(&c.State, &c.Lane, &c.Count); err != nil {
			return st, err
		}
		st.Counts = append(st.Counts, c)
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	var oldest, last sql.NullInt64
	if err := s.readers.QueryRowContext(ctx, `SELECT min(created_at) FROM outbox WHERE state = 'pending'`).Scan(&oldest); err != nil {
		return st, err
	}
	if err := s.readers.QueryRowContext(ctx, `SELECT max(delivered_at) FROM outbox WHERE state = 'delivered'`).Scan(&last); err != nil {
		return st, err
	}
	if oldest.Valid {
		st.OldestPending = time.UnixMilli(oldest.Int64)
	}
	if last.Valid {
		st.LastDelivered = time.UnixMilli(last.Int64)
	}
	return st, nil
}
