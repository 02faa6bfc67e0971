package mqtt_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/healthpost/healthpost/devices/mqtt"
	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// Proxy relays TCP between the node's subscriber and mosquitto and reads the
// MQTT packets going through. When the node sends a PUBACK, the proxy calls
// Check with the PUBLISH it acknowledges before passing the PUBACK on, so a
// test sees the database at the moment the broker would learn of the ack.
type Proxy struct {
	Addr     string
	upstream string
	ln       net.Listener
	// Check runs for every PUBACK from the node, before it is forwarded.
	Check func(Reply)
	// Acks receives every publish the node acknowledged, in order.
	Acks chan Reply

	mu    sync.Mutex
	conns []net.Conn
	acked []Reply
}

// MustStartProxy listens on a free loopback port and relays to upstream.
func MustStartProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), upstream: upstream, ln: ln, Acks: make(chan Reply, 100000)}
	tb.Cleanup(func() {
		ln.Close()
		p.Drop()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			publishes := &sync.Map{} // packet ID -> Reply, for this connection
			go p.relay(u, c, func(r Reply) {
				if r.Type == packets.Publish {
					publishes.Store(r.PacketID, r)
				}
			})
			go p.relay(c, u, func(r Reply) {
				if r.Type != packets.Puback {
					return
				}
				v, ok := publishes.LoadAndDelete(r.PacketID)
				if !ok {
					return
				}
				pub := v.(Reply)
				if p.Check != nil {
					p.Check(pub)
				}
				p.mu.Lock()
				p.acked = append(p.acked, pub)
				p.mu.Unlock()
				p.Acks <- pub
			})
		}
	}()
	return p
}

// relay copies MQTT packets from src to dst, calling see for each before it
// is written on.
func (p *Proxy) relay(src, dst net.Conn, see func(Reply)) {
	defer dst.Close()
	defer src.Close()
	r := bufio.NewReader(src)
	for {
		h, err := r.ReadByte()
		if err != nil {
			return
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		rep := Reply{Type: h >> 4}
		switch rep.Type {
		case packets.Puback:
			rep.PacketID = binary.BigEndian.Uint16(body)
		case packets.Publish:
			tl := int(binary.BigEndian.Uint16(body))
			rep.Topic, rep.Retain = string(body[2:2+tl]), h&1 == 1
			rest := body[2+tl:]
			if (h>>1)&3 > 0 {
				rep.PacketID, rest = binary.BigEndian.Uint16(rest), rest[2:]
			}
			rep.Payload = rest
		}
		see(rep)
		out := append(binary.AppendUvarint([]byte{h}, n), body...)
		if _, err := dst.Write(out); err != nil {
			return
		}
	}
}

// Drop cuts every relayed connection, like a network failure.
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Acked returns the publishes acknowledged so far.
func (p *Proxy) Acked() []Reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Reply(nil), p.acked...)
}

// MustWaitAcks waits until the node acknowledged n more publishes.
func (p *Proxy) MustWaitAcks(tb testing.TB, n int) []Reply {
	tb.Helper()
	var out []Reply
	timeout := time.After(60 * time.Second)
	for len(out) < n {
		select {
		case r := <-p.Acks:
			out = append(out, r)
		case <-timeout:
			tb.Fatalf("%d of %d acknowledgements", len(out), n)
		}
	}
	return out
}

// messageID reads the envelope message_id of a publish.
func messageID(r Reply) string {
	var env struct {
		MessageID string `json:"message_id"`
	}
	json.Unmarshal(r.Payload, &env)
	return env.MessageID
}

