package webui_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/webui"
)

// concrete turns a route pattern into a method and a path to request.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.NewReplacer("{hash}", "0", "{name}", "app.css", "{id}", "01940000-0000-7000-8000-000000000000", "{version}", "1",
		"{$}", "").Replace(path)
	return method, path
}

// TestRoutes_DefaultDeny proves invariant 7 at the door: every route
// except the public allowlist (sign-in, assets, health probe) refuses a
// request without a session: pages redirect to sign-in, everything else 401.
func TestRoutes_DefaultDeny(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	public := []string{"GET /healthz", "GET /static/{hash}/{name}", "GET /login", "POST /login"}
	var seen []string
	for _, rt := range webui.Routes(n.Server) {
		if rt.Public {
			seen = append(seen, rt.Pattern)
			continue
		}
		if len(rt.Roles) == 0 {
			t.Errorf("%s: no role may use it", rt.Pattern)
		}
		method, path := concrete(rt.Pattern)
		t.Run(rt.Pattern, func(t *testing.T) {
			var resp *http.Response
			var body string
			if method == http.MethodGet {
				resp, body = c.Get(path)
			} else {
				resp, body = c.Post(path, url.Values{"csrf": {"x"}})
			}
			switch {
			case method == http.MethodGet:
				wantStatus(t, resp, body, http.StatusSeeOther)
				if !strings.HasPrefix(location(resp), "/login?next=") {
					t.Fatalf("Location=%q", location(resp))
				}
			default:
				wantStatus(t, resp, body, http.StatusUnauthorized)
			}
		})
	}
	slices.Sort(seen)
	slices.Sort(public)
	if !slices.Equal(seen, public) {
		t.Fatalf("public routes=%v, want exactly %v", seen, public)
	}
	// Paths that match no route are treated the same.
	for _, p := range []string{"/nope", "/admin/secret", "/patients/x/y/z", "/static/../edge"} {
		if resp, _ := c.Get(p); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("GET %s without session: %d, want a redirect to sign in", p, resp.StatusCode)
		}
	}
	// The public routes answer.
	for _, p := range []string{"/healthz", "/login"} {
		if resp, body := c.Get(p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
	}
}

