package main

import (
	"testing"

	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/webui"
)

func TestWebSync_States(t *testing.T) {
	// Ensure every state of the engine reaches the web UI as one of its own.
	known := map[string]bool{}
	for _, s := range []string{webui.SyncIdle, webui.SyncDelivering, webui.SyncBackoff, webui.SyncOffline, webui.SyncClosed,
		webui.SyncOverBudget, webui.SyncStopped} {
		known[s] = true
	}
	for _, s := range []string{syncq.StateIdle, syncq.StateDelivering, syncq.StateBackoff, syncq.StateOffline, syncq.StateClosed,
		syncq.StateBudget, syncq.StateStopped} {
		if !known[webSyncStates[s]] {
			t.Errorf("engine state %q maps to %q, not a web UI state", s, webSyncStates[s])
		}
	}
}
