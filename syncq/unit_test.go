package syncq

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

func TestBackoff(t *testing.T) {
	// Ensure backoff doubles from min to max, and jitter stays in the upper
	// half of each step.
	for n, want := range []time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		if want == 0 {
			continue
		}
		if got := backoff(n, time.Second, 10*time.Second, func() float64 { return 1 }); got != want {
			t.Fatalf("backoff(%d) without jitter=%v, want %v", n, got, want)
		}
		if got := backoff(n, time.Second, 10*time.Second, func() float64 { return 0 }); got != want/2 {
			t.Fatalf("backoff(%d) at the low end=%v, want %v", n, got, want/2)
		}
	}
	for range 1000 {
		if d := backoff(3, time.Second, time.Minute, nil); d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("jittered backoff(3)=%v, want 2s..4s", d)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		" 5 ":                           5 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Sat, 01 Mar 2025 10:01:30 GMT": 90 * time.Second,
		"Sat, 01 Mar 2025 09:00:00 GMT": 0, // in the past
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q)=%v, want %v", in, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	oo := []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"required","diagnostics":"Composition.title is required","expression":["Bundle.entry[0].resource.title"]}]}`)
	html := []byte("<html>Please log in</html>")
	for _, tc := range []struct {
		status int
		body   []byte
		header string
		kind   Kind
	}{
		{400, oo, "", KindRefused},
		{409, oo, "", KindRefused},
		{412, oo, "", KindRefused},
		{413, oo, "", KindRefused},
		{422, oo, "", KindRefused},
		{400, html, "", KindServer}, // a captive portal, not a FHIR server
		{404, oo, "", KindServer},   // wrong base URL
		{405, oo, "", KindServer},
		{415, oo, "", KindServer},
		{401, oo, "", KindAuth},
		{403, nil, "", KindAuth},
		{429, oo, "30", KindThrottled},
		{429, nil, "", KindThrottled},
		{503, oo, "10", KindThrottled},
		{503, oo, "", KindServer},
		{500, html, "", KindServer},
		{408, nil, "", KindServer},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Retry-After", tc.header)
		}
		e := classify(tc.status, h, tc.body, time.Now())
		if e.Kind != tc.kind {
			t.Errorf("classify(%d, %.20q)=%s, want %s", tc.status, tc.body, e.Kind, tc.kind)
		}
		if e.Permanent() != (tc.kind == KindRefused) {
			t.Errorf("classify(%d) permanent=%v", tc.status, e.Permanent())
		}
	}
	e := classify(422, http.Header{}, oo, time.Now())
	if !strings.Contains(e.Error(), "Composition.title is required") || e.Code != "required" {
		t.Fatalf("the server's diagnostics are lost: %v (code %q)", e, e.Code)
	}
}

func TestWindows(t *testing.T) {
	w, err := ParseWindows("22:00-06:00, 13:00-14:00")
	if err != nil {
		t.Fatal(err)
	}
	w.Location = time.UTC
	day := func(h, m int) time.Time { return time.Date(2025, 3, 1, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		at   time.Time
		open bool
		next time.Time
	}{
		{day(23, 0), true, time.Time{}},
		{day(2, 0), true, time.Time{}},
		{day(6, 0), false, day(13, 0)},
		{day(13, 30), true, time.Time{}},
		{day(14, 0), false, day(22, 0)},
		{day(21, 59), false, day(22, 0)},
	} {
		open, next := w.Open(tc.at)
		if open != tc.open || !next.Equal(tc.next) {
			t.Errorf("Open(%s)=%v %v, want %v %v", tc.at.Format("15:04"), open, next, tc.open, tc.next)
		}
	}
	if open, _ := (Windows{}).Open(day(3, 0)); !open {
		t.Fatal("no windows must mean any time")
	}
	for _, bad := range []string{"22-06", "22:00", "10:00-10:00", "25:00-26:00", "ab:cd-ef:gh"} {
		if _, err := ParseWindows(bad); err == nil {
			t.Errorf("ParseWindows(%q) accepted", bad)
		}
	}
}

func TestDocument(t *testing.T) {
	it := edge.OutboxItem{ID: 1, Key: "OPConsultRecord/encounter/e1/v1", EntityVersion: 1}
	good := `{"resourceType":"Bundle","id":"b1","type":"document","timestamp":"2025-03-01T10:00:00+05:30",
		"identifier":{"system":"urn:x","value":"v"}}`
	d, err := NewDocument(it, "b1", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"NotJSON":      `{`,
		"NotDocument":  strings.Replace(good, `"document"`, `"collection"`, 1),
		"OtherID":      strings.Replace(good, `"b1"`, `"b2"`, 1),
		"NoIdentifier": strings.Replace(good, `"system":"urn:x",`, ``, 1),
		"BadTimestamp": strings.Replace(good, `2025-03-01T10:00:00+05:30`, `yesterday`, 1),
	} {
		if _, err := NewDocument(it, "b1", []byte(body)); !errors.Is(err, ErrUnmappable) {
			t.Errorf("%s: %v, want ErrUnmappable", name, err)
		}
	}
	stored := `{"resourceType":"Bundle","id":"b1","type":"document","timestamp":"2025-03-01T04:30:00Z",
		"identifier":{"system":"urn:x","value":"v"},"meta":{"versionId":"3"}}`
	if id, v, problem := d.proves([]byte(stored), true); problem != "" || id != "Bundle/b1" || v != "3" {
		t.Fatalf("proves(stored)=%q %q %q", id, v, problem)
	}
	for name, body := range map[string]string{
		"OperationOutcome": `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`,
		"Garbage":          "\x00garbage",
		"OtherID":          strings.Replace(stored, `"b1"`, `"b9"`, 1),
		"OtherIdentifier":  strings.Replace(stored, `"value":"v"`, `"value":"w"`, 1),
		"NoVersion":        strings.Replace(stored, `"versionId":"3"`, `"x":"3"`, 1),
		"OtherTimestamp":   strings.Replace(stored, `04:30:00Z`, `04:31:00Z`, 1),
		"Patient":          `{"resourceType":"Patient","id":"b1"}`,
	} {
		if _, _, problem := d.proves([]byte(body), true); problem == "" {
			t.Errorf("%s proved delivery", name)
		}
	}
}
