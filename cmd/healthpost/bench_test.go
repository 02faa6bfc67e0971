package main_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/webui/tablets"
)

// Settings of BenchmarkTablets; the reported figure is a 60 s run:
//
//	go test ./cmd/healthpost -run '^$' -bench Tablets -benchtime 1x -tablets.duration 60s
var (
	benchTablets  = flag.Int("tablets.count", 50, "BenchmarkTablets: tablets at once")
	benchDuration = flag.Duration("tablets.duration", 10*time.Second, "BenchmarkTablets: how long the load runs")
	benchThink    = flag.Duration("tablets.think", 0, "BenchmarkTablets: mean pause after each page (0: closed loop)")
)

// BenchmarkServeIdle measures `healthpost serve` on a database the size of a
// busy PHC after some years: 100,000 patients and 1,000,000 observations.
// It reports the time from exec to listening (target under 1 s) and the
// resident memory once idle (target under 40 MB).
//
//	go test ./cmd/healthpost -run '^$' -bench ServeIdle -benchtime 1x
func BenchmarkServeIdle(b *testing.B) {
	n := newNode(b)
	edgetest.LargePopulation.MustCopy(b, filepath.Join(n.dataDir, edge.DBFileName))

	var startup time.Duration
	var rssKB int64
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		srv := n.serve()
		startup += time.Since(t0)
		b.Logf("start-up %v", time.Since(t0).Round(time.Millisecond))
		// Idle: let start-up work (first storage check, GC) settle before reading RSS.
		time.Sleep(3 * time.Second)
		rssKB += vmRSS(b, srv.cmd.Process.Pid)
		srv.cmd.Process.Kill()
		<-srv.exited
	}
	b.ReportMetric(float64(startup.Milliseconds())/float64(b.N), "startup-ms")
	b.ReportMetric(float64(rssKB)/1024/float64(b.N), "idle-rss-MB")
}

func vmRSS(tb testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// benchNode is a node serving a population, with a health worker's and an
// admin's account for the tablets.
type benchNode struct {
	*node
	srv                   *server
	workerPass, adminPass string
}

func startBenchNode(tb testing.TB, pop edgetest.Population, workerRole string) *benchNode {
	tb.Helper()
	n := newNode(tb)
	pop.MustCopy(tb, filepath.Join(n.dataDir, edge.DBFileName))
	bn := &benchNode{node: n, workerPass: "tablet-pass-1", adminPass: "admin-pass-1"}
	for _, u := range []struct{ name, role, pass string }{{"bench.asha", workerRole, bn.workerPass}, {"bench.admin", "admin", bn.adminPass}} {
		if r := n.run(u.pass+"\n", "user", "add", u.name, "--role", u.role, "--password-stdin"); r.code != 0 {
			tb.Fatalf("user add %s: %s", u.name, r.stderr)
		}
	}
	bn.srv = n.serve()
	return bn
}

// tablets runs `healthpost bench tablets --json` against the node.
func (bn *benchNode) tablets(tb testing.TB, args ...string) (*tablets.Report, result) {
	tb.Helper()
	args = append([]string{"bench", "tablets", "--url", bn.srv.url, "--user", "bench.asha", "--password-stdin",
		"--admin-user", "bench.admin", "--admin-password", bn.adminPass, "--json"}, args...)
	r := bn.run(bn.workerPass+"\n", args...)
	var rep tablets.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		return nil, r
	}
	return &rep, r
}

