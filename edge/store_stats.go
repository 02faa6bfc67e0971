package edge

// WriteStats counts the work of the one write connection since Open.
type WriteStats struct {
	// Transactions is the number of write transactions committed, each one
	// fsync of the WAL (synchronous=FULL): the cost that bounds how many
	// writes a second the node takes, on an SD card most of all.
	Transactions int64 `json:"transactions"`
}

// WriteStats reports the write connection's counters since Open.
func (s *Store) WriteStats() WriteStats {
	return WriteStats{Transactions: s.commits.Load()}
}

// logStats logs the counters once, when the store closes, so a load test of
// `healthpost serve` can read them from the log.
func (s *Store) logStats() {
	st := s.WriteStats()
	s.Logger.Info("store closed", "write_transactions", st.Transactions)
}
