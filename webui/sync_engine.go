package webui

import (
	"time"

	"github.com/healthpost/healthpost/edge"
)

// SyncEngine is the running delivery engine as the sync page drives it:
// cmd/healthpost adapts syncq's engine to it, so webui never imports syncq.
// Server.Sync is nil when no upstream is configured.
type SyncEngine interface {
	// TriggerNow asks the engine to try now, on behalf of trigger
	// (edge.SyncTrigger*): a pause for backoff ends, the link is probed and
	// due documents go. It returns at once; progress shows in Status.
	TriggerNow(trigger string)
	// Status returns what the engine is doing.
	Status() SyncStatus
	// Changed returns a channel closed at the engine's next change of
	// status; take a new one after each wake-up.
	Changed() <-chan struct{}
}

// States of the delivery engine, as SyncStatus reports them.
const (
	SyncIdle       = "idle"        // nothing due
	SyncDelivering = "delivering"  // sending documents
	SyncBackoff    = "backing-off" // the upstream failed; waiting before trying again
	SyncOffline    = "offline"     // the link is down; the next try is a probe
	SyncClosed     = "closed"      // outside the link's time windows; only alerts go
	SyncOverBudget = "over-budget" // the day's byte budget is spent; only alerts go
	SyncStopped    = "stopped"
)

// syncStates lists every state, each with a translation (sync.state.*).
var syncStates = []string{SyncIdle, SyncDelivering, SyncBackoff, SyncOffline, SyncClosed, SyncOverBudget, SyncStopped}

// SyncStatus is what the delivery engine is doing.
type SyncStatus struct {
	State    string
	Upstream string
	// PausedUntil is when the engine tries again after a failure.
	PausedUntil time.Time
	// ConsecutiveFailures counts passes in a row that failed upstream.
	ConsecutiveFailures int
	LastSuccess         time.Time
	// LastError is the upstream's last failure: a status, the server's
	// diagnostics of a retryable failure, or a network error; never the
	// reason a document was refused (that is on its outbox row).
	LastError   string
	LastErrorAt time.Time
	// Run is the current (or last) run's counters.
	Run edge.SyncRun
}

// Running reports whether a run is under way.
func (st SyncStatus) Running() bool { return st.Run.ID != 0 && st.Run.EndedAt.IsZero() }
