package webui_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/webui"
)

// fakeClock is the store's wall clock in tests: real time plus an offset
// that tests move forward instead of sleeping.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testNode is a real store in a temp dir and a real server on 127.0.0.1:0.
type testNode struct {
	tb     testing.TB
	Path   string
	Store  *edge.Store
	Server *webui.Server
	URL    string
	Clock  *fakeClock
	Log    *syncBuffer
	// ClockSets records what the admin page asked the OS clock to be.
	ClockSets chan time.Time
}

// MustStartNode opens a store in a new temp dir and serves it.
func MustStartNode(tb testing.TB) *testNode {
	tb.Helper()
	return MustStartNodeAt(tb, filepath.Join(tb.TempDir(), edge.DBFileName), &fakeClock{})
}

// MustStartNodeAt opens the store at path (a restart when it exists);
// configure, when given, adjusts the server before it opens.
func MustStartNodeAt(tb testing.TB, path string, clock *fakeClock, configure ...func(*webui.Server)) *testNode {
	tb.Helper()
	n := &testNode{tb: tb, Path: path, Clock: clock, Log: &syncBuffer{}, ClockSets: make(chan time.Time, 10)}
	s := edge.NewStore(path)
	s.DiskCheckPeriod = 0
	s.LowFreeBytes = 64 << 20
	s.CriticalFreeBytes = 16 << 20
	s.Now = clock.Now
	if err := s.Open(context.Background()); err != nil {
		tb.Fatalf("open store: %v", err)
	}
	n.Store = s
	logger := slog.New(slog.NewTextHandler(n.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n.Server = webui.NewServer(s, logger)
	n.Server.Addr = "127.0.0.1:0"
	n.Server.SetClock = func(ctx context.Context, t time.Time) error {
		n.ClockSets <- t
		return nil
	}
	for _, f := range configure {
		f(n.Server)
	}
	if err := n.Server.Open(context.Background()); err != nil {
		tb.Fatalf("open server: %v", err)
	}
	n.URL = n.Server.URL()
	tb.Cleanup(n.Stop)
	return n
}

// Stop closes the server and the store; calling it twice is fine.
func (n *testNode) Stop() {
	if n.Server == nil {
		return
	}
	if err := n.Server.Close(context.Background()); err != nil {
		n.tb.Errorf("close server: %v", err)
	}
	if err := n.Store.Close(context.Background()); err != nil {
		n.tb.Errorf("close store: %v", err)
	}
	n.Server = nil
}

func system() context.Context {
	return edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorSystem, ID: "test"})
}

// Password is every test user's password. Argon2id with 64 MiB costs a
// second or more under -race, so the users share one hash, computed once.
func Password(username string) string { return "test-password-123" }

var passwordHash = sync.OnceValue(func() string {
	h, err := edge.HashPassword(Password(""))
	if err != nil {
		panic(err)
	}
	return h
})

// MustCreateUser adds a user with the given role and Password(username),
// written straight into the users table so the hash is computed once per
// test binary rather than once per user.
func (n *testNode) MustCreateUser(username, role string) *edge.User {
	n.tb.Helper()
	u := &edge.User{ID: edge.NewID(), Username: username, DisplayName: strings.ToUpper(username[:1]) + username[1:], Role: role, Language: "en"}
	if err := u.Validate(); err != nil {
		n.tb.Fatalf("user %s: %v", username, err)
	}
	db, err := sql.Open("sqlite", "file:"+n.Path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		n.tb.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UnixMilli()
	if _, err := db.Exec(`INSERT INTO users (id, username, display_name, role, password_hash, language, created_at,
		updated_at, node_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)`, u.ID, u.Username, u.DisplayName, u.Role, passwordHash(),
		u.Language, now, now); err != nil {
		n.tb.Fatalf("create user: %v", err)
	}
	return u
}

// MustCreatePatient registers a patient directly in the store.
func (n *testNode) MustCreatePatient(p *edge.Patient) *edge.Patient {
	n.tb.Helper()
	if err := n.Store.CreatePatient(system(), p); err != nil {
		n.tb.Fatalf("create patient: %v", err)
	}
	return p
}

// client is one tablet: a cookie jar, no automatic redirects.
type client struct {
	tb   testing.TB
	base string
	hc   *http.Client
	csrf string
}

func (n *testNode) Client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{tb: n.tb, base: n.URL, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// do sends a request and returns the response with its body read.
func (c *client) do(req *http.Request) (*http.Response, string) {
	c.tb.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatalf("read %s: %v", req.URL, err)
	}
	if m := csrfRe.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

// Get fetches path.
func (c *client) Get(path string) (*http.Response, string) {
	c.tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	req.Header.Set("Accept", "text/html")
	return c.do(req)
}

// Post sends a form with the session's CSRF token (unless the form has one).
func (c *client) Post(path string, form url.Values) (*http.Response, string) {
	c.tb.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok && c.csrf != "" {
		form.Set("csrf", c.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// LoginAs signs the client in as u without the password (a session made
// by the store), for tests that are not about signing in.
func (c *client) LoginAs(n *testNode, u *edge.User) {
	c.tb.Helper()
	token, _, err := n.Store.CreateWebSession(context.Background(), u.ID, "127.0.0.1", 12*time.Hour)
	if err != nil {
		c.tb.Fatal(err)
	}
	base, _ := url.Parse(c.base)
	c.hc.Jar.SetCookies(base, []*http.Cookie{{Name: "hp_session", Value: token, Path: "/"}})
	if resp, _ := c.Get("/"); resp.StatusCode != http.StatusOK {
		c.tb.Fatalf("start page: %d", resp.StatusCode)
	}
}

// Login signs in as username and fetches the start page (for the token).
func (c *client) Login(username string) {
	c.tb.Helper()
	resp, body := c.TryLogin(username, Password(username))
	if resp.StatusCode != http.StatusSeeOther {
		c.tb.Fatalf("login %s: %d %s", username, resp.StatusCode, body)
	}
	if resp, _ := c.Get("/"); resp.StatusCode != http.StatusOK {
		c.tb.Fatalf("start page after login: %d", resp.StatusCode)
	}
}

// TryLogin posts the sign-in form.
func (c *client) TryLogin(username, password string) (*http.Response, string) {
	c.tb.Helper()
	if resp, _ := c.Get("/login"); resp.StatusCode != http.StatusOK {
		c.tb.Fatalf("sign-in page: %d", resp.StatusCode)
	}
	return c.Post("/login", url.Values{"username": {username}, "password": {password},
		"tablet_time": {""}, "next": {"/"}, "csrf": {c.csrf}})
}

// location is the redirect target of resp.
func location(resp *http.Response) string { return resp.Header.Get("Location") }

// Ensure a response has the status, or fail with its body.
func wantStatus(tb testing.TB, resp *http.Response, body string, want int) {
	tb.Helper()
	if resp.StatusCode != want {
		if len(body) > 3000 {
			body = body[:3000]
		}
		tb.Fatalf("%s %s: status %d, want %d\n%s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

// count runs a count query on the store's file.
func (n *testNode) count(query string, args ...any) int {
	n.tb.Helper()
	var c int
	db := n.rawDB()
	if err := db.QueryRow(query, args...).Scan(&c); err != nil {
		n.tb.Fatalf("%s: %v", query, err)
	}
	return c
}
