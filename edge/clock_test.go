package edge_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// fakeClock is a wall clock the test sets.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func openWithClock(t *testing.T, path string, clock *fakeClock) *edge.Store {
	t.Helper()
	s := edgetest.NewTestStore(path)
	s.Now = clock.Now
	s.BuildTime = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestClock_BeforeBuildTimeIsFlagged(t *testing.T) {
	// A Pi after a power cut, booted with its clock in 1970.
	clock := &fakeClock{t: time.Unix(3600, 0)}
	s := openWithClock(t, filepath.Join(t.TempDir(), edge.DBFileName), clock)
	c := s.Clock()
	if !c.Suspect || !errors.Is(c.Reason, edge.ErrClockBehindBuild) {
		t.Fatalf("Clock=%+v, want suspect, behind build time", c)
	}
	p := MustCreatePatient(t, s, "Sunita Devi")
	if !p.ClockSuspect {
		t.Fatal("a record written with a 1970 clock is not flagged")
	}
	// Ensure that once the clock is set, new records are trusted again.
	clock.Set(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))
	p2 := MustCreatePatient(t, s, "Meena Kumari")
	if p2.ClockSuspect {
		t.Fatal("a record written with a correct clock is flagged")
	}
	if s.Clock().Suspect {
		t.Fatal("clock still suspect after it was set right")
	}
}

func TestClock_JumpBackSinceLastRunIsFlagged(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	day := time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: day}
	s := openWithClock(t, path, clock)
	first := MustCreatePatient(t, s, "First")
	s.Close(context.Background())

	// The node restarts with its clock 3 hours behind what it last saw.
	clock.Set(day.Add(-3 * time.Hour))
	s2 := openWithClock(t, path, clock)
	c := s2.Clock()
	if !c.Suspect || !errors.Is(c.Reason, edge.ErrClockWentBack) {
		t.Fatalf("Clock=%+v, want suspect, went back", c)
	}
	if !c.HighWater.Equal(day) {
		t.Fatalf("HighWater=%v, want %v (remembered across the restart)", c.HighWater, day)
	}
	back := MustCreatePatient(t, s2, "Second")
	if !back.ClockSuspect {
		t.Fatal("record written after the clock went back is not flagged")
	}

	// A small step back (NTP slew) is tolerated.
	clock.Set(day.Add(time.Minute))
	MustCreatePatient(t, s2, "Third")
	clock.Set(day.Add(30 * time.Second))
	if small := MustCreatePatient(t, s2, "Fourth"); small.ClockSuspect {
		t.Fatal("a 30 s step back was flagged")
	}

	// Ensure the monotonic sequence orders records even though wall time went back.
	raw := edgetest.MustRawDB(t, path)
	var seqFirst, seqBack int64
	raw.QueryRow(`SELECT node_seq FROM patients WHERE id = ?`, first.ID).Scan(&seqFirst)
	raw.QueryRow(`SELECT node_seq FROM patients WHERE id = ?`, back.ID).Scan(&seqBack)
	if seqBack <= seqFirst {
		t.Fatalf("node_seq %d after %d: the sequence went back with the clock", seqBack, seqFirst)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM patients WHERE clock_suspect = 1`); g != 1 {
		t.Fatalf("flagged patients=%d, want 1", g)
	}
}
