package syncq_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/hub"
	"github.com/healthpost/healthpost/syncq/synctest"
)

func TestEngine_LinkDownProbesOnly(t *testing.T) {
	// Ensure that while the link is dead the engine sends one probe per
	// backoff step, doubling, and no documents; and that it delivers
	// everything once the link is back.
	s := edgetest.MustOpenStore(t)
	docs := MustSeed(t, s, 3, 6)
	h := MustOpenHub(t)
	p := MustProxy(t, h.URL, synctest.Faults{}, 4)
	p.SetDown(true)
	clk := synctest.NewManualClock(time.Now())
	e := NewTestEngine(t, s, p.URL, h.Token)
	e.Clock, e.MinBackoff, e.MaxBackoff = clk, time.Second, 10*time.Second
	e.Rand = func() float64 { return 1 } // no jitter: the full step
	waiting := clk.Waiting()
	if err := e.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	<-waiting
	var gaps []time.Duration
	for i := 1; i <= 6; i++ {
		if _, n := p.Counts(); n != i {
			t.Fatalf("after %d backoff steps the proxy saw %d requests, want %d probes", i-1, n, i)
		}
		if st := e.Status(); st.State != syncq.StateOffline {
			t.Fatalf("state=%s, want %s", st.State, syncq.StateOffline)
		}
		next, ok := clk.NextWait()
		if !ok {
			t.Fatal("the engine is not waiting")
		}
		gaps = append(gaps, next.Sub(clk.Now()))
		waiting = clk.Waiting()
		clk.Advance(next.Sub(clk.Now()))
		<-waiting
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if fmt.Sprint(gaps) != fmt.Sprint(want) {
		t.Fatalf("waits between probes %v, want %v", gaps, want)
	}
	p.SetDown(false)
	next, _ := clk.NextWait()
	clk.Advance(next.Sub(clk.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	MustWaitDrained(t, ctx, e, s)
	if got := MustVerifyExactlyOnce(t, s.Path, h.Store); got != docs {
		t.Fatalf("verified %d, want %d", got, docs)
	}
}

func TestEngine_RetryAfter(t *testing.T) {
	// Ensure a 429 pauses the upstream for at least its Retry-After, with no
	// request in between, and that the documents wait as long.
	s := edgetest.MustOpenStore(t)
	MustSeed(t, s, 2, 2)
	h := MustOpenHub(t)
	p := MustProxy(t, h.URL, synctest.Faults{Rate: 1, Kinds: []synctest.Fault{synctest.Fault429}, RetryAfter: 120}, 5)
	clk := synctest.NewManualClock(time.Now())
	e := NewTestEngine(t, s, p.URL, h.Token)
	e.Clock, e.MinBackoff = clk, time.Second
	waiting := clk.Waiting()
	if err := e.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	<-waiting
	_, before := p.Counts()
	next, _ := clk.NextWait()
	if d := next.Sub(clk.Now()); d < 120*time.Second {
		t.Fatalf("paused for %v after Retry-After: 120", d)
	}
	st := e.Status()
	if st.State != syncq.StateBackoff || !strings.Contains(st.LastError, "429") {
		t.Fatalf("status=%+v", st)
	}
	clk.Advance(119 * time.Second)
	if _, n := p.Counts(); n != before {
		t.Fatalf("%d requests during the Retry-After pause", n-before)
	}
	items, _ := s.OutboxItems(context.Background(), edge.OutboxFilter{})
	for _, it := range items {
		if it.Attempts > 0 && it.NextAttemptAt.Before(clk.Now().Add(time.Second)) {
			t.Fatalf("outbox %d due at %v, inside the pause", it.ID, it.NextAttemptAt)
		}
	}
}

func TestEngine_AuthRefused(t *testing.T) {
	// Ensure a refused token pauses delivery and quarantines nothing: the
	// documents are not at fault.
	s := edgetest.MustOpenStore(t)
	docs := MustSeed(t, s, 3, 3)
	h := MustOpenHub(t)
	e := NewTestEngine(t, s, h.URL, "hpn_not-the-token")
	_, err := e.Drain(context.Background(), syncq.DrainOptions{})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Drain: %v, want a 401 error", err)
	}
	raw := edgetest.MustRawDB(t, s.Path)
	if got := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'pending'`); got != docs {
		t.Fatalf("pending=%d, want %d", got, docs)
	}
	e.Client.Token = h.Token
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{Expedite: true, Wait: true}); err != nil {
		t.Fatal(err)
	}
	MustVerifyExactlyOnce(t, s.Path, h.Store)
}

// refusingMapper builds documents the hub refuses (no Composition.title)
// for the rows refuse says, or fails as fail says.
type refusingMapper struct {
	refuse func(edge.OutboxItem) bool
	fail   func(edge.OutboxItem) error
}

func (m refusingMapper) Document(ctx context.Context, it edge.OutboxItem) (string, []byte, error) {
	if m.fail != nil {
		if err := m.fail(it); err != nil {
			return "", nil, err
		}
	}
	id, b := synctest.Document(it)
	if m.refuse != nil && m.refuse(it) {
		var doc map[string]any
		json.Unmarshal(b, &doc)
		delete(doc["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any), "title")
		b, _ = json.Marshal(doc)
	}
	return id, b, nil
}

func TestEngine_Quarantine(t *testing.T) {
	// Ensure a document the upstream refuses for good is quarantined with
	// the server's reason, blocks neither its patient's later documents nor
	// anyone else's, and goes when an administrator retries it after a fix.
	s := edgetest.MustOpenStore(t)
	docs := MustSeed(t, s, 4, 8)
	items, _ := s.OutboxItems(context.Background(), edge.OutboxFilter{})
	bad := items[0]
	h := MustOpenHub(t)
	e := NewTestEngine(t, s, h.URL, h.Token)
	var broken atomic.Bool
	broken.Store(true)
	e.Mapper = refusingMapper{refuse: func(it edge.OutboxItem) bool { return it.ID == bad.ID && broken.Load() }}
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	got, err := s.OutboxItem(context.Background(), bad.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != edge.OutboxQuarantined || !strings.Contains(got.LastError, "422") || !strings.Contains(got.LastError, "Composition.title is required") {
		t.Fatalf("refused row: %s %q, want quarantined with the hub's diagnostics", got.State, got.LastError)
	}
	raw := edgetest.MustRawDB(t, s.Path)
	if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'delivered'`); n != docs-1 {
		t.Fatalf("delivered=%d, want all %d others", n, docs-1)
	}
	if st := e.Status(); st.ConsecutiveFailures != 0 || st.Run.Quarantined != 1 {
		t.Fatalf("status=%+v: a refused document is not the upstream's failure", st)
	}
	broken.Store(false)
	if err := s.RetryOutbox(edgetest.Clerk(), bad.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if got := MustVerifyExactlyOnceAnyOrder(t, s.Path, h.Store); got != docs {
		t.Fatalf("verified %d, want %d", got, docs)
	}
}

func TestEngine_MappingErrors(t *testing.T) {
	// Ensure a row that cannot become a document is quarantined, a passing
	// mapping failure is retried, and neither counts against the upstream.
	s := edgetest.MustOpenStore(t)
	MustSeed(t, s, 3, 3) // three patients, one OPConsult each (+ one Wellness and Prescription for the first)
	items, _ := s.OutboxItems(context.Background(), edge.OutboxFilter{})
	var firstOf = map[string]int64{}
	for _, it := range items {
		if _, ok := firstOf[it.PatientID]; !ok {
			firstOf[it.PatientID] = it.ID
		}
	}
	var ids []int64
	for _, id := range firstOf {
		ids = append(ids, id)
	}
	unmappable, transient, invalid := ids[0], ids[1], ids[2]
	h := MustOpenHub(t)
	e := NewTestEngine(t, s, h.URL, h.Token)
	var fixed atomic.Bool
	e.Mapper = syncq.MapperFunc(func(ctx context.Context, it edge.OutboxItem) (string, []byte, error) {
		if a, err := edge.ActorFrom(ctx); err != nil || a.ID != "syncq" {
			t.Errorf("mapper called without the syncq actor: %v %v", a, err)
		}
		switch {
		case it.ID == unmappable:
			return "", nil, fmt.Errorf("observation 2: %w", syncq.ErrUnmappable)
		case it.ID == transient && !fixed.Load():
			return "", nil, errors.New("database is busy")
		case it.ID == invalid:
			return "x", []byte(`{"resourceType":"Bundle","id":"x","type":"collection"}`), nil
		}
		return synctest.Mapper().Document(ctx, it)
	})
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]string{unmappable: edge.OutboxQuarantined, invalid: edge.OutboxQuarantined, transient: edge.OutboxPending} {
		it, _ := s.OutboxItem(context.Background(), id)
		if it.State != want || !strings.Contains(it.LastError, "build document") {
			t.Fatalf("outbox %d: %s %q, want %s", id, it.State, it.LastError, want)
		}
	}
	if st := e.Status(); st.ConsecutiveFailures != 0 {
		t.Fatalf("mapping failures counted against the upstream: %+v", st)
	}
	fixed.Store(true)
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{Expedite: true, Wait: true}); err != nil {
		t.Fatal(err)
	}
	if it, _ := s.OutboxItem(context.Background(), transient); it.State != edge.OutboxDelivered {
		t.Fatalf("transient row: %s", it.State)
	}
}

