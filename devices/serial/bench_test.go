package serial_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/astm"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/devices/mllp"
)

// lineRate is what a 115200 baud 8N1 line carries: 10 bits per byte.
const lineRate = 115200 / 10

// cpuTime is the process's user plus system CPU time so far. The device
// runs in a child process (TestDeviceProcess), so this is the node's own.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scaleLine is a 13-byte weighing that differs from the one before it.
func scaleLine(i int) []byte { return fmt.Appendf(nil, "WT:%5.1f kg\r\n", 40+float64(i%600)/10) }

// TestDeviceProcess is not a test: the benchmarks run the test binary again
// with HEALTHPOST_BENCH_DEVICE set to play the device in its own process,
// so that the benchmark's CPU time is the node's alone. Without the
// variable it returns at once.
func TestDeviceProcess(t *testing.T) {
	mode := os.Getenv("HEALTHPOST_BENCH_DEVICE")
	if mode == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv("HEALTHPOST_BENCH_N"))
	d := MustOpenDevice(t, os.Getenv("HEALTHPOST_BENCH_PORT"))
	ctx := context.Background()
	switch mode {
	case "line-flood":
		buf := make([]byte, 0, 64<<10)
		for i := range n {
			buf = append(buf, scaleLine(i)...)
			if len(buf) > 60<<10 || i == n-1 {
				if _, err := d.Write(buf); err != nil {
					t.Fatal(err)
				}
				buf = buf[:0]
			}
		}
	case "line-paced":
		start, sent := time.Now(), 0
		for i := range n {
			l := scaleLine(i)
			// Hold each line until a 115200 baud wire would have carried it.
			if wait := time.Until(start.Add(time.Duration(float64(sent+len(l)) / lineRate * float64(time.Second)))); wait > 0 {
				time.Sleep(wait)
			}
			if _, err := d.Write(l); err != nil {
				t.Fatal(err)
			}
			sent += len(l)
		}
	case "hl7":
		c := mllp.NewClient(d)
		for i := range n {
			rep, err := c.Send(ctx, oru(fmt.Sprintf("B-%07d", i), "", 100+i%60, 70))
			if err != nil || rep.Code != hl7.AckAccept {
				t.Fatalf("%v %v", rep.Code, err)
			}
		}
	case "astm":
		snd := astm.NewSender(d)
		for i := range n {
			if err := snd.Send(ctx, astmRecords(fmt.Sprintf("B-%07d", i), "", 80+i%60)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Keep the port open until the node has read everything: the
	// benchmark closes our stdin then.
	io.Copy(io.Discard, os.Stdin)
}

// startDevice runs TestDeviceProcess in a child process.
// Closing the returned writer lets the device process end.
func startDevice(b *testing.B, mode, port string, n int) (*exec.Cmd, io.Closer) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeviceProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HEALTHPOST_BENCH_DEVICE="+mode, "HEALTHPOST_BENCH_PORT="+port, "HEALTHPOST_BENCH_N="+strconv.Itoa(n))
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, stdin
}

// benchSerial runs one serial benchmark: a device of codec on a pty, played
// by a child process in mode, and the node's figures.
func benchSerial(b *testing.B, codec, mode string, st devices.Settings, readingsPer, bytesPer int) {
	s, _ := MustOpenStore(b)
	pty := MustStartPTY(b, b.TempDir())
	st.Port = pty.Host
	MustCreateDevice(b, s, "Device", "monitor", codec, st)
	_, ev := MustOpenPorts(b, s, nil)
	ev.waitStatus(b, "listening on")
	b.ResetTimer()
	start, cpu0, commits0 := time.Now(), cpuTime(b), s.IngestStats().Batches
	dev, done := startDevice(b, mode, pty.Dev, b.N)
	ev.waitStored(b, "Device", b.N)
	wall, cpu, commits := time.Since(start), cpuTime(b)-cpu0, s.IngestStats().Batches-commits0
	b.StopTimer()
	done.Close()
	if err := dev.Wait(); err != nil {
		b.Fatalf("device process: %v", err)
	}
	readings := b.N * readingsPer
	b.ReportMetric(float64(b.N)/wall.Seconds(), "msgs/s")
	b.ReportMetric(float64(readings)/wall.Seconds(), "readings/s")
	b.ReportMetric(float64(b.N*bytesPer)/wall.Seconds(), "B/s")
	b.ReportMetric(float64(b.N*bytesPer)/wall.Seconds()/lineRate, "x-line-rate")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	b.ReportMetric(float64(commits)/wall.Seconds(), "commits/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(readings), "cpu-µs/reading")
}

// BenchmarkPorts_LineFlood: a scale on one pty sending as fast as the pty
// takes bytes (a pty ignores the baud rate): how many readings per second
// the node stores, against the 11520 bytes/s of a 115200 baud line.
func BenchmarkPorts_LineFlood(b *testing.B) {
	benchSerial(b, "line", "line-flood", devices.Settings{Pattern: scalePattern, Code: "29463-7"}, 1, 13)
}

// BenchmarkPorts_LineAtLineRate: the same scale paced at exactly 115200
// baud (886 lines of 13 bytes a second): whether the node keeps up, and the
// CPU it needs to.
func BenchmarkPorts_LineAtLineRate(b *testing.B) {
	benchSerial(b, "line", "line-paced", devices.Settings{Pattern: scalePattern, Code: "29463-7"}, 1, 13)
}

// BenchmarkPorts_HL7: a BP monitor on one pty, each message (2 readings)
// waiting for its AA after commit.
func BenchmarkPorts_HL7(b *testing.B) {
	benchSerial(b, "hl7", "hl7", devices.Settings{}, 2, len(oru("B-0000000", "", 100, 70))+3)
}

// BenchmarkPorts_ASTM: an analyzer on one pty, each message (2 readings in
// 6 frames) acknowledged frame by frame, the last after commit.
func BenchmarkPorts_ASTM(b *testing.B) {
	n := 2 // ENQ, EOT
	for _, r := range astmRecords("B-0000000", "", 80) {
		n += len(r) + 1 + 7 // CR, and STX FN ETX C1 C2 CR LF
	}
	benchSerial(b, "astm", "astm", devices.Settings{Codes: glucoseCodes}, 2, n)
}
