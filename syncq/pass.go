package syncq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/healthpost/healthpost/edge"
)

// itemResult is what became of one due row in a pass.
type itemResult struct {
	attempted bool // false: not tried (the pass stopped early); the row stays as it was
	sent      bool // a request carried it
	res       Result
}

// pass maps and sends items (each of a different patient, as DueOutbox
// returns them) and settles every outcome in one transaction. A job is the
// rows of one request of batch documents; with one document per request
// (batch 1), it is a worker's share of the pass, mapped at once (so a
// BatchMapper reads the share's records in one transaction) and sent one by
// one.
func (e *Engine) pass(ctx context.Context, items []edge.OutboxItem, batch int) error {
	actx := edge.WithActor(ctx, edge.Actor{Kind: edge.ActorSystem, ID: "syncq"})
	results := make([]itemResult, len(items))
	out0, in0 := e.Client.BytesOut(), e.Client.BytesIn()

	size, oneByOne := batch, batch == 1
	if oneByOne {
		size = (len(items) + e.Workers - 1) / e.Workers
	}
	jobs := make(chan []int)
	var stop atomic.Bool // a link, throttle or credentials failure: send nothing more this pass
	var wg sync.WaitGroup
	for range min(e.Workers, (len(items)+size-1)/size) {
		wg.Go(func() {
			for idx := range jobs {
				if stop.Load() || ctx.Err() != nil {
					continue
				}
				e.job(actx, items, idx, oneByOne, results, &stop)
			}
		})
	}
	for i := 0; i < len(items); i += size {
		idx := make([]int, 0, size)
		for j := i; j < min(i+size, len(items)); j++ {
			idx = append(idx, j)
		}
		jobs <- idx
	}
	close(jobs)
	wg.Wait()

	return e.settle(ctx, items, results, e.Client.BytesOut()-out0, e.Client.BytesIn()-in0)
}

// job maps the rows at idx and sends them: one by one when oneByOne, else
// in one batch when there are several.
func (e *Engine) job(ctx context.Context, items []edge.OutboxItem, idx []int, oneByOne bool, results []itemResult, stop *atomic.Bool) {
	var docs []*Document
	var at []int
	mapped := make([]Mapped, len(idx))
	if bm, ok := e.Mapper.(BatchMapper); ok {
		its := make([]edge.OutboxItem, len(idx))
		for k, i := range idx {
			its[k] = items[i]
		}
		if got := bm.Documents(ctx, its); len(got) == len(idx) {
			mapped = got
		} else {
			for k := range mapped {
				mapped[k].Err = fmt.Errorf("the mapper returned %d documents for %d rows", len(got), len(idx))
			}
		}
	} else {
		for k, i := range idx {
			mapped[k].BundleID, mapped[k].Body, mapped[k].Err = e.Mapper.Document(ctx, items[i])
		}
	}
	for k, i := range idx {
		id, body, err := mapped[k].BundleID, mapped[k].Body, mapped[k].Err
		if ctx.Err() != nil {
			return
		}
		var d *Document
		if err == nil {
			d, err = NewDocument(items[i], id, body)
		}
		if err != nil {
			kind := KindServer // passing: retried, and not the upstream's fault
			var fe edge.FieldErrors
			if errors.Is(err, ErrUnmappable) || errors.Is(err, edge.ErrNotFound) || errors.As(err, &fe) {
				kind = KindMapping
			}
			results[i] = itemResult{attempted: true, res: Result{Err: &DeliveryError{Kind: kind, Diagnostics: "build document: " + err.Error()}}}
			continue
		}
		docs = append(docs, d)
		at = append(at, i)
	}
	if len(docs) == 0 {
		return
	}
	var res []Result
	if len(docs) > 1 && !oneByOne {
		var err error
		res, err = e.Client.SendBatch(ctx, docs)
		if errors.Is(err, ErrBatchRefused) {
			e.mu.Lock()
			e.batchOK = false
			e.mu.Unlock()
			e.Logger.Warn("upstream refused a batch bundle; sending one document per request from now on")
			res = nil
		}
	}
	if res == nil {
		res = make([]Result, len(docs))
		for k, d := range docs {
			if stop.Load() {
				res = res[:k]
				break
			}
			res[k] = e.Client.Send(ctx, d)
			if r := res[k]; r.Err != nil && (r.Err.Kind == KindLink || r.Err.Kind == KindThrottled || r.Err.Kind == KindAuth) {
				stop.Store(true)
			}
		}
	}
	for k, r := range res {
		if r.Err != nil && r.Err.Kind == KindLink && ctx.Err() != nil {
			continue // cut short by Close: not an attempt
		}
		results[at[k]] = itemResult{attempted: true, sent: true, res: r}
		if r.Err != nil && (r.Err.Kind == KindLink || r.Err.Kind == KindThrottled || r.Err.Kind == KindAuth) {
			stop.Store(true)
		}
	}
}

