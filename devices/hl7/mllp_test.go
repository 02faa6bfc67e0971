package hl7_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/healthpost/healthpost/devices/hl7"
)

// frame wraps msg in MLLP framing bytes.
func frame(msg []byte) []byte {
	return append(append([]byte{0x0b}, msg...), 0x1c, 0x0d)
}

// MustListen listens on a loopback port, closed when the test ends.
func MustListen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// MustDial connects to ln, closed when the test ends.
func MustDial(tb testing.TB, ln net.Listener) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// readResult is one ReadFrame outcome.
type readResult struct {
	frame []byte
	err   error
}

// serveFrames accepts one connection on ln and reads frames from it until the
// stream ends, sending every outcome on the returned channel and then the
// reader's skip count on the second.
func serveFrames(tb testing.TB, ln net.Listener, maxFrame int, wrap func(io.Reader) io.Reader) (<-chan readResult, <-chan int64) {
	tb.Helper()
	results, skipped := make(chan readResult, 16), make(chan int64, 1)
	go func() {
		defer close(results)
		conn, err := ln.Accept()
		if err != nil {
			results <- readResult{err: err}
			return
		}
		defer conn.Close()
		r := hl7.NewReader(wrap(conn))
		if maxFrame > 0 {
			r.MaxFrameSize = maxFrame
		}
		for {
			f, err := r.ReadFrame()
			results <- readResult{f, err}
			if err != nil && !errors.Is(err, hl7.ErrFrameTooLarge) {
				skipped <- r.Skipped()
				return
			}
		}
	}()
	return results, skipped
}

// writeChunks writes data to conn in pieces of n bytes, then closes it.
func writeChunks(tb testing.TB, conn net.Conn, data []byte, n int) {
	tb.Helper()
	for len(data) > 0 {
		k := min(n, len(data))
		if _, err := conn.Write(data[:k]); err != nil {
			tb.Fatal(err)
		}
		data = data[k:]
	}
	if err := conn.Close(); err != nil {
		tb.Fatal(err)
	}
}

func collect(results <-chan readResult) []readResult {
	var all []readResult
	for r := range results {
		all = append(all, r)
	}
	return all
}

func TestReader_TCP(t *testing.T) {
	msgs := [][]byte{MustReadCase(t, "pcd01_monitor"), MustReadCase(t, "lab_v231_cbc"), MustReadCase(t, "lf_endings")}
	junk := []string{"noise before\r\n", "\r\n\x00junk\x1c", "", "trailing\x1c\r"}
	var stream []byte
	for i, m := range msgs {
		stream = append(stream, junk[i]...)
		stream = append(stream, frame(m)...)
	}
	stream = append(stream, junk[3]...)
	wantSkipped := int64(len(strings.Join(junk, "")))

	for _, wrap := range []struct {
		name string
		fn   func(io.Reader) io.Reader
	}{
		{"Conn", func(r io.Reader) io.Reader { return r }},
		{"OneByteReads", iotest.OneByteReader},
		{"HalfReads", iotest.HalfReader},
	} {
		for _, chunk := range []int{1, 7, 64, len(stream)} {
			// Ensure frames come out whole and in order however TCP splits
			// them, with the junk between them skipped and counted.
			t.Run(wrap.name+"/chunk"+strconv.Itoa(chunk), func(t *testing.T) {
				ln := MustListen(t)
				results, skipped := serveFrames(t, ln, 0, wrap.fn)
				writeChunks(t, MustDial(t, ln), stream, chunk)
				all := collect(results)
				if got, want := len(all), len(msgs)+1; got != want {
					t.Fatalf("got %d results %v, want %d", got, all, want)
				}
				for i, m := range msgs {
					if all[i].err != nil {
						t.Fatalf("frame %d: %v", i, all[i].err)
					}
					if !bytes.Equal(all[i].frame, m) {
						t.Fatalf("frame %d=%q, want %q", i, all[i].frame, m)
					}
				}
				if got, want := all[len(msgs)].err, io.EOF; got != want {
					t.Fatalf("last err=%v, want %v", got, want)
				}
				if got, want := <-skipped, wantSkipped; got != want {
					t.Fatalf("Skipped=%d, want %d", got, want)
				}
			})
		}
	}
}