// TestRoutes_Roles proves each role reaches only its own actions: a route
// refuses (403, audited) every role it does not list, and lets through
// every role it lists.
func TestRoutes_Roles(t *testing.T) {
	n := MustStartNodeAt(t, filepath.Join(t.TempDir(), edge.DBFileName), &fakeClock{}, func(s *webui.Server) {
		s.LiveReadings = time.Millisecond // the readings stream ends at once
	})
	clients := map[string]*client{}
	for _, role := range edge.Roles {
		name := strings.ReplaceAll(role, "-", "")
		u := n.MustCreateUser(name, role)
		clients[role] = n.Client()
		clients[role].LoginAs(n, u)
	}
	for _, rt := range webui.Routes(n.Server) {
		if rt.Public {
			continue
		}
		method, path := concrete(rt.Pattern)
		for _, role := range edge.Roles {
			allowed := slices.Contains(rt.Roles, role)
			// Signing out or locking would end the client's session; they
			// are open to every role and are tested on their own.
			if allowed && (rt.Pattern == "POST /logout" || rt.Pattern == "POST /lock" || rt.Pattern == "GET /lock" || rt.Pattern == "POST /unlock") {
				continue
			}
			c := clients[role]
			var resp *http.Response
			var body string
			if method == http.MethodGet {
				resp, body = c.Get(path)
			} else {
				resp, body = c.Post(path, url.Values{})
			}
			if got := resp.StatusCode == http.StatusForbidden; got != !allowed {
				t.Errorf("%s as %s: status %d, want allowed=%v\n%.300s", rt.Pattern, role, resp.StatusCode, allowed, body)
			}
		}
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'access.denied'`); got == 0 {
		t.Fatal("refusals were not audited")
	}
	// Ensure lock and sign-out work for every role.
	for role, c := range clients {
		resp, body := c.Post("/lock", nil)
		wantStatus(t, resp, body, http.StatusSeeOther)
		if resp, _ := c.Get("/"); !strings.HasPrefix(location(resp), "/lock") {
			t.Errorf("%s after lock: %d %s", role, resp.StatusCode, location(resp))
		}
		resp, body = c.Post("/logout", nil)
		wantStatus(t, resp, body, http.StatusSeeOther)
		if resp, _ := c.Get("/"); !strings.HasPrefix(location(resp), "/login") {
			t.Errorf("%s after sign-out: %d %s", role, resp.StatusCode, location(resp))
		}
	}
}

// TestCSRF proves a state change needs the session's token and a
// same-origin request, and that a refused one changes nothing.
func TestCSRF(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))
	form := func() url.Values {
		return url.Values{"name": {"Ram Lal"}, "gender": {"M"}, "stated_age": {"60"}, "confirm": {"1"}}
	}
	for _, tc := range []struct {
		name  string
		token string
		site  string
	}{
		{"NoToken", "", ""},
		{"WrongToken", "forged", ""},
		{"CrossSite", c.csrf, "cross-site"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := form()
			f.Set("csrf", tc.token)
			req, _ := http.NewRequest(http.MethodPost, n.URL+"/patients", strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			resp, body := c.do(req)
			wantStatus(t, resp, body, http.StatusForbidden)
			if got := n.count(`SELECT count(*) FROM patients`); got != 0 {
				t.Fatalf("patients=%d after a refused form", got)
			}
		})
	}
	// A script's request carries the token in a header.
	req, _ := http.NewRequest(http.MethodPost, n.URL+"/session/ping", nil)
	req.Header.Set("X-CSRF-Token", c.csrf)
	resp, body := c.do(req)
	wantStatus(t, resp, body, http.StatusNoContent)
	// The sign-in form has its own token, in a cookie and the form.
	other := n.Client()
	resp, body = other.Post("/login", url.Values{"username": {"asha"}, "password": {Password("asha")}, "csrf": {"guess"}})
	wantStatus(t, resp, body, http.StatusForbidden)
	// With the token, the same form goes through.
	resp, body = c.Post("/patients", form())
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := n.count(`SELECT count(*) FROM patients`); got != 1 {
		t.Fatalf("patients=%d", got)
	}
}

// TestLogin_RateLimit proves sign-in attempts are limited per username and
// per client, that the limit holds even for the right password, and that
// it lifts after the window.
func TestLogin_RateLimit(t *testing.T) {
	n := MustStartNodeAt(t, filepath.Join(t.TempDir(), edge.DBFileName), &fakeClock{}, func(s *webui.Server) {
		s.Limiter.UserFailures, s.Limiter.ClientFailures = 3, 5
	})
	n.MustCreateUser("asha", edge.RoleHealthWorker)
	n.MustCreateUser("ravi", edge.RoleDoctor)
	c := n.Client()
	for i := range 3 {
		resp, body := c.TryLogin("asha", "wrong")
		wantStatus(t, resp, body, http.StatusUnauthorized)
		if i == 0 && !strings.Contains(body, "Wrong username or password") {
			t.Fatalf("no plain message: %s", body)
		}
	}
	resp, body := c.TryLogin("asha", Password("asha"))
	wantStatus(t, resp, body, http.StatusTooManyRequests)
	if !strings.Contains(body, "Wait 15 minutes") {
		t.Fatalf("no wait hint: %s", body)
	}
	// Another user on another tablet is not affected by asha's limit.
	if resp, body := n.Client().TryLogin("ravi", Password("ravi")); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ravi: %d %s", resp.StatusCode, body)
	}
	// The client limit: two more failures from this tablet, any names.
	for _, u := range []string{"x1", "x2"} {
		resp, body := c.TryLogin(u, "wrong")
		wantStatus(t, resp, body, http.StatusUnauthorized)
	}
	resp, body = c.TryLogin("ravi", Password("ravi"))
	wantStatus(t, resp, body, http.StatusTooManyRequests)
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'user.login_failed'`); got != 7 {
		t.Fatalf("failed sign-ins audited=%d, want 7 (5 wrong, 2 refused)", got)
	}
	// After the window, the right password works again.
	n.Clock.Advance(webui.DefaultLoginWindow + time.Second)
	resp, body = c.TryLogin("asha", Password("asha"))
	wantStatus(t, resp, body, http.StatusSeeOther)
}

