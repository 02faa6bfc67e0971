package webui

import (
	"fmt"
	"net/http"

	"github.com/healthpost/healthpost/edge"
)

// triggerSync is the "Sync now" button: documents waiting for a retry are
// made due now, the press is audited, and the engine is asked to try at
// once. The page it leads back to shows the progress (live with script,
// on reload without). With no upstream configured, the page says what to
// set instead.
func (s *Server) triggerSync(w http.ResponseWriter, r *http.Request) {
	if s.Sync == nil {
		s.renderSync(w, r, http.StatusConflict, 0, "", nil)
		return
	}
	ctx := r.Context()
	n, err := s.Store.ExpediteOutbox(ctx, s.Store.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Store.Audit(ctx, edge.ActionSyncNow, "sync", "", "", fmt.Sprintf("expedited=%d", n)); err != nil {
		s.fail(w, r, err)
		return
	}
	s.Sync.TriggerNow(edge.SyncTriggerWeb)
	redirect(w, r, "/admin/sync?done=sync_started")
}
