package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Ownership: syncq writes USB export files and reads their receipts; edge
// records, in the outbox and the audit log, which documents went into which
// file and what the hub's receipt confirmed. An exported row waits for its
// receipt until its next_attempt_at; after that the online engine may send
// it again (upstream writes are idempotent), which confirms it as well.

// ActionOutboxExport is the audit action of a document written to a USB
// export file: a disclosure of the patient's record, like a delivery.
const ActionOutboxExport = "outbox.export"

// ExportableOutbox returns every row not yet confirmed by the upstream,
// pending or exported (awaiting a receipt), in commit order: what a USB
// export file carries. An earlier file whose receipt has not come back is
// carried again, so the newest file always holds each patient's documents
// in order from the oldest unconfirmed one, whichever file reaches the hub
// first. limit 0 means no limit.
func (s *Store) ExportableOutbox(ctx context.Context, limit int) ([]OutboxItem, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.readers.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox
		WHERE state IN ('pending', 'exported') ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read exportable outbox: %w", err)
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

// ExportRecord is one USB export file written and closed on its medium.
type ExportRecord struct {
	// ID is the export's identifier, in the file and in the hub's receipt.
	ID string
	// File is the file's name (not its directory: sticks mount anywhere).
	File string
	// SHA256 is the hex digest of the whole file.
	SHA256 string
	// Wait is how long the rows wait for the receipt before online delivery
	// may send them again.
	Wait time.Duration
}

// RecordExport marks the rows written to an export file as exported, due
// again for online delivery after rec.Wait, and audits each as a disclosure
// naming the file, in one transaction. Rows no longer pending or exported
// (the running node delivered them meanwhile) are left as they are and
// counted in skipped.
func (s *Store) RecordExport(ctx context.Context, rec ExportRecord, ids []int64) (skipped int, err error) {
	err = s.write(ctx, func(tx *Tx) error {
		skipped = 0
		if tx.actor.Kind == "" {
			return ErrNoActor
		}
		next := tx.now.Add(rec.Wait).UnixMilli()
		detail := fmt.Sprintf("export=%s file=%s sha256=%s", rec.ID, truncate(rec.File, 200), rec.SHA256)
		for _, id := range ids {
			var patient sql.NullString
			err := tx.queryRow(`UPDATE outbox SET state = 'exported', next_attempt_at = ?
				WHERE id = ? AND state IN ('pending', 'exported') RETURNING patient_id`, next, id).Scan(&patient)
			if errors.Is(err, sql.ErrNoRows) {
				skipped++
				continue
			}
			if err != nil {
				return fmt.Errorf("mark outbox %d exported: %w", id, err)
			}
			if err := tx.audit(ActionOutboxExport, "outbox", fmt.Sprint(id), patient.String, detail); err != nil {
				return err
			}
		}
		return nil
	})
	return skipped, err
}

// ExportWaits counts the documents waiting on USB export receipts: rows
// exported, and pending rows held back behind an exported row of the same
// patient (they keep that patient's order). Until is when the first
// exported row goes back to online delivery.
type ExportWaits struct {
	Exported int64     `json:"exported"`
	Held     int64     `json:"held"`
	Until    time.Time `json:"until,omitzero"`
}

// ExportWaits reports what waits on USB export receipts.
func (s *Store) ExportWaits(ctx context.Context) (ExportWaits, error) {
	var w ExportWaits
	var until sql.NullInt64
	if err := s.readers.QueryRowContext(ctx, `SELECT count(*), min(next_attempt_at) FROM outbox WHERE state = 'exported'`).
		Scan(&w.Exported, &until); err != nil {
		return w, fmt.Errorf("count exported outbox: %w", err)
	}
	if w.Exported == 0 {
		return w, nil
	}
	w.Until = time.UnixMilli(until.Int64)
	if err := s.readers.QueryRowContext(ctx, `SELECT count(*) FROM outbox o WHERE o.state = 'pending'
		AND EXISTS (SELECT 1 FROM outbox p WHERE p.patient_id = o.patient_id AND p.state = 'exported' AND p.id < o.id)`).
		Scan(&w.Held); err != nil {
		return w, fmt.Errorf("count outbox held by exports: %w", err)
	}
	return w, nil
}
