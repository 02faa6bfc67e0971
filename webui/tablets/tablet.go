package tablets

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/html"
)

// tablet is one simulated tablet: a browser with its own cookies and
// connection, and the health worker using it.
type tablet struct {
	f        *Fleet
	id       int
	base     *url.URL
	client   *http.Client
	wire     *atomic.Int64 // bytes read from this tablet's connections
	rng      *rand.Rand
	rec      *stats
	cards    cards
	deadline time.Time
	visits   int // finalized
}

func newTablet(f *Fleet, base *url.URL, id int, rng *rand.Rand) *tablet {
	jar, _ := cookiejar.New(nil)
	wire := &atomic.Int64{}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, read: wire}, nil
		},
		// The tablet asks for gzip itself, to count the compressed bytes.
		DisableCompression:  true,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
	return &tablet{f: f, id: id, base: base, wire: wire, rng: rng, client: &http.Client{
		Transport: tr,
		Jar:       jar,
		Timeout:   f.Timeout,
		// Redirects are followed by the tablet, each one a request of its own.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

// answer is a response as the tablet's browser has it.
type answer struct {
	status   int
	location string // a redirect's target, a path on the node
	page     *page  // HTML pages only
}

// failure is a request that did not do what it should; its text is a
// report's reason and holds no patient data.
type failure struct{ reason string }

func (f *failure) Error() string { return f.reason }

// request sends one request as the browser would and reads the whole
// answer, recording it under kind. An answer that is not 2xx or 3xx, a
// redirect to sign-in or the lock screen, and a transport error are
// failures, recorded as such.
func (t *tablet) request(ctx context.Context, kind, method, ref string, form url.Values) (*answer, error) {
	u, err := t.base.Parse(ref)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Accept-Language", "en-IN,hi;q=0.8")
	req.Header.Set("User-Agent", "healthpost-tablets/1 (simulated tablet)")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", t.base.Scheme+"://"+t.base.Host)
	}
	fail := func(sm sample, why string) (*answer, error) {
		sm.failed = true
		reason := fmt.Sprintf("%s %s %s: %s", kind, method, withoutQuery(ref), why)
		if ctx.Err() == nil { // a run stopped by the operator fails nothing
			t.rec.add(kind, sm, reason)
		}
		return nil, &failure{reason}
	}
	wireBefore := t.wire.Load()
	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return fail(sample{latency: time.Since(start)}, err.Error())
	}
	sent, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	sm := sample{latency: time.Since(start), body: int64(len(sent)), wire: t.wire.Load() - wireBefore}
	if err != nil {
		return fail(sm, "read answer: "+err.Error())
	}
	raw := sent
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(sent))
		if err != nil {
			return fail(sm, "gunzip: "+err.Error())
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return fail(sm, "gunzip: "+err.Error())
		}
	}
	sm.raw = int64(len(raw))
	a := &answer{status: resp.StatusCode}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if a.page, err = parsePage(u, raw); err != nil {
			return fail(sm, err.Error())
		}
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc, err := u.Parse(resp.Header.Get("Location"))
		if err != nil {
			return fail(sm, "bad Location")
		}
		a.location = loc.RequestURI()
		if kind != KindSignIn && (strings.HasPrefix(loc.Path, "/login") || strings.HasPrefix(loc.Path, "/lock")) {
			return fail(sm, "sent to "+loc.Path+": the session was lost or locked")
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		why := resp.Status
		if a.page != nil {
			if errs := a.page.fieldErrors(); len(errs) > 0 {
				why += ": " + strings.Join(errs, "; ")
			}
		}
		return fail(sm, why)
	}
	t.rec.add(kind, sm, "")
	return a, nil
}

// get asks for a page, which must be an HTML page.
func (t *tablet) get(ctx context.Context, kind, ref string) (*page, error) {
	a, err := t.request(ctx, kind, http.MethodGet, ref, nil)
	if err != nil {
		return nil, err
	}
	if a.page == nil || a.status != http.StatusOK {
		return nil, t.wrong(kind, ref, fmt.Sprintf("answered %d, not a page", a.status))
	}
	return a.page, nil
}

// submit posts a form with the button named action pressed; the node must
// answer with a redirect, and the redirect's target is returned.
func (t *tablet) submit(ctx context.Context, kind string, f *form, action string) (string, error) {
	v := url.Values{}
	for k, vs := range f.values {
		v[k] = vs
	}
	if action != "" {
		v.Set("action", action)
	}
	a, err := t.request(ctx, kind, f.method, f.action, v)
	if err != nil {
		return "", err
	}
	if a.location == "" {
		why := fmt.Sprintf("answered %d, not a redirect", a.status)
		if a.page != nil {
			if errs := a.page.fieldErrors(); len(errs) > 0 {
				why += ": " + strings.Join(errs, "; ")
			}
		}
		return "", t.wrong(kind, f.action, why)
	}
	return a.location, nil
}

// wrong records that an answer, though 2xx or 3xx, was not what the
// tablet needed to go on; the request itself was already counted.
func (t *tablet) wrong(kind, ref, why string) error {
	reason := fmt.Sprintf("%s %s: %s", kind, withoutQuery(ref), why)
	t.rec.markLastFailed(kind, reason)
	return &failure{reason}
}

// pause is the health worker reading or typing, when asked for.
func (t *tablet) pause(ctx context.Context) {
	if t.f.Think <= 0 {
		return
	}
	t.wait(ctx, time.Duration(float64(t.f.Think)*(0.5+t.rng.Float64())))
}

