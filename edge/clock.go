package edge

import (
	"runtime/debug"
	"sync"
	"time"
)

// Version and build time are set by the build:
//
//	go build -ldflags "-X github.com/healthpost/healthpost/edge.version=1.2.0 -X github.com/healthpost/healthpost/edge.buildTime=2026-11-22T00:00:00Z"
//
// Without them the VCS time recorded by the Go toolchain is used, and failing
// that the floor below, so the clock check always has a lower bound.
var (
	version   = "dev"
	buildTime = ""
)

// buildTimeFloor is a date this source code certainly postdates.
var buildTimeFloor = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// Version is the healthpost version string.
func Version() string { return version }

var buildTimeOnce = sync.OnceValue(func() time.Time {
	if t, err := time.Parse(time.RFC3339, buildTime); err == nil {
		return t
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil && t.After(buildTimeFloor) {
					return t
				}
			}
		}
	}
	return buildTimeFloor
})

// BuildTime is when this binary was built (or a safe lower bound of it).
func BuildTime() time.Time { return buildTimeOnce() }

// ClockStatus is the node's verdict on its own wall clock. A Raspberry Pi has
// no battery-backed clock: after a power cut it may boot in 1970 or at the
// last saved time, until NTP (often absent) or a person corrects it.
type ClockStatus struct {
	Now       time.Time `json:"now"`
	BuildTime time.Time `json:"build_time"`
	// HighWater is the latest trusted time the node has seen, kept across restarts.
	HighWater time.Time `json:"high_water"`
	Suspect   bool      `json:"suspect"`
	// Reason is ErrClockBehindBuild or ErrClockWentBack when Suspect.
	Reason error `json:"-"`
	// SuspectSince is when the clock was first judged wrong (by the wrong clock).
	SuspectSince time.Time `json:"suspect_since,omitzero"`
}

// Message is a plain sentence for operators.
func (c ClockStatus) Message() string {
	switch {
	case !c.Suspect:
		return "clock looks right"
	case c.Reason == ErrClockBehindBuild:
		return "the clock reads " + c.Now.UTC().Format(time.DateTime) + " UTC, earlier than this program was built (" +
			c.BuildTime.UTC().Format(time.DateOnly) + "); records saved now are flagged. Set the time (an admin can do it from a tablet) or connect the node to the internet for NTP"
	default:
		return "the clock reads " + c.Now.UTC().Format(time.DateTime) + " UTC, earlier than a time already seen (" +
			c.HighWater.UTC().Format(time.DateTime) + " UTC); records saved now are flagged. Check the time and set it"
	}
}

// judgeClock decides whether now can be trusted. Callers hold writeMu or are
// opening the store.
func (s *Store) judgeClock(now time.Time) (bool, error) {
	if now.Before(s.BuildTime) {
		return true, ErrClockBehindBuild
	}
	if !s.highWater.IsZero() && now.Before(s.highWater.Add(-s.ClockTolerance)) {
		return true, ErrClockWentBack
	}
	return false, nil
}

// noteClock records the verdict for ClockStatus and logs changes of verdict
// once, not on every write.
func (s *Store) noteClock(now time.Time, suspect bool, reason error) {
	if !suspect && now.After(s.highWater) {
		s.highWater = now
	}
	prev := s.clock
	s.clock = ClockStatus{Now: now, BuildTime: s.BuildTime, HighWater: s.highWater, Suspect: suspect, Reason: reason}
	switch {
	case suspect && !prev.Suspect:
		s.clock.SuspectSince = now
		s.Logger.Warn("wall clock is wrong; new records are flagged", "reason", reason.Error(),
			"clock", now.UTC().Format(time.RFC3339), "high_water", s.highWater.UTC().Format(time.RFC3339))
	case suspect:
		s.clock.SuspectSince = prev.SuspectSince
	case prev.Suspect:
		s.Logger.Info("wall clock is trusted again", "clock", now.UTC().Format(time.RFC3339))
	}
}

// Clock returns the current verdict on the wall clock, judged now.
func (s *Store) Clock() ClockStatus {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.Now()
	suspect, reason := s.judgeClock(now)
	s.noteClock(now, suspect, reason)
	return s.clock
}
