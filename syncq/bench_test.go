package syncq_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/hub"
)

// hubProcessEnv makes TestHelperHubProcess serve a hub instead of testing.
const hubProcessEnv = "HPTEST_HUB_PROCESS"

// TestHelperHubProcess is not a test: run with HPTEST_HUB_PROCESS=DIR it
// serves a hub from DIR on loopback, prints "hub URL TOKEN" and runs until
// killed, so benchmarks measure the node's memory without the hub's.
func TestHelperHubProcess(t *testing.T) {
	dir := os.Getenv(hubProcessEnv)
	if dir == "" {
		return
	}
	st := hub.NewStore(filepath.Join(dir, "hub.db"))
	if err := st.Open(context.Background()); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	tok, err := st.AddNode(context.Background(), "node-bench")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	srv := hub.NewServer(st)
	srv.Addr = "127.0.0.1:0"
	if err := srv.Open(context.Background()); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("hub %s %s\n", srv.URL(), tok)
	select {}
}

// MustStartHubProcess runs a hub in a child process and returns its URL and
// a node token.
func MustStartHubProcess(tb testing.TB) (url, token string) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHubProcess$")
	cmd.Env = append(os.Environ(), hubProcessEnv+"="+tb.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "hub" {
			return f[1], f[2]
		}
	}
	tb.Fatal("hub process did not start")
	return "", ""
}

// rssKB reads a field (VmRSS, VmHWM) of /proc/self/status, in kB.
func rssKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkDrain measures how fast a backlog of 10,000 encounters (about
// 15,000 documents) drains to a hub in another process on loopback, with no
// faults, how many bytes each encounter costs on the wire (gzip, headers
// included), and the node's resident memory while draining. Run it once:
//
//	go test ./syncq -run '^$' -bench Drain -benchtime 1x
func BenchmarkDrain(b *testing.B) {
	for _, batch := range []int{20, 1} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			encounters := 10000
			url, token := MustStartHubProcess(b)
			for range b.N {
				b.StopTimer()
				path := filepath.Join(b.TempDir(), edge.DBFileName)
				s := edgetest.MustOpenStoreAt(b, path)
				docs := MustSeed(b, s, 1000, encounters)
				e := NewTestEngine(b, s, url, token)
				e.BatchSize = batch
				e.Client.Timeout = time.Minute
				rssBefore := rssKB("VmRSS")
				var peak int64
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() { // a sampler, not a synchronisation
					t := time.NewTicker(20 * time.Millisecond)
					defer t.Stop()
					for {
						peak = max(peak, rssKB("VmRSS"))
						select {
						case <-stop:
							return
						case <-t.C:
						}
					}
				})
				b.StartTimer()
				start := time.Now()
				st, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true})
				elapsed := time.Since(start)
				b.StopTimer()
				close(stop)
				wg.Wait()
				if err != nil {
					b.Fatal(err)
				}
				if st.Run.Delivered != int64(docs) {
					b.Fatalf("delivered %d of %d", st.Run.Delivered, docs)
				}
				wire := e.Client.BytesOut() + e.Client.BytesIn()
				b.ReportMetric(float64(docs)/elapsed.Seconds(), "docs/s")
				b.ReportMetric(float64(encounters)/elapsed.Seconds(), "encounters/s")
				b.ReportMetric(float64(wire)/float64(encounters), "wire-B/encounter")
				b.ReportMetric(float64(e.Client.BytesOut())/float64(docs), "sent-B/doc")
				b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
				b.ReportMetric(float64(peak-rssBefore)/1024, "RSS-growth-MiB")
				s.Close(context.Background())
			}
		})
	}
}
