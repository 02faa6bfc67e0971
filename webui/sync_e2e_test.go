package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/synctest"
)

// TestBrowser_SyncPage is an admin watching delivery in real Chromium: the
// page's script follows the engine live (state and counts change in place
// while a run goes on), reloads when the run ends to show the history, and
// the Sync now button posts under the page's CSRF token and CSP.
func TestBrowser_SyncPage(t *testing.T) {
	sn := mustStartSyncNode(t)
	sn.mustSeedVisits(t, 4)
	sn.Proxy.SetDown(true)
	sn.open(t)
	sn.waitEngine(t, "went offline", func(st syncq.Status) bool { return st.State == syncq.StateOffline })
	sn.MustCreateUser("boss", edge.RoleAdmin)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node log:\n%s", sn.Log.String())
		}
	})

	ctx := MustBrowser(t)
	run(t, ctx, "sign in",
		chromedp.Navigate(sn.URL+"/login?next=/admin/sync"),
		chromedp.SendKeys(chromedp.ID("username"), "boss"),
		chromedp.SendKeys(chromedp.ID("password"), Password("boss")),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("sync-now")),
	)
	state := get(t, ctx, "state", chromedp.Text(chromedp.ID("sync-state")))
	if !strings.Contains(state, "No connection") {
		t.Fatalf("state=%q, want the link down", state)
	}
	shot(t, ctx, "12-sync-offline")

	// The link comes back with some latency, and someone (another tablet)
	// asks for a sync: this page follows it without being touched.
	// A mark on this page tells it apart from the page reloaded later.
	run(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`document.body.setAttribute("data-mark", "1")`))
	sn.Proxy.SetFaults(synctest.Faults{Latency: 500 * time.Millisecond})
	sn.Proxy.SetDown(false)
	sn.Engine.TriggerNowBy(edge.SyncTriggerWeb)
	run(t, ctx, "live progress", chromedp.WaitVisible(chromedp.CSS(`body[data-mark] #sync-run:not(:empty)`)))
	shot(t, ctx, "13-sync-running")
	run(t, ctx, "reload at the end", chromedp.WaitVisible(chromedp.CSS(`body:not([data-mark]) #runs tr[id^="run-"]`)))
	if got := sn.count(`SELECT count(*) FROM outbox WHERE state = 'delivered'`); got != 4 {
		t.Fatalf("delivered=%d, want 4", got)
	}
	history := get(t, ctx, "history", chromedp.Text(chromedp.ID("runs")))
	if !strings.Contains(history, "Sync now button") {
		t.Fatalf("history=%q", history)
	}
	shot(t, ctx, "14-sync-done")

	// The button itself.
	run(t, ctx, "sync now",
		chromedp.Click(chromedp.ID("sync-now")),
		chromedp.WaitVisible(chromedp.CSS(`p[data-flash="flash.sync_started"]`)),
	)
	if got := sn.count(`SELECT count(*) FROM audit_log WHERE action = 'sync.now'`); got != 1 {
		t.Fatalf("presses audited=%d, want 1", got)
	}
}
