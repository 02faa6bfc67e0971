package mqtt_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"
	"modernc.org/sqlite"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/mqtt"
	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// testNode is the node ID every test uses.
const testNode = "phc-rampur"

func TestMain(m *testing.M) {
	// hp_test_gate(message_id) is called by a trigger some tests install on
	// readings; it blocks while a test holds the gate, so a test can hold a
	// commit half-way (registered before any store opens a connection).
	sqlite.MustRegisterScalarFunction("hp_test_gate", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if g := gate.Load(); g != nil {
			(*g)(fmt.Sprint(args[0]))
		}
		return nil, nil
	})
	if path := os.Getenv(childEnv); path != "" {
		brokerChild(path)
		return
	}
	os.Exit(m.Run())
}

var gate atomic.Pointer[func(messageID string)]

// Node is a store, an ingestor and their raw database, for one test.
type Node struct {
	Path     string
	Store    *edge.Store
	Ingestor *devices.Ingestor
	Raw      *sql.DB
	Logs     *LogSink
}

// MustOpenNode opens a store on a new file with background checks off.
func MustOpenNode(tb testing.TB) *Node {
	tb.Helper()
	return MustOpenNodeAt(tb, filepath.Join(tb.TempDir(), edge.DBFileName))
}

// MustOpenNodeAt opens the store at path, closed when the test ends.
func MustOpenNodeAt(tb testing.TB, path string) *Node {
	tb.Helper()
	s := edgetest.NewTestStore(path)
	if err := s.Open(context.Background()); err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	sink := NewLogSink()
	return &Node{Path: path, Store: s, Ingestor: devices.NewIngestor(s, sink.Logger()), Raw: edgetest.MustRawDB(tb, path), Logs: sink}
}

// Device is a registered MQTT device and its token.
type Device struct {
	edge.Device
	Token string
}

// MustCreateDevice registers an MQTT device with codec (json, senml or
// auto) and settings, and gives it a token.
func MustCreateDevice(tb testing.TB, s *edge.Store, name, codec, settings string) Device {
	tb.Helper()
	d := edge.Device{Name: name, Kind: "bp-monitor", Transport: "mqtt", Codec: codec, Settings: settings}
	if err := s.CreateDevice(edgetest.Clerk(), &d); err != nil {
		tb.Fatalf("create device: %v", err)
	}
	token, err := s.NewDeviceSecret(context.Background(), d.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return Device{Device: d, Token: token}
}

// MustCreatePatient registers a patient and returns it (LocalID P-00000n).
func MustCreatePatient(tb testing.TB, s *edge.Store, name string) *edge.Patient {
	tb.Helper()
	p := &edge.Patient{Name: name, Gender: "F", BirthDate: "1990-04-12", Village: "Rampur"}
	if err := s.CreatePatient(edgetest.Clerk(), p); err != nil {
		tb.Fatalf("create patient: %v", err)
	}
	return p
}

// MustOpenBroker opens an embedded broker on a free loopback port.
func MustOpenBroker(tb testing.TB, n *Node, configure ...func(*mqtt.Broker)) *mqtt.Broker {
	tb.Helper()
	b := mqtt.NewBroker(n.Store, n.Ingestor, n.Logs.Logger(), edge.MQTTConfig{Listen: "127.0.0.1:0"}, testNode)
	for _, f := range configure {
		f(b)
	}
	if err := b.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close(context.Background()) })
	return b
}

// Envelope is a one-reading envelope payload.
func Envelope(messageID, patient, loinc, value, unit string) []byte {
	p := ""
	if patient != "" {
		p = fmt.Sprintf(`"patient":%q,`, patient)
	}
	return fmt.Appendf(nil, `{"message_id":%q,%s"time":"2026-03-14T10:16:00+05:30","readings":[{"loinc":%q,"value":%s,"unit":%q}]}`,
		messageID, p, loinc, value, unit)
}

// MustPaho connects a paho client as device d to addr (host:port).
func MustPaho(tb testing.TB, addr, clientID string, d Device, configure ...func(*paho.ClientOptions)) paho.Client {
	tb.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetUsername(d.Name).SetPassword(d.Token).SetAutoReconnect(false).SetConnectRetry(false).
		SetProtocolVersion(4).SetConnectTimeout(10 * time.Second)
	for _, f := range configure {
		f(opts)
	}
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		tb.Fatalf("connect %s: %v", d.Name, tok.Error())
	}
	tb.Cleanup(func() { c.Disconnect(0) })
	return c
}

// MustWait waits for a paho token and fails on its error.
func MustWait(tb testing.TB, tok paho.Token) {
	tb.Helper()
	if !tok.WaitTimeout(20 * time.Second) {
		tb.Fatal("token did not complete")
	}
	if err := tok.Error(); err != nil {
		tb.Fatal(err)
	}
}

