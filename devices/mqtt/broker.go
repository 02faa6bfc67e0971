package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/senml"
	"github.com/healthpost/healthpost/edge"
)

// Defaults for the broker's settings.
const (
	DefaultListen = ":1883"
	// DefaultIngestTimeout bounds how long a publish waits for its readings
	// to commit. Past it the publish is refused (no PUBACK) and the device
	// sends it again later; a replay is recognised by its message ID.
	DefaultIngestTimeout = 30 * time.Second
	// DefaultMaxPacketSize is the largest MQTT packet accepted: a full
	// payload plus room for the topic and properties.
	DefaultMaxPacketSize = senml.MaxPayload + 4096
	// DefaultMaxClients caps connections, so a broken device reconnecting in
	// a loop cannot exhaust the node's memory.
	DefaultMaxClients = 500
	// DefaultSessionExpiry is how long the broker keeps the session of a
	// device that went away (its unacknowledged messages, its subscriptions).
	DefaultSessionExpiry = 24 * time.Hour
	// DefaultLogInterval is how often one device's repeating problem is logged.
	DefaultLogInterval = time.Minute
	// DefaultPipeline lets a device have as many publishes committing as a
	// device typically keeps in flight (paho and most firmware: 10 to 20, and
	// up to the broker's Receive Maximum).
	DefaultPipeline = 64
)

// MQTT 5 reason codes of a negative PUBACK, for payloads that resending will
// not fix. MQTT 3.1.1 has no negative PUBACK: those payloads get none.
var (
	codePayloadInvalid = packets.ErrPayloadFormatInvalid                                // 0x99
	codeNoKnownCode    = packets.Code{Code: 0x83, Reason: "no value with a known code"} // implementation specific error
)

// Broker is the embedded MQTT broker devices publish to. Devices log in with
// their registered name and token; each may publish and subscribe only under
// its own topic prefix. A QoS 1 publish to a device's readings topic is
// decoded and its readings committed inside mochi's OnPublish hook, so the
// PUBACK, which mochi writes after the hook returns, follows the commit
// (invariant 1). A publish whose readings did not commit gets no PUBACK.
type Broker struct {
	// Listen is the TCP address devices connect to.
	Listen string
	// NodeID is this node's ID, the second level of every topic.
	NodeID string
	// IngestTimeout bounds the wait for a publish's commit.
	IngestTimeout time.Duration
	// MaxPacketSize is the largest packet accepted, in bytes.
	MaxPacketSize int
	// MaxClients caps simultaneous connections.
	MaxClients int
	// SessionExpiry is how long a departed device's session is kept.
	SessionExpiry time.Duration
	// LogInterval is how often one device's repeating problem is logged.
	LogInterval time.Duration
	// Pipeline is how many QoS 1 readings publishes of one connection may be
	// committing at once. At 1 each is committed inside mochi's OnPublish
	// hook and mochi writes its PUBACK after the hook returns. Above 1 the
	// hook hands the publish to a per-connection pipeline and returns
	// packets.ErrRejectPacket, so mochi writes nothing; the pipeline writes
	// each PUBACK itself after that publish committed, in the order the
	// publishes arrived. Either way no PUBACK precedes its commit; the
	// pipeline lets one device's publishes share a group commit.
	Pipeline int

	Store    *edge.Store
	Ingestor *devices.Ingestor
	Logger   *slog.Logger

	server  *mochi.Server
	tcp     *listeners.TCP
	limit   *limiter
	closing atomic.Bool

	// ctx ends when Close gives up waiting; commits in progress then stop
	// waiting and their publishes are refused.
	ctx    context.Context
	cancel context.CancelFunc

	acks sync.WaitGroup // pipelines' goroutines (commits and acknowledgements)
	// inflight counts readings publishes accepted and not yet answered;
	// Close lets them finish before it disconnects the devices. Add only
	// under mu while open.
	inflight sync.WaitGroup

	mu      sync.Mutex
	closed  bool                           // set under mu by Close: readings publishes are refused
	devices map[string]*deviceInfo         // by device name = MQTT username
	live    map[*mochi.Client]*ackPipeline // connections whose session was established
	online  map[string]int                 // live connections per device name
}

