package syncq_test

import (
	"context"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/synctest"
)

// waitState waits on the engine's notifications until ok, or fails.
func waitState(t *testing.T, e *syncq.Engine, what string, ok func(syncq.Status) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		ch := e.Changed()
		if st := e.Status(); ok(st) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("engine never %s: %+v", what, e.Status())
		}
	}
}

func TestEngine_TriggerNowBy(t *testing.T) {
	// Ensure a run started by TriggerNowBy is recorded as the trigger's,
	// a trigger that found the link down does not label a later run, and
	// runs the engine starts by itself keep its own trigger.
	s := edgetest.MustOpenStore(t)
	h := MustOpenHub(t)
	p := MustProxy(t, h.URL, synctest.Faults{}, 3)
	e := NewTestEngine(t, s, p.URL, h.Token)
	e.Clock = synctest.NewManualClock(time.Now().Add(time.Hour)) // a pause lasts until a trigger
	MustSeed(t, s, 2, 2)
	p.SetDown(true)
	ctx := context.Background()
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	offline := func(st syncq.Status) bool { return st.State == syncq.StateOffline }
	waitState(t, e, "went offline", offline)

	// A trigger while the link is down: the probe fails, no run starts.
	before := e.Status().ConsecutiveFailures
	e.TriggerNowBy(edge.SyncTriggerWeb)
	waitState(t, e, "probed again", func(st syncq.Status) bool { return offline(st) && st.ConsecutiveFailures > before })
	if runs, _ := s.SyncRuns(ctx, 0); len(runs) != 0 {
		t.Fatalf("runs=%+v after a failed probe", runs)
	}

	// The link is back; a plain trigger's run is the engine's own.
	p.SetDown(false)
	e.TriggerNow()
	MustWaitDrained(t, ctx, e, s)
	waitState(t, e, "ended its run", func(st syncq.Status) bool { return st.State == syncq.StateIdle && !st.Run.EndedAt.IsZero() })

	// New documents while idle wake it by themselves; a trigger's run is the trigger's.
	MustSeed(t, s, 1, 1)
	MustWaitDrained(t, ctx, e, s)
	waitState(t, e, "ended its run", func(st syncq.Status) bool { return st.State == syncq.StateIdle && !st.Run.EndedAt.IsZero() })
	p.SetDown(true)
	e.TriggerNow()
	waitState(t, e, "went offline", offline)
	p.SetDown(false)
	MustSeed(t, s, 1, 1)
	e.TriggerNowBy(edge.SyncTriggerWeb)
	MustWaitDrained(t, ctx, e, s)
	waitState(t, e, "ended its run", func(st syncq.Status) bool { return st.State == syncq.StateIdle && !st.Run.EndedAt.IsZero() })

	runs, err := s.SyncRuns(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(runs) - 1; i >= 0; i-- {
		got = append(got, runs[i].Trigger)
	}
	if want := []string{edge.SyncTriggerAuto, edge.SyncTriggerAuto, edge.SyncTriggerWeb}; len(got) != len(want) ||
		got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("run triggers=%v, want %v", got, want)
	}
	if st := e.Status(); st.Run.Trigger != edge.SyncTriggerWeb {
		t.Fatalf("status run trigger=%q, want web", st.Run.Trigger)
	}
}
