package hub_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/syncq/hub"
)

// testHub is a hub on loopback with tokens for node-a and node-b.
type testHub struct {
	Store          *hub.Store
	Server         *hub.Server
	URL            string
	TokenA, TokenB string
}

// MustOpenHub starts a hub on 127.0.0.1:0; configure adjusts the server
// before it opens.
func MustOpenHub(tb testing.TB, configure ...func(*hub.Server)) *testHub {
	tb.Helper()
	st := hub.NewStore(filepath.Join(tb.TempDir(), "hub.db"))
	if err := st.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	h := &testHub{Store: st}
	var err error
	if h.TokenA, err = st.AddNode(context.Background(), "node-a"); err != nil {
		tb.Fatal(err)
	}
	if h.TokenB, err = st.AddNode(context.Background(), "node-b"); err != nil {
		tb.Fatal(err)
	}
	h.Server = hub.NewServer(st)
	h.Server.Addr = "127.0.0.1:0"
	for _, f := range configure {
		f(h.Server)
	}
	if err := h.Server.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		h.Server.Close(context.Background())
		st.Close()
	})
	h.URL = h.Server.URL()
	return h
}

// answer is an HTTP answer with its body decoded.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// issueCode is the first OperationOutcome issue's code, or "".
func (a answer) issueCode() string {
	if a.JSON["resourceType"] != "OperationOutcome" {
		return ""
	}
	is, _ := a.JSON["issue"].([]any)
	if len(is) == 0 {
		return ""
	}
	return is[0].(map[string]any)["code"].(string)
}

func (a answer) versionID() string {
	m, _ := a.JSON["meta"].(map[string]any)
	v, _ := m["versionId"].(string)
	return v
}

// do sends a request with FHIR JSON headers and the token when not empty.
func do(tb testing.TB, client *http.Client, method, u, token string, body []byte, header ...string) answer {
	tb.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
	json.Unmarshal(b, &a.JSON)
	return a
}

// Bundle builds a minimal valid document Bundle; edit changes it first.
func Bundle(id, identifier, timestamp string, edit ...func(b map[string]any)) []byte {
	b := map[string]any{
		"resourceType": "Bundle",
		"id":           id,
		"identifier":   map[string]any{"system": "urn:test:doc", "value": identifier},
		"type":         "document",
		"timestamp":    timestamp,
		"entry": []any{
			map[string]any{
				"fullUrl": "urn:uuid:11111111-1111-4111-8111-" + strings.Repeat("1", 12),
				"resource": map[string]any{
					"resourceType": "Composition", "status": "final",
					"type":    map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "371530004"}}},
					"subject": map[string]any{"reference": "urn:uuid:22222222-2222-4222-8222-222222222222"},
					"date":    timestamp, "author": []any{map[string]any{"reference": "urn:uuid:33333333-3333-4333-8333-333333333333"}},
					"title": "Consultation",
				},
			},
			map[string]any{
				"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222",
				"resource": map[string]any{"resourceType": "Patient", "id": "22222222-2222-4222-8222-222222222222",
					"identifier": []any{map[string]any{"system": "https://healthid.abdm.gov.in", "value": "91-1234-5678-9012"}}},
			},
			map[string]any{
				"fullUrl":  "urn:uuid:33333333-3333-4333-8333-333333333333",
				"resource": map[string]any{"resourceType": "Organization", "id": "33333333-3333-4333-8333-333333333333", "name": "PHC Rampur"},
			},
		},
	}
	for _, f := range edit {
		f(b)
	}
	out, _ := json.Marshal(b)
	return out
}

