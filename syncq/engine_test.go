package syncq_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/synctest"
)

func TestEngine_ExactlyOnceThroughFaults(t *testing.T) {
	t.Parallel()
	// The figure is 10,000 encounters, about 30,600 documents;
	// HEALTHPOST_SYNC_LONG=1 runs it. By default 300 encounters (about 920
	// documents: lab reports, amendments and a withdrawal among them) go
	// in batches and 60 one by one, because every document is built from
	// the store by the node's mapper and parsed and stored by the hub:
	// under -race that costs some 25 ms of CPU a document, node and hub
	// together, so 10,000 encounters take over ten minutes there, where
	// this test should take about one.
	backlog, oneByOne := synctest.Backlog{Patients: 150, Encounters: 300}, synctest.Backlog{Patients: 20, Encounters: 60}
	if longRun() {
		backlog, oneByOne = synctest.Backlog{Patients: 2000, Encounters: 10000}, synctest.Backlog{Patients: 200, Encounters: 1000}
	}
	for _, tc := range []struct {
		name    string
		mode    string
		batch   int
		backlog synctest.Backlog
	}{
		{"PutBatch", edge.UpstreamModePut, 50, backlog},
		{"ConditionalOneByOne", edge.UpstreamModeConditional, 1, oneByOne},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Ensure every document of a real backlog, built by the node's
			// mapper, reaches the hub exactly once, each patient's in the
			// order written and each version of a document after the one
			// before, through a proxy failing 30 % of requests in every way
			// it knows (resets, 5xx, 429, lies, answers lost after the hub
			// stored the document).
			path := filepath.Join(t.TempDir(), edge.DBFileName)
			bst := tc.backlog.MustCopy(t, path)
			s := edgetest.MustOpenStoreAt(t, path)
			h := MustOpenHub(t)
			p := MustProxy(t, h.URL, synctest.Faults{Rate: 0.3, RetryAfter: 7, Latency: time.Millisecond}, 1)
			e := NewABDMEngine(t, s, p.URL, h.Token)
			e.Client.Mode = tc.mode
			e.BatchSize = tc.batch
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			start := time.Now()
			if err := e.Open(ctx); err != nil {
				t.Fatal(err)
			}
			MustWaitDrained(t, ctx, e, s)
			if err := e.Close(ctx); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			if got := MustVerifyABDMExactlyOnce(t, path, h.Store); got != bst.Documents {
				t.Fatalf("verified %d documents, the backlog has %d", got, bst.Documents)
			}
			counts, _ := p.Counts()
			for _, f := range synctest.AllFaults {
				if counts[f] == 0 {
					t.Errorf("fault %s was never injected", f)
				}
			}
			slept, _ := e.Clock.(*synctest.AutoClock).Slept()
			t.Logf("%d encounters, %d documents in %v; proxy: %s; virtual backoff %v", bst.Encounters, bst.Documents, elapsed.Round(time.Millisecond), p.CountsString(), slept.Round(time.Second))
		})
	}
}

func TestEngine_UnprovenAnswerNeverDelivers(t *testing.T) {
	t.Parallel()
	for _, f := range []synctest.Fault{
		synctest.FaultLie, synctest.FaultGarbage, synctest.FaultTruncate, synctest.FaultMismatch,
		synctest.FaultDropAfter, synctest.FaultSlow, synctest.Fault502HTML, synctest.FaultCaptive400,
		synctest.Fault503, synctest.FaultReset, synctest.Fault429,
	} {
		for _, batch := range []int{1, 5} {
			t.Run(string(f)+map[int]string{1: "/single", 5: "/batch"}[batch], func(t *testing.T) {
				t.Parallel()
				// Ensure an answer that does not prove the document was
				// stored leaves it pending and not quarantined, and that it
				// is delivered once, and only once, when the answers are good.
				path := filepath.Join(t.TempDir(), edge.DBFileName)
				s := edgetest.MustOpenStoreAt(t, path)
				docs := MustSeed(t, s, 3, 3)
				h := MustOpenHub(t)
				p := MustProxy(t, h.URL, synctest.Faults{}, 2)
				e := NewTestEngine(t, s, p.URL, h.Token)
				e.BatchSize = batch
				ctx := context.Background()
				if _, err := e.Drain(ctx, syncq.DrainOptions{}); err != nil { // probe and learn batch support
					t.Fatal(err)
				}
				before := docs
				docs += MustSeed(t, s, 3, 3)
				p.SetFaults(synctest.Faults{Rate: 1, Kinds: []synctest.Fault{f}})
				if f == synctest.FaultSlow {
					e.Client.Timeout = 300 * time.Millisecond // the proxy holds the answer until the client gives up
				}
				e.Drain(ctx, syncq.DrainOptions{})
				e.Client.Timeout = 20 * time.Second
				raw := edgetest.MustRawDB(t, path)
				if got := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'delivered'`); got != before {
					t.Fatalf("delivered=%d after a %s answer, want the %d of before", got, f, before)
				}
				if got := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'quarantined'`); got != 0 {
					t.Fatalf("quarantined=%d after a %s answer, want 0", got, f)
				}
				st := e.Status()
				if st.LastError == "" {
					t.Fatalf("no last error after a %s answer", f)
				}
				p.SetFaults(synctest.Faults{})
				if _, err := e.Drain(ctx, syncq.DrainOptions{Expedite: true, Wait: true}); err != nil {
					t.Fatal(err)
				}
				if got := MustVerifyExactlyOnce(t, path, h.Store); got != docs {
					t.Fatalf("verified %d documents, want %d", got, docs)
				}
			})
		}
	}
}