// wait pauses for d, or less when the run ends sooner.
func (t *tablet) wait(ctx context.Context, d time.Duration) {
	if until := time.Until(t.deadline); !t.deadline.IsZero() && d > until {
		d = max(until, 0)
	}
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// signIn opens the sign-in page, signs in with the token it carries and the
// tablet's clock, then loads the start page and its assets as a browser
// with an empty cache does.
func (t *tablet) signIn(ctx context.Context, username, password string) error {
	p, err := t.get(ctx, KindLoginPage, "/login")
	if err != nil {
		return err
	}
	f, ok := p.form("/login")
	if !ok || f.values.Get("csrf") == "" {
		return t.wrong(KindLoginPage, "/login", "no sign-in form with a CSRF token")
	}
	f.values.Set("username", username)
	f.values.Set("password", password)
	f.values.Set("tablet_time", strconv.FormatInt(time.Now().UnixMilli(), 10))
	next, err := t.submit(ctx, KindSignIn, f, "")
	if err != nil {
		return err
	}
	if strings.HasPrefix(next, "/login") {
		return t.wrong(KindSignIn, "/login", "sent back to sign in")
	}
	home, err := t.get(ctx, KindHome, next)
	if err != nil {
		return err
	}
	for _, ref := range home.assets() {
		if _, err := t.request(ctx, KindStatic, http.MethodGet, ref, nil); err != nil {
			return err
		}
	}
	return nil
}

// weighAdmin loads the admin page once, for its size.
func (t *tablet) weighAdmin(ctx context.Context) error {
	_, err := t.get(ctx, KindAdmin, "/admin")
	return err
}

// episode is one patient at the desk: find them, open their page and,
// mostly, record an OPD visit. Now and then the health worker looks at the
// start page or the device inbox instead.
func (t *tablet) episode(ctx context.Context) {
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(t.deadline) }
	switch t.rng.IntN(20) {
	case 0:
		t.get(ctx, KindHome, "/")
		t.pause(ctx)
		return
	case 1:
		t.get(ctx, KindInbox, "/inbox")
		t.pause(ctx)
		return
	}
	q, searchKind := t.cards.query(t.rng)
	results, err := t.get(ctx, KindSearch, "/patients?q="+url.QueryEscape(q))
	if err != nil {
		return
	}
	var found []string
	if list := results.byID("results"); list != nil {
		walk(list, func(n *html.Node) bool {
			if n.Data == "li" {
				t.cards.remember(text(n))
			}
			return true
		})
		found = results.links("results", "/patients/")
	}
	t.rec.searched(searchKind, len(found) > 0)
	t.pause(ctx)
	if len(found) == 0 || over() {
		return
	}
	patientRef := found[t.rng.IntN(min(len(found), 5))] // one of the first few, as people pick
	patient, err := t.get(ctx, KindPatient, patientRef)
	if err != nil {
		return
	}
	t.pause(ctx)
	if t.rng.IntN(10) < 3 || over() { // only looked something up
		return
	}
	newVisit := patient.byID("new-opd")
	if newVisit == nil {
		t.wrong(KindPatient, patientRef, "no new OPD visit button")
		return
	}
	formRef, _ := patient.resolve(attr(newVisit, "href"))
	visitForm, err := t.get(ctx, KindVisitForm, formRef)
	if err != nil {
		return
	}
	f, ok := visitForm.form(withoutQuery(patientRef) + "/encounters")
	if !ok || f.values.Get("csrf") == "" {
		t.wrong(KindVisitForm, formRef, "no visit form with a CSRF token")
		return
	}
	if err := fillVisit(t.rng, visitForm, f); err != nil {
		t.wrong(KindVisitForm, formRef, err.Error())
		return
	}
	t.pause(ctx)
	draftFirst := t.rng.IntN(2) == 0
	if draftFirst { // saved once while waiting for a lab value, then finished
		to, err := t.submit(ctx, KindSaveDraft, f, "save")
		if err != nil {
			return
		}
		if !strings.HasPrefix(to, "/encounters/") {
			t.wrong(KindSaveDraft, f.action, "redirected elsewhere than the visit")
			return
		}
		draft, err := t.get(ctx, KindDraft, to)
		if err != nil {
			return
		}
		if f, ok = draft.form(withoutQuery(to)); !ok {
			t.wrong(KindDraft, to, "the draft shows no form to finish it")
			return
		}
		t.pause(ctx)
	}
	to, err := t.submit(ctx, KindFinalize, f, "finalize")
	if err != nil {
		return
	}
	if !strings.HasPrefix(to, "/encounters/") || !strings.Contains(to, "done=finalized") {
		t.wrong(KindFinalize, f.action, "not redirected to the finalized visit")
		return
	}
	visit, err := t.get(ctx, KindVisit, to)
	if err != nil {
		return
	}
	t.rec.saved(draftFirst)
	t.visits++
	t.pause(ctx)
	if t.rng.IntN(10) < 3 && !over() {
		slip := visit.byID("print-slip")
		if slip == nil {
			t.wrong(KindVisit, to, "no print slip button")
			return
		}
		ref, _ := visit.resolve(attr(slip, "href"))
		if _, err := t.get(ctx, KindPrint, ref); err == nil {
			t.pause(ctx)
		}
	}
}
