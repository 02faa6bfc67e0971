package webui

import (
	"errors"
	"net/http"

	"github.com/healthpost/healthpost/edge"
)

// maxDiscardReason bounds the reason typed for a discard; the audit log
// keeps 500 bytes of it.
const maxDiscardReason = 1000

// discardOutbox gives up on a refused document for good. The reason is
// required and goes to the audit log with the user (edge.DiscardOutbox); a
// form without one changes nothing and comes back with a plain message.
func (s *Server) discardOutbox(w http.ResponseWriter, r *http.Request) {
	id := parseOutboxID(r)
	if id == 0 {
		s.notFound(w, r)
		return
	}
	errs := edge.FieldErrors{}
	reason := formText(r, "reason", errs)
	switch {
	case len(errs) > 0:
	case reason == "":
		errs["reason"] = "error.discard_reason"
	case len(reason) > maxDiscardReason:
		errs["reason"] = "error.text_too_long"
	}
	if len(errs) > 0 {
		s.renderSync(w, r, http.StatusUnprocessableEntity, id, reason, errs)
		return
	}
	err := s.Store.DiscardOutbox(r.Context(), id, reason)
	switch {
	case err == nil:
		redirect(w, r, "/admin/sync?done=outbox_discarded")
	case errors.Is(err, edge.ErrOutboxState):
		redirect(w, r, "/admin/sync?done=outbox_settled")
	case fieldErrors(err) != nil:
		s.renderSync(w, r, http.StatusUnprocessableEntity, id, reason, edge.FieldErrors{"reason": "error.discard_reason"})
	default:
		s.fail(w, r, err)
	}
}
