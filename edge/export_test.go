package edge

import "context"

// QueueAudit hands one audit entry to the read-audit writer as an audited
// read does, and returns the wait for its commit, so that tests can queue
// many before any commits.
func (s *Store) QueueAudit(ctx context.Context, action, entity, entityID, patientID, detail string) (wait func() error, err error) {
	w, err := s.queueAudit(ctx, []auditItem{{action, entity, entityID, patientID, detail}})
	if err != nil {
		return nil, err
	}
	return func() error { return w.wait(ctx) }, nil
}

// HoldWriter takes the write lock, as a long write would, until release.
func (s *Store) HoldWriter() (release func()) {
	s.writeMu.Lock()
	return s.writeMu.Unlock
}