func composition(b map[string]any) map[string]any {
	return b["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
}

const (
	ts1 = "2025-03-01T10:00:00.000+05:30"
	ts2 = "2025-03-02T11:00:00.000+05:30"
)

func mustArrivals(tb testing.TB, h *testHub) int64 {
	tb.Helper()
	n, err := h.Store.ArrivalCount(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestServer_Update(t *testing.T) {
	// Ensure PUT Bundle/{id} creates, answers a retry with the same version
	// (however the JSON is formatted), stores new content as a new version,
	// and answers a late retry of an old version with that version.
	h := MustOpenHub(t)
	u := h.URL + "/Bundle/doc-1"
	a := do(t, nil, "PUT", u, h.TokenA, Bundle("doc-1", "d1", ts1))
	if a.Status != 201 || a.versionID() != "1" || a.Header.Get("ETag") != `W/"1"` || !strings.HasSuffix(a.Header.Get("Location"), "/fhir/Bundle/doc-1/_history/1") {
		t.Fatalf("create: %d %s %v", a.Status, a.Body, a.Header)
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, Bundle("doc-1", "d1", ts1), "", "   ")
	for _, body := range [][]byte{Bundle("doc-1", "d1", ts1), pretty.Bytes()} {
		if a := do(t, nil, "PUT", u, h.TokenA, body); a.Status != 200 || a.versionID() != "1" {
			t.Fatalf("retry: %d %s", a.Status, a.Body)
		}
	}
	if a := do(t, nil, "PUT", u, h.TokenA, Bundle("doc-1", "d1", ts2)); a.Status != 200 || a.versionID() != "2" {
		t.Fatalf("new version: %d %s", a.Status, a.Body)
	}
	if a := do(t, nil, "PUT", u, h.TokenA, Bundle("doc-1", "d1", ts1)); a.Status != 200 || a.versionID() != "1" || a.JSON["timestamp"] != ts1 {
		t.Fatalf("late retry of version 1: %d %s", a.Status, a.Body)
	}
	if got := mustArrivals(t, h); got != 2 {
		t.Fatalf("arrivals=%d, want 2", got)
	}
	if a := do(t, nil, "GET", u, h.TokenA, nil); a.Status != 200 || a.versionID() != "2" || a.JSON["timestamp"] != ts2 {
		t.Fatalf("read: %d %s", a.Status, a.Body)
	}
	if a := do(t, nil, "GET", u+"/_history/1", h.TokenA, nil); a.Status != 200 || a.versionID() != "1" {
		t.Fatalf("vread: %d %s", a.Status, a.Body)
	}
	if a := do(t, nil, "PUT", u, h.TokenA, Bundle("doc-1", "d1", ts2), "Prefer", "return=minimal"); a.Status != 200 || len(a.Body) != 0 || a.Header.Get("Location") == "" {
		t.Fatalf("return=minimal: %d %q", a.Status, a.Body)
	}
}

func TestServer_ConditionalWrites(t *testing.T) {
	t.Run("Create", func(t *testing.T) {
		// Ensure POST with If-None-Exist creates once and then answers with
		// the stored Bundle, and a POST without it is idempotent on the
		// body's identifier too.
		h := MustOpenHub(t)
		ine := "identifier=" + url.QueryEscape("urn:test:doc|d1")
		a := do(t, nil, "POST", h.URL+"/Bundle", h.TokenA, Bundle("doc-1", "d1", ts1), "If-None-Exist", ine)
		if a.Status != 201 || a.JSON["id"] != "doc-1" {
			t.Fatalf("create: %d %s", a.Status, a.Body)
		}
		for _, hdr := range [][]string{{"If-None-Exist", ine}, nil} {
			if a := do(t, nil, "POST", h.URL+"/Bundle", h.TokenA, Bundle("doc-1", "d1", ts1), hdr...); a.Status != 200 || a.versionID() != "1" {
				t.Fatalf("again (%v): %d %s", hdr, a.Status, a.Body)
			}
		}
		// A different document whose body id is taken gets an id of its own.
		a = do(t, nil, "POST", h.URL+"/Bundle", h.TokenA, Bundle("doc-1", "d2", ts1))
		if a.Status != 201 || a.JSON["id"] == "doc-1" {
			t.Fatalf("taken id: %d %s", a.Status, a.Body)
		}
		if got := mustArrivals(t, h); got != 2 {
			t.Fatalf("arrivals=%d, want 2", got)
		}
		if a := do(t, nil, "POST", h.URL+"/Bundle", h.TokenA, Bundle("x", "d3", ts1), "If-None-Exist", "_id=x"); a.Status != 400 || a.issueCode() != "not-supported" {
			t.Fatalf("If-None-Exist on _id: %d %s", a.Status, a.Body)
		}
	})

	t.Run("Update", func(t *testing.T) {
		// Ensure PUT Bundle?identifier= creates, then updates the Bundle
		// with that identifier, and refuses a body naming another id.
		h := MustOpenHub(t)
		u := h.URL + "/Bundle?identifier=" + url.QueryEscape("urn:test:doc|d1")
		if a := do(t, nil, "PUT", u, h.TokenA, Bundle("doc-1", "d1", ts1)); a.Status != 201 || a.JSON["id"] != "doc-1" {
			t.Fatalf("create: %d %s", a.Status, a.Body)
		}
		if a := do(t, nil, "PUT", u, h.TokenA, Bundle("doc-1", "d1", ts2)); a.Status != 200 || a.versionID() != "2" {
			t.Fatalf("update: %d %s", a.Status, a.Body)
		}
		if a := do(t, nil, "PUT", u, h.TokenA, Bundle("doc-9", "d1", ts2)); a.Status != 409 || a.issueCode() != "conflict" {
			t.Fatalf("other id: %d %s", a.Status, a.Body)
		}
	})
}

func TestServer_Search(t *testing.T) {
	// Ensure search by identifier and by patient (reference, id, ABHA) finds
	// the node's own Bundles only, and pages with _count and _offset.
	h := MustOpenHub(t)
	for _, id := range []string{"a1", "a2", "a3"} {
		if a := do(t, nil, "PUT", h.URL+"/Bundle/"+id, h.TokenA, Bundle(id, "ident-"+id, ts1)); a.Status != 201 {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	}
	if a := do(t, nil, "PUT", h.URL+"/Bundle/b1", h.TokenB, Bundle("b1", "ident-b1", ts1)); a.Status != 201 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	search := func(token, q string) answer {
		a := do(t, nil, "GET", h.URL+"/Bundle?"+q, token, nil)
		if a.Status != 200 || a.JSON["type"] != "searchset" {
			t.Fatalf("search %s: %d %s", q, a.Status, a.Body)
		}
		return a
	}
	total := func(a answer) int { return int(a.JSON["total"].(float64)) }
	for q, want := range map[string]int{
		"identifier=" + url.QueryEscape("urn:test:doc|ident-a2"): 1,
		"identifier=ident-a2": 1,
		"identifier=" + url.QueryEscape("urn:other|ident-a2"): 0,
		"identifier=ident-b1": 0, // node-b's
		"patient=" + url.QueryEscape("urn:uuid:22222222-2222-4222-8222-222222222222"):  3,
		"patient=22222222-2222-4222-8222-222222222222":                                 3,
		"patient=Patient/22222222-2222-4222-8222-222222222222":                         3,
		"patient=" + url.QueryEscape("https://healthid.abdm.gov.in|91-1234-5678-9012"): 3,
		"composition.patient=91-1234-5678-9012":                                        3,
		"patient=someone-else":                                                         0,
	} {
		if got := total(search(h.TokenA, q)); got != want {
			t.Fatalf("search %s: total=%d, want %d", q, got, want)
		}
	}
	a := search(h.TokenA, "patient=91-1234-5678-9012&_count=2")
	if n := len(a.JSON["entry"].([]any)); n != 2 || total(a) != 3 || !strings.Contains(string(a.Body), `"relation":"next"`) {
		t.Fatalf("page 1: %d entries, %s", n, a.Body)
	}
	a = search(h.TokenA, "patient=91-1234-5678-9012&_count=2&_offset=2")
	if n := len(a.JSON["entry"].([]any)); n != 1 || strings.Contains(string(a.Body), `"relation":"next"`) {
		t.Fatalf("page 2: %d entries, %s", n, a.Body)
	}
	if a := do(t, nil, "GET", h.URL+"/Bundle/b1", h.TokenA, nil); a.Status != 404 || a.issueCode() != "not-found" {
		t.Fatalf("node-a reads node-b's Bundle: %d %s", a.Status, a.Body)
	}
}

func TestServer_Rejections(t *testing.T) {
	// Ensure every rejection is an OperationOutcome with the right status and
	// issue code, and stores nothing.
	h := MustOpenHub(t)
	if a := do(t, nil, "PUT", h.URL+"/Bundle/taken", h.TokenB, Bundle("taken", "taken", ts1)); a.Status != 201 {
		t.Fatal(a.Status)
	}
	if a := do(t, nil, "PUT", h.URL+"/Bundle/mine", h.TokenA, Bundle("mine", "mine", ts1)); a.Status != 201 {
		t.Fatal(a.Status)
	}
	edit := func(f func(b map[string]any)) []byte { return Bundle("doc-1", "d1", ts1, f) }
	var big bytes.Buffer
	zw := gzip.NewWriter(&big)
	zw.Write([]byte(`{"resourceType":"Bundle","x":"`))
	zw.Write(bytes.Repeat([]byte("a"), 20<<20)) // 20 MiB inflated: a zip bomb for the 16 MiB cap
	zw.Close()
	for _, tc := range []struct {
		name, method, path, token string
		body                      []byte
		header                    []string
		status                    int
		code                      string
	}{
		{"NotJSON", "PUT", "/Bundle/doc-1", "a", []byte("{nope"), nil, 400, "structure"},
		{"NotBundle", "PUT", "/Bundle/doc-1", "a", []byte(`{"resourceType":"Patient","id":"doc-1"}`), nil, 400, "structure"},
		{"TwoValues", "PUT", "/Bundle/doc-1", "a", append(Bundle("doc-1", "d1", ts1), []byte(" {}")...), nil, 400, "structure"},
		{"NotDocument", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { b["type"] = "collection" }), nil, 422, "value"},
		{"NoIdentifier", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { delete(b, "identifier") }), nil, 422, "invariant"},
		{"NoIdentifierSystem", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { b["identifier"] = map[string]any{"value": "x"} }), nil, 422, "invariant"},
		{"NoTimestamp", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { b["timestamp"] = "yesterday" }), nil, 422, "invariant"},
		{"NoEntries", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { b["entry"] = []any{} }), nil, 422, "invariant"},
		{"CompositionNotFirst", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) {
			e := b["entry"].([]any)
			e[0], e[1] = e[1], e[0]
		}), nil, 422, "invariant"},
		{"NoFullUrl", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { delete(b["entry"].([]any)[1].(map[string]any), "fullUrl") }), nil, 422, "required"},
		{"DuplicateFullUrl", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) {
			e := b["entry"].([]any)
			e[2].(map[string]any)["fullUrl"] = e[1].(map[string]any)["fullUrl"]
		}), nil, 422, "invariant"},
		{"EntryRequest", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) {
			b["entry"].([]any)[1].(map[string]any)["request"] = map[string]any{"method": "POST"}
		}), nil, 422, "invariant"},
		{"NoCompositionTitle", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { delete(composition(b), "title") }), nil, 422, "required"},
		{"NoCompositionSubject", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { delete(composition(b), "subject") }), nil, 422, "required"},
		{"BadCompositionStatus", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { composition(b)["status"] = "done" }), nil, 422, "value"},
		{"BadResourceID", "PUT", "/Bundle/doc-1", "a", edit(func(b map[string]any) { composition(b)["id"] = "no spaces allowed" }), nil, 422, "value"},
		{"IDMismatch", "PUT", "/Bundle/doc-2", "a", Bundle("doc-1", "d1", ts1), nil, 400, "value"},
		{"BadID", "PUT", "/Bundle/" + url.PathEscape("a b"), "a", Bundle("a b", "d1", ts1), nil, 400, "value"},
		{"IdentifierTaken", "PUT", "/Bundle/doc-1", "a", Bundle("doc-1", "mine", ts1), nil, 409, "conflict"},
		{"IdentifierChanged", "PUT", "/Bundle/mine", "a", Bundle("mine", "other", ts1), nil, 409, "conflict"},
		{"OtherNodesBundle", "PUT", "/Bundle/taken", "a", Bundle("taken", "taken", ts2), nil, 403, "forbidden"},
		{"MediaType", "PUT", "/Bundle/doc-1", "a", Bundle("doc-1", "d1", ts1), []string{"Content-Type", "text/plain"}, 415, "not-supported"},
		{"Encoding", "PUT", "/Bundle/doc-1", "a", Bundle("doc-1", "d1", ts1), []string{"Content-Encoding", "br"}, 415, "not-supported"},
		{"NotGzip", "PUT", "/Bundle/doc-1", "a", Bundle("doc-1", "d1", ts1), []string{"Content-Encoding", "gzip"}, 400, "structure"},
		{"TooLarge", "PUT", "/Bundle/doc-1", "a", big.Bytes(), []string{"Content-Encoding", "gzip"}, 413, "too-costly"},
		{"NoToken", "PUT", "/Bundle/doc-1", "", Bundle("doc-1", "d1", ts1), nil, 401, "login"},
		{"BadToken", "PUT", "/Bundle/doc-1", "hpn_wrong", Bundle("doc-1", "d1", ts1), nil, 401, "login"},
		{"Method", "DELETE", "/Bundle/doc-1", "a", nil, nil, 405, "not-supported"},
		{"OtherResource", "GET", "/Patient/1", "a", nil, nil, 404, "not-supported"},
		{"UnknownPath", "GET", "/Bundle/x/y", "a", nil, nil, 404, "not-found"},
		{"OutsideBase", "GET", "/../../etc/passwd", "a", nil, nil, 404, "not-found"},
		{"NotFound", "GET", "/Bundle/nothing", "a", nil, nil, 404, "not-found"},
		{"BadVersion", "GET", "/Bundle/mine/_history/zero", "a", nil, nil, 404, "not-found"},
		{"UnknownSearchParam", "GET", "/Bundle?name=Sunita", "a", nil, nil, 400, "not-supported"},
		{"BadCount", "GET", "/Bundle?_count=many", "a", nil, nil, 400, "value"},
		{"Transaction", "POST", "", "a", []byte(`{"resourceType":"Bundle","type":"transaction","entry":[]}`), nil, 400, "not-supported"},
		{"ConditionalUpdateWithoutIdentifier", "PUT", "/Bundle?_id=x", "a", Bundle("doc-1", "d1", ts1), nil, 400, "not-supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := map[string]string{"a": h.TokenA, "": ""}[tc.token]
			if tc.token != "a" && tc.token != "" {
				tok = tc.token
			}
			before := mustArrivals(t, h)
			a := do(t, nil, tc.method, h.URL+tc.path, tok, tc.body, tc.header...)
			if a.Status != tc.status || a.issueCode() != tc.code {
				t.Fatalf("%d %q, want %d with issue %q: %s", a.Status, a.issueCode(), tc.status, tc.code, a.Body)
			}
			if got := mustArrivals(t, h); got != before {
				t.Fatalf("a rejected request stored something (%d arrivals, were %d)", got, before)
			}
			if tc.status == 401 && a.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

func TestServer_Auth(t *testing.T) {
	// Ensure the metadata is public, a revoked node is refused, and a new
	// token replaces the old one.
	h := MustOpenHub(t)
	if a := do(t, nil, "GET", h.URL+"/metadata", "", nil); a.Status != 200 || a.JSON["resourceType"] != "CapabilityStatement" || a.JSON["fhirVersion"] != "4.0.1" {
		t.Fatalf("metadata: %d %s", a.Status, a.Body)
	}
	if err := h.Store.RevokeNode(context.Background(), "node-a"); err != nil {
		t.Fatal(err)
	}
	if a := do(t, nil, "PUT", h.URL+"/Bundle/d", h.TokenA, Bundle("d", "d", ts1)); a.Status != 401 {
		t.Fatalf("revoked node: %d", a.Status)
	}
	tok, err := h.Store.AddNode(context.Background(), "node-a")
	if err != nil {
		t.Fatal(err)
	}
	if a := do(t, nil, "PUT", h.URL+"/Bundle/d", tok, Bundle("d", "d", ts1)); a.Status != 201 {
		t.Fatalf("new token: %d %s", a.Status, a.Body)
	}
	if _, err := h.Store.AddNode(context.Background(), "Bad Name"); err == nil {
		t.Fatal("a node name with spaces was accepted")
	}
	nodes, err := h.Store.Nodes(context.Background())
	if err != nil || len(nodes) != 2 {
		t.Fatalf("Nodes=%v %v", nodes, err)
	}
}

func TestServer_Batch(t *testing.T) {
	// Ensure a batch stores each good entry, refuses each bad one with its
	// own OperationOutcome, and answers a retry of the same batch with the
	// same versions.
	h := MustOpenHub(t)
	entry := func(method, u string, res []byte) string {
		return `{"resource":` + string(res) + `,"request":{"method":"` + method + `","url":"` + u + `"}}`
	}
	batch := []byte(`{"resourceType":"Bundle","type":"batch","entry":[` + strings.Join([]string{
		entry("PUT", "Bundle/b1", Bundle("b1", "i1", ts1)),
		entry("PUT", "Bundle/b2", Bundle("b2", "i2", ts1, func(b map[string]any) { b["type"] = "collection" })),
		entry("POST", "Bundle", Bundle("b3", "i3", ts1)),
		entry("PUT", "Bundle?identifier=urn:test:doc%7Ci4", Bundle("b4", "i4", ts1)),
		entry("DELETE", "Bundle/b1", Bundle("b1", "i1", ts1)),
	}, ",") + `]}`)
	for round, want := range [][]string{
		{"201 Created", "422 Unprocessable Entity", "201 Created", "201 Created", "400 Bad Request"},
		{"200 OK", "422 Unprocessable Entity", "200 OK", "200 OK", "400 Bad Request"},
	} {
		a := do(t, nil, "POST", h.URL, h.TokenA, batch)
		if a.Status != 200 || a.JSON["type"] != "batch-response" {
			t.Fatalf("round %d: %d %s", round, a.Status, a.Body)
		}
		for i, e := range a.JSON["entry"].([]any) {
			resp := e.(map[string]any)["response"].(map[string]any)
			if resp["status"] != want[i] {
				t.Fatalf("round %d entry %d: %v, want %s", round, i, resp["status"], want[i])
			}
			if strings.HasPrefix(want[i], "4") && resp["outcome"] == nil {
				t.Fatalf("round %d entry %d refused without an OperationOutcome", round, i)
			}
		}
	}
	if got := mustArrivals(t, h); got != 3 {
		t.Fatalf("arrivals=%d, want 3", got)
	}
}

func TestServer_Gzip(t *testing.T) {
	// Ensure gzip request bodies are read and large answers are compressed
	// for a client that takes gzip.
	h := MustOpenHub(t)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(Bundle("g1", "g1", ts1))
	zw.Close()
	if a := do(t, nil, "PUT", h.URL+"/Bundle/g1", h.TokenA, z.Bytes(), "Content-Encoding", "gzip"); a.Status != 201 {
		t.Fatalf("gzip body: %d %s", a.Status, a.Body)
	}
	tr := &http.Transport{DisableCompression: true}
	a := do(t, &http.Client{Transport: tr}, "GET", h.URL+"/Bundle?identifier=g1", h.TokenA, nil, "Accept-Encoding", "gzip")
	if a.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("search result not compressed: %v", a.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.Body))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); !bytes.Contains(b, []byte(`"searchset"`)) {
		t.Fatalf("decompressed %q", b)
	}
}

