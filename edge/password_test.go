package edge_test

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

// Ensure a burst of sign-ins (a shift starting: tablets signing in at once)
// never holds more than two argon2 buffers of 64 MiB: without the bound,
// eight at once would ask a Pi for half a gigabyte.
func TestPassword_BurstOfSignInsIsBoundedInMemory(t *testing.T) {
	hash, err := edge.HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	// Collect garbage at once, so the heap holds what is in use.
	defer debug.SetGCPercent(debug.SetGCPercent(1))
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()

	const signIns = 8
	var wg sync.WaitGroup
	done := make(chan struct{})
	results := make(chan bool, signIns)
	for i := range signIns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := "correct horse battery"
			if i%2 == 1 {
				pw = "wrong horse battery"
			}
			results <- edge.CheckPassword(hash, pw)
		}()
	}
	go func() { wg.Wait(); close(done) }()
	var peak uint64
	for watching := true; watching; {
		select {
		case <-done:
			watching = false
		default:
		}
		metrics.Read(sample)
		peak = max(peak, sample[0].Value.Uint64())
	}
	close(results)
	ok := 0
	for r := range results {
		if r {
			ok++
		}
	}
	if ok != signIns/2 {
		t.Fatalf("%d of %d sign-ins matched, want %d", ok, signIns, signIns/2)
	}
	const buffer = 64 << 20
	// Two buffers in use and one just released; eight would be 512 MiB.
	if grew := peak - min(peak, base); grew > 3*buffer+buffer/2 {
		t.Fatalf("heap grew by %d MiB during %d sign-ins at once, want at most 2 argon2 buffers in use (128 MiB)", grew>>20, signIns)
	}
}
