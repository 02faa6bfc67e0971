package serial_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/astm"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/devices/mllp"
	"github.com/healthpost/healthpost/devices/serial"
	"github.com/healthpost/healthpost/edge"
)

// oru builds a blood-pressure ORU^R01 as a monitor sends it.
func oru(controlID, patient string, sys, dia int) []byte {
	pid := ""
	if patient != "" {
		pid = "PID|||" + patient + "^^^HEALTHPOST^MR\r"
	}
	return []byte("MSH|^~\\&|BPMON^0012FFFE00A1B2C3^EUI-64||HEALTHPOST||20261122093000+0530||ORU^R01^ORU_R01|" + controlID + "|P|2.6|||NE|AL\r" +
		pid +
		"OBR|1|" + controlID + "||150020^MDC_PRESS_BLD_NONINV^MDC|||20261122092955+0530\r" +
		fmt.Sprintf("OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.0.1.1|%d|266016^MDC_DIM_MMHG^MDC|||||R\r", sys) +
		fmt.Sprintf("OBX|2|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.0.1.2|%d|266016^MDC_DIM_MMHG^MDC|||||R\r", dia))
}

// astmRecords builds a glucose result as an analyzer sends it.
func astmRecords(sample, patient string, glucose int) []string {
	return []string{
		`H|\^&|||GlucoStat^1.0|||||HEALTHPOST||P|LIS2-A2|20261122093000`,
		"P|1|" + patient,
		"O|1|" + sample + "||^^^GLU|R||20261122090000",
		fmt.Sprintf("R|1|^^^GLU|%d|mg/dL|70 to 110|N||F||||20261122092900", glucose),
		"R|2|^^^HB|12.4|g/dL|12.0 to 15.5|N||F||||20261122092900",
		"L|1|N",
	}
}

// glucoseCodes maps the analyzer's codes to LOINC.
var glucoseCodes = map[string]string{"GLU": "2339-0", "HB": "718-7"}

// scalePattern reads "WT: 62.4 kg" lines.
const scalePattern = `WT:\s*(?P<value>[0-9.]+)\s*(?P<unit>kg|lb)`

func TestPorts_HL7(t *testing.T) {
	s, db := MustOpenStore(t)
	patient := MustCreatePatient(t, s)
	pty := MustStartPTY(t, t.TempDir())
	dev := MustCreateDevice(t, s, "BP monitor", "bp-monitor", "hl7", devices.Settings{Port: pty.Host})
	_, ev := MustOpenPorts(t, s, nil)
	ev.waitStatus(t, "BP monitor: listening on "+pty.Host+" at 115200 baud")

	// Ensure each AA comes back over the cable only once a separate
	// database connection sees the message's readings committed.
	c := mllp.NewClient(MustOpenDevice(t, pty.Dev))
	for i := range 10 {
		id := fmt.Sprintf("SER-%03d", i)
		rep, err := c.Send(context.Background(), oru(id, patient, 120+i, 80))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Code != hl7.AckAccept {
			t.Fatalf("ACK %s=%s (%s), want AA", id, rep.Code, rep.Text)
		}
		if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ? AND message_id LIKE ? AND state = 'assigned'`, dev.ID, id+"/%"); got != 2 {
			t.Fatalf("when the ACK of %s arrived, %d readings had committed, want 2", id, got)
		}
	}
	ev.waitStatus(t, "BP monitor: receiving on "+pty.Host)
}

func TestPorts_ASTM(t *testing.T) {
	s, db := MustOpenStore(t)
	patient := MustCreatePatient(t, s)
	pty := MustStartPTY(t, t.TempDir())
	dev := MustCreateDevice(t, s, "Glucose analyzer", "analyzer", "astm", devices.Settings{Port: pty.Host, Codes: glucoseCodes})
	_, ev := MustOpenPorts(t, s, nil)
	ev.waitStatus(t, "listening on")

	// Ensure the analyzer's transmission completes (its last frame ACKed)
	// only once the message's readings are visible to another connection.
	sender := astm.NewSender(MustOpenDevice(t, pty.Dev))
	defer sender.Close()
	for i := range 5 {
		sample := fmt.Sprintf("S-%03d", i)
		if err := sender.Send(context.Background(), astmRecords(sample, patient, 90+i)); err != nil {
			t.Fatal(err)
		}
		if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ? AND message_id LIKE ? AND state = 'assigned'`, dev.ID, sample+"/%"); got != 2 {
			t.Fatalf("when %s was acknowledged, %d readings had committed, want 2", sample, got)
		}
	}
	var value float64
	var unit string
	if err := db.QueryRow(`SELECT value, unit FROM readings WHERE message_id LIKE 'S-004/4@%'`).Scan(&value, &unit); err != nil {
		t.Fatal(err)
	}
	if value != 94 || unit != "mg/dL" {
		t.Fatalf("glucose %v %s, want 94 mg/dL", value, unit)
	}
}