// mustInsertOutbox adds an outbox row the way edge would, for lanes and
// versions no edge API writes yet (alerts, amendments).
func mustInsertOutbox(tb testing.TB, path, key string, lane int, patient any, version int, created time.Time) {
	tb.Helper()
	raw := edgetest.MustRawDB(tb, path)
	if _, err := raw.Exec(`INSERT INTO outbox (key, document, lane, patient_id, entity, entity_id, entity_version,
		next_attempt_at, created_at, node_seq) VALUES (?, 'OPConsultRecord', ?, ?, 'encounter', ?, ?, ?, ?, 1000000 + ?)`,
		key, lane, patient, strings.Split(key, "/")[2], version, created.UnixMilli(), created.UnixMilli(), version); err != nil {
		tb.Fatal(err)
	}
}

func TestEngine_WindowsAndBudget(t *testing.T) {
	t.Run("Windows", func(t *testing.T) {
		// Ensure that outside the time windows only alerts go, and the
		// rest goes when a window opens.
		s := edgetest.MustOpenStore(t)
		docs := MustSeed(t, s, 2, 2)
		mustInsertOutbox(t, s.Path, "OPConsultRecord/encounter/alert-1/v1", edge.LaneAlert, nil, 1, time.Now())
		docs++
		h := MustOpenHub(t)
		e := NewTestEngine(t, s, h.URL, h.Token)
		clk := synctest.NewManualClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
		e.Clock = clk
		var err error
		if e.Windows, err = syncq.ParseWindows("22:00-06:00"); err != nil {
			t.Fatal(err)
		}
		e.Windows.Location = time.UTC
		if _, err := e.Drain(context.Background(), syncq.DrainOptions{Expedite: true}); err != nil {
			t.Fatal(err)
		}
		if st := e.Status(); st.State != syncq.StateClosed {
			t.Fatalf("state=%s, want %s", st.State, syncq.StateClosed)
		}
		raw := edgetest.MustRawDB(t, s.Path)
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'delivered'`); n != 1 {
			t.Fatalf("delivered=%d outside the window, want only the alert", n)
		}
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'delivered' AND lane = 0`); n != 1 {
			t.Fatal("the alert did not go")
		}
		clk.Advance(10 * time.Hour) // 22:00
		if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
			t.Fatal(err)
		}
		if got := MustVerifyExactlyOnce(t, s.Path, h.Store); got != docs {
			t.Fatalf("verified %d, want %d", got, docs)
		}
	})

	t.Run("Budget", func(t *testing.T) {
		// Ensure that once the day's bytes are spent, only alerts go.
		s := edgetest.MustOpenStore(t)
		MustSeed(t, s, 10, 10)
		h := MustOpenHub(t)
		e := NewTestEngine(t, s, h.URL, h.Token)
		e.Workers, e.BatchSize, e.PassSize = 1, 2, 2
		e.DailyBudget = 1 // byte: the first pass spends it
		if _, err := e.Drain(context.Background(), syncq.DrainOptions{}); err != nil {
			t.Fatal(err)
		}
		if st := e.Status(); st.State != syncq.StateBudget {
			t.Fatalf("state=%s, want %s", st.State, syncq.StateBudget)
		}
		raw := edgetest.MustRawDB(t, s.Path)
		if n := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'delivered'`); n != 2 {
			t.Fatalf("delivered=%d, want the 2 of the first pass", n)
		}
		e.IgnoreLimits = true // `healthpost sync now --ignore-limits`
		if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
			t.Fatal(err)
		}
		MustVerifyExactlyOnce(t, s.Path, h.Store)
	})
}

func TestEngine_Amendment(t *testing.T) {
	// Ensure a new version of a delivered document becomes a new version of
	// the same Bundle at the hub, not a second Bundle.
	s := edgetest.MustOpenStore(t)
	MustSeed(t, s, 1, 1)
	h := MustOpenHub(t)
	e := NewTestEngine(t, s, h.URL, h.Token)
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	items, _ := s.OutboxItems(context.Background(), edge.OutboxFilter{})
	first := items[0]
	key := strings.TrimSuffix(first.Key, "/v1") + "/v2"
	mustInsertOutbox(t, s.Path, key, edge.LaneClinical, first.PatientID, 2, time.Now().Add(time.Minute))
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	MustVerifyExactlyOnce(t, s.Path, h.Store)
	b, err := h.Store.Read(context.Background(), synctest.BundleID(first), 0)
	if err != nil || b.Version != 2 {
		t.Fatalf("hub holds version %d (%v), want 2", b.Version, err)
	}
	found, total, _ := h.Store.Search(context.Background(), hub.Search{Identifier: &hub.Token{Value: synctest.DocumentIdentity(first)}})
	if total != 1 || len(found) != 1 {
		t.Fatalf("%d Bundles with the document's identifier, want 1", total)
	}
}

func TestEngine_TwoProcessesOneDatabase(t *testing.T) {
	t.Parallel()
	// Ensure `healthpost sync now` draining beside the running node (two
	// stores on one file, both through faults) still delivers each document
	// exactly once and in order.
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s1 := edgetest.MustOpenStoreAt(t, path)
	docs := MustSeed(t, s1, 20, 150)
	s2 := edgetest.MustOpenStoreAt(t, path)
	h := MustOpenHub(t)
	p := MustProxy(t, h.URL, synctest.Faults{Rate: 0.3}, 6)
	e1 := NewTestEngine(t, s1, p.URL, h.Token)
	e2 := NewTestEngine(t, s2, p.URL, h.Token)
	e2.Trigger = edge.SyncTriggerCLI
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := e1.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Drain(ctx, syncq.DrainOptions{Expedite: true, Wait: true}); err != nil {
		t.Fatal(err)
	}
	MustWaitDrained(t, ctx, e1, s1)
	e1.Close(ctx)
	if got := MustVerifyExactlyOnce(t, path, h.Store); got != docs {
		t.Fatalf("verified %d, want %d", got, docs)
	}
	runs, _ := s1.SyncRuns(ctx, 100)
	var cli, auto int64
	for _, r := range runs {
		if r.Trigger == edge.SyncTriggerCLI {
			cli += r.Delivered
		} else {
			auto += r.Delivered
		}
	}
	if cli+auto != int64(docs) {
		t.Fatalf("runs record %d + %d deliveries, want %d", cli, auto, docs)
	}
	t.Logf("cli delivered %d, the node %d", cli, auto)
}

func TestEngine_BatchRefusedFallsBack(t *testing.T) {
	// Ensure a server that announces batch but refuses it gets the
	// documents one by one instead.
	s := edgetest.MustOpenStore(t)
	docs := MustSeed(t, s, 5, 5)
	h := MustOpenHub(t)
	var refused atomic.Int64
	inner := h.Server.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/fhir" {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported","diagnostics":"batch is not enabled"}]}`))
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	e := NewTestEngine(t, s, srv.URL+"/fhir", h.Token)
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if refused.Load() != 1 {
		t.Fatalf("%d batches refused, want 1 and then single requests", refused.Load())
	}
	if got := MustVerifyExactlyOnce(t, s.Path, h.Store); got != docs {
		t.Fatalf("verified %d, want %d", got, docs)
	}
}

