package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/mllp"
	"github.com/healthpost/healthpost/devices/serial"
	"github.com/healthpost/healthpost/edge"
)

// runSimulate runs `device simulate` with args and returns its output and
// error.
func runSimulate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	a := &app{stdout: &out, stderr: &out}
	cmd := a.deviceSimulateCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// simStore opens a store, a read connection to it, a patient and a device.
func simStore(t *testing.T, dev edge.Device) (*edge.Store, *sql.DB, edge.Device, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edge.NewStore(path)
	s.DiskCheckPeriod = 0
	s.LowFreeBytes, s.CriticalFreeBytes = 64<<20, 16<<20
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "nurse"})
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 40}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDevice(context.Background(), &dev); err != nil {
		t.Fatal(err)
	}
	return s, db, dev, p.LocalID
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// startPTY starts a socat pseudo-terminal pair and returns the device's and
// the node's ends; socat ends with the test.
func startPTY(t *testing.T) (dev, host string) {
	t.Helper()
	dir := t.TempDir()
	dev, host = filepath.Join(dir, "ttyDEV"), filepath.Join(dir, "ttyHOST")
	cmd := exec.Command("socat", "-d", "-d", "pty,raw,echo=0,link="+dev, "pty,raw,echo=0,link="+host)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start socat: %v", err)
	}
	sc := bufio.NewScanner(stderr)
	ptys := 0
	for sc.Scan() {
		if regexp.MustCompile(`PTY is /dev/pts/\d+`).MatchString(sc.Text()) {
			ptys++
		}
		if strings.Contains(sc.Text(), "starting data transfer loop") {
			break
		}
	}
	if ptys != 2 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("socat reported %d ptys", ptys)
	}
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, stderr); cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); <-done })
	return dev, host
}

func TestDeviceSimulate_UsageErrors(t *testing.T) {
	// Ensure each wrong invocation names the problem and the fix, with
	// exit code 2.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--codec must be hl7, astm or line"},
		{[]string{"--codec", "senml", "--to", "/dev/ttyUSB0"}, "--codec must be hl7, astm or line"},
		{[]string{"--codec", "hl7"}, "where to send: --to a serial port or --tcp an address"},
		{[]string{"--codec", "hl7", "--to", "/dev/ttyUSB0", "--tcp", "127.0.0.1:2575"}, "give --to or --tcp, not both"},
		{[]string{"--codec", "astm", "--tcp", "127.0.0.1:2575"}, "the node takes only HL7 over TCP"},
		{[]string{"--codec", "line", "--to", "/dev/ttyUSB0", "--rate", "-1"}, "cannot be negative"},
	} {
		_, err := runSimulate(t, tc.args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Try: healthpost device simulate") {
			t.Errorf("simulate %q: %v, want exit 2 with %q and a Try line", tc.args, err, tc.want)
		}
	}
}

func TestDeviceSimulate_TCP(t *testing.T) {
	s, db, dev, patient := simStore(t, edge.Device{Name: "Ward monitor", Kind: "monitor", Transport: "mllp", Codec: "hl7", Settings: `{"listen":"127.0.0.1:0"}`})
	srv := mllp.NewServer(s, devices.NewIngestor(s, slog.New(slog.DiscardHandler)), nil)
	if err := srv.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())

	// Ensure the simulator plays a monitor over MLLP: every message
	// acknowledged AA and stored for the patient it names.
	out, err := runSimulate(t, "--codec", "hl7", "--tcp", srv.Addr("Ward monitor").String(), "--count", "5", "--patient", patient)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	if got := strings.Count(out, "  AA  "); got != 5 {
		t.Fatalf("%d AA lines, want 5:\n%s", got, out)
	}
	if !strings.Contains(out, "5 acknowledged, 0 refused, 0 unanswered") {
		t.Fatalf("no summary:\n%s", out)
	}
	if got := count(t, db, `SELECT count(*) FROM readings WHERE device_id = ? AND state = 'assigned'`, dev.ID); got != 15 {
		t.Fatalf("assigned readings=%d, want 15", got)
	}

	// Ensure --json prints the figures for benchmarks.
	var a app
	var buf bytes.Buffer
	a.stdout, a.stderr, a.json = &buf, &buf, true
	cmd := a.deviceSimulateCommand()
	cmd.SetArgs([]string{"--codec", "hl7", "--tcp", srv.Addr("Ward monitor").String(), "--count", "3"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	var sum simulateSummary
	if err := json.Unmarshal(buf.Bytes(), &sum); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if sum.Sent != 3 || sum.Acknowledged != 3 || sum.PerSecond <= 0 || sum.P50ms <= 0 {
		t.Fatalf("summary %+v", sum)
	}
}

func TestDeviceSimulate_Serial(t *testing.T) {
	// Ensure the simulator plays each codec over a serial line to a
	// running serial subsystem, which stores what it sends.
	for _, tc := range []struct {
		codec, kind, settings string
		readings              int
	}{
		{"hl7", "bp-monitor", `{}`, 9},
		{"astm", "analyzer", `{}`, 6},
		{"line", "scale", `{"pattern":` + jsonString(simulateLinePattern) + `,"code":"29463-7"}`, 3},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			devEnd, host := startPTY(t)
			settings := strings.Replace(tc.settings, "{", `{"port":`+jsonString(host)+`,"baud":115200,`, 1)
			settings = strings.Replace(settings, ",}", "}", 1)
			s, db, dev, patient := simStore(t, edge.Device{Name: "Device", Kind: tc.kind, Transport: "serial", Codec: tc.codec, Settings: settings})
			ports := serial.NewPorts(s, devices.NewIngestor(s, slog.New(slog.DiscardHandler)), nil)
			ports.LineRepeatWindow = 0
			listening, stored := make(chan struct{}, 1), make(chan struct{}, 100)
			ports.OnStatus = func(_ edge.Device, st string) {
				if strings.HasPrefix(st, "listening on") {
					listening <- struct{}{}
				}
			}
			ports.OnStored = func(edge.Device, string) { stored <- struct{}{} }
			if err := ports.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer ports.Close(context.Background())
			<-listening
			out, err := runSimulate(t, "--codec", tc.codec, "--to", devEnd, "--baud", "115200", "--count", "3", "--patient", patient)
			if err != nil {
				t.Fatalf("simulate: %v\n%s", err, out)
			}
			for range 3 {
				<-stored
			}
			if got := count(t, db, `SELECT count(*) FROM readings WHERE device_id = ?`, dev.ID); got != tc.readings {
				t.Fatalf("readings=%d, want %d\n%s", got, tc.readings, out)
			}
			if !strings.Contains(out, "Sent 3 in") || !strings.Contains(out, "bytes/s at 115200 baud") {
				t.Fatalf("no summary:\n%s", out)
			}
		})
	}
}

func TestDeviceSimulate_NoNode(t *testing.T) {
	devEnd, _ := startPTY(t)
	// Ensure a technician testing a cable with nothing answering is told so,
	// with exit code 1 and what to check.
	out, err := runSimulate(t, "--codec", "hl7", "--to", devEnd, "--count", "3", "--timeout", "200ms")
	if err == nil || !strings.Contains(err.Error(), "1 of 1 messages were not acknowledged") || !strings.Contains(err.Error(), "check the cable") {
		t.Fatalf("simulate with no node: %v\n%s", err, out)
	}
	if !strings.Contains(out, "0 acknowledged, 0 refused, 1 unanswered") {
		t.Fatalf("summary missing:\n%s", out)
	}
	if got := exitCode(io.Discard, err); got != 1 {
		t.Fatalf("exit code %d, want 1", got)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
