package webui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/hub"
	"github.com/healthpost/healthpost/syncq/synctest"
	"github.com/healthpost/healthpost/webui"
)

// engineView is the engine as the sync page sees it, as cmd/healthpost
// adapts it (its own adapter is tested there, end to end).
type engineView struct{ e *syncq.Engine }

func (v engineView) TriggerNow(trigger string) { v.e.TriggerNowBy(trigger) }
func (v engineView) Changed() <-chan struct{}  { return v.e.Changed() }
func (v engineView) Status() webui.SyncStatus {
	st := v.e.Status()
	return webui.SyncStatus{State: st.State, Upstream: st.Upstream, PausedUntil: st.PausedUntil,
		ConsecutiveFailures: st.ConsecutiveFailures, LastSuccess: st.LastSuccess, LastError: st.LastError,
		LastErrorAt: st.LastErrorAt, Run: st.Run}
}

// refusable builds the test documents, leaving out Composition.title (the
// hub refuses that for good) for the outbox rows in refuse.
type refusable struct {
	refuse atomic.Pointer[map[int64]bool]
}

func (m *refusable) Document(ctx context.Context, it edge.OutboxItem) (string, []byte, error) {
	id, b := synctest.Document(it)
	if p := m.refuse.Load(); p != nil && (*p)[it.ID] {
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			return "", nil, err
		}
		delete(doc["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any), "title")
		b, _ = json.Marshal(doc)
	}
	return id, b, nil
}

// syncNode is a node whose web UI drives a real engine delivering, through
// a proxy that can cut the link, to a real hub on loopback.
type syncNode struct {
	*testNode
	Engine *syncq.Engine
	Hub    *hub.Store
	Proxy  *synctest.Proxy
	Mapper *refusable
}

func mustStartSyncNode(t *testing.T) *syncNode {
	t.Helper()
	hs := hub.NewStore(filepath.Join(t.TempDir(), "hub.db"))
	if err := hs.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	token, err := hs.AddNode(context.Background(), "phc-test")
	if err != nil {
		t.Fatal(err)
	}
	hsrv := hub.NewServer(hs)
	hsrv.Addr = "127.0.0.1:0"
	if err := hsrv.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hsrv.Close(context.Background())
		hs.Close()
	})
	proxy, err := synctest.NewProxy(hsrv.URL(), synctest.Faults{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)

	sn := &syncNode{Hub: hs, Proxy: proxy, Mapper: &refusable{}}
	sn.testNode = MustStartNodeAt(t, filepath.Join(t.TempDir(), edge.DBFileName), &fakeClock{}, func(s *webui.Server) {
		c, err := syncq.NewClient(proxy.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Token, c.Timeout = token, 20*time.Second
		sn.Engine = syncq.NewEngine(s.Store, c, sn.Mapper)
		// The clock moves only when the test says: a paused engine stays
		// paused until someone presses "Sync now".
		sn.Engine.Clock = synctest.NewManualClock(time.Now().Add(time.Minute))
		sn.Engine.PollInterval = 0
		// One document per pass, so a run has progress to show.
		sn.Engine.Workers, sn.Engine.BatchSize, sn.Engine.PassSize = 1, 1, 1
		s.Sync = engineView{sn.Engine}
	})
	return sn
}

// open starts the engine; it stops before the server and store do.
func (sn *syncNode) open(t *testing.T) {
	t.Helper()
	if err := sn.Engine.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sn.Engine.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
}

// waitEngine waits on the engine's notifications until ok, or fails.
func (sn *syncNode) waitEngine(t *testing.T, what string, ok func(syncq.Status) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		ch := sn.Engine.Changed()
		if ok(sn.Engine.Status()) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("engine never %s: %+v", what, sn.Engine.Status())
		}
	}
}

// mustSeedVisits registers patients with one final OPD visit each (one
// OPConsultRecord each) and returns their outbox IDs.
func (sn *syncNode) mustSeedVisits(t *testing.T, n int) []int64 {
	t.Helper()
	for i := range n {
		p := sn.MustCreatePatient(&edge.Patient{Name: "Patient " + strconv.Itoa(i), Gender: "F", StatedAge: 30 + i})
		if err := sn.Store.CreateEncounter(system(), &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD,
			Status: edge.EncounterFinal, Complaint: "fever"}); err != nil {
			t.Fatal(err)
		}
	}
	items, err := sn.Store.OutboxItems(context.Background(), edge.OutboxFilter{})
	if err != nil || len(items) != n {
		t.Fatalf("outbox: %d rows, %v; want %d", len(items), err, n)
	}
	var ids []int64
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