// ackPipeline holds one connection's QoS 1 readings publishes in arrival
// order until each has committed, and writes their PUBACKs in that order.
type ackPipeline struct {
	queue chan *pendingAck
	// answering is set while a publish committed inside the hook awaits
	// mochi's answer; only the connection's read goroutine touches it.
	answering bool
}

// pendingAck is one publish in a pipeline. Its outcome is known when it is
// queued, or once its readings committed (queued), or once done is closed.
type pendingAck struct {
	packetID uint16
	device   *deviceInfo
	deadline time.Time // the publish is refused if its readings have not committed by then

	queued  *devices.Queued // readings in the store's group commit, or nil
	done    chan struct{}   // closed by the goroutine that sets outcome, or nil
	outcome outcome
}

// NewBroker returns an embedded broker for cfg.Listen (DefaultListen when
// empty) serving node nodeID. Adjust its fields, then Open it.
func NewBroker(store *edge.Store, in *devices.Ingestor, logger *slog.Logger, cfg edge.MQTTConfig, nodeID string) *Broker {
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	return &Broker{
		Listen:        listen,
		NodeID:        nodeID,
		IngestTimeout: DefaultIngestTimeout,
		MaxPacketSize: DefaultMaxPacketSize,
		MaxClients:    DefaultMaxClients,
		SessionExpiry: DefaultSessionExpiry,
		LogInterval:   DefaultLogInterval,
		Pipeline:      DefaultPipeline,
		Store:         store,
		Ingestor:      in,
		Logger:        logger.With(edge.LogKeySubsystem, "mqtt"),
	}
}

// Open starts listening (synchronously, so a busy port fails Open) and
// serves devices in the background.
func (b *Broker) Open(ctx context.Context) error {
	if !validNodeID(b.NodeID) {
		return fmt.Errorf("MQTT broker: node ID %q cannot be a topic level; set facility.node_id without / + #", b.NodeID)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.limit = &limiter{interval: b.LogInterval}
	b.devices = map[string]*deviceInfo{}
	b.live = map[*mochi.Client]*ackPipeline{}
	b.online = map[string]int{}

	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(b.MaxPacketSize)
	caps.MaximumClients = int64(b.MaxClients)
	caps.MaximumSessionExpiryInterval = uint32(b.SessionExpiry / time.Second)
	caps.MaximumMessageExpiryInterval = int64(b.SessionExpiry / time.Second)
	// Devices receive little (their own status, commands later): a short
	// queue of pending writes per connection instead of mochi's 8192 keeps
	// 50 connections' memory small.
	caps.MaximumClientWritesPending = 256
	srv := mochi.New(&mochi.Options{
		Capabilities: caps,
		InlineClient: true, // the broker publishes devices' retained status itself
		Logger:       slog.New(brokerLogHandler{b.Logger.Handler()}),
	})
	if err := srv.AddHook(&hook{b: b}, nil); err != nil {
		b.cancel()
		return fmt.Errorf("MQTT broker: %w", err)
	}
	b.tcp = listeners.NewTCP(listeners.Config{ID: "devices", Address: b.Listen})
	if err := srv.AddListener(b.tcp); err != nil {
		b.cancel()
		return fmt.Errorf("MQTT broker: listen on %s: %w; is another MQTT broker (mosquitto?) running? Stop it, or set mqtt.listen to another address", b.Listen, err)
	}
	b.server = srv // the hooks use it once clients connect
	if err := srv.Serve(); err != nil {
		srv.Close()
		b.server = nil
		b.cancel()
		return fmt.Errorf("MQTT broker: %w", err)
	}
	b.Logger.Info("MQTT broker listening", "addr", b.Addr(), "readings_topic", ReadingsTopic(b.NodeID, "<device name>"))
	return nil
}

// Addr is the address the broker listens on (with the real port when Listen
// asked for port 0).
func (b *Broker) Addr() string { return b.tcp.Address() }

// Close stops the broker; a second Close does nothing. Readings publishes
// arriving from now on get no PUBACK (devices send them again to the next
// node process); those already accepted finish their commit and get their
// PUBACK; then every device is disconnected. If ctx ends first, commits
// still waiting stop waiting and their publishes get no PUBACK.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.server == nil || b.closed {
		b.mu.Unlock()
		return nil // never opened, or already closed
	}
	b.closed = true
	b.mu.Unlock()
	b.closing.Store(true)
	b.Logger.Info("stopping the MQTT broker: finishing the readings already received")
	b.waitOr(ctx, b.inflight.Wait)
	b.waitOr(ctx, func() {
		// mochi's own sweep of the listener's clients at Close
		// (Clients.GetByListener, v2.7.9) read-locks the clients twice, and
		// deadlocks when a device leaving at that moment asks for the write
		// lock in between. Closing the listener with a sweep of our own
		// first means server.Close finds it closed and skips its own.
		b.server.Listeners.Close(b.tcp.ID(), b.disconnectAll)
		b.server.Close() // waits for every client's goroutine, so for its hook
	})
	b.waitOr(ctx, b.acks.Wait) // pipelines end once their connection did
	b.cancel()
	return nil
}

