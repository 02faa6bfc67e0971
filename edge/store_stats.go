package edge

// WriteStats counts the work of the one write connection since Open.
type WriteStats struct {
	// Transactions is the number of write transactions committed, each one
	// fsync of the WAL (synchronous=FULL): the cost that bounds how many
	// writes a second the node takes, on an SD card most of all.
	Transactions int64 `json:"transactions"`
	// ReadAuditBatches of those transactions committed ReadAudits audit
	// entries of reads, together.
	ReadAuditBatches int64 `json:"read_audit_batches"`
	ReadAudits       int64 `json:"read_audits"`
}

// WriteStats reports the write connection's counters since Open.
func (s *Store) WriteStats() WriteStats {
	st := WriteStats{Transactions: s.commits.Load()}
	if q := s.readAudits; q != nil {
		st.ReadAuditBatches, st.ReadAudits = q.batches.Load(), q.entries.Load()
	}
	return st
}

// logStats logs the counters once, when the store closes, so a load test of
// `healthpost serve` can read them from the log.
func (s *Store) logStats() {
	st := s.WriteStats()
	s.Logger.Info("store closed", "write_transactions", st.Transactions,
		"read_audit_batches", st.ReadAuditBatches, "read_audits", st.ReadAudits)
}