// LogSink is a slog handler that keeps every record, so tests can wait for
// a log line (a real event of the code under test) instead of sleeping.
type LogSink struct {
	mu      sync.Mutex
	records []string
	changed chan struct{}
}

func NewLogSink() *LogSink { return &LogSink{changed: make(chan struct{})} }

func (l *LogSink) Logger() *slog.Logger { return slog.New(sinkHandler{l: l}) }

type sinkHandler struct {
	l     *LogSink
	attrs []slog.Attr
}

func (h sinkHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return sinkHandler{l: h.l, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}
func (h sinkHandler) WithGroup(string) slog.Handler { return h }
func (h sinkHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.l.mu.Lock()
	h.l.records = append(h.l.records, b.String())
	close(h.l.changed)
	h.l.changed = make(chan struct{})
	h.l.mu.Unlock()
	return nil
}

// All returns every line logged so far.
func (l *LogSink) All() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.records, "\n")
}

// MustWaitFor waits until a logged line contains substr, and returns it.
func (l *LogSink) MustWaitFor(tb testing.TB, substr string) string {
	tb.Helper()
	timeout := time.After(30 * time.Second)
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.records); seen++ {
			if strings.Contains(l.records[seen], substr) {
				line := l.records[seen]
				l.mu.Unlock()
				return line
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			tb.Fatalf("no log line with %q; logged:\n%s", substr, l.All())
		}
	}
}

// RawClient speaks MQTT over a bare TCP connection, so a test sees every
// packet the broker sends, in order: that the broker answered a PINGREQ
// sent after a PUBLISH without a PUBACK before it proves no PUBACK was sent
// (the broker handles a client's packets one at a time, in order).
type RawClient struct {
	tb      testing.TB
	conn    net.Conn
	r       *bufio.Reader
	version byte
}

// Reply is one packet from the broker.
type Reply struct {
	Type     byte
	PacketID uint16
	Code     byte // CONNACK return code, v5 PUBACK reason code
	Topic    string
	Payload  []byte
	Retain   bool
}

// MustDialRaw connects a bare TCP connection to addr.
func MustDialRaw(tb testing.TB, addr string, version byte) *RawClient {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &RawClient{tb: tb, conn: conn, r: bufio.NewReader(conn), version: version}
}

func (c *RawClient) send(pk packets.Packet, encode func(*packets.Packet, *bytes.Buffer) error) {
	c.tb.Helper()
	pk.ProtocolVersion = c.version
	var buf bytes.Buffer
	if err := encode(&pk, &buf); err != nil {
		c.tb.Fatal(err)
	}
	if _, err := c.conn.Write(buf.Bytes()); err != nil {
		c.tb.Fatal(err)
	}
}

// Connect sends CONNECT and returns the CONNACK code (0 is accepted).
func (c *RawClient) Connect(clientID, user, pass string, will *packets.Packet) byte {
	c.tb.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: packets.ConnectParams{
		ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Keepalive: 60, Clean: true,
		UsernameFlag: user != "", Username: []byte(user), PasswordFlag: pass != "", Password: []byte(pass)}}
	if will != nil {
		pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload = true, will.TopicName, will.Payload
		pk.Connect.WillQos, pk.Connect.WillRetain = will.FixedHeader.Qos, will.FixedHeader.Retain
	}
	c.send(pk, (*packets.Packet).ConnectEncode)
	r, err := c.Next()
	if err != nil {
		return 0xff // closed without a CONNACK
	}
	if r.Type != packets.Connack {
		c.tb.Fatalf("got packet type %d, want CONNACK", r.Type)
	}
	return r.Code
}

// Publish sends a PUBLISH.
func (c *RawClient) Publish(id uint16, qos byte, topic string, payload []byte, dup bool) {
	c.tb.Helper()
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Dup: dup}, PacketID: id,
		TopicName: topic, Payload: payload}, (*packets.Packet).PublishEncode)
}

// Subscribe sends a SUBSCRIBE for one filter at QoS 1.
func (c *RawClient) Subscribe(id uint16, filter string) {
	c.tb.Helper()
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id,
		Filters: packets.Subscriptions{{Filter: filter, Qos: 1}}}, (*packets.Packet).SubscribeEncode)
}

// Ping sends PINGREQ.
func (c *RawClient) Ping() {
	c.tb.Helper()
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}, (*packets.Packet).PingreqEncode)
}

// Puback acknowledges a publish the broker sent.
func (c *RawClient) Puback(id uint16) {
	c.tb.Helper()
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id}, (*packets.Packet).PubackEncode)
}