// disconnectAll disconnects every client of the listener, as mochi's
// closeListenerClients does, taking the clients with one read lock.
func (b *Broker) disconnectAll(listener string) {
	for _, cl := range b.server.Clients.GetAll() {
		if cl.Net.Listener == listener && !cl.Closed() {
			_ = b.server.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// waitOr runs wait; if ctx ends first, it cancels the broker's own context
// (so commits stop waiting) and then lets wait finish.
func (b *Broker) waitOr(ctx context.Context, wait func()) {
	done := make(chan struct{})
	go func() {
		wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		b.cancel()
		<-done
	}
}

// accept counts a readings publish of cl in flight and returns cl's
// pipeline, unless the broker is closing or cl has no session yet (nil).
func (b *Broker) accept(cl *mochi.Client) *ackPipeline {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.live[cl]
	if b.closed || p == nil {
		return nil
	}
	b.inflight.Add(1)
	return p
}

// device returns what the broker knows of the device logged in as cl.
func (b *Broker) device(cl *mochi.Client) *deviceInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.devices[string(cl.Properties.Username)]
}

// publishStatus sets a device's retained status topic.
func (b *Broker) publishStatus(name, status string) {
	if b.closing.Load() {
		return
	}
	if err := b.server.Publish(StatusTopic(b.NodeID, name), []byte(status), true, 1); err != nil {
		b.Logger.Warn("could not publish device status", edge.LogKeyDevice, name, "err", err)
	}
}

// hook is the broker's mochi hook: login, topic permissions, readings and
// device status.
type hook struct {
	mochi.HookBase
	b *Broker
}

func (h *hook) ID() string { return "healthpost-devices" }

func (h *hook) Provides(event byte) bool {
	return bytes.Contains([]byte{
		mochi.OnConnectAuthenticate,
		mochi.OnACLCheck,
		mochi.OnPublish,
		mochi.OnSessionEstablished,
		mochi.OnDisconnect,
		mochi.OnPacketProcessed,
	}, []byte{event})
}

// Init takes no configuration: everything comes from the Broker.
func (h *hook) Init(config any) error {
	if config != nil {
		return errors.New("the healthpost devices hook takes no configuration")
	}
	return nil
}

// OnConnectAuthenticate lets a device in when its username is a registered,
// enabled MQTT device and its password that device's token. Anonymous
// connections are refused. A last will must stay under the device's prefix
// (mochi publishes wills without an ACL check), and a client ID held by
// another device's session cannot be taken over.
func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	b := h.b
	remote := remoteIP(cl)
	user := string(pk.Connect.Username)
	refuse := func(key, msg string, args ...any) bool {
		b.limit.log(b.Logger, slog.LevelWarn, "refuse:"+key+":"+remote, msg, append(args, "remote", remote)...)
		return false
	}
	if user == "" {
		return refuse("anonymous", "MQTT connection without a username refused; a device logs in with its registered name and its token (shown by healthpost device add)")
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	dev, err := b.Store.AuthenticateDevice(ctx, user, string(pk.Connect.Password))
	if err != nil {
		return refuse("login", "MQTT login refused: no enabled device with that name and token; check the device's settings or issue a new token", edge.LogKeyDevice, clip(user, 64))
	}
	info, err := loadDevice(dev)
	if err != nil {
		return refuse("device:"+dev.Name, "MQTT login refused: "+err.Error(), edge.LogKeyDevice, dev.Name)
	}
	prefix := DevicePrefix(b.NodeID, dev.Name)
	if pk.Connect.WillFlag && !strings.HasPrefix(pk.Connect.WillTopic, prefix) {
		return refuse("will:"+dev.Name, fmt.Sprintf("MQTT login refused: %s set its last will on a topic outside its own; use %s", dev.Name, StatusTopic(b.NodeID, dev.Name)), edge.LogKeyDevice, dev.Name)
	}
	if id := pk.Connect.ClientIdentifier; id != "" {
		if other, ok := b.server.Clients.Get(id); ok && string(other.Properties.Username) != user {
			return refuse("clientid:"+dev.Name, fmt.Sprintf("MQTT login refused: %s used a client ID that another device holds; give each device its own client ID", dev.Name), edge.LogKeyDevice, dev.Name)
		}
	}
	info.prefix, info.readings = prefix, ReadingsTopic(b.NodeID, dev.Name)
	b.mu.Lock()
	b.devices[dev.Name] = info
	b.mu.Unlock()
	return true
}

// OnACLCheck allows a device to publish and subscribe only under
// healthpost/<node>/devices/<its name>/, and to subscribe to the other
// devices' status topics.
func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	d := h.b.device(cl)
	if d == nil {
		return false
	}
	if strings.HasPrefix(topic, d.prefix) {
		return true
	}
	if !write {
		// Any device may watch which devices are online (a dashboard
		// display); status is no PHI.
		if topic == StatusFilter(h.b.NodeID) {
			return true
		}
		if _, level, ok := parseDeviceTopic(h.b.NodeID, topic); ok && level == StatusLevel && !strings.ContainsAny(topic, "+#") {
			return true
		}
	}
	verb := "subscribe to"
	if write {
		verb = "publish to"
	}
	h.b.limit.log(h.b.Logger, slog.LevelWarn, "acl:"+d.dev.Name, fmt.Sprintf("%s tried to %s a topic outside its own; it may use only %s#", d.dev.Name, verb, DevicePrefix(h.b.NodeID, d.dev.Name)), edge.LogKeyDevice, d.dev.Name)
	return false
}

// OnPublish acknowledges a publish to a device's readings topic only after
// its readings committed. mochi's processPublish (server.go) calls this hook
// and only after it returns writes the PUBACK; on packets.ErrRejectPacket it
// returns without writing any. So, at Pipeline 1:
//
//   - readings committed: CodeSuccessIgnore, a normal PUBACK; the reading is
//     not retained nor passed to subscribers (it is PHI and lives in the
//     store);
//   - not committed: ErrRejectPacket, no PUBACK on MQTT 3.1.1 or 5, and the
//     device sends it again;
//   - unreadable or no known code (counted, kept raw): on MQTT 5 a PUBACK
//     with a failure reason code, so the device does not resend it; on
//     3.1.1, which has no negative PUBACK, none (a plain error would be a
//     success PUBACK there).
//
// Above Pipeline 1, a QoS 1 publish goes to its connection's pipeline and
// the hook returns ErrRejectPacket without waiting for the commit; writeAcks
// then writes the same answers, after the commit, in arrival order.
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	b := h.b
	d := b.device(cl)
	if d == nil {
		return pk, packets.ErrRejectPacket
	}
	if pk.TopicName != d.readings {
		return pk, nil // status and other topics under the device's prefix flow as usual
	}
	// nil: closing (the device sends it again later), or, which cannot
	// happen, a publish before the session was established.
	p := b.accept(cl)
	if p == nil {
		return pk, packets.ErrRejectPacket
	}
	payload := bytes.Clone(pk.Payload) // the store keeps the raw frame
	dec := decode(d, payload, time.Now())
	if pk.FixedHeader.Qos == 1 && b.Pipeline > 1 {
		b.pipelinePublish(p, d, pk.PacketID, payload, dec)
		return pk, packets.ErrRejectPacket // mochi writes nothing; writeAcks will
	}
	p.answering = true // OnPacketProcessed ends it once mochi wrote the answer
	o := b.save(d, payload, dec)
	switch {
	case o == stored:
		return pk, packets.CodeSuccessIgnore
	case o == notStored || pk.FixedHeader.Qos == 0:
		return pk, packets.ErrRejectPacket
	case cl.Properties.ProtocolVersion == 5:
		return pk, failureCode(o)
	}
	return pk, packets.ErrRejectPacket
}