func TestPorts_Line(t *testing.T) {
	s, db := MustOpenStore(t)
	pty := MustStartPTY(t, t.TempDir())
	dev := MustCreateDevice(t, s, "Scale", "scale", "line", devices.Settings{Port: pty.Host, Pattern: scalePattern, Code: "29463-7"})
	_, ev := MustOpenPorts(t, s, nil)
	ev.waitStatus(t, "listening on")

	// Ensure each line becomes a reading in the canonical unit.
	d := MustOpenDevice(t, pty.Dev)
	if _, err := d.Write([]byte("WT: 62.4 kg\r\nWT: 110.0 lb\r\nWT: 48.5 kg\r\n")); err != nil {
		t.Fatal(err)
	}
	ev.waitStored(t, "Scale", 3)
	if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ? AND loinc = '29463-7' AND unit = 'kg' AND value IN (62.4, 49.895, 48.5)`, dev.ID); got != 3 {
		t.Fatalf("weights stored=%d, want 3", got)
	}
}

func TestPorts_LineRepeats(t *testing.T) {
	s, db := MustOpenStore(t)
	pty := MustStartPTY(t, t.TempDir())
	dev := MustCreateDevice(t, s, "Scale", "scale", "line", devices.Settings{Port: pty.Host, Pattern: scalePattern, Code: "29463-7"})
	_, ev := MustOpenPorts(t, s, func(p *serial.Ports) { p.LineRepeatWindow = time.Hour })
	ev.waitStatus(t, "listening on")
	// Ensure a scale printing one stable weight over and over gives one
	// reading, and a new weight after it another.
	d := MustOpenDevice(t, pty.Dev)
	if _, err := d.Write([]byte(strings.Repeat("WT: 62.4 kg\r\n", 20) + "WT: 48.5 kg\r\n")); err != nil {
		t.Fatal(err)
	}
	ev.waitStored(t, "Scale", 2)
	if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ?`, dev.ID); got != 2 {
		t.Fatalf("readings=%d, want 2", got)
	}
}