// MustOpenSubscriber opens the node's subscriber to broker (host:port).
func MustOpenSubscriber(tb testing.TB, n *Node, broker string, configure ...func(*mqtt.Subscriber)) *mqtt.Subscriber {
	tb.Helper()
	s := mqtt.NewSubscriber(n.Store, n.Ingestor, n.Logs.Logger(), edge.MQTTConfig{Broker: "tcp://" + broker}, testNode)
	s.ConnectTimeout = 10 * time.Second
	for _, f := range configure {
		f(s)
	}
	if err := s.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// MustPublisher connects a plain paho client to mosquitto, as a device would.
func MustPublisher(tb testing.TB, addr, clientID string) paho.Client {
	tb.Helper()
	return MustPaho(tb, addr, clientID, Device{Device: edge.Device{Name: clientID}})
}

// MustCheckStoredAtAck makes the proxy verify, at each PUBACK, that the
// acknowledged envelope's first reading is already committed.
func MustCheckStoredAtAck(t *testing.T, p *Proxy, n *Node) {
	p.Check = func(r Reply) {
		id := messageID(r)
		if id == "" {
			return
		}
		if got := edgetest.MustCount(t, n.Raw, `SELECT count(*) FROM readings WHERE message_id = ?`, id+"/1"); got != 1 {
			t.Errorf("PUBACK for %s while %d readings committed, want 1", id, got)
		}
	}
}

func TestSubscriber_AckAfterCommit(t *testing.T) {
	m := MustStartMosquitto(t)
	n := MustOpenNode(t)
	pat := MustCreatePatient(t, n.Store, "Sunita Devi")
	d := MustCreateDevice(t, n.Store, "BP monitor 1", "json", "")
	p := MustStartProxy(t, m.Addr)
	MustCheckStoredAtAck(t, p, n)
	MustOpenSubscriber(t, n, p.Addr)
	n.Logs.MustWaitFor(t, "connected to the MQTT broker")

	pub := MustPublisher(t, m.Addr, "bp1")
	const count = 300
	var toks []paho.Token
	for i := range count {
		toks = append(toks, pub.Publish(mqtt.ReadingsTopic(testNode, d.Name), 1, false, Envelope(fmt.Sprintf("ext-%d", i), pat.LocalID, "8480-6", "128", "mm[Hg]")))
	}
	for _, tok := range toks {
		MustWait(t, tok)
	}
	// Ensure every message was acknowledged to the broker, each only after
	// its reading committed (checked by the proxy), and stored once.
	acks := p.MustWaitAcks(t, count)
	for i, a := range acks {
		if want := fmt.Sprintf("ext-%d", i); messageID(a) != want {
			t.Fatalf("ack %d for %s, want %s (in order)", i, messageID(a), want)
		}
	}
	if got := edgetest.MustCount(t, n.Raw, `SELECT count(*) FROM readings WHERE message_id LIKE 'ext-%' AND patient_id = ?`, pat.ID); got != count {
		t.Fatalf("readings=%d, want %d", got, count)
	}
}

func TestSubscriber_PersistentSession(t *testing.T) {
	m := MustStartMosquitto(t)
	n := MustOpenNode(t)
	d := MustCreateDevice(t, n.Store, "BP monitor 1", "json", "")
	p := MustStartProxy(t, m.Addr)
	MustCheckStoredAtAck(t, p, n)

	// The node subscribes once, then goes away (restart, power cut).
	s := MustOpenSubscriber(t, n, p.Addr)
	n.Logs.MustWaitFor(t, "connected to the MQTT broker")
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Devices keep publishing to the broker meanwhile.
	pub := MustPublisher(t, m.Addr, "bp1")
	const count = 100
	for i := range count {
		MustWait(t, pub.Publish(mqtt.ReadingsTopic(testNode, d.Name), 1, false, Envelope(fmt.Sprintf("away-%d", i), "", "8480-6", "128", "mm[Hg]")))
	}
	if got := edgetest.MustCount(t, n.Raw, `SELECT count(*) FROM readings`); got != 0 {
		t.Fatalf("readings=%d while the node was away", got)
	}

	// Ensure the broker kept them for the node's session and the node stores
	// them when it comes back.
	MustOpenSubscriber(t, n, p.Addr)
	p.MustWaitAcks(t, count)
	if got := edgetest.MustCount(t, n.Raw, `SELECT count(DISTINCT message_id) FROM readings WHERE message_id LIKE 'away-%'`); got != count {
		t.Fatalf("readings=%d, want %d", got, count)
	}

	// Ensure a dropped connection (not a clean close) is resumed by paho's
	// reconnect, and what was published meanwhile arrives.
	p.Drop()
	MustWait(t, pub.Publish(mqtt.ReadingsTopic(testNode, d.Name), 1, false, Envelope("after-drop", "", "8480-6", "121", "mm[Hg]")))
	for {
		if a := p.MustWaitAcks(t, 1); messageID(a[0]) == "after-drop" {
			break
		}
	}
}

func TestSubscriber_FailedCommit(t *testing.T) {
	m := MustStartMosquitto(t)
	n := MustOpenNode(t)
	d := MustCreateDevice(t, n.Store, "BP monitor 1", "json", "")
	p := MustStartProxy(t, m.Addr)
	MustCheckStoredAtAck(t, p, n)
	topic := mqtt.ReadingsTopic(testNode, d.Name)
	pub := MustPublisher(t, m.Addr, "bp1")
	MustExec(t, n, `CREATE TRIGGER fail BEFORE INSERT ON readings WHEN NEW.message_id LIKE 'sfail-%'
		BEGIN SELECT RAISE(ABORT, 'test: the disk is on fire'); END`)

	// Ensure a message whose commit failed is not acknowledged, and is
	// delivered again (and stored) when the node reconnects.
	t.Run("RedeliveredAfterRestart", func(t *testing.T) {
		s := MustOpenSubscriber(t, n, p.Addr, func(s *mqtt.Subscriber) { s.RedeliveryDelay = time.Hour })
		n.Logs.MustWaitFor(t, "connected to the MQTT broker")
		MustWait(t, pub.Publish(topic, 1, false, Envelope("sfail-1", "", "8480-6", "120", "mm[Hg]")))
		MustWait(t, pub.Publish(topic, 1, false, Envelope("ok-1", "", "8480-6", "120", "mm[Hg]")))
		n.Logs.MustWaitFor(t, "were not stored")
		// The message after it is stored and acknowledged meanwhile.
		if a := p.MustWaitAcks(t, 1); messageID(a[0]) != "ok-1" {
			t.Fatalf("acked %s, want ok-1", messageID(a[0]))
		}
		s.Close(context.Background())
		for _, a := range p.Acked() {
			if messageID(a) == "sfail-1" {
				t.Fatal("the failed message was acknowledged")
			}
		}
		if got := edgetest.MustCount(t, n.Raw, `SELECT count(*) FROM readings WHERE message_id LIKE 'sfail-%'`); got != 0 {
			t.Fatalf("readings=%d", got)
		}

		MustExec(t, n, `DROP TRIGGER fail`)
		MustOpenSubscriber(t, n, p.Addr)
		if a := p.MustWaitAcks(t, 1); messageID(a[0]) != "sfail-1" {
			t.Fatalf("redelivered %s, want sfail-1", messageID(a[0]))
		}
		if got := edgetest.MustCount(t, n.Raw, `SELECT count(*) FROM readings WHERE message_id = 'sfail-1/1'`); got != 1 {
			t.Fatalf("readings=%d, want 1", got)
		}
	})

	// Ensure the subscriber gets an unacknowledged message sent again by
	// itself, reconnecting after RedeliveryDelay.
	t.Run("RedeliveredByReconnect", func(t *testing.T) {
		MustExec(t, n, `CREATE TRIGGER fail BEFORE INSERT ON readings WHEN NEW.message_id LIKE 'sfail-%'
			BEGIN SELECT RAISE(ABORT, 'test: the disk is on fire'); END`)
		d2 := MustCreateDevice(t, n.Store, "BP monitor 2", "json", "") // its failures are not yet rate-limited in the log
		MustOpenSubscriber(t, n, p.Addr, func(s *mqtt.Subscriber) { s.RedeliveryDelay = 20 * time.Millisecond })
		n.Logs.MustWaitFor(t, "connected to the MQTT broker")
		MustWait(t, pub.Publish(mqtt.ReadingsTopic(testNode, d2.Name), 1, false, Envelope("sfail-2", "", "8480-6", "120", "mm[Hg]")))
		n.Logs.MustWaitFor(t, "readings from BP monitor 2 were not stored")
		MustExec(t, n, `DROP TRIGGER fail`)
		for {
			if a := p.MustWaitAcks(t, 1); messageID(a[0]) == "sfail-2" {
				break
			}
		}
		n.Logs.MustWaitFor(t, "so that it sends again")
		if got := edgetest.MustCount(t, n.Raw, `SELECT count(*) FROM readings WHERE message_id = 'sfail-2/1'`); got != 1 {
			t.Fatalf("readings=%d, want 1", got)
		}
	})
}

func TestSubscriber_BadInputAndStatus(t *testing.T) {
	m := MustStartMosquitto(t)
	n := MustOpenNode(t)
	d := MustCreateDevice(t, n.Store, "Oximeter 2", "auto", "")
	p := MustStartProxy(t, m.Addr)
	s := MustOpenSubscriber(t, n, p.Addr)
	n.Logs.MustWaitFor(t, "connected to the MQTT broker")
	pub := MustPublisher(t, m.Addr, "ox2")

	// Ensure garbage from a registered device and a message from a name the
	// registry does not know are acknowledged (no retry can fix them),
	// counted and logged, the garbage kept raw, and nothing else stored.
	MustWait(t, pub.Publish(mqtt.ReadingsTopic(testNode, d.Name), 1, false, []byte("\x00\x01 not json")))
	MustWait(t, pub.Publish(mqtt.ReadingsTopic(testNode, "Ghost 7"), 1, false, Envelope("g-1", "", "2708-6", "97", "%")))
	p.MustWaitAcks(t, 2)
	if got := edgetest.MustCount(t, n.Raw, `SELECT count(*) FROM readings`); got != 0 {
		t.Fatalf("readings=%d", got)
	}
	if got := edgetest.MustCount(t, n.Raw, `SELECT count(*) FROM device_messages WHERE device_id = ? AND error != ''`, d.ID); got != 1 {
		t.Fatalf("raw frames kept=%d, want 1", got)
	}
	n.Logs.MustWaitFor(t, `"Ghost 7", which is not a registered MQTT device`)
	if st := s.Stats(); st.Bad != 1 || st.Unknown != 1 || st.Stored != 0 {
		t.Fatalf("stats %+v", st)
	}

	// Ensure a device's retained status and its will reach the device page.
	dev := MustPaho(t, m.Addr, "ox2-dev", d, func(o *paho.ClientOptions) {
		o.SetWill(mqtt.StatusTopic(testNode, d.Name), mqtt.StatusOffline, 1, true)
	})
	MustWait(t, dev.Publish(mqtt.StatusTopic(testNode, d.Name), 1, true, mqtt.StatusOnline))
	n.Logs.MustWaitFor(t, "Oximeter 2 connected")
	p.MustWaitAcks(t, 1)
	dev.Disconnect(0) // a clean disconnect sends no will; publish it as the broker would
	MustWait(t, pub.Publish(mqtt.StatusTopic(testNode, d.Name), 1, true, mqtt.StatusOffline))
	n.Logs.MustWaitFor(t, "Oximeter 2 disconnected; check its Wi-Fi")
	p.MustWaitAcks(t, 1)
	if err := n.Ingestor.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := n.Store.Device(context.Background(), d.ID)
	if !strings.Contains(got.Status, "disconnected") || got.Errors != 1 {
		t.Fatalf("device %+v", got)
	}
}

func TestSubscriber_Login(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	out, err := exec.Command("mosquitto_passwd", "-c", "-b", passwd, "healthpost-node", "s3cret").CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_passwd: %v %s", err, out)
	}
	m := MustStartMosquitto(t, "allow_anonymous false", "password_file "+passwd)
	n := MustOpenNode(t)

	// Ensure a refused login fails Open with the keys to fix.
	s := mqtt.NewSubscriber(n.Store, n.Ingestor, n.Logs.Logger(), edge.MQTTConfig{Broker: "tcp://" + m.Addr, Username: "healthpost-node", Password: "wrong"}, testNode)
	if err := s.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "mqtt.password") {
		t.Fatalf("Open with a wrong password: %v", err)
	}
	s = mqtt.NewSubscriber(n.Store, n.Ingestor, n.Logs.Logger(), edge.MQTTConfig{Broker: "tcp://" + m.Addr, Username: "healthpost-node", Password: "s3cret"}, testNode)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	n.Logs.MustWaitFor(t, "connected to the MQTT broker")
}

func TestSubscriber_BrokerNotUpYet(t *testing.T) {
	n := MustOpenNode(t)
	addr := freePort(t)
	// Ensure Open succeeds while the broker is down (the node must serve its
	// web UI), and the subscriber connects once the broker is up.
	MustOpenSubscriber(t, n, addr, func(s *mqtt.Subscriber) { s.ConnectTimeout = time.Second })
	n.Logs.MustWaitFor(t, "cannot reach the MQTT broker")
	MustStartMosquittoAt(t, addr)
	n.Logs.MustWaitFor(t, "connected to the MQTT broker")
}