// pipelinePublish hands a decoded QoS 1 publish to the store's group commit
// without waiting for it, and queues its answer on the connection's
// pipeline, where writeAcks waits for the commit. No goroutine waits per
// publish. A payload that could not be decoded is counted and kept raw by a
// goroutine of its own, so that the write does not hold up the connection.
func (b *Broker) pipelinePublish(p *ackPipeline, d *deviceInfo, packetID uint16, payload []byte, dec decoded) {
	pa := &pendingAck{packetID: packetID, device: d, deadline: time.Now().Add(b.IngestTimeout)}
	switch {
	case dec.err != nil:
		pa.done = make(chan struct{})
		b.acks.Add(1)
		go func() {
			defer b.acks.Done()
			defer close(pa.done)
			pa.outcome = b.save(d, payload, dec)
		}()
	default:
		q, err := b.Ingestor.Queue(b.ctx, d.dev, dec.codec, payload, dec.ms, d.codes)
		switch {
		case err == nil:
			pa.queued = q
		case errors.Is(err, devices.ErrNothingStored):
			pa.outcome = noKnownCode
			b.limit.log(b.Logger, slog.LevelWarn, "payload:"+d.dev.Name, noKnownCodeProblem(d.dev.Name), edge.LogKeyDevice, d.dev.Name)
		default:
			pa.outcome = notStored
			b.limit.log(b.Logger, slog.LevelError, "store:"+d.dev.Name, notStoredProblem(d.dev.Name, err), edge.LogKeyDevice, d.dev.Name)
		}
	}
	p.queue <- pa // waits while Pipeline publishes of this connection are committing
}

