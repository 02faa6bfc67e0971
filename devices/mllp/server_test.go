package mllp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/hl7"
	"github.com/healthpost/healthpost/devices/mllp"
	"github.com/healthpost/healthpost/edge"
)

func TestServer_ACKAfterCommit(t *testing.T) {
	s, db := MustOpenStore(t)
	patient := MustCreatePatient(t, s)
	dev := MustCreateDevice(t, s, "Ward monitor", devices.Settings{Listen: "127.0.0.1:0"})
	srv, st := MustOpenServer(t, s, nil)
	st.wait(t, "listening on 127.0.0.1:")
	c := mllp.NewClient(MustDial(t, srv, "Ward monitor"))

	// Ensure every AA arrives only when a separate connection to the
	// database already sees the message's readings and observations.
	for i := range 20 {
		id := fmt.Sprintf("BP-%04d", i)
		rep, err := c.Send(context.Background(), oru(id, patient, 110+i, 70+i/2))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rep.Code, hl7.AckAccept; got != want {
			t.Fatalf("ACK %s=%s (%s), want %s", id, got, rep.Text, want)
		}
		if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ? AND message_id LIKE ? AND state = 'assigned'`, dev.ID, id+"/%"); got != 2 {
			t.Fatalf("after the ACK of %s, %d readings committed, want 2", id, got)
		}
		if got := MustCount(t, db, `SELECT count(*) FROM observations o JOIN readings r ON r.observation_id = o.id WHERE r.message_id LIKE ?`, id+"/%"); got != 2 {
			t.Fatalf("after the ACK of %s, %d observations committed, want 2", id, got)
		}
	}
	st.wait(t, "receiving from 127.0.0.1")

	// Ensure a retransmission is acknowledged again and stored once.
	rep, err := c.Send(context.Background(), oru("BP-0003", patient, 113, 71))
	if err != nil || rep.Code != hl7.AckAccept {
		t.Fatalf("replay: %v %v", rep.Code, err)
	}
	if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ?`, dev.ID); got != 40 {
		t.Fatalf("readings=%d after a replay, want 40", got)
	}

	// Ensure Close flushes the counters into the registry.
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, err := s.Device(context.Background(), dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Frames != 21 || d.Readings != 40 || d.Errors != 0 || d.LastSeenAt.IsZero() {
		t.Fatalf("counters frames=%d readings=%d errors=%d last seen %v, want 21 40 0 and a time", d.Frames, d.Readings, d.Errors, d.LastSeenAt)
	}
}

func TestServer_HostileInput(t *testing.T) {
	s, db := MustOpenStore(t)
	dev := MustCreateDevice(t, s, "Ward monitor", devices.Settings{Listen: "127.0.0.1:0"})
	srv, _ := MustOpenServer(t, s, func(srv *mllp.Server) { srv.MaxFrameSize = 4096 })
	nc := MustDial(t, srv, "Ward monitor")
	c := mllp.NewClient(nc)
	c.ReplyTimeout = 10 * time.Second
	ctx := context.Background()
	errorsNow := func() int {
		return MustCount(t, db, `SELECT count(*) FROM device_messages WHERE device_id = ? AND error != ''`, dev.ID)
	}
	send := func(msg []byte, want hl7.AckCode) mllp.Reply {
		t.Helper()
		rep, err := c.Send(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Code != want {
			t.Fatalf("ACK=%s (%s), want %s", rep.Code, rep.Text, want)
		}
		return rep
	}

	// Ensure garbage and a frame cut short by a new start byte are counted
	// and kept raw, and the next message is still accepted.
	garbage := append([]byte("\x16\x03\x01\x02\x00GET / HTTP/1.1\r\n\r\n\xff\xfe"), 0x0B)
	garbage = append(garbage, []byte("MSH|^~\\&|BPMON||||20261122||ORU^R01|CUT-1|P|2.6\rOBX|1|NM|150021^MDC")...)
	if _, err := nc.Write(garbage); err != nil {
		t.Fatal(err)
	}
	send(oru("OK-1", "", 120, 80), hl7.AckAccept)
	if got := errorsNow(); got != 1 {
		t.Fatalf("raw problem frames=%d after garbage, want 1", got)
	}
	var raw []byte
	var problem string
	if err := db.QueryRow(`SELECT raw, error FROM device_messages WHERE device_id = ? AND error != ''`, dev.ID).Scan(&raw, &problem); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("GET / HTTP/1.1")) || !strings.Contains(problem, "not part of a complete HL7 message") {
		t.Fatalf("kept %q with problem %q", raw, problem)
	}

	// Ensure a message that is not an ORU^R01 is rejected (AR), one that
	// does not decode gets AE, both kept raw with the reason.
	send([]byte("MSH|^~\\&|X||||20261122||ADT^A01|ADT-1|P|2.6\rPID|||P-1\r"), hl7.AckReject)
	rep := send([]byte("MSH|^~\\&|X||||20261122||ORU^R01|BAD-TS|P|2.6\rOBR|1\rOBX|1|NM|150021^MDC||120|266016^MDC|||||R|||20261399\r"), hl7.AckError)
	if !strings.Contains(rep.Text, "OBX") {
		t.Fatalf("AE text %q does not name the segment", rep.Text)
	}
	if got := errorsNow(); got != 3 {
		t.Fatalf("raw problem frames=%d, want 3", got)
	}

	// Ensure a message whose codes the node does not know gets AE, and a
	// device retrying it does not store it again.
	unknown := []byte("MSH|^~\\&|X||||20261122||ORU^R01|UNK-1|P|2.6\rOBR|1\rOBX|1|NM|999999^MDC_NOTHING^MDC||1|%\r")
	send(unknown, hl7.AckError)
	send(unknown, hl7.AckError)
	if got := errorsNow(); got != 4 {
		t.Fatalf("raw problem frames=%d after a retried unknown message, want 4", got)
	}

	// Ensure an oversized frame is refused with AE, kept raw (capped), and
	// the stream resynchronises on the next message.
	big := append([]byte{0x0B}, oru("BIG-1", "", 120, 80)...)
	big = append(big, []byte("NTE|1||"+strings.Repeat("x", 8000)+"\r")...)
	big = append(big, 0x1C, 0x0D)
	if _, err := nc.Write(big); err != nil {
		t.Fatal(err)
	}
	// The AE for the oversized frame names no control ID: read it directly.
	r := hl7.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	ackFrame, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ackFrame, []byte("MSA|AE|")) {
		t.Fatalf("oversized frame answered %q", ackFrame)
	}
	c = mllp.NewClient(nc)
	send(oru("OK-2", "", 121, 81), hl7.AckAccept)
	if got := errorsNow(); got != 5 {
		t.Fatalf("raw problem frames=%d after an oversized frame, want 5", got)
	}

	// Ensure bytes that are not UTF-8 are read as Latin-1, not refused.
	latin := oru("LAT-1", "", 122, 82)
	latin = bytes.Replace(latin, []byte("BPMON"), []byte("BPM\xd6N"), 1)
	send(latin, hl7.AckAccept)

	// Ensure the counters say what happened.
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := s.Device(ctx, dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Errors != 5 || d.Readings != 6 || d.LastError == "" {
		t.Fatalf("errors=%d readings=%d last error %q, want 5, 6 and a sentence", d.Errors, d.Readings, d.LastError)
	}
	if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE device_id = ?`, dev.ID); got != 6 {
		t.Fatalf("readings=%d, want 6", got)
	}
}

func TestServer_StoreFailureAnswersAR(t *testing.T) {
	s, _ := MustOpenStore(t)
	MustCreateDevice(t, s, "Ward monitor", devices.Settings{Listen: "127.0.0.1:0"})
	srv, _ := MustOpenServer(t, s, nil)
	c := mllp.NewClient(MustDial(t, srv, "Ward monitor"))
	// Ensure that when the store cannot take the readings the device gets
	// AR, so it sends the message again, and never AA.
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Send(context.Background(), oru("BP-1", "", 120, 80))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Code != hl7.AckReject {
		t.Fatalf("ACK=%s (%s) with the store closed, want AR", rep.Code, rep.Text)
	}
}

func TestServer_Connections(t *testing.T) {
	// Ensure a device over its connection limit loses its quietest
	// connection, not the new one.
	t.Run("LimitClosesQuietest", func(t *testing.T) {
		s, _ := MustOpenStore(t)
		MustCreateDevice(t, s, "Ward monitor", devices.Settings{Listen: "127.0.0.1:0"})
		srv, _ := MustOpenServer(t, s, func(srv *mllp.Server) { srv.MaxConns = 1 })
		old := MustDial(t, srv, "Ward monitor")
		if rep, err := mllp.NewClient(old).Send(context.Background(), oru("A-1", "", 120, 80)); err != nil || rep.Code != hl7.AckAccept {
			t.Fatalf("first connection: %v %v", rep.Code, err)
		}
		fresh := MustDial(t, srv, "Ward monitor")
		if rep, err := mllp.NewClient(fresh).Send(context.Background(), oru("B-1", "", 120, 80)); err != nil || rep.Code != hl7.AckAccept {
			t.Fatalf("new connection: %v %v", rep.Code, err)
		}
		old.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := old.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("old connection read %v, want EOF (closed by the node)", err)
		}
	})

	// Ensure a silent connection is closed after the idle timeout and the
	// status says what to check.
	t.Run("IdleTimeout", func(t *testing.T) {
		s, _ := MustOpenStore(t)
		MustCreateDevice(t, s, "Ward monitor", devices.Settings{Listen: "127.0.0.1:0"})
		srv, st := MustOpenServer(t, s, func(srv *mllp.Server) { srv.IdleTimeout = 200 * time.Millisecond })
		c := MustDial(t, srv, "Ward monitor")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("silent connection read %v, want EOF", err)
		}
		st.wait(t, "Ward monitor stopped answering")
	})

	// Ensure the device closing its connection is reported, and it can
	// connect again.
	t.Run("Reconnect", func(t *testing.T) {
		s, _ := MustOpenStore(t)
		MustCreateDevice(t, s, "Ward monitor", devices.Settings{Listen: "127.0.0.1:0"})
		srv, st := MustOpenServer(t, s, nil)
		c := MustDial(t, srv, "Ward monitor")
		st.wait(t, "connected from 127.0.0.1")
		c.Close()
		st.wait(t, "Ward monitor disconnected; waiting for it on 127.0.0.1:")
		if rep, err := mllp.NewClient(MustDial(t, srv, "Ward monitor")).Send(context.Background(), oru("C-1", "", 120, 80)); err != nil || rep.Code != hl7.AckAccept {
			t.Fatalf("after reconnecting: %v %v", rep.Code, err)
		}
	})
}

func TestServer_Open(t *testing.T) {
	// Ensure device problems become statuses and never fail Open: a bad
	// codec, a shared address, a busy port (tried again until free).
	s, _ := MustOpenStore(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	MustCreateDevice(t, s, "Busy monitor", devices.Settings{Listen: busy.Addr().String()})
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	shared := free.Addr().String()
	free.Close()
	MustCreateDevice(t, s, "First", devices.Settings{Listen: shared})
	MustCreateDevice(t, s, "Second", devices.Settings{Listen: shared})
	d := edge.Device{Name: "Analyzer", Kind: "analyzer", Transport: "mllp", Codec: "astm", Settings: `{"listen":"127.0.0.1:0"}`}
	if err := s.CreateDevice(context.Background(), &d); err != nil {
		t.Fatal(err)
	}
	noAddr := edge.Device{Name: "No address", Kind: "monitor", Transport: "mllp", Codec: "hl7"}
	if err := s.CreateDevice(context.Background(), &noAddr); err != nil {
		t.Fatal(err)
	}
	srv, st := MustOpenServer(t, s, func(srv *mllp.Server) { srv.MinBackoff, srv.MaxBackoff = 10*time.Millisecond, 20*time.Millisecond })
	// Devices open in name order.
	st.wait(t, "Analyzer: Analyzer has codec astm, which does not run over MLLP")
	st.wait(t, "Busy monitor: the node cannot listen on "+busy.Addr().String())
	st.wait(t, "No address: No address has no listen address")
	st.wait(t, "Second: Second listens on "+shared+" like First; give each monitor its own port")
	busy.Close()
	st.wait(t, "Busy monitor: listening on "+busy.Addr().String())
	if rep, err := mllp.NewClient(MustDial(t, srv, "Busy monitor")).Send(context.Background(), oru("D-1", "", 120, 80)); err != nil || rep.Code != hl7.AckAccept {
		t.Fatalf("after the port came free: %v %v", rep.Code, err)
	}
}

func TestServer_CloseLosesNothingAcknowledged(t *testing.T) {
	// Ensure that when the node stops while monitors send at full speed,
	// every message that got AA is stored.
	s, db := MustOpenStore(t)
	for i := range 4 {
		MustCreateDevice(t, s, fmt.Sprintf("Monitor %d", i), devices.Settings{Listen: "127.0.0.1:0"})
	}
	srv, _ := MustOpenServer(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		acked []string
		err   error
	}
	done := make(chan result, 4)
	started := make(chan struct{}, 4)
	for i := range 4 {
		c := mllp.NewClient(MustDial(t, srv, fmt.Sprintf("Monitor %d", i)))
		c.ReplyTimeout = 5 * time.Second
		go func() {
			var r result
			for j := 0; ctx.Err() == nil; j++ {
				id := fmt.Sprintf("M%d-%05d", i, j)
				rep, err := c.Send(ctx, oru(id, "", 100+j%50, 70))
				if err != nil {
					break
				}
				if rep.Code != hl7.AckAccept {
					r.err = fmt.Errorf("%s answered %s", id, rep.Code)
					break
				}
				r.acked = append(r.acked, id)
				if j == 20 {
					started <- struct{}{}
				}
			}
			done <- r
		}()
	}
	for range 4 {
		<-started
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	for range 4 {
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		for _, id := range r.acked {
			if got := MustCount(t, db, `SELECT count(*) FROM readings WHERE message_id LIKE ?`, id+"/%"); got != 2 {
				t.Fatalf("%s got AA but %d of its 2 readings are stored", id, got)
			}
		}
	}
}
