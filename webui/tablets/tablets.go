// Package tablets plays a health centre's tablets against a node's web UI,
// to measure how the node holds up under a busy OPD: each simulated tablet
// signs in with its own session and then, with no pause unless asked,
// searches for patients (by name, misspelled, in Devanagari, by phone or
// ABHA number), opens their page and records OPD visits with vitals, a
// diagnosis and a prescription, over real HTTP as a browser does (cookies,
// CSRF tokens read from the forms, gzip, redirects). It reports requests
// per second, latency percentiles, failures and bytes on the wire per kind
// of page.
//
// It only ever talks HTTP to the node it is given and never reads the
// node's files. It writes made-up visits into whatever patients it finds, so
// it must never be pointed at a centre's live node; and its reports never
// hold what was typed or shown (names, numbers), only kinds, counts, IDs
// and paths without their queries.
package tablets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of a fleet.
const (
	DefaultTablets  = 50
	DefaultDuration = 60 * time.Second
	DefaultTimeout  = 30 * time.Second
	// signInAtOnce bounds the tablets signing in together: each sign-in
	// hashes a password with argon2id (64 MiB), and a centre's tablets sign
	// in over the morning, not in one instant.
	signInAtOnce = 2
)

// Fleet is a set of tablets and what they do. Set the fields, then Run.
type Fleet struct {
	// URL is the node's web UI, e.g. http://192.168.1.10:8080.
	URL string
	// Username and Password sign every tablet in; the account must be a
	// health worker's or a doctor's.
	Username, Password string
	// AdminUsername and AdminPassword, when set, sign one more tablet in as
	// an admin before the load, to weigh the admin page.
	AdminUsername, AdminPassword string

	Tablets  int
	Duration time.Duration
	// Think is the mean pause after each page, as a person reads and types;
	// zero runs a closed loop, each tablet asking again as soon as answered.
	Think time.Duration
	// Visits, when set, stops each tablet once it has finalized that many
	// visits (or Duration is up): a fixed amount of work, the same choices
	// for the same Seed.
	Visits int
	// Timeout bounds each request.
	Timeout time.Duration
	// Seed makes the run's choices repeatable.
	Seed uint64
	// Progress, when set, gets a line every ten seconds.
	Progress io.Writer
}

// New returns a fleet of DefaultTablets tablets for DefaultDuration.
func New(nodeURL, username, password string) *Fleet {
	return &Fleet{URL: nodeURL, Username: username, Password: password, Tablets: DefaultTablets,
		Duration: DefaultDuration, Timeout: DefaultTimeout, Seed: 1}
}

// Run signs the tablets in, runs the load for Duration and reports. It
// returns an error when the fleet cannot start (a bad URL, a tablet that
// cannot sign in); failures during the load are counted in the report.
func (f *Fleet) Run(ctx context.Context) (*Report, error) {
	base, err := url.Parse(strings.TrimRight(f.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("node URL %q: want http://host:port", f.URL)
	}
	if f.Tablets < 1 || f.Duration <= 0 || f.Timeout <= 0 || f.Think < 0 || f.Visits < 0 {
		return nil, errors.New("tablets and duration must be positive, think time and visits not negative")
	}
	if f.Username == "" || f.Password == "" {
		return nil, errors.New("a username and password to sign the tablets in with are required")
	}

	// Sign in, a few at a time; this is not part of the measured load.
	setup := newStats()
	tabs := make([]*tablet, f.Tablets)
	for i := range tabs {
		tabs[i] = newTablet(f, base, i, rand.New(rand.NewPCG(f.Seed, uint64(i))))
	}
	signIn := func(t *tablet, user, password string) error {
		if err := t.signIn(ctx, user, password); err != nil {
			return fmt.Errorf("tablet %d: sign in as %s: %w", t.id+1, user, err)
		}
		return nil
	}
	if f.AdminUsername != "" {
		admin := newTablet(f, base, f.Tablets, rand.New(rand.NewPCG(f.Seed, uint64(f.Tablets))))
		admin.rec = setup
		if err := signIn(admin, f.AdminUsername, f.AdminPassword); err != nil {
			return nil, err
		}
		if err := admin.weighAdmin(ctx); err != nil {
			return nil, err
		}
	}
	sem := make(chan struct{}, signInAtOnce)
	errs := make([]error, len(tabs))
	var wg sync.WaitGroup
	for i, t := range tabs {
		t.rec = newStats()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = signIn(t, f.Username, f.Password)
		}()
	}
	wg.Wait()
	for _, t := range tabs {
		setup.merge(t.rec)
	}
	for _, err := range errs {
		if err != nil { // the first says it; the others mostly repeat it
			return nil, err
		}
	}

	// The load: every tablet runs visits until the time is up.
	load := newStats()
	start := time.Now()
	deadline := start.Add(f.Duration)
	for _, t := range tabs {
		t.rec = newStats()
		t.deadline = deadline
		wg.Add(1)
		go func() {
			defer wg.Done()
			// With think time, health workers start at different moments,
			// not all in the same millisecond.
			if f.Think > 0 {
				t.wait(ctx, time.Duration(t.rng.Float64()*float64(f.Think)))
			}
			for ctx.Err() == nil && time.Now().Before(deadline) && (f.Visits == 0 || t.visits < f.Visits) {
				t.episode(ctx)
			}
		}()
	}
	stopProgress := f.progress(start, tabs)
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)
	for _, t := range tabs {
		load.merge(t.rec)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return newReport(f, setup, load, elapsed), nil
}

// progress prints the requests done so far every ten seconds.
func (f *Fleet) progress(start time.Time, tabs []*tablet) (stop func()) {
	if f.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				n, failed := 0, 0
				for _, t := range tabs {
					a, b := t.rec.counts()
					n, failed = n+a, failed+b
				}
				fmt.Fprintf(f.Progress, "%3.0f s: %d requests, %d failed\n", time.Since(start).Seconds(), n, failed)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
