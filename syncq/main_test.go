package syncq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/fhir"
	"github.com/healthpost/healthpost/syncq/hub"
	"github.com/healthpost/healthpost/syncq/synctest"
)

// longRun reports whether the full figures were asked for:
// HEALTHPOST_SYNC_LONG=1 delivers a backlog of 10,000 encounters through
// faults and through twenty kills, instead of 400.
func longRun() bool { return os.Getenv("HEALTHPOST_SYNC_LONG") == "1" }

// MustSeed registers patients and gives them final encounters, round
// robin: every encounter becomes an OPConsultRecord, every third also a
// WellnessRecord (vitals) and every fifth a PrescriptionRecord, so each
// patient has a run of documents whose order matters.
func MustSeed(tb testing.TB, s *edge.Store, patients, encounters int) (docs int) {
	tb.Helper()
	ids := make([]string, patients)
	for i := range ids {
		p := &edge.Patient{Name: "Patient " + strconv.Itoa(i), Gender: "F", BirthDate: "1990-04-12", Village: "Rampur"}
		if err := s.CreatePatient(edgetest.Clerk(), p); err != nil {
			tb.Fatalf("create patient: %v", err)
		}
		ids[i] = p.ID
	}
	for i := range encounters {
		e := &edge.Encounter{PatientID: ids[i%patients], Type: edge.EncounterOPD, Status: edge.EncounterFinal, Complaint: "fever"}
		docs++
		if i%3 == 0 {
			e.Observations = []edge.Observation{{LOINC: "8310-5", Value: 38.2, Unit: "Cel"}}
			docs++
		}
		if i%5 == 0 {
			e.Prescriptions = []edge.Prescription{{Drug: "Paracetamol", Strength: "500 mg"}}
			docs++
		}
		if err := s.CreateEncounter(edgetest.Clerk(), e); err != nil {
			tb.Fatalf("create encounter: %v", err)
		}
	}
	return docs
}

// testHub is a hub on loopback with one node's token.
type testHub struct {
	Store  *hub.Store
	Server *hub.Server
	URL    string
	Token  string
}

// MustOpenHub starts a hub on 127.0.0.1:0 with a token for node-test.
func MustOpenHub(tb testing.TB) *testHub {
	tb.Helper()
	st := hub.NewStore(filepath.Join(tb.TempDir(), "hub.db"))
	if err := st.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tok, err := st.AddNode(context.Background(), "node-test")
	if err != nil {
		tb.Fatal(err)
	}
	srv := hub.NewServer(st)
	srv.Addr = "127.0.0.1:0"
	if err := srv.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		srv.Close(context.Background())
		st.Close()
	})
	return &testHub{Store: st, Server: srv, URL: srv.URL(), Token: tok}
}