// settle judges the upstream by the pass and records every outcome.
func (e *Engine) settle(ctx context.Context, items []edge.OutboxItem, results []itemResult, bytesOut, bytesIn int64) error {
	now := e.Clock.Now()
	var anySuccess bool
	var worst *DeliveryError
	rank := map[Kind]int{KindServer: 1, KindLink: 2, KindAuth: 3, KindThrottled: 4}
	for _, r := range results {
		if !r.sent {
			continue
		}
		if r.res.Err == nil {
			anySuccess = true
		} else if rank[r.res.Err.Kind] > 0 && (worst == nil || rank[r.res.Err.Kind] > rank[worst.Kind]) {
			worst = r.res.Err
		}
	}
	switch {
	case worst != nil && (worst.Kind == KindThrottled || worst.Kind == KindAuth):
		e.upstreamFailed(now, worst, false)
		e.logFailure("upstream failed", worst)
	case worst != nil && !anySuccess:
		e.upstreamFailed(now, worst, worst.Kind == KindLink)
		e.logFailure("upstream failed", worst)
	case anySuccess:
		e.mu.Lock()
		e.failures = 0
		if worst != nil && worst.Kind == KindLink {
			e.needProbe = true
		}
		e.st.LastSuccess = now
		e.mu.Unlock()
	}
	e.mu.Lock()
	pausedUntil := e.pausedUntil
	e.mu.Unlock()

	var outs []edge.OutboxOutcome
	use := edge.SyncUsage{BytesOut: bytesOut, BytesIn: bytesIn}
	var delivered, failed, quarantined int64
	for i, r := range results {
		if !r.attempted {
			continue
		}
		it := items[i]
		if r.sent {
			use.Attempted++
		}
		switch {
		case r.res.Err == nil:
			rc := r.res.Receipt
			rc.At = now
			outs = append(outs, edge.OutboxOutcome{ID: it.ID, State: edge.OutboxDelivered, Receipt: rc})
			delivered++
		case r.res.Err.Permanent():
			outs = append(outs, edge.OutboxOutcome{ID: it.ID, State: edge.OutboxQuarantined, Reason: r.res.Err.Error()})
			quarantined++
			e.Logger.Warn("document refused for good; quarantined for an administrator",
				edge.LogKeyOutboxID, it.ID, "kind", r.res.Err.Kind.String(), "status", r.res.Err.Status, "code", r.res.Err.Code)
		default:
			next := now.Add(backoff(it.Attempts+1, e.MinBackoff, e.MaxBackoff, e.Rand))
			if pausedUntil.After(next) {
				next = pausedUntil
			}
			outs = append(outs, edge.OutboxOutcome{ID: it.ID, State: edge.OutboxPending, Reason: r.res.Err.Error(), Next: next})
			failed++
			use.LastError = r.res.Err.Error()
		}
	}
	e.mu.Lock()
	runID := e.runID
	e.mu.Unlock()
	// Record what the upstream confirmed even when Close cut the pass short.
	skipped, err := e.store.SettleOutbox(context.WithoutCancel(ctx), runID, outs, use)
	if err != nil {
		return err
	}
	e.mu.Lock()
	run := &e.st.Run
	run.Attempted += use.Attempted
	run.Delivered += delivered - int64(min(skipped, int(delivered)))
	run.Failed += failed
	run.Quarantined += quarantined
	run.BytesOut += bytesOut
	run.BytesIn += bytesIn
	if use.LastError != "" {
		run.LastError = use.LastError
		e.st.LastError, e.st.LastErrorAt = use.LastError, now
	}
	e.notifyLocked()
	e.mu.Unlock()
	return nil
}
