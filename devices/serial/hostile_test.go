package serial_test

import (
	"bytes"
	"context"
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
)

// MustReadTestdata returns a file of the shared sample catalogue.
func MustReadTestdata(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", rel))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// readReplies reads n ASTM replies from the device's end, as "A" and "N".
func readReplies(tb testing.TB, c *serial.Conn, n int) string {
	tb.Helper()
	var got strings.Builder
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 64)
	for got.Len() < n {
		k, err := c.Read(buf)
		if err != nil {
			tb.Fatalf("replies so far %q: %v", got.String(), err)
		}
		for _, b := range buf[:k] {
			switch b {
			case astm.ACK:
				got.WriteByte('A')
			case astm.NAK:
				got.WriteByte('N')
			default:
				got.WriteByte('?')
			}
		}
	}
	return got.String()
}

func TestPorts_HostileBytes(t *testing.T) {
	// Ensure garbage, frames cut short, bad messages, unknown codes,
	// oversized frames and bytes that are not UTF-8 from an HL7 device are
	// counted and kept raw, answered AE or AR where HL7 has an answer, and
	// never stop the next good message.
	t.Run("HL7", func(t *testing.T) {
		s, db := MustOpenStore(t)
		pty := MustStartPTY(t, t.TempDir())
		dev := MustCreateDevice(t, s, "BP monitor", "bp-monitor", "hl7", devices.Settings{Port: pty.Host})
		ports, ev := MustOpenPorts(t, s, func(p *serial.Ports) { p.MaxFrameSize = 4096 })
		ev.waitStatus(t, "listening on")
		d := MustOpenDevice(t, pty.Dev)
		c := mllp.NewClient(d)
		send := func(msg []byte, want hl7.AckCode) {
			t.Helper()
			rep, err := c.Send(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Code != want {
				t.Fatalf("ACK=%s (%s), want %s", rep.Code, rep.Text, want)
			}
		}
		problems := func() int {
			return MustCount(t, db, `SELECT count(*) FROM device_messages WHERE device_id = ? AND error != ''`, dev.ID)
		}

		cut := append([]byte("\x00\xffnoise"), 0x0B)
		cut = append(cut, oru("CUT-1", "", 120, 80)[:60]...)
		if _, err := d.Write(cut); err != nil {
			t.Fatal(err)
		}
		send(oru("OK-1", "", 120, 80), hl7.AckAccept)
		if got := problems(); got != 1 {
			t.Fatalf("problems=%d after noise and a cut frame, want 1", got)
		}

		send([]byte("MSH|^~\\&|X||||20261122||ORU^R01|TS-1|P|2.6\rOBR|1\rOBX|1|NM|150021^MDC||120|266016^MDC|||||R|||20261399\r"), hl7.AckError)
		send([]byte("MSH|^~\\&|X||||20261122||ADT^A01|ADT-1|P|2.6\r"), hl7.AckReject)
		unknown := []byte("MSH|^~\\&|X||||20261122||ORU^R01|UNK-1|P|2.6\rOBR|1\rOBX|1|NM|999999^MDC_NOTHING^MDC||1|%\r")
		send(unknown, hl7.AckError)
		send(unknown, hl7.AckError) // a retry is answered again, not kept again
		if got := problems(); got != 4 {
			t.Fatalf("problems=%d after three bad messages, want 4", got)
		}

		big := append([]byte{0x0B}, oru("BIG-1", "", 120, 80)...)
		big = append(big, []byte("NTE|1||"+strings.Repeat("x", 6000)+"\r")...)
		if _, err := d.Write(append(big, 0x1C, 0x0D)); err != nil {
			t.Fatal(err)
		}
		d.SetReadDeadline(time.Now().Add(20 * time.Second))
		ack, err := hl7.NewReader(d).ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(ack, []byte("MSA|AE|")) {
			t.Fatalf("oversized frame answered %q, want AE", ack)
		}
		c = mllp.NewClient(d)
		latin := bytes.Replace(oru("LAT-1", "", 121, 81), []byte("BPMON"), []byte("BPM\xd6N"), 1)
		send(latin, hl7.AckAccept) // read as Latin-1, as HL7 devices mean it
		if got := problems(); got != 5 {
			t.Fatalf("problems=%d after an oversized frame, want 5", got)
		}

		if err := ports.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		reg, err := s.Device(context.Background(), dev.ID)
		if err != nil {
			t.Fatal(err)
		}
		if reg.Errors != 5 || reg.Readings != 4 {
			t.Fatalf("registry errors=%d readings=%d, want 5 and 4", reg.Errors, reg.Readings)
		}
		if got := MustCount(t, db, `SELECT count(*) FROM device_messages WHERE device_id = ? AND instr(raw, CAST('noise' AS BLOB)) > 0`, dev.ID); got != 1 {
			t.Fatalf("noise kept raw %d times, want 1", got)
		}
	})

	// Ensure wrong checksums are NAKed and counted, the retransmission
	// stored, and a transmission that breaks off is reported with what it
	// sent kept raw.
	t.Run("ASTM", func(t *testing.T) {
		s, db := MustOpenStore(t)
		pty := MustStartPTY(t, t.TempDir())
		dev := MustCreateDevice(t, s, "Analyzer", "analyzer", "astm", devices.Settings{Port: pty.Host, Codes: glucoseCodes})
		_, ev := MustOpenPorts(t, s, func(p *serial.Ports) { p.ASTMFrameTimeout = 300 * time.Millisecond })
		ev.waitStatus(t, "listening on")
		d := MustOpenDevice(t, pty.Dev)

		if _, err := d.Write(MustReadTestdata(t, "astm/bad-checksum.astm")); err != nil {
			t.Fatal(err)
		}
		if got, want := readReplies(t, d, 7), "AANAAAA"; got != want {
			t.Fatalf("replies %q, want %q", got, want)
		}
		ev.waitStored(t, "Analyzer", 1)
		p := ev.waitProblem(t, "1 frames failed their checksum")
		if !strings.Contains(p, "check the cable and the baud rate") {
			t.Fatalf("problem %q gives no fix", p)
		}

		// The replies to what follows are not read: the device plays a
		// recording, and the node's side is checked through what it stored.
		if _, err := d.Write(MustReadTestdata(t, "astm/truncated.astm")); err != nil {
			t.Fatal(err)
		}
		p = ev.waitProblem(t, "the analyzer went silent in the middle of a transmission")
		if !strings.Contains(p, "an incomplete message was dropped") {
			t.Fatalf("problem %q does not say the message was dropped", p)
		}

		// Ensure 2 KB of noise with control bytes in it does not stop the
		// next clean transmission from being stored.
		in := append(MustReadTestdata(t, "astm/garbage.astm"), MustReadTestdata(t, "astm/chemistry-clean.astm")...)
		if _, err := d.Write(in); err != nil {
			t.Fatal(err)
		}
		ev.waitStored(t, "Analyzer", 1)
		if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ? AND message_id LIKE 'S250314-017/%'`, dev.ID); got != 2 {
			t.Fatalf("readings after the garbage=%d, want 2 (GLU and HB)", got)
		}
		ev.waitProblem(t, "bytes outside frames were ignored")
		if got := MustCount(t, db, `SELECT count(*) FROM device_messages WHERE device_id = ? AND error LIKE '%checksum%' AND length(raw) > 0`, dev.ID); got < 1 {
			t.Fatal("the checksum problem was not kept raw")
		}
	})

	// Ensure lines that are noise, not text or far too long are counted
	// and kept raw together, and good lines among them are stored.
	t.Run("Line", func(t *testing.T) {
		s, db := MustOpenStore(t)
		pty := MustStartPTY(t, t.TempDir())
		dev := MustCreateDevice(t, s, "Scale", "scale", "line", devices.Settings{Port: pty.Host, Pattern: scalePattern, Code: "29463-7"})
		_, ev := MustOpenPorts(t, s, nil)
		ev.waitStatus(t, "listening on")
		d := MustOpenDevice(t, pty.Dev)
		var in []byte
		in = append(in, MustReadTestdata(t, "line/garbage.bin")...)
		in = append(in, "\r\n"...)
		in = append(in, MustReadTestdata(t, "line/invalid-utf8.txt")...)
		in = append(in, MustReadTestdata(t, "line/oversized.txt")...)
		if _, err := d.Write(in); err != nil {
			t.Fatal(err)
		}
		ev.waitStored(t, "Scale", 2)
		ev.waitProblem(t, "not valid text")
		if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ?`, dev.ID); got != 2 {
			t.Fatalf("readings=%d, want 2", got)
		}
		if got := MustCount(t, db, `SELECT count(*) FROM device_messages WHERE device_id = ? AND error LIKE '%gave no reading%' AND instr(raw, X'FF') > 0`, dev.ID); got < 1 {
			t.Fatal("the lines that gave no reading were not kept raw")
		}
	})
}
