package edge

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// ActionClockSet is the audit action of a person setting the node's clock.
const ActionClockSet = "node.clock_set"

// Defaults for judging the node's clock against the tablets'.
const (
	// DefaultClockReportWindow is how far back tablets' reports count.
	DefaultClockReportWindow = 24 * time.Hour
	// DefaultClockDisagreement is how far the node may be from what the
	// tablets say before it is shown as wrong.
	DefaultClockDisagreement = 5 * time.Minute
)

// ClockReport is what one tablet's clock said next to the node's.
type ClockReport struct {
	Client     string
	UserID     string
	NodeTime   time.Time
	TabletTime time.Time
}

// Offset is how far the tablet is ahead of the node.
func (r ClockReport) Offset() time.Duration { return r.TabletTime.Sub(r.NodeTime) }

// RecordClockReport keeps what a tablet's clock said at sign-in, with the
// node's time now.
func (s *Store) RecordClockReport(ctx context.Context, client, userID string, tablet time.Time) (ClockReport, error) {
	r := ClockReport{Client: client, UserID: userID, TabletTime: tablet}
	err := s.write(ctx, func(tx *Tx) error {
		r.NodeTime = tx.now
		if _, err := tx.exec(`INSERT INTO clock_reports (client, user_id, node_time, tablet_time) VALUES (?, ?, ?, ?)`,
			client, nullString(userID), tx.Now(), tablet.UnixMilli()); err != nil {
			return fmt.Errorf("save clock report: %w", err)
		}
		// Keep the table small: a few hundred sign-ins a day at most.
		_, err := tx.exec(`DELETE FROM clock_reports WHERE id <= (SELECT max(id) FROM clock_reports) - 1000`)
		return err
	})
	return r, err
}

// ClockConsensus is what the tablets seen recently say about the node's clock.
type ClockConsensus struct {
	// Tablets is the number of distinct tablets that reported in the window.
	Tablets int
	// Offset is the median of their latest offsets: how far the tablets are
	// ahead of the node.
	Offset time.Duration
}

// Disagrees reports whether at least min tablets agree that the node is more
// than tolerance away from their time.
func (c ClockConsensus) Disagrees(min int, tolerance time.Duration) bool {
	return c.Tablets >= min && (c.Offset > tolerance || c.Offset < -tolerance)
}

// ClockConsensus takes the latest report of each tablet within window (by
// the node's clock, as recorded) and returns their median offset.
func (s *Store) ClockConsensus(ctx context.Context, window time.Duration) (ClockConsensus, error) {
	var c ClockConsensus
	rows, err := s.readers.QueryContext(ctx, `SELECT tablet_time - node_time FROM clock_reports r
		WHERE id = (SELECT max(id) FROM clock_reports WHERE client = r.client) AND node_time >= ?`,
		s.Now().Add(-window).UnixMilli())
	if err != nil {
		return c, fmt.Errorf("read clock reports: %w", err)
	}
	defer rows.Close()
	var offsets []int64
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			return c, err
		}
		offsets = append(offsets, ms)
	}
	if err := rows.Err(); err != nil {
		return c, err
	}
	c.Tablets = len(offsets)
	if len(offsets) > 0 {
		slices.Sort(offsets)
		c.Offset = time.Duration(offsets[len(offsets)/2]) * time.Millisecond
	}
	return c, nil
}

// RecordClockSet audits that a person set the node's clock from `from` to
// `to` (applied says whether the operating system took it), and moves the
// web sessions and the recorded tablet reports by the same step so they
// stay valid. Call it after the clock was set.
func (s *Store) RecordClockSet(ctx context.Context, from, to time.Time, applied bool) error {
	step := to.Sub(from)
	return s.write(ctx, func(tx *Tx) error {
		if applied {
			if err := shiftWebSessions(tx, step); err != nil {
				return fmt.Errorf("move sessions with the clock: %w", err)
			}
			if _, err := tx.exec(`UPDATE clock_reports SET node_time = node_time + ?`, step.Milliseconds()); err != nil {
				return fmt.Errorf("move clock reports with the clock: %w", err)
			}
		}
		return tx.audit(ActionClockSet, "node", "clock", "", fmt.Sprintf("from=%s to=%s step=%s applied=%t",
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), step.Round(time.Second), applied))
	})
}
