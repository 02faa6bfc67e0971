// Package synctest holds what the tests of syncq, syncq/hub and the
// healthpost command share: clocks that never sleep, a minimal FHIR document
// mapper, and a fault-injecting HTTP proxy to put between a node and its
// upstream. It is for tests only; nothing in the running node imports it.
package synctest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq"
)

// AutoClock is a clock whose waits return at once and move its time on by
// the wait: backoff, Retry-After and windows cost no real time. Its time is
// the real time plus every wait so far, so it never falls behind rows the
// store writes with the real clock.
type AutoClock struct {
	mu     sync.Mutex
	offset time.Duration
	waits  int
}

// NewAutoClock returns an AutoClock at the real time.
func NewAutoClock() *AutoClock { return &AutoClock{} }

// Now is the real time plus the waits so far.
func (c *AutoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// After moves the clock on by d and returns a channel that is ready.
func (c *AutoClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.offset += max(d, 0)
	c.waits++
	now := time.Now().Add(c.offset)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

// Slept is the total time waited, and the number of waits.
func (c *AutoClock) Slept() (time.Duration, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.waits
}

// ManualClock is a clock that moves only when Advance is called; waits fire
// when it passes them.
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	waiting chan struct{}
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewManualClock returns a clock at t.
func NewManualClock(t time.Time) *ManualClock {
	return &ManualClock{now: t, waiting: make(chan struct{})}
}

// Now is the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the clock passes now+d.
func (c *ManualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	close(c.waiting)
	c.waiting = make(chan struct{})
	return ch
}

// Waiting returns a channel closed when the next wait begins.
func (c *ManualClock) Waiting() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting
}

// NextWait is the earliest pending wait, or false when none.
func (c *ManualClock) NextWait() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first time.Time
	for _, w := range c.waiters {
		if first.IsZero() || w.at.Before(first) {
			first = w.at
		}
	}
	return first, !first.IsZero()
}

// Advance moves the clock on by d and fires the waits it passes.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// IdentifierSystem is the Bundle identifier system of Mapper's documents.
const IdentifierSystem = "urn:healthpost:test:document"

// DocumentIdentity is a document's identity: its outbox key without the
// version, the same for every version of one document.
func DocumentIdentity(it edge.OutboxItem) string {
	return strings.TrimSuffix(it.Key, fmt.Sprintf("/v%d", it.EntityVersion))
}

// BundleID is the Bundle id Mapper gives a document.
func BundleID(it edge.OutboxItem) string {
	h := sha256.Sum256([]byte(DocumentIdentity(it)))
	return "hp-" + hex.EncodeToString(h[:16])
}

// Mapper returns a mapper that builds a minimal valid FHIR document Bundle
// from the outbox row alone: type document, the identifier from the row's
// key, a Composition about the row's patient, the Patient and an
// Organization as author. The same row always gives the same bytes; a later
// version (created later) has a later timestamp.
func Mapper() syncq.Mapper {
	return syncq.MapperFunc(func(ctx context.Context, it edge.OutboxItem) (string, []byte, error) {
		id, b := Document(it)
		return id, b, nil
	})
}

// Document is what Mapper returns for a row.
func Document(it edge.OutboxItem) (string, []byte) {
	id := BundleID(it)
	ts := it.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	patient := it.PatientID
	if patient == "" {
		patient = "00000000-0000-0000-0000-000000000000"
	}
	status := "final"
	if it.EntityVersion > 1 {
		status = "amended"
	}
	const org = "urn:uuid:7d4c3c1e-5b7a-4c1e-9d1e-000000000001"
	doc := map[string]any{
		"resourceType": "Bundle",
		"id":           id,
		"identifier":   map[string]any{"system": IdentifierSystem, "value": DocumentIdentity(it)},
		"type":         "document",
		"timestamp":    ts,
		"entry": []any{
			map[string]any{
				"fullUrl": "urn:uuid:" + strings.TrimPrefix(id, "hp-")[:8] + "-0000-4000-8000-" + strings.TrimPrefix(id, "hp-")[8:20],
				"resource": map[string]any{
					"resourceType": "Composition",
					"id":           id + "-c",
					"status":       status,
					"type": map[string]any{
						"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "371530004", "display": "Clinical consultation report"}},
						"text":   it.Document,
					},
					"subject": map[string]any{"reference": "urn:uuid:" + patient},
					"date":    ts,
					"author":  []any{map[string]any{"reference": org}},
					"title":   it.Document,
				},
			},
			map[string]any{
				"fullUrl":  "urn:uuid:" + patient,
				"resource": map[string]any{"resourceType": "Patient", "id": patient},
			},
			map[string]any{
				"fullUrl":  org,
				"resource": map[string]any{"resourceType": "Organization", "id": strings.TrimPrefix(org, "urn:uuid:"), "name": "Test PHC"},
			},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return id, b
}
