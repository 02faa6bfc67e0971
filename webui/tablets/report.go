package tablets

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"text/tabwriter"
	"time"
)

// Kinds of request: each page or form a tablet asks for.
const (
	KindLoginPage = "login"      // GET /login
	KindSignIn    = "sign_in"    // POST /login
	KindHome      = "home"       // GET /
	KindStatic    = "static"     // stylesheet, script, icon (once per tablet: then cached)
	KindSearch    = "search"     // GET /patients?q=
	KindPatient   = "patient"    // GET /patients/{id}
	KindVisitForm = "visit_form" // GET /patients/{id}/encounters/new
	KindSaveDraft = "save_draft" // POST the new visit as a draft
	KindDraft     = "draft"      // GET /encounters/{id}, a draft's form
	KindFinalize  = "finalize"   // POST the visit, final
	KindVisit     = "visit"      // GET /encounters/{id}, the final visit
	KindPrint     = "print"      // GET /encounters/{id}/print, the prescription slip
	KindInbox     = "inbox"      // GET /inbox
	KindAdmin     = "admin"      // GET /admin
)

// kindOrder is the order of the report's tables.
var kindOrder = []string{KindLoginPage, KindSignIn, KindHome, KindStatic, KindSearch, KindPatient, KindVisitForm,
	KindSaveDraft, KindDraft, KindFinalize, KindVisit, KindPrint, KindInbox, KindAdmin}

// maxReasons is how many failures are described; the rest are counted.
const maxReasons = 5

// sample is one answered request.
type sample struct {
	latency time.Duration
	body    int64 // as sent: compressed when the node compressed it
	raw     int64 // decompressed
	wire    int64 // read from the connection: status line, headers, framing and body
	failed  bool
}

// stats collects one tablet's samples (or, merged, the fleet's).
type stats struct {
	mu       sync.Mutex
	samples  map[string][]sample
	reasons  []string
	searches map[string]*searchStats // per kind of query
	visits   int                     // finalized
	drafts   int                     // saved as drafts first
}

func newStats() *stats {
	return &stats{samples: map[string][]sample{}, searches: map[string]*searchStats{}}
}

func (s *stats) add(kind string, sm sample, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples[kind] = append(s.samples[kind], sm)
	if sm.failed && len(s.reasons) < maxReasons {
		s.reasons = append(s.reasons, reason)
	}
}

// markLastFailed turns the kind's last sample into a failure: it was
// answered, but not with what the tablet needed to go on.
func (s *stats) markLastFailed(kind, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.samples[kind]
	if len(ss) == 0 || ss[len(ss)-1].failed {
		return
	}
	ss[len(ss)-1].failed = true
	if len(s.reasons) < maxReasons {
		s.reasons = append(s.reasons, reason)
	}
}

// searchStats are the searches of one kind of query.
type searchStats struct {
	found   int
	latency []time.Duration
}

// searched counts the search just recorded under KindSearch as one of the
// kind of query, and whether it found someone.
func (s *stats) searched(kind string, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.samples[KindSearch]
	if len(ss) == 0 {
		return
	}
	c := s.searches[kind]
	if c == nil {
		c = &searchStats{}
		s.searches[kind] = c
	}
	c.latency = append(c.latency, ss[len(ss)-1].latency)
	if found {
		c.found++
	}
}

func (s *stats) saved(draftFirst bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.visits++
	if draftFirst {
		s.drafts++
	}
}

// counts is the requests so far and how many failed.
func (s *stats) counts() (n, failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.samples {
		for _, sm := range ss {
			n++
			if sm.failed {
				failed++
			}
		}
	}
	return n, failed
}

func (s *stats) merge(o *stats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ss := range o.samples {
		s.samples[k] = append(s.samples[k], ss...)
	}
	for _, r := range o.reasons {
		if len(s.reasons) < maxReasons {
			s.reasons = append(s.reasons, r)
		}
	}
	for k, c := range o.searches {
		have := s.searches[k]
		if have == nil {
			have = &searchStats{}
			s.searches[k] = have
		}
		have.found += c.found
		have.latency = append(have.latency, c.latency...)
	}
	s.visits += o.visits
	s.drafts += o.drafts
}

// Report is what a run measured. Latencies are in milliseconds, from
// sending the request to having read the whole answer; bytes are per
// request, on average.
type Report struct {
	URL      string  `json:"url"`
	Tablets  int     `json:"tablets"`
	ThinkMS  float64 `json:"think_ms"`
	Seconds  float64 `json:"seconds"`
	Requests int     `json:"requests"`
	Failed   int     `json:"failed"`
	PerSec   float64 `json:"requests_per_second"`
	P50ms    float64 `json:"p50_ms"`
	P95ms    float64 `json:"p95_ms"`
	P99ms    float64 `json:"p99_ms"`
	// Kinds are the requests of the load, per kind of page.
	Kinds []KindReport `json:"kinds"`
	// SignIn are the requests before the load: sign-in, the first page and
	// its assets, and the admin page when an admin signed in too.
	SignIn []KindReport `json:"sign_in"`
	// Searches counts searches per kind of query and how many found someone.
	Searches map[string]SearchCount `json:"searches"`
	// Visits were finalized; DraftsFirst of them were saved as drafts first.
	Visits      int `json:"visits"`
	DraftsFirst int `json:"drafts_first"`
	// Failures describes the first few failed requests.
	Failures []string `json:"failures,omitempty"`
}