// progress is one server-sent event of the sync page.
type progress struct {
	State     string `json:"state"`
	StateText string `json:"state_text"`
	Running   bool   `json:"running"`
	Done      int64  `json:"done"`
	Total     int64  `json:"total"`
	Pending   int64  `json:"pending"`
	Delivered int64  `json:"delivered"`
	Refused   int64  `json:"refused"`
	LastError string `json:"last_error"`
}

// openProgress follows /admin/sync/events as the client's user, until the
// test ends.
func openProgress(t *testing.T, c *client) <-chan progress {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/admin/sync/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Jar: c.hc.Jar}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan progress, 100)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "progress":
				var p progress
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &p); err != nil {
					t.Errorf("progress event %q: %v", line, err)
					return
				}
				select {
				case out <- p:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// nextProgress returns the next event, or fails.
func nextProgress(t *testing.T, events <-chan progress) progress {
	t.Helper()
	select {
	case p, ok := <-events:
		if !ok {
			t.Fatal("the progress stream ended")
		}
		return p
	case <-time.After(30 * time.Second):
		t.Fatal("no progress event within 30 s")
	}
	return progress{}
}

func TestSync_AdminPage(t *testing.T) {
	sn := mustStartSyncNode(t)
	ids := sn.mustSeedVisits(t, 4)
	refused := map[int64]bool{ids[0]: true, ids[2]: true}
	sn.Mapper.refuse.Store(&refused)
	sn.Proxy.SetDown(true)
	sn.open(t)
	sn.waitEngine(t, "went offline", func(st syncq.Status) bool { return st.State == syncq.StateOffline })

	admin := sn.MustCreateUser("root", edge.RoleAdmin)
	a := sn.Client()
	a.LoginAs(sn.testNode, admin)
	nurse := sn.Client()
	nurse.LoginAs(sn.testNode, sn.MustCreateUser("asha", edge.RoleHealthWorker))

	// Ensure the page shows the queue, the engine's state and why, and the button.
	resp, body := a.Get("/admin/sync")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"No connection to the district", `id="sync-pending">4<`, `id="sync-now"`, `action="/admin/sync/now"`,
		`<tr id="queue-pending"><th>waiting</th><td>0</td><td>4</td><td>0</td></tr>`, "Nothing refused.", "No runs yet.", sn.Proxy.URL} {
		if !strings.Contains(body, want) {
			t.Errorf("sync page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="sync-last-error"></td>`) {
		t.Error("the link failure is not shown as the last problem")
	}

	// Ensure other roles can neither see nor drive it, and their tries change nothing.
	for _, try := range []func() (*http.Response, string){
		func() (*http.Response, string) { return nurse.Get("/admin/sync") },
		func() (*http.Response, string) { return nurse.Post("/admin/sync/now", nil) },
		func() (*http.Response, string) { return nurse.Get("/admin/sync/events") },
		func() (*http.Response, string) {
			return nurse.Post(fmt.Sprintf("/admin/sync/outbox/%d/discard", ids[1]), url.Values{"reason": {"x"}})
		},
	} {
		resp, body := try()
		wantStatus(t, resp, body, http.StatusForbidden)
	}
	if got := sn.count(`SELECT count(*) FROM audit_log WHERE action = 'sync.now'`); got != 0 {
		t.Fatalf("a refused press was recorded")
	}

	// Ensure "Sync now" starts a run the page follows live: the first event
	// is the state as it is, then the run's progress until it ends.
	events := openProgress(t, a)
	first := nextProgress(t, events)
	if first.State != "offline" || first.Pending != 4 || first.Running || first.LastError == "" {
		t.Fatalf("first event %+v, want offline with 4 waiting and the link failure", first)
	}
	if st := sn.Engine.Status(); st.State != syncq.StateOffline {
		t.Fatalf("engine %s before the press: it delivered on its own", st.State)
	}
	sn.Proxy.SetDown(false)
	resp, body = a.Post("/admin/sync/now", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := location(resp); got != "/admin/sync?done=sync_started" {
		t.Fatalf("Location=%q", got)
	}
	var last progress
	for {
		p := nextProgress(t, events)
		if p.Done < last.Done && p.Running {
			t.Fatalf("progress went back: %+v after %+v", p, last)
		}
		last = p
		if !p.Running && p.Pending == 0 && p.Delivered+p.Refused == 4 && p.State != "delivering" {
			break
		}
	}
	if last.Delivered != 2 || last.Refused != 2 || last.State != "idle" {
		t.Fatalf("last event %+v, want 2 delivered, 2 refused, idle", last)
	}
	if got := sn.count(`SELECT count(*) FROM sync_runs WHERE trigger = 'web' AND delivered = 2 AND quarantined = 2 AND ended_at IS NOT NULL`); got != 1 {
		t.Fatalf("runs started by the button=%d, want 1", got)
	}
	if got := sn.count(`SELECT count(*) FROM audit_log WHERE action = 'sync.now' AND actor = ?`, "user:"+admin.ID); got != 1 {
		t.Fatalf("presses audited=%d, want 1", got)
	}
	arrivals, err := sn.Hub.Arrivals(context.Background(), 0, 0)
	if err != nil || len(arrivals) != 2 {
		t.Fatalf("hub holds %d documents (%v), want 2", len(arrivals), err)
	}

	// Ensure the refused documents are listed with the server's message and the run is in the history.
	resp, body = a.Get("/admin/sync?done=sync_started")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"Sync started.", fmt.Sprintf(`id="outbox-%d"`, ids[0]), fmt.Sprintf(`id="outbox-%d"`, ids[2]),
		"Composition.title is required", "HTTP 422", "Sync now button", `<tr id="queue-delivered"><th>delivered</th><td>0</td><td>2</td><td>0</td></tr>`} {
		if !strings.Contains(body, want) {
			t.Errorf("sync page after the run lacks %q", want)
		}
	}

	// Ensure a discard without a reason changes nothing and says why.
	discard := fmt.Sprintf("/admin/sync/outbox/%d/discard", ids[0])
	for _, reason := range []string{"", "   ", "\x00"} {
		resp, body = a.Post(discard, url.Values{"reason": {reason}})
		wantStatus(t, resp, body, http.StatusUnprocessableEntity)
		if !strings.Contains(body, "Say why this record will never be sent.") && !strings.Contains(body, "cannot be saved") {
			t.Fatalf("no plain message for reason %q", reason)
		}
	}
	if got := sn.count(`SELECT count(*) FROM outbox WHERE id = ? AND state = 'quarantined'`, ids[0]); got != 1 {
		t.Fatal("a discard without a reason changed the document")
	}
	if got := sn.count(`SELECT count(*) FROM audit_log WHERE action = 'outbox.discard'`); got != 0 {
		t.Fatal("a discard without a reason was audited as done")
	}

	// Ensure a discard with a reason is done, audited with the user and reason, and shown escaped.
	reason := `<script>alert(1)</script> entered twice; the other copy went`
	resp, body = a.Post(discard, url.Values{"reason": {reason}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := sn.count(`SELECT count(*) FROM outbox WHERE id = ? AND state = 'discarded'`, ids[0]); got != 1 {
		t.Fatal("not discarded")
	}
	if got := sn.count(`SELECT count(*) FROM audit_log WHERE action = 'outbox.discard' AND actor = ? AND entity_id = ? AND detail = ?`,
		"user:"+admin.ID, strconv.FormatInt(ids[0], 10), reason); got != 1 {
		t.Fatal("discard not audited with the user and the reason")
	}
	_, body = a.Get(location(resp))
	if strings.Contains(body, fmt.Sprintf(`id="outbox-%d"`, ids[0])) || !strings.Contains(body, "Record discarded.") || strings.Contains(body, "<script>alert") {
		t.Fatal("the discarded document is still listed, or the page lacks the message")
	}

	// Ensure a retry, once the record is fixed, sends it: the engine takes it at once.
	sn.Mapper.refuse.Store(&map[int64]bool{})
	resp, body = a.Post(fmt.Sprintf("/admin/sync/outbox/%d/retry", ids[2]), nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := sn.count(`SELECT count(*) FROM audit_log WHERE action = 'outbox.retry' AND actor = ?`, "user:"+admin.ID); got != 1 {
		t.Fatal("retry not audited with the user")
	}
	sn.waitEngine(t, "delivered the retried document", func(syncq.Status) bool {
		return sn.count(`SELECT count(*) FROM outbox WHERE id = ? AND state = 'delivered'`, ids[2]) == 1
	})
	if arrivals, _ := sn.Hub.Arrivals(context.Background(), 0, 0); len(arrivals) != 3 {
		t.Fatalf("hub holds %d documents, want 3", len(arrivals))
	}

	// Ensure settled or unknown documents get a plain answer and change nothing.
	for _, tc := range []struct {
		path   string
		form   url.Values
		status int
		where  string
	}{
		{fmt.Sprintf("/admin/sync/outbox/%d/retry", ids[0]), nil, http.StatusSeeOther, "/admin/sync?done=outbox_settled"},
		{fmt.Sprintf("/admin/sync/outbox/%d/discard", ids[1]), url.Values{"reason": {"x"}}, http.StatusSeeOther, "/admin/sync?done=outbox_settled"},
		{"/admin/sync/outbox/999999/retry", nil, http.StatusNotFound, ""},
		{"/admin/sync/outbox/-1/discard", url.Values{"reason": {"x"}}, http.StatusNotFound, ""},
		{"/admin/sync/outbox/1%27%20OR%201=1/retry", nil, http.StatusNotFound, ""},
	} {
		resp, body := a.Post(tc.path, tc.form)
		wantStatus(t, resp, body, tc.status)
		if location(resp) != tc.where {
			t.Errorf("%s: Location=%q, want %q", tc.path, location(resp), tc.where)
		}
	}
	if got := sn.count(`SELECT count(*) FROM outbox WHERE state = 'delivered'`); got != 3 {
		t.Fatalf("delivered=%d after refused actions, want 3", got)
	}
}

func TestSync_NoUpstream(t *testing.T) {
	n := MustStartNode(t)
	a := n.Client()
	a.LoginAs(n, n.MustCreateUser("root", edge.RoleAdmin))
	// A document the upstream refused before delivery was turned off.
	p := n.MustCreatePatient(&edge.Patient{Name: "Ram Lal", Gender: "M", StatedAge: 60})
	if err := n.Store.CreateEncounter(system(), &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal}); err != nil {
		t.Fatal(err)
	}
	items, _ := n.Store.OutboxItems(context.Background(), edge.OutboxFilter{})
	if err := n.Store.Quarantine(context.Background(), items[0].ID, "HTTP 422: error required: Composition.title"); err != nil {
		t.Fatal(err)
	}

	// Ensure the page says plainly that sending is off and what to set, and still lists the queue.
	resp, body := a.Get("/admin/sync")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`id="sync-off"`, "Sending to the district is off", "/etc/healthpost/healthpost.toml", "[upstream]",
		`url = "https://hub.district.example/fhir"`, "systemctl restart healthpost", "Composition.title",
		`<tr id="queue-quarantined"><th>refused upstream</th><td>0</td><td>1</td><td>0</td></tr>`} {
		if !strings.Contains(body, want) {
			t.Errorf("sync page without upstream lacks %q", want)
		}
	}
	if strings.Contains(body, `id="sync-now"`) || strings.Contains(body, `data-src="/admin/sync/events"`) {
		t.Error("the page offers to sync with no upstream")
	}
	// Pressing anyway gets the same explanation; the stream tells the browser not to reconnect.
	resp, body = a.Post("/admin/sync/now", nil)
	wantStatus(t, resp, body, http.StatusConflict)
	if !strings.Contains(body, "Sending to the district is off") {
		t.Fatal("no explanation after pressing Sync now")
	}
	req, _ := http.NewRequest(http.MethodGet, n.URL+"/admin/sync/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, body = a.do(req)
	wantStatus(t, resp, body, http.StatusNoContent)
	// Refused documents can still be dealt with.
	resp, body = a.Post(fmt.Sprintf("/admin/sync/outbox/%d/discard", items[0].ID), url.Values{"reason": {"test visit"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := n.count(`SELECT count(*) FROM outbox WHERE state = 'discarded'`); got != 1 {
		t.Fatal("discard without an upstream did not work")
	}
	// In Hindi too.
	resp, body = a.Post("/settings/language", url.Values{"language": {"hi"}, "next": {"/admin/sync"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	_, body = a.Get("/admin/sync")
	if !strings.Contains(body, "ज़िले को भेजना बंद है") {
		t.Fatal("the sync page is not in Hindi")
	}
}