// OnPacketProcessed runs after mochi handled a packet, so after it wrote
// the answer to a publish committed inside OnPublish: only then may Close
// disconnect the device.
func (h *hook) OnPacketProcessed(cl *mochi.Client, pk packets.Packet, err error) {
	if pk.FixedHeader.Type != packets.Publish {
		return
	}
	if p := h.b.pipeline(cl); p != nil && p.answering {
		p.answering = false
		h.b.inflight.Done()
	}
}

// save stores one decoded readings payload and logs what went wrong, if
// anything.
func (b *Broker) save(d *deviceInfo, payload []byte, dec decoded) outcome {
	ctx, cancel := context.WithTimeout(b.ctx, b.IngestTimeout)
	defer cancel()
	o, _, problem := save(ctx, b.Ingestor, d, payload, dec)
	switch o {
	case badPayload, noKnownCode:
		b.limit.log(b.Logger, slog.LevelWarn, "payload:"+d.dev.Name, problem, edge.LogKeyDevice, d.dev.Name)
	case notStored:
		b.limit.log(b.Logger, slog.LevelError, "store:"+d.dev.Name, problem, edge.LogKeyDevice, d.dev.Name)
	}
	return o
}

// failureCode is the MQTT 5 PUBACK reason code for a payload that resending
// will not fix.
func failureCode(o outcome) packets.Code {
	if o == badPayload {
		return codePayloadInvalid
	}
	return codeNoKnownCode
}

// pipeline returns cl's acknowledgement pipeline, or nil before its
// session is established.
func (b *Broker) pipeline(cl *mochi.Client) *ackPipeline {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.live[cl]
}

// writeAcks writes the PUBACKs of a connection's pipeline in arrival order,
// each once its publish's readings committed: success when they did; on
// MQTT 5 a failure reason code for a payload resending will not fix; and
// nothing when they did not commit (the device sends it again), as mochi
// does for packets.ErrRejectPacket. It ends when the pipeline is closed and
// drained.
func (b *Broker) writeAcks(cl *mochi.Client, p *ackPipeline) {
	defer b.acks.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for pa := range p.queue {
		switch {
		case pa.queued != nil:
			pa.outcome = b.await(pa, timer)
		case pa.done != nil:
			<-pa.done
		}
		b.writeAck(cl, pa)
		b.inflight.Done()
	}
}

