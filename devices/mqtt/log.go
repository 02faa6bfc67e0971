package mqtt

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// brokerLogHandler is the handler given to mochi. mochi logs whole packets
// ("pk", "packet", "will" attributes) on some errors, and a reading's payload
// is PHI, so every attribute that could hold a packet is dropped. mochi's
// own lines are operational detail: errors are logged as warnings and its
// information lines at debug level; the lines an operator reads are our
// hooks' own. mochi's debug lines are dropped before slog builds them: they
// are per packet (one for every publish the pipeline takes over from mochi
// by refusing it), so even a debug log would drown in them. The lines mochi
// writes when our OnPublish hook refuses a packet are dropped at any level:
// the hook has logged the reason, once per interval.
type brokerLogHandler struct {
	h slog.Handler
}

// redacted lists the attribute keys mochi uses for packets and payloads.
var redacted = map[string]bool{"pk": true, "packet": true, "will": true, "payload": true, "pkx": true}

// dropped lists mochi's messages that repeat what our hooks log.
var dropped = map[string]bool{"publish packet error": true, "publish packet rejected": true}

func demote(l slog.Level) slog.Level {
	if l >= slog.LevelError {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

func (b brokerLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo && b.h.Enabled(ctx, demote(l))
}

func (b brokerLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo || dropped[r.Message] {
		return nil
	}
	out := slog.NewRecord(r.Time, demote(r.Level), r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if !redacted[a.Key] {
			out.AddAttrs(a)
		}
		return true
	})
	return b.h.Handle(ctx, out)
}

func (b brokerLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	kept := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		if !redacted[a.Key] {
			kept = append(kept, a)
		}
	}
	return brokerLogHandler{b.h.WithAttrs(kept)}
}

func (b brokerLogHandler) WithGroup(name string) slog.Handler {
	return brokerLogHandler{b.h.WithGroup(name)}
}

// limiter logs a repeating problem once per interval with a count of the
// times it was suppressed, keyed by device and kind of problem.
type limiter struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[string]limitState
}

type limitState struct {
	at         time.Time
	suppressed int
}

// allow reports whether the problem under key may be logged now, and how
// many times it was suppressed since it was last logged.
func (l *limiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]limitState{}
	}
	st, seen := l.last[key]
	if seen && now.Sub(st.at) < l.interval {
		st.suppressed++
		l.last[key] = st
		return false, 0
	}
	if len(l.last) > 4096 { // a flood of names must not grow this without bound
		clear(l.last)
	}
	l.last[key] = limitState{at: now}
	return true, st.suppressed
}

// log writes msg at level unless the same key was logged within the
// interval; a line after a quiet spell says how many were left out.
func (l *limiter) log(logger *slog.Logger, level slog.Level, key, msg string, args ...any) {
	ok, n := l.allow(key, time.Now())
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "repeats_not_logged", n)
	}
	logger.Log(context.Background(), level, msg, args...)
}