func TestPorts_Auto(t *testing.T) {
	// Ensure auto recognizes MLLP, ASTM and line framing from the first
	// bytes, after some noise, and stores through the right codec.
	for _, tc := range []struct {
		name  string
		speak func(t *testing.T, dev *serial.Conn)
		codec string
	}{
		{"HL7", func(t *testing.T, dev *serial.Conn) {
			rep, err := mllp.NewClient(dev).Send(context.Background(), oru("AUTO-1", "", 120, 80))
			if err != nil || rep.Code != hl7.AckAccept {
				t.Fatalf("HL7 over auto: %v %v", rep.Code, err)
			}
		}, "hl7"},
		{"ASTM", func(t *testing.T, dev *serial.Conn) {
			if err := astm.NewSender(dev).Send(context.Background(), astmRecords("AUTO-1", "", 100)); err != nil {
				t.Fatalf("ASTM over auto: %v", err)
			}
		}, "astm"},
		{"Line", func(t *testing.T, dev *serial.Conn) {
			if _, err := dev.Write([]byte("\r\nWT: 62.4 kg\r\n")); err != nil {
				t.Fatal(err)
			}
		}, "line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := MustOpenStore(t)
			pty := MustStartPTY(t, t.TempDir())
			dev := MustCreateDevice(t, s, "Any device", "monitor", "auto",
				devices.Settings{Port: pty.Host, Pattern: scalePattern, Code: "29463-7", Codes: glucoseCodes})
			_, ev := MustOpenPorts(t, s, nil)
			ev.waitStatus(t, "listening on")
			d := MustOpenDevice(t, pty.Dev)
			if _, err := d.Write([]byte{0x00, 0xff, 0x13}); err != nil { // noise on plugging in
				t.Fatal(err)
			}
			tc.speak(t, d)
			ev.waitStored(t, "Any device", 1)
			if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ? AND raw_message_id IN (SELECT id FROM device_messages WHERE codec = ?)`, dev.ID, tc.codec); got != 1 {
				t.Fatalf("readings stored as %s=%d, want 1", tc.codec, got)
			}
			if got := MustCount(t, db, `SELECT count(*) FROM device_messages WHERE device_id = ? AND error LIKE '%3 bytes of noise%'`, dev.ID); got != 1 {
				t.Fatalf("noise kept raw %d times, want 1", got)
			}
		})
	}
}

func TestPorts_UnplugAndPlugBack(t *testing.T) {
	// Ensure an unplug is noticed whether the ptys go away cleanly (socat
	// ends, removing its links) or are yanked (killed, links left dangling).
	for _, tc := range []struct {
		name   string
		unplug func(*PTY, testing.TB)
	}{{"Unplug", (*PTY).Unplug}, {"Yank", (*PTY).Yank}} {
		t.Run(tc.name, func(t *testing.T) { testUnplugAndPlugBack(t, tc.unplug) })
	}
}

func testUnplugAndPlugBack(t *testing.T, unplug func(*PTY, testing.TB)) {
	s, db := MustOpenStore(t)
	dir := t.TempDir()
	pty := MustStartPTY(t, dir)
	other := MustStartPTY(t, t.TempDir())
	dev := MustCreateDevice(t, s, "BP monitor", "bp-monitor", "hl7", devices.Settings{Port: pty.Host})
	MustCreateDevice(t, s, "Scale", "scale", "line", devices.Settings{Port: other.Host, Pattern: scalePattern, Code: "29463-7"})
	ports, ev := MustOpenPorts(t, s, nil)
	ev.waitStatuses(t, "BP monitor: listening on", "Scale: listening on")

	c := mllp.NewClient(MustOpenDevice(t, pty.Dev))
	if rep, err := c.Send(context.Background(), oru("U-1", "", 120, 80)); err != nil || rep.Code != hl7.AckAccept {
		t.Fatalf("before unplugging: %v %v", rep.Code, err)
	}

	// Ensure pulling the cable mid-message (socat killed, the ptys gone)
	// is reported as unplugged, with the fix.
	d := MustOpenDevice(t, pty.Dev)
	if _, err := d.Write(append([]byte{0x0B}, oru("U-2", "", 121, 81)[:40]...)); err != nil {
		t.Fatal(err)
	}
	unplug(pty, t)
	ev.waitStatus(t, "BP monitor: BP monitor on "+pty.Host+" was unplugged; plug it back in")

	// Ensure the node and its other devices keep working meanwhile.
	sd := MustOpenDevice(t, other.Dev)
	if _, err := sd.Write([]byte("WT: 62.4 kg\r\n")); err != nil {
		t.Fatal(err)
	}
	ev.waitStored(t, "Scale", 1)

	// Ensure plugging back in (a new socat on the same link) is noticed and
	// readings flow again.
	pty = MustStartPTY(t, dir)
	ev.waitStatus(t, "BP monitor: listening on "+pty.Host)
	c = mllp.NewClient(MustOpenDevice(t, pty.Dev))
	if rep, err := c.Send(context.Background(), oru("U-3", "", 122, 82)); err != nil || rep.Code != hl7.AckAccept {
		t.Fatalf("after plugging back: %v %v", rep.Code, err)
	}
	if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ?`, dev.ID); got != 4 {
		t.Fatalf("readings=%d, want 4 (U-1 and U-3; U-2 was cut)", got)
	}
	if err := ports.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := s.Device(context.Background(), dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Readings != 4 || got.Status != "receiving on "+pty.Host {
		t.Fatalf("registry says readings=%d status %q", got.Readings, got.Status)
	}
}

func TestPorts_Silent(t *testing.T) {
	s, _ := MustOpenStore(t)
	pty := MustStartPTY(t, t.TempDir())
	MustCreateDevice(t, s, "BP monitor", "bp-monitor", "hl7", devices.Settings{Port: pty.Host})
	_, ev := MustOpenPorts(t, s, func(p *serial.Ports) { p.IdleTimeout = 300 * time.Millisecond })
	ev.waitStatus(t, "listening on")
	// Ensure a port that sends nothing for the idle timeout is reported
	// with the fix, and reopened so that the device is heard again.
	ev.waitStatus(t, "BP monitor: BP monitor on "+pty.Host+" stopped answering; check the cable")
	c := mllp.NewClient(MustOpenDevice(t, pty.Dev))
	if rep, err := c.Send(context.Background(), oru("S-1", "", 120, 80)); err != nil || rep.Code != hl7.AckAccept {
		t.Fatalf("after the silence: %v %v", rep.Code, err)
	}
	ev.waitStatus(t, "BP monitor: receiving on")
}

func TestPorts_Open(t *testing.T) {
	// Ensure device problems become statuses naming the fix, and never
	// fail Open.
	s, _ := MustOpenStore(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "ttyUSB9")
	MustCreateDevice(t, s, "Absent", "scale", "hl7", devices.Settings{Port: missing})
	MustCreateDevice(t, s, "Shares port", "scale", "hl7", devices.Settings{Port: missing})
	MustCreateDevice(t, s, "Wrong codec", "pulse-oximeter", "senml", devices.Settings{Port: filepath.Join(dir, "x")})
	d := edge.Device{Name: "No pattern", Kind: "scale", Transport: "serial", Codec: "line", Settings: `{"port":"/dev/ttyUSB7"}`}
	if err := s.CreateDevice(context.Background(), &d); err != nil {
		t.Fatal(err)
	}
	notTTY := filepath.Join(dir, "file")
	if err := os.WriteFile(notTTY, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	MustCreateDevice(t, s, "Not a tty", "scale", "hl7", devices.Settings{Port: notTTY})
	_, ev := MustOpenPorts(t, s, nil)
	ev.waitStatuses(t,
		"Absent: Absent on "+missing+" is not plugged in; plug it in, or check the port name",
		"No pattern: No pattern reads lines but has no \"pattern\"",
		"Not a tty: "+notTTY+" for Not a tty did not open",
		"Shares port: Shares port is set to "+missing+", which Absent already uses",
		"Wrong codec: Wrong codec has codec senml, which does not run over a serial port")
}

func TestPorts_AutoTextWithoutPattern(t *testing.T) {
	s, db := MustOpenStore(t)
	pty := MustStartPTY(t, t.TempDir())
	dev := MustCreateDevice(t, s, "Mystery", "scale", "auto", devices.Settings{Port: pty.Host})
	_, ev := MustOpenPorts(t, s, nil)
	ev.waitStatus(t, "listening on")
	// Ensure a device on auto that prints text, with no pattern to read it,
	// is told how to fix it rather than reopened for ever.
	if _, err := MustOpenDevice(t, pty.Dev).Write([]byte("WT: 62.4 kg\r\n")); err != nil {
		t.Fatal(err)
	}
	ev.waitStatus(t, "Mystery: Mystery on "+pty.Host+" prints lines of text, but has no \"pattern\"")
	if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ?`, dev.ID); got != 0 {
		t.Fatalf("readings=%d, want 0", got)
	}
	if got := MustCount(t, db, `SELECT count(*) FROM device_messages WHERE device_id = ? AND raw = CAST('WT: 62.4 kg'||char(13)||char(10) AS BLOB)`, dev.ID); got != 1 {
		t.Fatalf("what it printed was kept raw %d times, want 1", got)
	}
}

// ensure bytes is used even when tests change.
var _ = bytes.Equal

func TestPorts_CloseLosesNothingAcknowledged(t *testing.T) {
	// Ensure that when the node stops while devices send at full speed,
	// every message a device got an acknowledgement for is stored.
	s, db := MustOpenStore(t)
	hl7PTY, astmPTY := MustStartPTY(t, t.TempDir()), MustStartPTY(t, t.TempDir())
	MustCreateDevice(t, s, "BP monitor", "bp-monitor", "hl7", devices.Settings{Port: hl7PTY.Host})
	MustCreateDevice(t, s, "Analyzer", "analyzer", "astm", devices.Settings{Port: astmPTY.Host, Codes: glucoseCodes})
	ports, ev := MustOpenPorts(t, s, nil)
	ev.waitStatuses(t, "BP monitor: listening on", "Analyzer: listening on")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		acked []string
		err   error
	}
	hl7Done, astmDone := make(chan result, 1), make(chan result, 1)
	go func() {
		var r result
		c := mllp.NewClient(MustOpenDevice(t, hl7PTY.Dev))
		c.ReplyTimeout = 5 * time.Second
		for i := 0; ctx.Err() == nil; i++ {
			id := fmt.Sprintf("H-%05d", i)
			rep, err := c.Send(ctx, oru(id, "", 100+i%50, 70))
			if err != nil {
				break
			}
			if rep.Code != hl7.AckAccept {
				r.err = fmt.Errorf("%s answered %s", id, rep.Code)
				break
			}
			r.acked = append(r.acked, id)
		}
		hl7Done <- r
	}()
	go func() {
		var r result
		snd := astm.NewSender(MustOpenDevice(t, astmPTY.Dev))
		snd.ReplyTimeout = 5 * time.Second
		for i := 0; ctx.Err() == nil; i++ {
			id := fmt.Sprintf("A-%05d", i)
			if err := snd.Send(ctx, astmRecords(id, "", 90+i%50)); err != nil {
				break
			}
			r.acked = append(r.acked, id)
		}
		astmDone <- r
	}()
	ev.waitStored(t, "BP monitor", 20)
	ev.waitStored(t, "Analyzer", 20)
	if err := ports.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	for _, ch := range []chan result{hl7Done, astmDone} {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		for _, id := range r.acked {
			if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE message_id LIKE ?`, id+"/%"); got != 2 {
				t.Fatalf("%s was acknowledged but %d of its 2 readings are stored", id, got)
			}
		}
		if len(r.acked) < 20 {
			t.Fatalf("only %d messages acknowledged", len(r.acked))
		}
	}
}
