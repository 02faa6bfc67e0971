package syncq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// Defaults of the engine.
const (
	DefaultWorkers          = 4
	DefaultBatchSize        = 20
	DefaultPassSize         = 100
	DefaultPollInterval     = 30 * time.Second
	DefaultErrorLogInterval = time.Minute
)

// Engine states, as Status reports them.
const (
	StateIdle       = "idle"        // nothing due
	StateDelivering = "delivering"  // sending documents
	StateBackoff    = "backing-off" // the upstream failed; waiting before trying again
	StateOffline    = "offline"     // the link is down; the next try is a probe
	StateClosed     = "closed"      // outside the configured time windows
	StateBudget     = "over-budget" // the daily byte budget is spent
	StateStopped    = "stopped"
)

// Engine delivers the outbox to one upstream. Open starts a worker that
// waits on "outbox changed", a trigger or a timer, and runs delivery passes:
// read due rows (per-patient order and lanes come from edge.DueOutbox), map
// them, send them through Workers requests at once (BatchSize documents each
// when the upstream takes batch bundles), and settle every outcome in one
// transaction. Drain runs the same passes in the caller, for
// `healthpost sync now`.
//
// Failures back off at two levels. A document that failed is retried after
// its own exponential backoff, and holds back its patient's later documents.
// The upstream as a whole pauses when a pass had no success at all, when it
// throttles (at least its Retry-After) or refuses the node's credentials;
// after a link failure the next attempt is a probe (GET metadata), so a dead
// link costs one small request per backoff step rather than a battery of
// retries.
type Engine struct {
	// Client is the upstream. Required.
	Client *Client
	// Mapper builds the documents. Required.
	Mapper Mapper
	// Clock gives the time and the waits; tests replace it.
	Clock Clock
	// Logger receives operational messages: IDs, statuses, never PHI.
	Logger *slog.Logger
	// Trigger names who runs the engine in the run history (edge.SyncTrigger*).
	Trigger string

	// Workers is the number of requests in flight; BatchSize the documents
	// per request when the upstream accepts batch bundles (1 turns it off).
	Workers   int
	BatchSize int
	// PassSize is the most documents one pass takes: one read of the
	// outbox and one transaction recording the outcomes. It is raised to
	// Workers×BatchSize when smaller.
	PassSize int
	// PollInterval bounds every wait, so rows written by another process
	// (which does not wake this one) are found; 0 turns polling off.
	PollInterval time.Duration
	// Backoff of the upstream and of each document.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps a server's Retry-After.
	MaxRetryAfter time.Duration
	// ErrorLogInterval is the least time between two log lines about
	// repeating failures; the lines carry a count.
	ErrorLogInterval time.Duration
	// Windows and DailyBudget (bytes, 0 for none) limit a metered link;
	// alerts are sent regardless. IgnoreLimits turns both off.
	Windows      Windows
	DailyBudget  int64
	IgnoreLimits bool
	// Rand returns jitter in [0, 1); nil uses math/rand.
	Rand func() float64

	store *edge.Store

	passMu sync.Mutex // one pass at a time

	mu          sync.Mutex
	st          Status
	failures    int
	pausedUntil time.Time
	needProbe   bool
	batchOK     bool
	runID       int64
	nextTrigger string // who asked for the next run (TriggerNowBy), when not Trigger
	changed     chan struct{}
	lastLog     time.Time
	unlogged    int
	lastErr     error // the last upstream failure, for Drain's error

	trigger chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Status is what the engine is doing, for status pages and progress bars.
type Status struct {
	State       string    `json:"state"`
	Upstream    string    `json:"upstream"`
	PausedUntil time.Time `json:"paused_until,omitzero"`
	// ConsecutiveFailures counts passes in a row that failed upstream.
	ConsecutiveFailures int       `json:"consecutive_failures"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	LastErrorAt         time.Time `json:"last_error_at,omitzero"`
	// Run is the current (or last) run's counters.
	Run edge.SyncRun `json:"run"`
}

// NewEngine returns an engine delivering s's outbox through c, mapping with
// m, with default settings.
func NewEngine(s *edge.Store, c *Client, m Mapper) *Engine {
	e := &Engine{
		Client:           c,
		Mapper:           m,
		Clock:            SystemClock(),
		Logger:           slog.New(slog.DiscardHandler),
		Trigger:          edge.SyncTriggerAuto,
		Workers:          DefaultWorkers,
		BatchSize:        DefaultBatchSize,
		PassSize:         DefaultPassSize,
		PollInterval:     DefaultPollInterval,
		MinBackoff:       DefaultMinBackoff,
		MaxBackoff:       DefaultMaxBackoff,
		MaxRetryAfter:    DefaultMaxRetryAfter,
		ErrorLogInterval: DefaultErrorLogInterval,
		store:            s,
		needProbe:        true,
		changed:          make(chan struct{}),
		trigger:          make(chan struct{}, 1),
	}
	e.st.State = StateIdle
	if c != nil {
		e.st.Upstream = c.BaseURL
	}
	return e
}

// Open starts the delivery worker.
func (e *Engine) Open(ctx context.Context) error {
	if err := e.check(); err != nil {
		return err
	}
	e.Logger = e.Logger.With(edge.LogKeySubsystem, "syncq")
	ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.run(ctx)
	}()
	return nil
}

// Close stops the worker: a pass in flight is cut short, and what the
// upstream had already confirmed is still recorded.
func (e *Engine) Close(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close syncq: %w", ctx.Err())
	}
	e.setState(StateStopped)
	return nil
}

func (e *Engine) check() error {
	switch {
	case e.store == nil:
		return errors.New("syncq: no store")
	case e.Client == nil:
		return ErrNoUpstream
	case e.Mapper == nil:
		return errors.New("syncq: no FHIR mapper")
	}
	if e.Workers < 1 {
		e.Workers = 1
	}
	if e.BatchSize < 1 {
		e.BatchSize = 1
	}
	if e.MinBackoff <= 0 {
		e.MinBackoff = DefaultMinBackoff
	}
	if e.MaxBackoff < e.MinBackoff {
		e.MaxBackoff = e.MinBackoff
	}
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	if e.Clock == nil {
		e.Clock = SystemClock()
	}
	return nil
}

// TriggerNow asks the running worker to try now: a pause for backoff ends, the
// link is probed, and due documents go.
func (e *Engine) TriggerNow() { e.TriggerNowBy("") }

// TriggerNowBy is TriggerNow on behalf of trigger (edge.SyncTrigger*): the
// run it starts is recorded as the trigger's rather than the engine's. A
// run already under way goes on as it was. The web UI's "Sync now" calls it.
func (e *Engine) TriggerNowBy(trigger string) {
	e.mu.Lock()
	e.pausedUntil, e.needProbe = time.Time{}, true
	if trigger != "" {
		e.nextTrigger = trigger
	}
	e.mu.Unlock()
	select {
	case e.trigger <- struct{}{}:
	default:
	}
}

// Status returns what the engine is doing.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.st
	st.PausedUntil, st.ConsecutiveFailures = e.pausedUntil, e.failures
	return st
}

// Changed returns a channel closed at the engine's next change of status
// (after every pass); take a new one after each wake-up.
func (e *Engine) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// notifyLocked wakes status watchers; e.mu is held.
func (e *Engine) notifyLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *Engine) setState(s string) {
	e.mu.Lock()
	if e.st.State != s {
		e.st.State = s
		e.notifyLocked()
	}
	e.mu.Unlock()
}

// wake says when the engine is worth running again.
type wake struct {
	now    bool      // more is due: go on at once
	idle   bool      // nothing pending: wait for a change
	at     time.Time // else: wait until then
	paused bool      // the upstream is paused: new rows do not shorten the wait
}

// run is the worker: step, then wait for a change, a trigger or a timer.
func (e *Engine) run(ctx context.Context) {
	defer e.endRun(context.WithoutCancel(ctx), "")
	for {
		changed := e.store.OutboxChanged()
		w, err := e.step(ctx)
		e.mu.Lock()
		if e.runID == 0 {
			// The step that answered a TriggerNowBy started no run (nothing
			// was due, or the link is down): the next run is not the trigger's.
			e.nextTrigger = ""
		}
		e.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			e.logFailure("delivery pass failed", err)
			w = wake{at: e.Clock.Now().Add(e.MinBackoff)}
		}
		if w.now {
			continue
		}
		var timer <-chan time.Time
		var changes <-chan struct{}
		if !w.paused {
			changes = changed
		}
		var d time.Duration
		switch {
		case w.idle:
			d = e.PollInterval
		default:
			d = w.at.Sub(e.Clock.Now())
			if e.PollInterval > 0 {
				d = min(d, e.PollInterval)
			}
			d = max(d, time.Millisecond)
		}
		if d > 0 {
			timer = e.Clock.After(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-e.trigger:
		case <-changes:
		case <-timer:
		}
	}
}

// DrainOptions tune Drain.
type DrainOptions struct {
	// Expedite makes every pending document due now before starting, as an
	// operator who says "now" means.
	Expedite bool
	// Wait keeps going through backoff until nothing is pending (or ctx
	// ends); without it Drain returns at the first pause.
	Wait bool
	// Progress is called after every pass.
	Progress func(Status)
}

// Drain delivers what is due in the caller's goroutine, without the
// background worker, and returns the last status. It returns an error when
// it stopped because the upstream failed.
func (e *Engine) Drain(ctx context.Context, opts DrainOptions) (Status, error) {
	if err := e.check(); err != nil {
		return e.Status(), err
	}
	defer e.endRun(context.WithoutCancel(ctx), "")
	if opts.Expedite {
		if _, err := e.store.ExpediteOutbox(ctx, e.Clock.Now()); err != nil {
			return e.Status(), err
		}
	}
	for {
		w, err := e.step(ctx)
		st := e.Status()
		if opts.Progress != nil {
			opts.Progress(st)
		}
		switch {
		case err != nil:
			return st, err
		case ctx.Err() != nil:
			return st, ctx.Err()
		case w.now:
			continue
		case w.idle:
			return st, nil
		case !opts.Wait:
			if w.paused && st.LastError != "" {
				e.mu.Lock()
				last := e.lastErr
				e.mu.Unlock()
				return st, fmt.Errorf("the upstream is not taking documents now: %w", last)
			}
			return st, nil
		}
		select {
		case <-ctx.Done():
			return e.Status(), ctx.Err()
		case <-e.Clock.After(max(w.at.Sub(e.Clock.Now()), time.Millisecond)):
		}
	}
}

// step runs one delivery pass if the upstream, the windows and the budget
// allow, and says when to come back.
func (e *Engine) step(ctx context.Context) (wake, error) {
	e.passMu.Lock()
	defer e.passMu.Unlock()
	now := e.Clock.Now()

	e.mu.Lock()
	paused, until, probe := now.Before(e.pausedUntil), e.pausedUntil, e.needProbe
	e.mu.Unlock()
	if paused {
		e.endRun(ctx, "")
		return wake{at: until, paused: true}, nil
	}

	alertsOnly, reopen, limitState, err := e.limits(ctx, now)
	if err != nil {
		return wake{}, err
	}

	if probe {
		caps, err := e.Client.Probe(ctx)
		if ctx.Err() != nil {
			return wake{}, nil
		}
		if err != nil {
			var de *DeliveryError
			if !errors.As(err, &de) {
				de = &DeliveryError{Kind: KindLink, Err: err}
			}
			e.upstreamFailed(now, de, de.Kind == KindLink)
			e.logFailure("upstream probe failed", de)
			e.endRun(ctx, "probe: "+de.Error())
			e.mu.Lock()
			until = e.pausedUntil
			e.mu.Unlock()
			return wake{at: until, paused: true}, nil
		}
		e.mu.Lock()
		e.needProbe = false
		e.batchOK = caps.Batch
		e.mu.Unlock()
	}

	e.mu.Lock()
	batch := 1
	if e.batchOK {
		batch = e.BatchSize
	}
	e.mu.Unlock()
	// Batched, a pass is one request per BatchSize rows; otherwise each
	// worker sends its share one by one.
	items, err := e.store.DueOutbox(ctx, now, max(e.PassSize, e.Workers*batch))
	if err != nil {
		return wake{}, err
	}
	if alertsOnly {
		n := 0
		for _, it := range items {
			if it.Lane == edge.LaneAlert {
				items[n] = it
				n++
			}
		}
		items = items[:n]
	}
	if len(items) == 0 {
		e.endRun(ctx, "")
		next, err := e.store.NextOutboxDue(ctx)
		switch {
		case errors.Is(err, edge.ErrNotFound):
			e.setState(StateIdle)
			return wake{idle: true}, nil
		case err != nil:
			return wake{}, err
		}
		if alertsOnly && next.Before(reopen) {
			e.setState(limitState)
			return wake{at: reopen}, nil
		}
		e.setState(StateIdle)
		return wake{at: next}, nil
	}
	if err := e.startRun(ctx); err != nil {
		return wake{}, err
	}
	e.setState(StateDelivering)
	if err := e.pass(ctx, items, batch); err != nil {
		return wake{}, err
	}
	return wake{now: true}, nil
}

// limits applies the time windows and the daily budget: outside them only
// alerts go, until reopen.
func (e *Engine) limits(ctx context.Context, now time.Time) (alertsOnly bool, reopen time.Time, state string, err error) {
	if e.IgnoreLimits {
		return false, time.Time{}, "", nil
	}
	if open, next := e.Windows.Open(now); !open {
		return true, next, StateClosed, nil
	}
	if e.DailyBudget > 0 {
		day := startOfDay(now, e.Windows.Location)
		used, err := e.store.SyncBytesSince(ctx, day)
		if err != nil {
			return false, time.Time{}, "", err
		}
		if used >= e.DailyBudget {
			return true, day.AddDate(0, 0, 1), StateBudget, nil
		}
	}
	return false, time.Time{}, "", nil
}

// startRun records the start of a run, once per stretch of work.
func (e *Engine) startRun(ctx context.Context) error {
	e.mu.Lock()
	id := e.runID
	e.mu.Unlock()
	if id != 0 {
		return nil
	}
	e.mu.Lock()
	trigger := e.Trigger
	if e.nextTrigger != "" {
		trigger, e.nextTrigger = e.nextTrigger, ""
	}
	e.mu.Unlock()
	id, err := e.store.StartSyncRun(ctx, trigger, e.Client.BaseURL)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.runID = id
	e.st.Run = edge.SyncRun{ID: id, Trigger: trigger, Upstream: e.Client.BaseURL, StartedAt: e.Clock.Now()}
	e.mu.Unlock()
	return nil
}

// endRun records the end of the current run, if one is open.
func (e *Engine) endRun(ctx context.Context, lastErr string) {
	e.mu.Lock()
	id := e.runID
	e.runID = 0
	if id != 0 {
		e.st.Run.EndedAt = e.Clock.Now()
		if lastErr != "" {
			e.st.Run.LastError = lastErr
		}
	}
	e.mu.Unlock()
	if id == 0 {
		return
	}
	if err := e.store.FinishSyncRun(context.WithoutCancel(ctx), id, lastErr); err != nil {
		e.logFailure("record end of sync run", err)
	}
}

// upstreamFailed pauses the upstream after a failure that is its own: the
// n-th failure in a row waits backoff(n), a throttle at least Retry-After.
func (e *Engine) upstreamFailed(now time.Time, de *DeliveryError, link bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures++
	d := backoff(e.failures, e.MinBackoff, e.MaxBackoff, e.Rand)
	if de.RetryAfter > 0 {
		d = max(d, min(de.RetryAfter, e.MaxRetryAfter))
	}
	e.pausedUntil = now.Add(d)
	if link {
		e.needProbe = true
		e.st.State = StateOffline
	} else {
		e.st.State = StateBackoff
	}
	e.st.LastError, e.st.LastErrorAt, e.lastErr = de.Error(), now, de
	e.notifyLocked()
}

// logFailure logs a failure at most once per ErrorLogInterval, with the
// number of failures since the last line. Only the kind, the status and the
// issue code are logged: a server's diagnostics may quote the document.
func (e *Engine) logFailure(msg string, err error) {
	e.mu.Lock()
	now := e.Clock.Now()
	if !e.lastLog.IsZero() && now.Sub(e.lastLog) < e.ErrorLogInterval {
		e.unlogged++
		e.mu.Unlock()
		return
	}
	n := e.unlogged + 1
	e.lastLog, e.unlogged = now, 0
	failures := e.failures
	e.mu.Unlock()
	attrs := []any{"failures", n, "consecutive_upstream_failures", failures}
	var de *DeliveryError
	if errors.As(err, &de) {
		attrs = append(attrs, "kind", de.Kind.String(), "status", de.Status, "code", de.Code)
		if de.Kind == KindLink && de.Err != nil {
			attrs = append(attrs, "error", de.Err.Error())
		}
	} else {
		attrs = append(attrs, "error", err.Error())
	}
	e.Logger.Warn(msg, attrs...)
}
