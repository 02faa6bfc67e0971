package main_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/webui"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// webSession is a tablet signed in to a running node.
type webSession struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func (w *webSession) get(path string) (*http.Response, string) {
	w.t.Helper()
	resp, err := w.hc.Get(w.base + path)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(b); m != nil {
		w.csrf = string(m[1])
	}
	return resp, string(b)
}

func (w *webSession) post(path string, form url.Values) *http.Response {
	w.t.Helper()
	if form.Get("csrf") == "" {
		form.Set("csrf", w.csrf)
	}
	resp, err := w.hc.PostForm(w.base+path, form)
	if err != nil {
		w.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func signIn(t *testing.T, base, username, password string) *webSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	w := &webSession{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	w.get("/login")
	resp := w.post("/login", url.Values{"username": {username}, "password": {password}, "next": {"/admin/sync"}, "tablet_time": {""}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d", username, resp.StatusCode)
	}
	return w
}

func TestServe_SyncPageDrivesTheEngine(t *testing.T) {
	hubNode := newNode(t)
	out := hubNode.mustRun("hub", "token", "add", "phc-rampur")
	token := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.TrimSpace(line); len(f) > 20 && !strings.Contains(f, " ") {
			token = f
		}
	}
	h := hubNode.start("hub", "--listen", "127.0.0.1:0")

	n := newNode(t)
	n.env = append(n.env, "HEALTHPOST_UPSTREAM_URL="+h.url, "HEALTHPOST_UPSTREAM_TOKEN="+token,
		"HEALTHPOST_FACILITY_HFR_ID=IN0910034387", "HEALTHPOST_FACILITY_NAME=PHC Rampur")
	n.mustRun("migrate")
	s := edge.NewStore(filepath.Join(n.dataDir, edge.DBFileName))
	s.DiskCheckPeriod = 0
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "nurse"})
	if err := s.SetFacility(ctx, edge.FacilityConfig{Name: "PHC Rampur", HFRID: "IN0910034387"}); err != nil {
		t.Fatal(err)
	}
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 34}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEncounter(ctx, &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal, Complaint: "fever"}); err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())

	// Ensure serve hands its engine to the web UI: the page shows the
	// upstream and the engine's state, and its stream follows delivery.
	srv := n.serve()
	admin := signIn(t, srv.url, "admin", srv.password)
	resp, body := admin.get("/admin/sync")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, h.url) || strings.Contains(body, `id="sync-off"`) ||
		!strings.Contains(body, `id="sync-now"`) {
		t.Fatalf("sync page of a node with an upstream: %d\n%.3000s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.url+"/admin/sync/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := (&http.Client{Jar: admin.hc.Jar, Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stream.Body)
	var last struct {
		State     string `json:"state"`
		StateText string `json:"state_text"`
		Running   bool   `json:"running"`
		Pending   int64  `json:"pending"`
	}
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if err := json.Unmarshal([]byte(data), &last); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if last.State == webui.SyncIdle && !last.Running && last.Pending == 0 {
			break
		}
	}
	stream.Body.Close()
	if last.State != webui.SyncIdle || last.StateText != "Nothing to send now" {
		t.Fatalf("stream ended at %+v, want idle with nothing waiting", last)
	}

	// Ensure the button reaches the engine and is audited with the admin.
	if resp := admin.post("/admin/sync/now", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Sync now: %d", resp.StatusCode)
	}
	_, body = admin.get("/admin/sync")
	if !strings.Contains(body, "Automatic") || !strings.Contains(body, `<tr id="queue-delivered"><th>delivered</th><td>0</td><td>1</td><td>0</td></tr>`) {
		t.Fatalf("the run history or the queue does not show the delivery:\n%.4000s", body)
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exit %d\n%s", code, srv.stderr)
	}
	db, err := sql.Open("sqlite", filepath.Join(n.dataDir, edge.DBFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var presses int
	db.QueryRow(`SELECT count(*) FROM audit_log a JOIN users u ON a.actor = 'user:' || u.id
		WHERE a.action = 'sync.now' AND u.username = 'admin'`).Scan(&presses)
	if presses != 1 {
		t.Fatalf("Sync now presses audited with the admin=%d, want 1", presses)
	}
	h.stop(t)
}