// mustTLSHub serves the hub over TLS with a certificate from a new CA and
// returns the URL and the CA's PEM file.
func mustTLSHub(tb testing.TB) (*testHub, string) {
	tb.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "district CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "hub"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, srvT, ca, &key.PublicKey, caKey)
	caFile := filepath.Join(tb.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)

	st := hub.NewStore(filepath.Join(tb.TempDir(), "hub.db"))
	if err := st.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tok, _ := st.AddNode(context.Background(), "node-test")
	srv := hub.NewServer(st)
	srv.Addr = "127.0.0.1:0"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	if err := srv.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close(context.Background()); st.Close() })
	return &testHub{Store: st, Server: srv, URL: srv.URL(), Token: tok}, caFile
}

func TestClient_TLS(t *testing.T) {
	h, caFile := mustTLSHub(t)
	t.Run("Verified", func(t *testing.T) {
		// Ensure a client given the upstream's CA delivers over TLS.
		s := edgetest.MustOpenStore(t)
		docs := MustSeed(t, s, 2, 2)
		c, err := syncq.NewClientFromConfig(edge.UpstreamConfig{URL: h.URL, Token: h.Token, CAFile: caFile})
		if err != nil {
			t.Fatal(err)
		}
		e := syncq.NewEngine(s, c, synctest.Mapper())
		e.Clock = synctest.NewAutoClock()
		if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
			t.Fatal(err)
		}
		if st := e.Status(); st.Run.Delivered != int64(docs) {
			t.Fatalf("delivered %d, want %d", st.Run.Delivered, docs)
		}
	})

	t.Run("ErrUntrusted", func(t *testing.T) {
		// Ensure an upstream certificate no configured CA signed is refused
		// with a message that names the fix, and nothing is sent.
		c, err := syncq.NewClientFromConfig(edge.UpstreamConfig{URL: h.URL, Token: h.Token})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Probe(context.Background())
		var de *syncq.DeliveryError
		if !errors.As(err, &de) || de.Kind != syncq.KindLink || !strings.Contains(err.Error(), "upstream.ca_file") {
			t.Fatalf("probe of an untrusted server: %v", err)
		}
	})

	t.Run("ErrConfig", func(t *testing.T) {
		// Ensure a missing URL turns delivery off and a bad CA file is named.
		if _, err := syncq.NewClientFromConfig(edge.UpstreamConfig{}); !errors.Is(err, syncq.ErrNoUpstream) {
			t.Fatalf("no URL: %v, want ErrNoUpstream", err)
		}
		bad := filepath.Join(t.TempDir(), "ca.pem")
		os.WriteFile(bad, []byte("not PEM"), 0o600)
		if _, err := syncq.NewClientFromConfig(edge.UpstreamConfig{URL: h.URL, CAFile: bad}); err == nil || !strings.Contains(err.Error(), "ca_file") {
			t.Fatalf("bad CA file: %v", err)
		}
	})
}