func TestReader_TCP_Oversized(t *testing.T) {
	small := []byte("MSH|^~\\&|OK||||20260314||ORU^R01|S-1|P|2.5\r")

	// Ensure a frame over the cap is an error, and the next frame still
	// comes through.
	t.Run("SmallCap", func(t *testing.T) {
		big := bytes.Repeat([]byte("A"), 1000)
		ln := MustListen(t)
		results, skipped := serveFrames(t, ln, 64, iotest.HalfReader)
		writeChunks(t, MustDial(t, ln), append(frame(big), frame(small)...), 100)
		all := collect(results)
		if got, want := len(all), 3; got != want {
			t.Fatalf("got %d results, want %d", got, want)
		}
		if !errors.Is(all[0].err, hl7.ErrFrameTooLarge) {
			t.Fatalf("err=%v, want ErrFrameTooLarge", all[0].err)
		}
		if all[1].err != nil || !bytes.Equal(all[1].frame, small) {
			t.Fatalf("second frame=%q, %v; want %q", all[1].frame, all[1].err, small)
		}
		if got, want := all[2].err, io.EOF; got != want {
			t.Fatalf("last err=%v, want %v", got, want)
		}
		if got, want := <-skipped, int64(len(frame(big))); got != want {
			t.Fatalf("Skipped=%d, want %d", got, want)
		}
	})

	// Ensure the default cap is 1 MiB: one byte more fails, exactly 1 MiB passes.
	t.Run("DefaultCap", func(t *testing.T) {
		over := bytes.Repeat([]byte("B"), hl7.DefaultMaxFrameSize+1)
		exact := over[:hl7.DefaultMaxFrameSize]
		ln := MustListen(t)
		results, _ := serveFrames(t, ln, 0, func(r io.Reader) io.Reader { return r })
		writeChunks(t, MustDial(t, ln), append(frame(over), frame(exact)...), 64<<10)
		all := collect(results)
		if got, want := len(all), 3; got != want {
			t.Fatalf("got %d results, want %d", got, want)
		}
		if !errors.Is(all[0].err, hl7.ErrFrameTooLarge) {
			t.Fatalf("err=%v, want ErrFrameTooLarge", all[0].err)
		}
		if got, want := len(all[1].frame), hl7.DefaultMaxFrameSize; all[1].err != nil || got != want {
			t.Fatalf("second frame len=%d err=%v, want %d", got, all[1].err, want)
		}
	})
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless is an io.Reader of 'A' bytes that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}

func TestReader_EndlessFrame(t *testing.T) {
	// Ensure a start byte followed by a stream with no end byte gives up at
	// the cap instead of reading (and buffering) on.
	src := &countingReader{r: io.MultiReader(bytes.NewReader([]byte{0x0b}), endless{})}
	r := hl7.NewReader(src)
	r.MaxFrameSize = 1 << 16
	if _, err := r.ReadFrame(); !errors.Is(err, hl7.ErrFrameTooLarge) {
		t.Fatalf("err=%v, want ErrFrameTooLarge", err)
	}
	if got, limit := src.n, int64(r.MaxFrameSize+2*4096); got > limit {
		t.Fatalf("read %d bytes before giving up, want at most %d", got, limit)
	}
}

func TestReader_TCP_Restart(t *testing.T) {
	a := []byte("MSH|^~\\&|A||||20260314||ORU^R01|A-1|P|2.5\r")
	b := []byte("MSH|^~\\&|B||||20260314||ORU^R01|B-1|P|2.5\r")
	partial := "MSH|^~\\&|PARTIAL"

	// Ensure a start byte inside a frame drops the partial frame, and an end
	// byte with no CR after it ends a frame.
	var stream []byte
	stream = append(stream, 0x0b)
	stream = append(stream, partial...)
	stream = append(stream, 0x0b)
	stream = append(stream, a...)
	stream = append(stream, 0x1c) // no CR
	stream = append(stream, frame(b)...)
	stream = append(stream, 0x0b)
	stream = append(stream, b...)
	stream = append(stream, 0x1c) // no CR, then the stream ends

	ln := MustListen(t)
	results, skipped := serveFrames(t, ln, 0, iotest.OneByteReader)
	writeChunks(t, MustDial(t, ln), stream, 3)
	all := collect(results)
	if got, want := len(all), 4; got != want {
		t.Fatalf("got %d results %v, want %d", got, all, want)
	}
	for i, want := range [][]byte{a, b, b} {
		if all[i].err != nil || !bytes.Equal(all[i].frame, want) {
			t.Fatalf("frame %d=%q, %v; want %q", i, all[i].frame, all[i].err, want)
		}
	}
	if got, want := all[3].err, io.EOF; got != want {
		t.Fatalf("last err=%v, want %v", got, want)
	}
	if got, want := <-skipped, int64(1+len(partial)); got != want {
		t.Fatalf("Skipped=%d, want %d", got, want)
	}
}

func TestReader_UnexpectedEOF(t *testing.T) {
	// Ensure a stream that ends inside a frame says so, then reports EOF.
	r := hl7.NewReader(bytes.NewReader([]byte("junk\x0bMSH|^~\\&|CUT")))
	if _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err=%v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("err=%v, want io.EOF", err)
	}
	if got, want := r.Skipped(), int64(len("junk\x0bMSH|^~\\&|CUT")); got != want {
		t.Fatalf("Skipped=%d, want %d", got, want)
	}
}

