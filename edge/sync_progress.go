package edge

import (
	"context"
	"fmt"
)

// ActionSyncNow is the audit action of a person asking for delivery now
// (the web UI's "Sync now"): who pressed it and how many documents waiting
// for a retry were made due.
const ActionSyncNow = "sync.now"

// CountOutbox counts the outbox rows in state. It reads the due index
// only, so a progress display may call it after every delivery pass.
func (s *Store) CountOutbox(ctx context.Context, state string) (int64, error) {
	var n int64
	if err := s.readers.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE state = ?`, state).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox: %w", err)
	}
	return n, nil
}
