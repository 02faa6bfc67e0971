package astm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// readDeadliner is what a connection needs for the link to time out reads
// without a goroutine: net.Conn, *os.File on a pipe or tty, net.Pipe.
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// writeDeadliner bounds writes the same way.
type writeDeadliner interface {
	SetWriteDeadline(t time.Time) error
}

// errReadTimeout is the link's internal timeout; callers turn it into
// ErrTimeout with context.
var errReadTimeout = errors.New("read timeout")

// maxEmptyReads is how many (0, nil) reads in a row the link tolerates on a
// connection with deadlines before it reports io.ErrNoProgress.
const maxEmptyReads = 100

// link is one connection as the protocol sees it: a byte reader with
// per-read timeouts and one byte of push-back, and a writer. A Receiver and
// a Sender that take turns on one line share a link so that no byte read by
// one is lost to the other.
//
// Timeouts use read deadlines when the connection has them. Otherwise one
// goroutine reads the connection and hands chunks over a channel; it runs
// until the connection returns an error or the link is closed.
type link struct {
	rw  io.ReadWriter
	rd  readDeadliner  // nil: use the reader goroutine
	wd  writeDeadliner // nil: writes are not bounded
	buf []byte
	r   int // next unread byte in buf
	w   int // end of valid bytes in buf
	err error

	start  sync.Once
	chunks chan chunk
	quit   chan struct{}
	closed sync.Once
}

type chunk struct {
	data []byte
	err  error
}

func newLink(rw io.ReadWriter) *link {
	l := &link{rw: rw, buf: make([]byte, 4096), quit: make(chan struct{})}
	l.rd, _ = rw.(readDeadliner)
	l.wd, _ = rw.(writeDeadliner)
	return l
}

// close stops the reader goroutine, if any, once its current Read returns.
func (l *link) close() {
	l.closed.Do(func() { close(l.quit) })
}

// watch makes reads and writes blocked on the connection return when ctx is
// done. The returned function stops watching.
func (l *link) watch(ctx context.Context) (stop func() bool) {
	rd, wd := l.rd, l.wd
	if rd == nil && wd == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, func() {
		past := time.Unix(1, 0)
		if rd != nil {
			_ = rd.SetReadDeadline(past)
		}
		if wd != nil {
			_ = wd.SetWriteDeadline(past)
		}
	})
}

// readByte returns the next byte, waiting at most timeout for it (0 waits
// until ctx is done). It returns errReadTimeout, ctx.Err() or the
// connection's error.
func (l *link) readByte(ctx context.Context, timeout time.Duration) (byte, error) {
	if l.r == l.w {
		if err := l.fill(ctx, timeout); err != nil {
			return 0, err
		}
	}
	c := l.buf[l.r]
	l.r++
	return c, nil
}

// unread pushes back the byte readByte just returned.
func (l *link) unread() {
	if l.r > 0 {
		l.r--
	}
}

func (l *link) fill(ctx context.Context, timeout time.Duration) error {
	if l.err != nil {
		return l.err
	}
	if l.rd == nil {
		return l.fillFromReader(ctx, timeout)
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for range maxEmptyReads {
		if err := l.rd.SetReadDeadline(deadline); err != nil {
			if errors.Is(err, os.ErrNoDeadline) {
				// An *os.File that cannot poll (some ttys): read it from
				// a goroutine instead.
				l.rd, l.wd = nil, nil
				return l.fillFromReader(ctx, timeout)
			}
			return fmt.Errorf("set read deadline: %w", err)
		}
		// Checked after setting the deadline: watch's AfterFunc runs after
		// ctx is done, so either it sees our deadline and overrides it, or
		// we see ctx done here.
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := l.rw.Read(l.buf)
		if n > 0 {
			l.r, l.w = 0, n
			if err != nil && !isTimeout(err) {
				l.err = err // deliver the bytes first, the error next time
			}
			return nil
		}
		if err != nil {
			if isTimeout(err) {
				if cerr := ctx.Err(); cerr != nil {
					return cerr
				}
				return errReadTimeout
			}
			l.err = err
			return err
		}
	}
	l.err = io.ErrNoProgress
	return l.err
}

func (l *link) fillFromReader(ctx context.Context, timeout time.Duration) error {
	l.start.Do(func() {
		l.chunks = make(chan chunk)
		go l.readLoop()
	})
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case c := <-l.chunks:
		if c.err != nil {
			l.err = c.err
			return c.err
		}
		l.buf = c.data
		l.r, l.w = 0, len(c.data)
		return nil
	case <-expired:
		return errReadTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readLoop reads the connection for a link without read deadlines. A read
// that returns (0, nil), as go.bug.st/serial does when its own read timeout
// expires, is simply repeated.
func (l *link) readLoop() {
	for {
		buf := make([]byte, 4096)
		n, err := l.rw.Read(buf)
		if n > 0 {
			select {
			case l.chunks <- chunk{data: buf[:n]}:
			case <-l.quit:
				return
			}
		}
		if err != nil {
			select {
			case l.chunks <- chunk{err: err}:
			case <-l.quit:
			}
			return
		}
	}
}

// write writes p, bounded by timeout when the connection has write
// deadlines.
func (l *link) write(ctx context.Context, p []byte, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.wd != nil && timeout > 0 {
		if err := l.wd.SetWriteDeadline(time.Now().Add(timeout)); errors.Is(err, os.ErrNoDeadline) {
			l.wd = nil
		} else if err != nil {
			return fmt.Errorf("set write deadline: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	_, err := l.rw.Write(p)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && isTimeout(err) {
			return cerr
		}
		return err
	}
	return nil
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