// TestSession_SurvivesRestart proves sessions live in the database: the
// tablet stays signed in across a node restart.
func TestSession_SurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	clock := &fakeClock{}
	n := MustStartNodeAt(t, path, clock)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))
	n.Stop()

	n2 := MustStartNodeAt(t, path, clock)
	c.base = n2.URL // the new server listens on another port
	resp, body := c.Get("/patients")
	wantStatus(t, resp, body, http.StatusOK)
	// And the CSRF token of the session is still the one the page has.
	resp, body = c.Post("/patients", url.Values{"name": {"Ram"}, "gender": {"M"}, "stated_age": {"40"}, "confirm": {"1"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
}

// TestIdleLock proves a tablet left alone locks, shows nothing until its
// user's PIN unlocks it, and signs out after too many wrong PINs.
func TestIdleLock(t *testing.T) {
	n := MustStartNodeAt(t, filepath.Join(t.TempDir(), edge.DBFileName), &fakeClock{}, func(s *webui.Server) {
		s.Limiter.UserFailures = 3
	})
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))
	resp, body := c.Post("/settings/pin", url.Values{"pin": {"2468"}, "pin_again": {"2468"}})
	wantStatus(t, resp, body, http.StatusSeeOther)

	n.Clock.Advance(edge.DefaultIdleLockMinutes*time.Minute + time.Second)
	resp, body = c.Get("/patients?q=ram")
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := location(resp); got != "/lock?next=%2Fpatients%3Fq%3Dram" {
		t.Fatalf("Location=%q", got)
	}
	resp, body = c.Post("/patients", url.Values{"name": {"Ram"}})
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = c.Get("/lock?next=/patients")
	wantStatus(t, resp, body, http.StatusOK)
	if strings.Contains(body, "/patients/") {
		t.Fatal("the lock page links to patient data")
	}
	resp, body = c.Post("/unlock", url.Values{"secret": {"1111"}, "next": {"/patients"}})
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = c.Post("/unlock", url.Values{"secret": {"2468"}, "next": {"/patients"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if location(resp) != "/patients" {
		t.Fatalf("after unlock to %q", location(resp))
	}
	resp, body = c.Get("/patients")
	wantStatus(t, resp, body, http.StatusOK)

	// Too many wrong PINs end the session.
	c.Post("/lock", nil)
	for range 2 { // the third wrong PIN signs out
		resp, body := c.Post("/unlock", url.Values{"secret": {"0000"}})
		wantStatus(t, resp, body, http.StatusUnauthorized)
	}
	resp, body = c.Post("/unlock", url.Values{"secret": {"0000"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if !strings.HasPrefix(location(resp), "/login?done=unlock_too_many") {
		t.Fatalf("after too many PINs to %q", location(resp))
	}
	if got := n.count(`SELECT count(*) FROM web_sessions`); got != 0 {
		t.Fatalf("sessions=%d", got)
	}
}

// TestLogin_Language proves the sign-in page speaks the language chosen on
// it (kept in a cookie) or the browser's, before anyone is signed in.
func TestLogin_Language(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	resp, body := c.Get("/login?lang=hi")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `<html lang="hi">`) || !strings.Contains(body, "साइन इन करें") {
		t.Fatal("sign-in page not in Hindi")
	}
	if _, body = c.Get("/login"); !strings.Contains(body, "साइन इन करें") {
		t.Fatal("the choice was not kept")
	}
	req, _ := http.NewRequest(http.MethodGet, n.URL+"/login", nil)
	req.Header.Set("Accept-Language", "hi-IN,hi;q=0.9,en;q=0.8")
	if _, body := n.Client().do(req); !strings.Contains(body, `<html lang="hi">`) {
		t.Fatal("the browser's language was not used")
	}
}
