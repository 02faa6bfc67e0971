package webui

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults for the sign-in limiter.
const (
	DefaultLoginWindow    = 15 * time.Minute
	DefaultUserFailures   = 5  // wrong passwords for one username
	DefaultClientFailures = 20 // wrong passwords from one tablet, any usernames
)

// Limiter refuses sign-in and unlock attempts after too many failures in a
// window, per username and per client address, so a PIN or password cannot
// be guessed by trying. It lives in memory: a restart forgives, which is
// acceptable for a LAN where the attacker must be in the building.
type Limiter struct {
	Window         time.Duration
	UserFailures   int
	ClientFailures int

	mu    sync.Mutex
	fails map[string][]time.Time
}

// NewLimiter returns a limiter with the default limits.
func NewLimiter() *Limiter {
	return &Limiter{Window: DefaultLoginWindow, UserFailures: DefaultUserFailures,
		ClientFailures: DefaultClientFailures, fails: map[string][]time.Time{}}
}

func (l *Limiter) recent(key string, now time.Time) []time.Time {
	ts := l.fails[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.Window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = ts
	}
	return ts
}

// Allow reports whether an attempt for user from client may be checked now,
// and if not, how long until it may.
func (l *Limiter) Allow(now time.Time, user, client string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range []struct {
		key string
		max int
	}{{"u:" + strings.ToLower(user), l.UserFailures}, {"c:" + client, l.ClientFailures}} {
		ts := l.recent(k.key, now)
		if len(ts) >= k.max {
			wait = max(wait, l.Window-now.Sub(ts[len(ts)-k.max]))
		}
	}
	return wait == 0, wait
}

// Fail counts a failed attempt.
func (l *Limiter) Fail(now time.Time, user, client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > 10000 { // forget the oldest when flooded with names
		for k := range l.fails {
			l.recent(k, now)
		}
	}
	for _, k := range []string{"u:" + strings.ToLower(user), "c:" + client} {
		l.fails[k] = append(l.fails[k], now)
	}
}

// Succeed forgets the user's failures (not the client's).
func (l *Limiter) Succeed(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, "u:"+strings.ToLower(user))
}

// clientAddr is the tablet's address; the node serves the LAN directly,
// with no proxy whose headers could be trusted.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