// mustCA makes a CA and certificates it signs, in dir.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func mustCA(tb testing.TB) *testCA {
	tb.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test district CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(tb testing.TB, cn string, server bool) tls.Certificate {
	tb.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestServer_ClientCertificate(t *testing.T) {
	// Ensure a node may authenticate with a client certificate naming a
	// registered node, and that an unregistered name is refused.
	ca := mustCA(t)
	h := MustOpenHub(t, func(s *hub.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "hub", true)},
			ClientCAs: ca.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	})
	client := func(cn string) *http.Client {
		tc := &tls.Config{RootCAs: ca.pool}
		if cn != "" {
			tc.Certificates = []tls.Certificate{ca.issue(t, cn, false)}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	if a := do(t, client("node-a"), "PUT", h.URL+"/Bundle/c1", "", Bundle("c1", "c1", ts1)); a.Status != 201 {
		t.Fatalf("certificate of node-a: %d %s", a.Status, a.Body)
	}
	if a := do(t, client("node-z"), "PUT", h.URL+"/Bundle/c2", "", Bundle("c2", "c2", ts1)); a.Status != 401 {
		t.Fatalf("certificate of an unregistered node: %d %s", a.Status, a.Body)
	}
	if a := do(t, client(""), "PUT", h.URL+"/Bundle/c3", h.TokenB, Bundle("c3", "c3", ts1)); a.Status != 201 {
		t.Fatalf("token over TLS: %d %s", a.Status, a.Body)
	}
}

func TestStore_Open(t *testing.T) {
	t.Run("Reopen", func(t *testing.T) {
		// Ensure what was stored is there after a restart.
		path := filepath.Join(t.TempDir(), "hub.db")
		st := hub.NewStore(path)
		if err := st.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		tok, _ := st.AddNode(context.Background(), "node-a")
		st.Close()
		st = hub.NewStore(path)
		if err := st.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if n, err := st.Authenticate(context.Background(), tok); err != nil || n != "node-a" {
			t.Fatalf("Authenticate after reopen: %q %v", n, err)
		}
	})

	t.Run("ErrForeignFile", func(t *testing.T) {
		// Ensure a file that is not a hub database is refused and left alone.
		path := filepath.Join(t.TempDir(), "other.db")
		os.WriteFile(path, []byte("not a database at all, just text that is long enough to look like a header"), 0o600)
		st := hub.NewStore(path)
		if err := st.Open(context.Background()); err == nil {
			st.Close()
			t.Fatal("a text file opened as a hub database")
		}
	})
}

func TestStore_GroupCommit(t *testing.T) {
	// Ensure concurrent writers, each sending every document twice, are
	// committed together yet each answered with its own result, and every
	// document is stored once.
	st := hub.NewStore(filepath.Join(t.TempDir(), "hub.db"))
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const writers, each = 8, 40
	errc := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				id := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				for range 2 {
					r, issues := hub.ParseBundle(Bundle(id, id, ts1))
					if len(issues) > 0 {
						errc <- errors.New(issues[0].Diagnostics)
						return
					}
					got, err := st.Put(context.Background(), "node-a", hub.Write{How: hub.WriteByID, ID: id, Resource: r})
					if err != nil || got.ID != id || got.Version != 1 {
						errc <- fmt.Errorf("put %s: %+v %v", id, got, err)
						return
					}
				}
			}
			errc <- nil
		}()
	}
	for range writers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.ArrivalCount(context.Background()); err != nil || n != writers*each {
		t.Fatalf("arrivals=%d %v, want %d", n, err, writers*each)
	}
	st.Close()
	if _, err := st.Put(context.Background(), "node-a", hub.Write{}); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("put after close: %v, want ErrClosed", err)
	}
}