func TestBenchTablets(t *testing.T) {
	bn := startBenchNode(t, edgetest.Population{Patients: 300, Observations: 2000}, "health-worker")
	// A fixed amount of work with seeded choices: the same requests every
	// run, however fast the machine.
	rep, r := bn.tablets(t, "--tablets", "4", "--visits", "5", "--duration", "5m")
	if r.code != 0 || rep == nil {
		t.Fatalf("bench tablets: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var text strings.Builder
	rep.WriteText(&text)
	t.Logf("\n%s", text.String())

	// Ensure every step of a visit was taken, and none failed.
	if rep.Failed != 0 || len(rep.Failures) != 0 {
		t.Errorf("%d failed: %v", rep.Failed, rep.Failures)
	}
	for _, kind := range []string{tablets.KindSearch, tablets.KindPatient, tablets.KindVisitForm, tablets.KindSaveDraft,
		tablets.KindDraft, tablets.KindFinalize, tablets.KindVisit, tablets.KindPrint} {
		k, ok := rep.Kind(kind)
		if !ok || k.Requests == 0 || k.Failed != 0 || k.P99ms <= 0 || k.PerSec <= 0 || k.Wire <= k.Bytes {
			t.Errorf("load %s: %+v", kind, k)
		}
		if posted := kind == tablets.KindSaveDraft || kind == tablets.KindFinalize; posted != (k.Bytes == 0) {
			t.Errorf("load %s sent %d bytes of body; want pages only for GETs, a bare redirect after a POST", kind, k.Bytes)
		}
	}
	for _, kind := range []string{tablets.KindLoginPage, tablets.KindSignIn, tablets.KindHome, tablets.KindStatic, tablets.KindAdmin} {
		if k, ok := rep.Kind(kind); !ok || k.Requests == 0 {
			t.Errorf("sign-in %s: %+v", kind, k)
		}
	}
	if k, _ := rep.Kind(tablets.KindSignIn); k.Requests != 5 {
		t.Errorf("%d sign-ins, want 4 tablets and 1 admin", k.Requests)
	}
	// Pages are compressed: what is sent is smaller than the page.
	if k, _ := rep.Kind(tablets.KindPatient); k.Bytes*2 > k.Raw {
		t.Errorf("patient page sent %d bytes for %d: not compressed", k.Bytes, k.Raw)
	}
	// Ensure searches of every kind find people (the tablets' names are the population's).
	for _, kind := range []string{"name", "misspelled", "devanagari", "phone", "abha"} {
		if c := rep.Searches[kind]; c.Searches == 0 || c.Found == 0 {
			t.Errorf("%s searches: %+v", kind, c)
		}
	}

	// Ensure the visits the report counts are in the store, whole: final,
	// by the tablets' user, with vitals, a diagnosis, a prescription and
	// their outbox rows.
	bn.srv.stop(t)
	db := edgetest.MustRawDB(t, filepath.Join(bn.dataDir, edge.DBFileName))
	byBench := `FROM encounters e JOIN users u ON u.id = e.practitioner_id WHERE u.username = 'bench.asha'`
	if rep.Visits != 20 || rep.DraftsFirst == 0 || rep.DraftsFirst == rep.Visits {
		t.Errorf("visits %d, drafts first %d", rep.Visits, rep.DraftsFirst)
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{`SELECT count(*) ` + byBench + ` AND e.status = 'final'`, rep.Visits},
		{`SELECT count(*) ` + byBench + ` AND e.status != 'final'`, 0},
		{`SELECT count(*) ` + byBench + ` AND (SELECT count(*) FROM observations o WHERE o.encounter_id = e.id) < 4`, 0},
		{`SELECT count(*) ` + byBench + ` AND NOT EXISTS (SELECT 1 FROM diagnoses d WHERE d.encounter_id = e.id)`, 0},
		{`SELECT count(*) ` + byBench + ` AND NOT EXISTS (SELECT 1 FROM prescriptions p WHERE p.encounter_id = e.id)`, 0},
		{`SELECT count(*) ` + byBench + ` AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.entity_id = e.id)`, 0},
	} {
		if got := edgetest.MustCount(t, db, c.query); got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
}

func TestBenchTablets_Fails(t *testing.T) {
	bn := startBenchNode(t, edgetest.Population{Patients: 300, Observations: 2000}, "technician")

	// Ensure a role that may not search makes every search fail, counted and
	// described, and the command exit 1.
	rep, r := bn.tablets(t, "--tablets", "2", "--duration", "1s")
	if r.code != 1 || rep == nil || !strings.Contains(r.stderr, "requests failed") {
		t.Fatalf("bench tablets as a technician: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if k, _ := rep.Kind(tablets.KindSearch); k.Requests == 0 || k.Failed != k.Requests || rep.Visits != 0 {
		t.Errorf("searches %+v, visits %d", k, rep.Visits)
	}
	if len(rep.Failures) == 0 || !strings.Contains(rep.Failures[0], "403") || strings.Contains(strings.Join(rep.Failures, " "), "q=") {
		t.Errorf("failures %q: want 403s, without the query", rep.Failures)
	}

	// Ensure a wrong password stops the run before the load, naming the user.
	r = bn.run("wrong-pass\n", "bench", "tablets", "--url", bn.srv.url, "--user", "bench.asha", "--password-stdin", "--duration", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "sign in as bench.asha") || !strings.Contains(r.stderr, "401") {
		t.Fatalf("bench tablets with a wrong password: exit %d %q", r.code, r.stderr)
	}
	// And missing flags name the fix.
	r = bn.run("", "bench", "tablets", "--url", bn.srv.url)
	if r.code != 2 || !strings.Contains(r.stderr, "--user required") || !strings.Contains(r.stderr, "Try: healthpost bench tablets") {
		t.Fatalf("bench tablets without --user: exit %d %q", r.code, r.stderr)
	}
}

// BenchmarkTablets runs 50 tablets (-tablets.count) against `healthpost
// serve` holding 100,000 patients and 1,000,000 observations, for 10 s
// (-tablets.duration; 60 s for the reported figure), each in a closed loop
// of searching, opening patients and recording OPD visits. It reports
// requests/s and latency (target p99 under 100 ms overall, under 50 ms for
// search) and the bytes each main page sends (target under 60 KB). It also
// reports write transactions (each an fsync) and audit entries per request,
// figures that a busy machine does not change.
//
//	go test ./cmd/healthpost -run '^$' -bench Tablets -benchtime 1x -tablets.duration 60s
func BenchmarkTablets(b *testing.B) {
	bn := startBenchNode(b, edgetest.LargePopulation, "health-worker")
	db := edgetest.MustRawDB(b, filepath.Join(bn.dataDir, edge.DBFileName))
	audits0 := edgetest.MustCount(b, db, `SELECT count(*) FROM audit_log`)
	requests := 0
	b.ResetTimer()
	for range b.N {
		rep, r := bn.tablets(b, "--tablets", strconv.Itoa(*benchTablets), "--duration", benchDuration.String(),
			"--think", benchThink.String())
		if rep == nil {
			b.Fatalf("bench tablets: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		// The whole table, which b.Log would cut to ten lines.
		rep.WriteText(os.Stdout)
		b.ReportMetric(rep.PerSec, "req/s")
		b.ReportMetric(rep.P50ms, "p50-ms")
		b.ReportMetric(rep.P99ms, "p99-ms")
		b.ReportMetric(float64(rep.Failed), "failed")
		for _, kind := range []string{tablets.KindSearch, tablets.KindPatient, tablets.KindSaveDraft, tablets.KindFinalize} {
			if k, ok := rep.Kind(kind); ok {
				b.ReportMetric(k.P99ms, kind+"-p99-ms")
			}
		}
		if k, ok := rep.Kind(tablets.KindSearch); ok {
			b.ReportMetric(k.P50ms, "search-p50-ms")
		}
		requests += rep.Requests
		for _, k := range rep.SignIn {
			requests += k.Requests
		}
		for _, kind := range []string{tablets.KindLoginPage, tablets.KindHome, tablets.KindSearch, tablets.KindPatient,
			tablets.KindVisitForm, tablets.KindPrint, tablets.KindInbox, tablets.KindAdmin} {
			if k, ok := rep.Kind(kind); ok {
				b.ReportMetric(float64(k.MaxBytes)/1024, kind+"-KB")
			}
		}
	}
	b.StopTimer()
	// The node logs its count of write transactions as it stops.
	if code := bn.srv.stop(b); code != 0 {
		b.Fatalf("serve exit %d\n%s", code, bn.srv.stderr)
	}
	m := regexp.MustCompile(`write_transactions=(\d+)`).FindStringSubmatch(bn.srv.stderr.String())
	if m == nil {
		b.Fatalf("no write_transactions in the log of serve:\n%s", bn.srv.stderr)
	}
	txs, _ := strconv.Atoi(m[1])
	audits := edgetest.MustCount(b, db, `SELECT count(*) FROM audit_log`) - audits0
	b.ReportMetric(float64(txs)/float64(requests), "write-tx/req")
	b.ReportMetric(float64(audits)/float64(requests), "audit/req")
}