// MustProxy puts a fault-injecting proxy in front of url.
func MustProxy(tb testing.TB, url string, f synctest.Faults, seed uint64) *synctest.Proxy {
	tb.Helper()
	p, err := synctest.NewProxy(url, f, seed)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// NewTestEngine returns an engine on s delivering to url with the minimal
// mapper, a clock that never sleeps, and no polling.
func NewTestEngine(tb testing.TB, s *edge.Store, url, token string) *syncq.Engine {
	tb.Helper()
	c, err := syncq.NewClient(url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	c.Token = token
	c.Timeout = 20 * time.Second
	e := syncq.NewEngine(s, c, synctest.Mapper())
	e.Clock = synctest.NewAutoClock()
	e.PollInterval = 0
	return e
}

// NewABDMEngine is NewTestEngine with the node's real mapper,
// syncq.FHIRMapper, for the facility of synctest.Backlog.
func NewABDMEngine(tb testing.TB, s *edge.Store, url, token string) *syncq.Engine {
	tb.Helper()
	e := NewTestEngine(tb, s, url, token)
	m, err := syncq.NewFHIRMapper(s, synctest.BacklogFacility)
	if err != nil {
		tb.Fatal(err)
	}
	e.Mapper = m
	return e
}

// MustWaitDrained waits, on the engine's change notifications, until no
// outbox row is pending, or fails the test at ctx's deadline.
func MustWaitDrained(tb testing.TB, ctx context.Context, e *syncq.Engine, s *edge.Store) {
	tb.Helper()
	for {
		ch := e.Changed()
		if _, err := s.NextOutboxDue(ctx); errors.Is(err, edge.ErrNotFound) {
			return
		} else if err != nil {
			tb.Fatal(err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			st := e.Status()
			tb.Fatalf("outbox not drained: %v (engine %s, last error %q)", ctx.Err(), st.State, st.LastError)
		}
	}
}

// documentIdentity is the Bundle id and the Bundle identifier's value a
// mapper gives the document of an outbox row, the same for every version.
type documentIdentity func(it edge.OutboxItem) (bundleID, identifier string)

// toyIdentity is synctest.Mapper's.
func toyIdentity(it edge.OutboxItem) (string, string) {
	return synctest.BundleID(it), synctest.DocumentIdentity(it)
}

// abdmIdentity is syncq.FHIRMapper's.
func abdmIdentity(it edge.OutboxItem) (string, string) {
	id, ident, err := fhir.DocumentIdentity(it)
	if err != nil {
		return "", ""
	}
	return id, ident.Value
}

// MustVerifyExactlyOnce checks, from the node's database file and the hub's
// arrival log, that every outbox row was delivered, that every version of
// every document arrived at the hub exactly once, that each patient's
// documents arrived in the order they were written, and that each receipt
// names what the hub stored. It returns the number of documents. The
// documents are synctest.Mapper's.
func MustVerifyExactlyOnce(tb testing.TB, nodeDB string, h *hub.Store) int {
	tb.Helper()
	return mustVerify(tb, nodeDB, h, true, toyIdentity).rows
}

// MustVerifyExactlyOnceAnyOrder is MustVerifyExactlyOnce without the order
// check, for tests where an administrator retried a quarantined document
// after its patient's later ones went.
func MustVerifyExactlyOnceAnyOrder(tb testing.TB, nodeDB string, h *hub.Store) int {
	tb.Helper()
	return mustVerify(tb, nodeDB, h, false, toyIdentity).rows
}

// MustVerifyABDMExactlyOnce is MustVerifyExactlyOnce for documents built by
// syncq.FHIRMapper. Besides, it reads back from the hub every version of
// each document that has several, and one in every schemaSample others,
// and checks each is a valid FHIR R4 Bundle (the official JSON schema)
// with the Bundle.timestamp of the version the node wrote.
func MustVerifyABDMExactlyOnce(tb testing.TB, nodeDB string, h *hub.Store) int {
	tb.Helper()
	const schemaSample = 25
	v := mustVerify(tb, nodeDB, h, true, abdmIdentity)
	checked := 0
	for i, a := range v.arrivals {
		r := v.rowOf[i]
		if len(v.byDocument[a.IdentifierValue]) == 1 && i%schemaSample != 0 {
			continue
		}
		st, err := h.Read(context.Background(), a.BundleID, a.Version)
		if err != nil {
			tb.Fatal(err)
		}
		var b struct {
			Timestamp string `json:"timestamp"`
		}
		if err := json.Unmarshal(st.Body, &b); err != nil {
			tb.Fatal(err)
		}
		if at, err := time.Parse(time.RFC3339Nano, b.Timestamp); err != nil || !at.Equal(r.item.CreatedAt) {
			tb.Fatalf("hub's Bundle/%s version %d has timestamp %s, want outbox %d's %s", a.BundleID, a.Version,
				b.Timestamp, r.item.ID, r.item.CreatedAt.Format(time.RFC3339Nano))
		}
		MustPassFHIRSchema(tb, fmt.Sprintf("Bundle/%s version %d", a.BundleID, a.Version), st.Body)
		checked++
	}
	tb.Logf("%d documents delivered exactly once and in order; %d read back and checked against the FHIR R4 schema", v.rows, checked)
	return v.rows
}

// verifiedRow is one outbox row as mustVerify read it.
type verifiedRow struct {
	item    edge.OutboxItem
	remote  string
	version string
}

// verified is what mustVerify found.
type verified struct {
	rows       int
	arrivals   []hub.Arrival
	rowOf      []*verifiedRow            // the row each arrival delivered
	byDocument map[string][]*verifiedRow // the rows of each document, by identifier value, in commit order
}

// mustVerify matches the hub's arrivals to the node's outbox rows: the
// k-th arrival of a document is the k-th row written for it, and its hub
// version is k.
func mustVerify(tb testing.TB, nodeDB string, h *hub.Store, order bool, identity documentIdentity) verified {
	tb.Helper()
	raw := edgetest.MustRawDB(tb, nodeDB)
	rows, err := raw.Query(`SELECT id, key, document, entity, entity_id, entity_version, coalesce(patient_id, ''), state,
		remote_id, remote_version, created_at FROM outbox ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	v := verified{byDocument: map[string][]*verifiedRow{}}
	for rows.Next() {
		r := &verifiedRow{}
		it := &r.item
		var created int64
		if err := rows.Scan(&it.ID, &it.Key, &it.Document, &it.Entity, &it.EntityID, &it.EntityVersion, &it.PatientID,
			&it.State, &r.remote, &r.version, &created); err != nil {
			tb.Fatal(err)
		}
		it.CreatedAt = time.UnixMilli(created)
		if it.State != edge.OutboxDelivered {
			tb.Fatalf("outbox %d is %s, want delivered", it.ID, it.State)
		}
		bundleID, ident := identity(*it)
		if got, want := r.remote, "Bundle/"+bundleID; got != want || bundleID == "" {
			tb.Fatalf("outbox %d receipt remote_id=%q, want %q", it.ID, got, want)
		}
		v.byDocument[ident] = append(v.byDocument[ident], r)
		v.rows++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if v.arrivals, err = h.Arrivals(context.Background(), 0, 0); err != nil {
		tb.Fatal(err)
	}
	next := map[string]int{}
	lastOfPatient := map[string]int64{}
	for _, a := range v.arrivals {
		rs := v.byDocument[a.IdentifierValue]
		k := next[a.IdentifierValue]
		if k >= len(rs) {
			tb.Fatalf("hub stored %s %d times, the node wrote %d versions of it", a.IdentifierValue, k+1, len(rs))
		}
		next[a.IdentifierValue]++
		r := rs[k]
		if a.Version != k+1 {
			tb.Fatalf("hub stored outbox %d as version %d of %s, want %d", r.item.ID, a.Version, a.IdentifierValue, k+1)
		}
		if got, want := r.version, strconv.Itoa(a.Version); got != want {
			tb.Fatalf("outbox %d receipt version=%s, hub stored version %s", r.item.ID, got, want)
		}
		if p := r.item.PatientID; p != "" && order {
			if r.item.ID < lastOfPatient[p] {
				tb.Fatalf("patient %s: outbox %d arrived after outbox %d, out of order", p, r.item.ID, lastOfPatient[p])
			}
			lastOfPatient[p] = r.item.ID
		}
		v.rowOf = append(v.rowOf, r)
	}
	for ident, rs := range v.byDocument {
		if next[ident] != len(rs) {
			tb.Fatalf("hub holds %d versions of %s, the node delivered %d", next[ident], ident, len(rs))
		}
	}
	return v
}