// scriptReader returns its steps in order: a chunk of bytes or an error.
type scriptReader struct {
	steps []any
}

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	step := s.steps[0]
	s.steps = s.steps[1:]
	switch v := step.(type) {
	case error:
		return 0, v
	case []byte:
		return copy(p, v), nil
	}
	return 0, errors.New("bad script step")
}

func TestReader_ResumeAfterError(t *testing.T) {
	msg := MustReadCase(t, "lf_endings")
	f := frame(msg)
	half := len(f) / 2

	// Ensure a read error inside a frame (a deadline) keeps the partial
	// frame, so the next ReadFrame completes it.
	r := hl7.NewReader(&scriptReader{steps: []any{f[:half], os.ErrDeadlineExceeded, f[half:]}})
	if _, err := r.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err=%v, want os.ErrDeadlineExceeded", err)
	}
	got, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("frame=%q, want %q", got, msg)
	}
	if got, want := r.Skipped(), int64(0); got != want {
		t.Fatalf("Skipped=%d, want %d", got, want)
	}
}

func TestReader_TCP_Deadline(t *testing.T) {
	msg := MustReadCase(t, "pcd01_monitor")
	f := frame(msg)
	ln := MustListen(t)
	proceed := make(chan struct{})
	done := make(chan readResult, 2)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- readResult{err: err}
			return
		}
		defer conn.Close()
		r := hl7.NewReader(conn)
		conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err = r.ReadFrame()
		done <- readResult{err: err}
		conn.SetReadDeadline(time.Time{})
		close(proceed)
		got, err := r.ReadFrame()
		done <- readResult{got, err}
	}()

	// Ensure a read deadline that fires mid-frame does not lose the frame.
	conn := MustDial(t, ln)
	if _, err := conn.Write(f[:len(f)/2]); err != nil {
		t.Fatal(err)
	}
	if res := <-done; !errors.Is(res.err, os.ErrDeadlineExceeded) {
		t.Fatalf("err=%v, want os.ErrDeadlineExceeded", res.err)
	}
	<-proceed
	if _, err := conn.Write(f[len(f)/2:]); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || !bytes.Equal(res.frame, msg) {
		t.Fatalf("frame=%q, %v; want the whole message", res.frame, res.err)
	}
}

func TestMLLP_TCP_ACKRoundTrip(t *testing.T) {
	msg := MustReadCase(t, "pcd01_monitor")
	at := MustTime(t, "2026-03-14T10:16:00+05:30")
	ln := MustListen(t)
	serveErr := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serveErr <- err
			return
		}
		defer conn.Close()
		in, err := hl7.NewReader(conn).ReadFrame()
		if err != nil {
			serveErr <- err
			return
		}
		oru, err := hl7.ParseORU(in)
		if err != nil {
			serveErr <- err
			return
		}
		serveErr <- hl7.WriteFrame(conn, hl7.BuildACK(&oru.Header, hl7.ACK{Code: hl7.AckAccept, Time: at}))
	}()

	// Ensure a device that sends a framed ORU gets a framed AA for it.
	conn := MustDial(t, ln)
	if err := hl7.WriteFrame(conn, msg); err != nil {
		t.Fatal(err)
	}
	ack, err := hl7.NewReader(conn).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-serveErr; err != nil {
		t.Fatal(err)
	}
	m := MustParseACK(t, ack)
	if got, want := m.Segments[1].Field(1)+"|"+m.Segments[1].Field(2), "AA|MON-000123"; got != want {
		t.Fatalf("MSA=%q, want %q", got, want)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// recordWriter records each Write call.
type recordWriter struct{ writes [][]byte }

func (w *recordWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

func TestWriteFrame(t *testing.T) {
	// Ensure a frame is written whole, in one Write call.
	var w recordWriter
	if err := hl7.WriteFrame(&w, []byte("MSH|^~\\&|X\r")); err != nil {
		t.Fatal(err)
	}
	if got, want := len(w.writes), 1; got != want {
		t.Fatalf("%d writes, want %d", got, want)
	}
	if got, want := string(w.writes[0]), "\x0bMSH|^~\\&|X\r\x1c\r"; got != want {
		t.Fatalf("frame=%q, want %q", got, want)
	}

	// Ensure a message holding framing bytes is refused, not sent.
	for _, msg := range []string{"a\x0bb", "a\x1cb"} {
		var w recordWriter
		if err := hl7.WriteFrame(&w, []byte(msg)); !errors.Is(err, hl7.ErrFrameByte) {
			t.Fatalf("WriteFrame(%q) err=%v, want ErrFrameByte", msg, err)
		}
		if len(w.writes) != 0 {
			t.Fatalf("WriteFrame(%q) wrote %q", msg, w.writes)
		}
	}

	// Ensure write errors are wrapped, not swallowed.
	if err := hl7.WriteFrame(failWriter{}, []byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("err=%v, want io.ErrClosedPipe", err)
	}
}
