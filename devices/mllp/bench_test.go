package mllp_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/devices/mllp"
)

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMLLP sends b.N BP messages (2 readings each) from conns monitors on
// loopback, each waiting for its AA after commit, and reports messages/s,
// the ACK latency and the commits per second.
func benchMLLP(b *testing.B, conns int) {
	s, _ := MustOpenStore(b)
	for i := range conns {
		MustCreateDevice(b, s, fmt.Sprintf("Monitor %d", i), devices.Settings{Listen: "127.0.0.1:0"})
	}
	srv, _ := MustOpenServer(b, s, nil)
	clients := make([]*mllp.Client, conns)
	for i := range clients {
		clients[i] = mllp.NewClient(MustDial(b, srv, fmt.Sprintf("Monitor %d", i)))
	}
	lat := make([][]time.Duration, conns)
	b.ResetTimer()
	start, cpu0, commits0 := time.Now(), cpuTime(b), s.IngestStats().Batches
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < b.N; j += conns {
				t0 := time.Now()
				rep, err := c.Send(context.Background(), oru(fmt.Sprintf("M%d-%07d", i, j), "", 100+j%60, 70))
				if err != nil || rep.Code != hl7.AckAccept {
					b.Errorf("%v %v", rep.Code, err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	wall, cpu, commits := time.Since(start), cpuTime(b)-cpu0, s.IngestStats().Batches-commits0
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/wall.Seconds(), "msgs/s")
	b.ReportMetric(float64(2*b.N)/wall.Seconds(), "readings/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(commits)/wall.Seconds(), "commits/s")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
}

// BenchmarkServer_ACKAfterCommit: messages per second over MLLP on loopback
// with the ACK written only after the readings committed, from one monitor
// and from eight at once (whose messages share commits).
func BenchmarkServer_ACKAfterCommit(b *testing.B) {
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("monitors=%d", conns), func(b *testing.B) { benchMLLP(b, conns) })
	}
}