// KindReport is one kind of request's figures.
type KindReport struct {
	Kind     string  `json:"kind"`
	Requests int     `json:"requests"`
	Failed   int     `json:"failed"`
	PerSec   float64 `json:"per_second,omitempty"`
	P50ms    float64 `json:"p50_ms"`
	P95ms    float64 `json:"p95_ms"`
	P99ms    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
	Bytes    int64   `json:"bytes"`     // body as sent (compressed), average
	MaxBytes int64   `json:"max_bytes"` // body as sent, largest
	Raw      int64   `json:"raw_bytes"` // body decompressed, average
	Wire     int64   `json:"wire_bytes"`
}

// SearchCount is how many searches of a kind of query there were, how many
// found at least one patient, and how long they took.
type SearchCount struct {
	Searches int     `json:"searches"`
	Found    int     `json:"found"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

func newReport(f *Fleet, setup, load *stats, elapsed time.Duration) *Report {
	r := &Report{URL: f.URL, Tablets: f.Tablets, ThinkMS: ms(f.Think), Seconds: elapsed.Seconds(),
		Searches: map[string]SearchCount{}, Visits: load.visits, DraftsFirst: load.drafts}
	var all []time.Duration
	for _, k := range kindOrder {
		if ss := load.samples[k]; len(ss) > 0 {
			kr := kindReport(k, ss, elapsed)
			r.Kinds = append(r.Kinds, kr)
			r.Requests += kr.Requests
			r.Failed += kr.Failed
			for _, sm := range ss {
				all = append(all, sm.latency)
			}
		}
		if ss := setup.samples[k]; len(ss) > 0 {
			kr := kindReport(k, ss, 0)
			r.SignIn = append(r.SignIn, kr)
			r.Failed += kr.Failed
		}
	}
	r.PerSec = float64(r.Requests) / elapsed.Seconds()
	slices.Sort(all)
	r.P50ms, r.P95ms, r.P99ms = ms(percentile(all, 50)), ms(percentile(all, 95)), ms(percentile(all, 99))
	for k, c := range load.searches {
		slices.Sort(c.latency)
		r.Searches[k] = SearchCount{Searches: len(c.latency), Found: c.found, P50ms: ms(percentile(c.latency, 50)),
			P99ms: ms(percentile(c.latency, 99))}
	}
	r.Failures = append(append(r.Failures, setup.reasons...), load.reasons...)
	return r
}

func kindReport(kind string, ss []sample, elapsed time.Duration) KindReport {
	kr := KindReport{Kind: kind, Requests: len(ss)}
	lat := make([]time.Duration, 0, len(ss))
	var body, raw, wire int64
	for _, sm := range ss {
		lat = append(lat, sm.latency)
		body, raw, wire = body+sm.body, raw+sm.raw, wire+sm.wire
		kr.MaxBytes = max(kr.MaxBytes, sm.body)
		if sm.failed {
			kr.Failed++
		}
	}
	slices.Sort(lat)
	kr.P50ms, kr.P95ms, kr.P99ms, kr.MaxMS = ms(percentile(lat, 50)), ms(percentile(lat, 95)), ms(percentile(lat, 99)), ms(lat[len(lat)-1])
	n := int64(len(ss))
	kr.Bytes, kr.Raw, kr.Wire = body/n, raw/n, wire/n
	if elapsed > 0 {
		kr.PerSec = float64(len(ss)) / elapsed.Seconds()
	}
	return kr
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Kind returns the figures of one kind of request of the load, or of the
// sign-in when the load had none of it.
func (r *Report) Kind(kind string) (KindReport, bool) {
	for _, ks := range [][]KindReport{r.Kinds, r.SignIn} {
		for _, k := range ks {
			if k.Kind == kind {
				return k, true
			}
		}
	}
	return KindReport{}, false
}

// WriteText prints the report as tables for a person.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%d tablets against %s for %.1f s, think time %.0f ms\n", r.Tablets, r.URL, r.Seconds, r.ThinkMS)
	fmt.Fprintf(w, "%d requests, %.1f/s, %d failed; p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n",
		r.Requests, r.PerSec, r.Failed, r.P50ms, r.P95ms, r.P99ms)
	fmt.Fprintf(w, "%d visits finalized (%d saved as drafts first)\n\n", r.Visits, r.DraftsFirst)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	table := func(title string, ks []KindReport, rate bool) {
		fmt.Fprintf(tw, "%s\trequests\tfailed\t/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tKB sent\tKB max\tKB raw\tKB wire\t\n", title)
		for _, k := range ks {
			perSec := "-"
			if rate {
				perSec = fmt.Sprintf("%.1f", k.PerSec)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", k.Kind, k.Requests, k.Failed,
				perSec, k.P50ms, k.P95ms, k.P99ms, k.MaxMS, kb(k.Bytes), kb(k.MaxBytes), kb(k.Raw), kb(k.Wire))
		}
		fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t\t\t\t")
	}
	table("load", r.Kinds, true)
	table("sign-in", r.SignIn, false)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "searches by query: found someone / searched, p50 and p99 ms")
	for _, k := range []string{searchName, searchMisspelled, searchDevanagari, searchPhone, searchABHA} {
		if c, ok := r.Searches[k]; ok {
			fmt.Fprintf(w, "  %-10s %5d/%-5d %7.1f %7.1f\n", k, c.Found, c.Searches, c.P50ms, c.P99ms)
		}
	}
	if len(r.Failures) > 0 {
		fmt.Fprintln(w, "\nfirst failures:")
		for _, f := range r.Failures {
			fmt.Fprintln(w, "  "+f)
		}
	}
	return nil
}

func kb(n int64) float64 { return float64(n) / 1024 }
