package webui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// The sync page (admin): what waits to go to the district and what the
// delivery engine is doing, a "Sync now" button whose progress arrives by
// server-sent events (sync_stream.go) or by reloading the page, the
// documents the upstream refused with what the server said, and the
// history of delivery runs. It shows IDs, never patient data.

// syncPage is what the sync page shows.
type syncPage struct {
	// On is false when no upstream is configured (Server.Sync is nil).
	On       bool
	Status   SyncStatus
	Progress syncProgress
	Lanes    []string
	Queue    []queueRow
	Outbox   edge.OutboxStats
	// LastSuccess is the last delivery the store recorded, or the engine's
	// last success when later.
	LastSuccess time.Time
	Quarantined []edge.OutboxItem
	Runs        []syncRunRow
	// DiscardID and Reason are a discard form that failed, to show its error.
	DiscardID int64
	Reason    string
}

// queueRow is one state of the outbox, counted by lane.
type queueRow struct {
	State  string
	Counts [3]int64
}

// syncRunRow is one line of the run history.
type syncRunRow struct {
	edge.SyncRun
	Wire  string // bytes on the wire, both ways
	Error string // the run's last error, shortened
}

// syncProgress is the live part of the page: rendered with it, and sent
// as each server-sent event while a run goes on.
type syncProgress struct {
	State     string `json:"state"`
	StateText string `json:"state_text"`
	NextTry   string `json:"next_try"`
	Running   bool   `json:"running"`
	// Done and Total drive the progress bar: documents settled in the run
	// (delivered or refused) out of those and the ones still waiting.
	Done    int64  `json:"done"`
	Total   int64  `json:"total"`
	RunText string `json:"run_text"`
	Pending int64  `json:"pending"`
	// PendingText is Pending written for the page's language.
	PendingText string `json:"pending_text"`
	Delivered   int64  `json:"delivered"`
	Failed      int64  `json:"failed"`
	Refused     int64  `json:"refused"`
	LastError   string `json:"last_error"`
}

// syncLanes names the outbox lanes (edge.Lane*) in order.
var syncLanes = []string{edge.LaneAlert: "alert", edge.LaneClinical: "clinical", edge.LaneBulk: "bulk"}

// syncTriggers are who can start a run (sync_runs.trigger).
var syncTriggers = []string{edge.SyncTriggerAuto, edge.SyncTriggerCLI, edge.SyncTriggerWeb}

func (s *Server) showSync(w http.ResponseWriter, r *http.Request) {
	s.renderSync(w, r, http.StatusOK, 0, "", nil)
}

// renderSync renders the sync page; discardID, reason and errs are a
// discard form that failed.
func (s *Server) renderSync(w http.ResponseWriter, r *http.Request, status int, discardID int64, reason string, errs edge.FieldErrors) {
	ctx := r.Context()
	v := s.view(r, "page.sync")
	c := s.tpl.cats.get(v.Lang)
	p := syncPage{On: s.Sync != nil, Lanes: syncLanes, DiscardID: discardID, Reason: reason}
	var err error
	if p.Progress, err = s.syncProgress(ctx, c); err != nil {
		s.serverError(w, r, err)
		return
	}
	if p.On {
		p.Status = s.Sync.Status()
		if u, err := url.Parse(p.Status.Upstream); err == nil {
			p.Status.Upstream = u.Redacted() // a password in the URL stays off the screen
		}
	}
	if p.Outbox, err = s.Store.OutboxStats(ctx); err != nil {
		s.serverError(w, r, err)
		return
	}
	byState := map[string]*queueRow{}
	for _, st := range []string{edge.OutboxPending, edge.OutboxExported, edge.OutboxQuarantined, edge.OutboxDelivered, edge.OutboxDiscarded} {
		p.Queue = append(p.Queue, queueRow{State: st})
	}
	for i := range p.Queue {
		byState[p.Queue[i].State] = &p.Queue[i]
	}
	for _, n := range p.Outbox.Counts {
		if q := byState[n.State]; q != nil && n.Lane >= 0 && n.Lane < len(q.Counts) {
			q.Counts[n.Lane] = n.Count
		}
	}
	p.LastSuccess = p.Outbox.LastDelivered
	if p.Status.LastSuccess.After(p.LastSuccess) {
		p.LastSuccess = p.Status.LastSuccess
	}
	quarantined := edge.OutboxQuarantined
	if p.Quarantined, err = s.Store.OutboxItems(ctx, edge.OutboxFilter{State: &quarantined, Limit: 50}); err != nil {
		s.serverError(w, r, err)
		return
	}
	runs, err := s.Store.SyncRuns(ctx, 20)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, run := range runs {
		p.Runs = append(p.Runs, syncRunRow{SyncRun: run, Wire: byteSize(c, run.BytesOut+run.BytesIn), Error: shorten(run.LastError, 200)})
	}
	v.Data, v.Errors = p, errs
	s.render(w, r, status, "sync", v)
}

// syncProgress reads the engine's status and the number of documents
// waiting, in c's language.
func (s *Server) syncProgress(ctx context.Context, c *catalog) (syncProgress, error) {
	var p syncProgress
	pending, err := s.Store.CountOutbox(ctx, edge.OutboxPending)
	if err != nil {
		return p, err
	}
	p.Pending, p.PendingText = pending, FormatInt(pending)
	if s.Sync == nil {
		p.State = SyncStopped
		if last, err := s.Store.LastSyncError(ctx); err == nil {
			p.LastError = c.T("sync.error_at", formatDateTime(c, last.StartedAt), shorten(last.LastError, 300))
		} else if !errors.Is(err, edge.ErrNotFound) {
			return p, err
		}
		return p, nil
	}
	st := s.Sync.Status()
	p.State, p.Running = st.State, st.Running()
	p.StateText = st.State
	if c.Has("sync.state." + st.State) {
		p.StateText = c.T("sync.state." + st.State)
	}
	if !st.PausedUntil.IsZero() && (st.State == SyncBackoff || st.State == SyncOffline) {
		p.NextTry = c.T("sync.next_try", formatTime(c, st.PausedUntil))
	}
	run := st.Run
	p.Delivered, p.Failed, p.Refused = run.Delivered, run.Failed, run.Quarantined
	if run.ID != 0 {
		p.RunText = c.T("sync.run_counts", FormatInt(run.Delivered), FormatInt(run.Failed), FormatInt(run.Quarantined))
	}
	if p.Running {
		p.Done = run.Delivered + run.Quarantined
	}
	p.Total = p.Done + p.Pending
	if st.LastError != "" {
		p.LastError = c.T("sync.error_at", formatDateTime(c, st.LastErrorAt), shorten(st.LastError, 300))
	} else if last, err := s.Store.LastSyncError(ctx); err == nil {
		p.LastError = c.T("sync.error_at", formatDateTime(c, last.StartedAt), shorten(last.LastError, 300))
	} else if !errors.Is(err, edge.ErrNotFound) {
		return p, err
	}
	return p, nil
}

// byteSize says n bytes as B, kB or MB.
func byteSize(c *catalog, n int64) string {
	switch {
	case n < 10<<10:
		return c.T("sync.bytes", FormatInt(n))
	case n < 10<<20:
		return c.T("sync.kb", FormatInt(n>>10))
	}
	return c.T("sync.mb", FormatInt(n>>20))
}

// shorten keeps text on one line and at most n bytes, cut at a rune.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// parseOutboxID reads the {id} of an outbox route; 0 when it is not one.
func parseOutboxID(r *http.Request) int64 {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}
