package syncq

import (
	"fmt"
	"strings"
	"time"
)

// Windows are the times of day a metered link may be used. The zero value
// allows any time.
type Windows struct {
	spans []span
	// Location is the time zone the windows are in; nil is time.Local.
	Location *time.Location
}

// span is [from, to) in minutes after midnight; to < from wraps midnight.
type span struct{ from, to int }

// ParseWindows reads "22:00-06:00,13:00-14:00". An empty string allows any time.
func ParseWindows(s string) (Windows, error) {
	var w Windows
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, ok := strings.Cut(part, "-")
		from, err1 := minutesOf(a)
		to, err2 := minutesOf(b)
		if !ok || err1 != nil || err2 != nil || from == to {
			return Windows{}, fmt.Errorf("%q is not a time window like 22:00-06:00", part)
		}
		w.spans = append(w.spans, span{from, to})
	}
	return w, nil
}

func minutesOf(s string) (int, error) {
	var h, m int
	if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d:%d", &h, &m); err != nil || h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return h*60 + m, nil
}

// IsZero reports whether the windows allow any time.
func (w Windows) IsZero() bool { return len(w.spans) == 0 }

// Open reports whether t is inside a window, and if not, when the next one opens.
func (w Windows) Open(t time.Time) (bool, time.Time) {
	if len(w.spans) == 0 {
		return true, time.Time{}
	}
	loc := w.Location
	if loc == nil {
		loc = time.Local
	}
	t = t.In(loc)
	mins := t.Hour()*60 + t.Minute()
	var next time.Time
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	for _, s := range w.spans {
		inside := (s.from < s.to && mins >= s.from && mins < s.to) || (s.from > s.to && (mins >= s.from || mins < s.to))
		if inside {
			return true, time.Time{}
		}
		open := midnight.Add(time.Duration(s.from) * time.Minute)
		if !open.After(t) {
			open = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc).Add(time.Duration(s.from) * time.Minute)
		}
		if next.IsZero() || open.Before(next) {
			next = open
		}
	}
	return false, next
}

// startOfDay is local midnight before t, where the daily byte budget restarts.
func startOfDay(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.Local
	}
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}