// Next reads the next packet from the broker. A read deadline guards
// against a hung test; it is not how tests synchronise.
func (c *RawClient) Next() (Reply, error) {
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	h, err := c.r.ReadByte()
	if err != nil {
		return Reply{}, err
	}
	n, err := binary.ReadUvarint(c.r) // MQTT's remaining length is a base-128 varint
	if err != nil {
		return Reply{}, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return Reply{}, err
	}
	r := Reply{Type: h >> 4}
	switch r.Type {
	case packets.Connack:
		r.Code = body[1]
	case packets.Puback, packets.Suback:
		r.PacketID = binary.BigEndian.Uint16(body)
		if len(body) > 2 {
			r.Code = body[2]
			if r.Type == packets.Suback && c.version == 5 {
				r.Code = body[len(body)-1]
			}
		}
	case packets.Publish:
		tl := int(binary.BigEndian.Uint16(body))
		r.Topic, body = string(body[2:2+tl]), body[2+tl:]
		r.Retain = h&1 == 1
		if (h>>1)&3 > 0 {
			r.PacketID, body = binary.BigEndian.Uint16(body), body[2:]
		}
		if c.version == 5 {
			pl, k := binary.Uvarint(body)
			body = body[k+int(pl):]
		}
		r.Payload = body
	}
	return r, nil
}

// MustNotAcked proves that none of the publishes with the packet IDs in bad
// got a success PUBACK: it publishes a valid reading with packet ID probe
// and reads up to its PUBACK, failing on a success PUBACK for any of bad on
// the way. The broker writes one connection's readings PUBACKs in the order
// the publishes arrived, so none can follow. Failure PUBACKs (MQTT 5 reason
// codes) are returned.
func (c *RawClient) MustNotAcked(topic string, probe uint16, bad ...uint16) []Reply {
	c.tb.Helper()
	c.Publish(probe, 1, topic, Envelope(fmt.Sprintf("probe-%d-%d", probe, time.Now().UnixNano()), "", "8867-4", "72", "/min"), false)
	var failed []Reply
	for {
		r := c.MustNext()
		if r.Type != packets.Puback {
			continue
		}
		if r.PacketID == probe {
			if r.Code != 0 {
				c.tb.Fatalf("probe PUBACK %#x", r.Code)
			}
			return failed
		}
		if slices.Contains(bad, r.PacketID) {
			if r.Code < 0x80 {
				c.tb.Fatalf("PUBACK %d with success code %#x", r.PacketID, r.Code)
			}
			failed = append(failed, r)
		}
	}
}

// Pipelines are the two ways the broker can acknowledge: committing inside
// mochi's hook (1) and the per-connection pipeline (the default).
var Pipelines = []int{1, mqtt.DefaultPipeline}

// MustNext reads the next packet and fails if the connection ended.
func (c *RawClient) MustNext() Reply {
	c.tb.Helper()
	r, err := c.Next()
	if err != nil {
		c.tb.Fatalf("read from broker: %v", err)
	}
	return r
}

// MustConnect connects as device d and fails unless accepted.
func MustConnectRaw(tb testing.TB, addr string, version byte, clientID string, d Device) *RawClient {
	tb.Helper()
	c := MustDialRaw(tb, addr, version)
	if code := c.Connect(clientID, d.Name, d.Token, nil); code != 0 {
		tb.Fatalf("CONNACK %#x for %s", code, d.Name)
	}
	return c
}

// freePort returns a loopback address with a port that was free a moment ago.
func freePort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Mosquitto is a real mosquitto broker run by a test.
type Mosquitto struct {
	Addr string
	cmd  *exec.Cmd
}

// MustStartMosquitto starts mosquitto on a free loopback port with a config
// file written here (plus extra lines), and waits for it to log that it runs.
func MustStartMosquitto(tb testing.TB, extra ...string) *Mosquitto {
	tb.Helper()
	return MustStartMosquittoAt(tb, freePort(tb), extra...)
}

// MustStartMosquittoAt starts mosquitto listening on addr.
func MustStartMosquittoAt(tb testing.TB, addr string, extra ...string) *Mosquitto {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, err := os.Stat(bin); err != nil {
			tb.Fatal("mosquitto is not installed: apt-get install mosquitto (.ci/run does)")
		}
	}
	dir := tb.TempDir()
	host, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf("listener %s %s\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\npersistence false\nmax_queued_messages 100000\nmax_inflight_messages 100\n%s\n",
		port, host, strings.Join(extra, "\n"))
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	if !strings.Contains(conf, "allow_anonymous") {
		conf += "allow_anonymous true\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	m := &Mosquitto{Addr: addr, cmd: cmd}
	tb.Cleanup(m.Stop)
	ready := make(chan struct{})
	var log strings.Builder
	var logMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if strings.Contains(sc.Text(), "running") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-ready:
	case err := <-exited:
		logMu.Lock()
		defer logMu.Unlock()
		tb.Fatalf("mosquitto exited: %v\n%s", err, log.String())
	case <-time.After(30 * time.Second):
		tb.Fatal("mosquitto did not start")
	}
	return m
}

// Stop kills mosquitto.
func (m *Mosquitto) Stop() {
	if m.cmd.Process != nil {
		m.cmd.Process.Kill()
	}
}
