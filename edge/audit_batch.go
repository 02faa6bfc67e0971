package edge

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// Reads of patient data are audited like writes (invariant 7), and a page
// is shown only once its audit entry has committed. Committing each read's
// entry in a write transaction of its own costs one fsync per page, all in
// a queue behind the one write lock: with 50 tablets that queue, not the
// reads, set the response time. So audited reads read through the reader
// pool and hand their entries to the read-audit writer, which appends every
// entry waiting in one transaction: a group commit. It adds no delay: it
// takes the entries once its transaction holds the write lock, so whatever
// arrived while the previous commit was being written, or while clinical
// writes held the lock, goes in. A lone read pays one commit; a crowd
// shares them.
//
// Each entry keeps its own actor, and the entries of one transaction follow
// each other in the hash chain like any others. Writes of clinical data keep
// their audit entries in their own transaction (tx.audit).

// auditBatchMax bounds the entries of one read-audit transaction.
const auditBatchMax = 512

// auditItem is one audit entry to append, without its place in the chain.
type auditItem struct {
	action, entity, entityID, patientID, detail string
}

// auditWait is one caller's entries, appended together, and the outcome
// of the commit that holds them.
type auditWait struct {
	actor Actor
	items []auditItem
	err   error
	done  chan struct{} // closed once err is set
}

// readAudits is the read-audit writer: a queue of waiting callers and the
// goroutine that commits them.
type readAudits struct {
	s *Store

	mu      sync.Mutex
	cond    *sync.Cond // signalled when the queue grows or the writer stops
	queue   []*auditWait
	stopped bool
	done    chan struct{} // closed when run has returned

	batches, entries atomic.Int64
}

func newReadAudits(s *Store) *readAudits {
	q := &readAudits{s: s, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// auditRead appends the audit entries of a read made by the actor in ctx
// and returns once they have committed, or with the error that stopped
// them: the caller must not show what it read unless this returns nil.
func (s *Store) auditRead(ctx context.Context, items ...auditItem) error {
	w, err := s.queueAudit(ctx, items)
	if err != nil {
		return err
	}
	return w.wait(ctx)
}

// queueAudit hands entries to the read-audit writer without waiting.
func (s *Store) queueAudit(ctx context.Context, items []auditItem) (*auditWait, error) {
	actor, err := ActorFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q := s.readAudits
	if q == nil {
		return nil, ErrStopping
	}
	w := &auditWait{actor: actor, items: items, done: make(chan struct{})}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return nil, ErrStopping
	}
	q.queue = append(q.queue, w)
	q.cond.Signal()
	return w, nil
}

// wait returns once the entries have committed, or why they did not.
func (w *auditWait) wait(ctx context.Context) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		// The entries may still commit: an audited read never shown.
		return ctx.Err()
	}
}

// run commits the queue until stop, then what is left in it.
func (q *readAudits) run() {
	defer close(q.done)
	var batch []*auditWait
	for {
		q.mu.Lock()
		for len(q.queue) == 0 && !q.stopped {
			q.cond.Wait()
		}
		empty := len(q.queue) == 0
		q.mu.Unlock()
		if empty { // stopped, and nothing left
			return
		}
		batch = q.commit(batch[:0])
	}
}

// take moves the entries waiting, up to auditBatchMax of them, into batch.
func (q *readAudits) take(batch []*auditWait) ([]*auditWait, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for len(q.queue) > 0 && (n == 0 || n+len(q.queue[0].items) <= auditBatchMax) {
		n += len(q.queue[0].items)
		batch = append(batch, q.queue[0])
		q.queue[0] = nil
		q.queue = q.queue[1:]
	}
	return batch, n
}

// commit appends the waiting entries in one transaction and tells every
// caller in it the outcome. The entries are taken once the transaction
// holds the write lock, so whatever arrived while it waited for the lock
// goes in too. When the transaction fails, every caller gets the error:
// none of their reads may be shown.
func (q *readAudits) commit(batch []*auditWait) []*auditWait {
	n := 0
	taken := false
	// The batch must finish even when its callers give up.
	err := q.s.write(context.Background(), func(tx *Tx) error {
		batch, n = q.take(batch)
		taken = true
		for _, w := range batch {
			for _, it := range w.items {
				if err := tx.auditAs(w.actor, it.action, it.entity, it.entityID, it.patientID, it.detail); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if !taken { // the transaction failed before it began
		batch, n = q.take(batch)
	}
	if err == nil {
		q.batches.Add(1)
		q.entries.Add(int64(n))
	} else {
		err = fmt.Errorf("audit read: %w", err)
	}
	for _, w := range batch {
		w.err = err
		close(w.done)
	}
	return batch
}

// stop refuses new entries and returns once every entry already handed in
// has been committed (or has failed).
func (q *readAudits) stop() {
	q.mu.Lock()
	q.stopped = true
	q.cond.Broadcast()
	q.mu.Unlock()
	<-q.done
}

// snapshot runs read in one read transaction on the reader pool, so the
// several queries of one record see the same committed state.
func (s *Store) snapshot(ctx context.Context, read func(tx *sql.Tx) error) error {
	if s.readers == nil {
		return ErrStopping
	}
	tx, err := s.readers.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback()
	return read(tx)
}
