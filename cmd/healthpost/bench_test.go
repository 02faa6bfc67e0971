package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
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