// countingBatchMapper builds documents a request at a time and counts the calls.
type countingBatchMapper struct {
	calls, items, single atomic.Int64
}

func (m *countingBatchMapper) Document(ctx context.Context, it edge.OutboxItem) (string, []byte, error) {
	m.single.Add(1)
	return synctest.Mapper().Document(ctx, it)
}

func (m *countingBatchMapper) Documents(ctx context.Context, its []edge.OutboxItem) []syncq.Mapped {
	m.calls.Add(1)
	m.items.Add(int64(len(its)))
	out := make([]syncq.Mapped, len(its))
	for i, it := range its {
		out[i].BundleID, out[i].Body = synctest.Document(it)
	}
	return out
}

func TestEngine_BatchMapper(t *testing.T) {
	for _, batch := range []int{syncq.DefaultBatchSize, 1} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			// Ensure a mapper that builds documents at once is asked once per
			// request, or, one document per request, once per worker's share
			// of a pass; never one by one.
			s := edgetest.MustOpenStore(t)
			docs := MustSeed(t, s, 30, 30)
			h := MustOpenHub(t)
			p := MustProxy(t, h.URL, synctest.Faults{}, 4) // to count the requests
			e := NewTestEngine(t, s, p.URL, h.Token)
			e.BatchSize = batch
			m := &countingBatchMapper{}
			e.Mapper = m
			if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
				t.Fatal(err)
			}
			MustVerifyExactlyOnce(t, s.Path, h.Store)
			if m.single.Load() != 0 || m.items.Load() != int64(docs) || m.calls.Load() > int64(docs/2) {
				t.Fatalf("Documents called %d times for %d rows (%d documents), Document %d times", m.calls.Load(), m.items.Load(), docs, m.single.Load())
			}
			// The probe, then one request per document, or far fewer.
			if _, requests := p.Counts(); (batch == 1) != (requests == docs+1) || requests > docs+1 {
				t.Fatalf("%d requests for %d documents, %d per request", requests, docs, batch)
			}
		})
	}
}
