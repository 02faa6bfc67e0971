package webui

import (
	"errors"
	"net/http"

	"github.com/healthpost/healthpost/edge"
)

// retryOutbox puts a document the upstream refused back in line; the
// running engine takes it at its next pass. It is audited by edge.
func (s *Server) retryOutbox(w http.ResponseWriter, r *http.Request) {
	id := parseOutboxID(r)
	if id == 0 {
		s.notFound(w, r)
		return
	}
	err := s.Store.RetryOutbox(r.Context(), id)
	switch {
	case err == nil:
		redirect(w, r, "/admin/sync?done=outbox_retried")
	case errors.Is(err, edge.ErrOutboxState):
		redirect(w, r, "/admin/sync?done=outbox_settled")
	default:
		s.fail(w, r, err)
	}
}
