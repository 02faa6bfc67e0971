package tablets

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReport_Figures(t *testing.T) {
	setup, load := newStats(), newStats()
	setup.add(KindSignIn, sample{latency: 800 * time.Millisecond, wire: 700}, "")
	// 100 searches of 1..100 ms from two tablets, merged, one of them failed.
	var wg sync.WaitGroup
	for tab := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newStats()
			for i := 1 + tab; i <= 100; i += 2 {
				s.add(KindSearch, sample{latency: time.Duration(i) * time.Millisecond, body: 1000, raw: 4000, wire: 1300}, "")
			}
			if tab == 1 {
				s.markLastFailed(KindSearch, "search /patients: no results list")
			}
			s.searched(searchName, true)
			s.saved(tab == 0)
			load.merge(s)
		}()
	}
	wg.Wait()
	r := newReport(&Fleet{URL: "http://n", Tablets: 2}, setup, load, 10*time.Second)

	// Ensure the figures are nearest-rank percentiles over the load only,
	// with the sign-in apart and failures counted once with their reason.
	k, ok := r.Kind(KindSearch)
	if !ok || k.Requests != 100 || k.Failed != 1 || k.P50ms != 50 || k.P95ms != 95 || k.P99ms != 99 || k.MaxMS != 100 ||
		k.PerSec != 10 || k.Bytes != 1000 || k.Raw != 4000 || k.Wire != 1300 {
		t.Fatalf("search %+v", k)
	}
	if r.Requests != 100 || r.Failed != 1 || r.PerSec != 10 || r.P99ms != 99 || len(r.Failures) != 1 {
		t.Fatalf("report %+v", r)
	}
	if s, _ := r.Kind(KindSignIn); s.Requests != 1 || s.P50ms != 800 || len(r.SignIn) != 1 {
		t.Fatalf("sign-in %+v", s)
	}
	if r.Visits != 2 || r.DraftsFirst != 1 || r.Searches[searchName] != (SearchCount{Searches: 2, Found: 2, P50ms: 99, P99ms: 100}) {
		t.Fatalf("visits %d drafts %d searches %v", r.Visits, r.DraftsFirst, r.Searches)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"100 requests, 10.0/s, 1 failed", "search", "sign_in", "name           2/2", "no results list"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
}
