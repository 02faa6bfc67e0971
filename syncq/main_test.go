package syncq_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/hub"
	"github.com/healthpost/healthpost/syncq/synctest"
)

// longRun reports whether the full figures were asked for:
// HEALTHPOST_SYNC_LONG=1 runs 10,000 encounters and 20 kills instead of
// 2,000 and 4.
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

// docKey is one version of one document.
type docKey struct {
	identity string
	version  int
}

// MustVerifyExactlyOnce checks, from the node's database file and the hub's
// arrival log, that every outbox row was delivered, that every version of
// every document arrived at the hub exactly once, that each patient's
// documents arrived in the order they were written, and that each receipt
// names what the hub stored. It returns the number of documents.
func MustVerifyExactlyOnce(tb testing.TB, nodeDB string, h *hub.Store) int {
	tb.Helper()
	return mustVerify(tb, nodeDB, h, true)
}

// MustVerifyExactlyOnceAnyOrder is MustVerifyExactlyOnce without the order
// check, for tests where an administrator retried a quarantined document
// after its patient's later ones went.
func MustVerifyExactlyOnceAnyOrder(tb testing.TB, nodeDB string, h *hub.Store) int {
	tb.Helper()
	return mustVerify(tb, nodeDB, h, false)
}

func mustVerify(tb testing.TB, nodeDB string, h *hub.Store, order bool) int {
	tb.Helper()
	raw := edgetest.MustRawDB(tb, nodeDB)
	rows, err := raw.Query(`SELECT id, key, document, entity, entity_id, entity_version, coalesce(patient_id, ''), state,
		remote_id, remote_version FROM outbox ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	type row struct {
		item    edge.OutboxItem
		state   string
		remote  string
		version string
	}
	byKey := map[docKey]row{}
	var n int
	for rows.Next() {
		var r row
		it := &r.item
		if err := rows.Scan(&it.ID, &it.Key, &it.Document, &it.Entity, &it.EntityID, &it.EntityVersion, &it.PatientID,
			&r.state, &r.remote, &r.version); err != nil {
			tb.Fatal(err)
		}
		if r.state != edge.OutboxDelivered {
			tb.Fatalf("outbox %d is %s, want delivered", it.ID, r.state)
		}
		if got, want := r.remote, "Bundle/"+synctest.BundleID(*it); got != want {
			tb.Fatalf("outbox %d receipt remote_id=%q, want %q", it.ID, got, want)
		}
		byKey[docKey{synctest.DocumentIdentity(*it), it.EntityVersion}] = r
		n++
	}
	rows.Close()
	arrivals, err := h.Arrivals(context.Background(), 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	seen := map[docKey]int{}
	lastOfPatient := map[string]int64{}
	for _, a := range arrivals {
		k := docKey{a.IdentifierValue, a.Version}
		r, ok := byKey[k]
		if !ok {
			tb.Fatalf("hub stored %s version %d, which the node never sent", a.IdentifierValue, a.Version)
		}
		if seen[k]++; seen[k] > 1 {
			tb.Fatalf("hub stored %s version %d twice", a.IdentifierValue, a.Version)
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
	}
	if got, want := len(seen), len(byKey); got != want {
		tb.Fatalf("hub holds %d documents, the node delivered %d", got, want)
	}
	return n
}