// await waits until a pipelined publish's readings have committed, its
// deadline passes, or Close gives up, and says whether it may be
// acknowledged. A group commit ends many publishes at once, so the wait is
// usually over before it begins.
func (b *Broker) await(pa *pendingAck, timer *time.Timer) outcome {
	var err error
	select {
	case <-pa.queued.Done():
	default:
		timer.Reset(time.Until(pa.deadline))
		select {
		case <-pa.queued.Done():
		case <-timer.C:
			err = pa.queued.Abandon(context.DeadlineExceeded)
		case <-b.ctx.Done():
			err = pa.queued.Abandon(b.ctx.Err())
		}
		timer.Stop()
	}
	if err == nil {
		_, err = pa.queued.Result()
	}
	if err != nil {
		name := pa.device.dev.Name
		b.limit.log(b.Logger, slog.LevelError, "store:"+name, notStoredProblem(name, err), edge.LogKeyDevice, name)
		return notStored
	}
	return stored
}

// writeAck writes one pipelined publish's answer.
func (b *Broker) writeAck(cl *mochi.Client, pa *pendingAck) {
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pa.packetID}
	switch {
	case pa.outcome == stored:
	case pa.outcome == notStored || cl.Properties.ProtocolVersion != 5:
		return
	default:
		c := failureCode(pa.outcome)
		ack.ReasonCode, ack.Properties.ReasonString = c.Code, c.Reason
	}
	cl.WritePacket(ack) // fails only when the connection is gone; the device resends
}

// OnSessionEstablished marks the device connected and sets its retained
// status to online.
func (h *hook) OnSessionEstablished(cl *mochi.Client, pk packets.Packet) {
	b := h.b
	d := b.device(cl)
	if d == nil {
		return
	}
	// Pipeline publishes committing: one that writeAcks waits on, the
	// queue's, and one that the hook queued and waits to append.
	p := &ackPipeline{queue: make(chan *pendingAck, max(0, b.Pipeline-2))}
	b.acks.Add(1)
	go b.writeAcks(cl, p)
	b.mu.Lock()
	b.live[cl] = p
	b.online[d.dev.Name]++
	b.mu.Unlock()
	b.Ingestor.SetStatus(d.dev, "connected over MQTT from "+remoteIP(cl))
	b.Logger.Info(d.dev.Name+" connected", edge.LogKeyDevice, d.dev.Name, "remote", remoteIP(cl), "mqtt_version", cl.Properties.ProtocolVersion)
	b.publishStatus(d.dev.Name, StatusOnline)
}

// OnDisconnect marks the device disconnected when its last connection goes,
// and sets its retained status to offline (its last will, if it set one,
// says the same). When a device reconnected before its old connection was
// dropped, its status is set back to online after the old one's will.
func (h *hook) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	b := h.b
	b.mu.Lock()
	p := b.live[cl]
	if p == nil {
		b.mu.Unlock()
		return
	}
	delete(b.live, cl)
	close(p.queue) // the client's read loop has ended: nothing more is queued
	name := string(cl.Properties.Username)
	b.online[name]--
	left := b.online[name]
	if left == 0 {
		delete(b.online, name)
	}
	d := b.devices[name]
	b.mu.Unlock()
	if d == nil {
		return
	}
	if left > 0 {
		b.publishStatus(name, StatusOnline)
		return
	}
	switch {
	case b.closing.Load():
		b.Ingestor.SetStatus(d.dev, "disconnected: the node stopped")
	case err == nil:
		b.Ingestor.SetStatus(d.dev, "disconnected")
		b.Logger.Info(name+" disconnected", edge.LogKeyDevice, name)
	default:
		b.Ingestor.SetStatus(d.dev, name+" disconnected without saying goodbye; check its Wi-Fi and power")
		b.limit.log(b.Logger, slog.LevelWarn, "lost:"+name, name+" disconnected; check its Wi-Fi and power", edge.LogKeyDevice, name)
	}
	b.publishStatus(name, StatusOffline)
}

// remoteIP is the device's IP address, without the port.
func remoteIP(cl *mochi.Client) string {
	host, _, err := net.SplitHostPort(cl.Net.Remote)
	if err != nil {
		return cl.Net.Remote
	}
	return host
}

// clip cuts an untrusted name for a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
