package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	pahopackets "github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/edge"
)

// Defaults for the subscriber's settings.
const (
	DefaultConnectTimeout = 10 * time.Second
	// DefaultRedeliveryDelay is how long after a commit failure the
	// subscriber reconnects, so that the broker sends again what the node
	// did not acknowledge (brokers resend only on a new connection).
	DefaultRedeliveryDelay = 30 * time.Second
	// DefaultMaxPending is how many received messages may wait for their
	// commit and acknowledgement; past it the subscriber stops reading.
	DefaultMaxPending = 256
	// DefaultDeviceCacheTime is how long a looked-up device is trusted
	// before the registry is read again.
	DefaultDeviceCacheTime = 30 * time.Second
	// DefaultMaxReconnectInterval caps the wait between reconnect attempts.
	DefaultMaxReconnectInterval = 30 * time.Second
)

// Subscriber takes readings from an external MQTT broker (mosquitto, EMQX)
// instead of the embedded one. It keeps a persistent session (clean session
// off, a client ID stable for the node) subscribed with QoS 1 to every
// device's readings and status topic, and acknowledges each message to the
// broker only after its readings committed: paho's automatic
// acknowledgement is off, and msg.Ack is called in arrival order once the
// Ingestor returned. A message whose readings did not commit is never
// acknowledged; the subscriber reconnects after RedeliveryDelay so the
// broker sends it again.
//
// The broker, not the node, checks who publishes: give each device a login
// and an ACL limiting it to healthpost/<node>/devices/<its name>/# (the
// package documentation has a mosquitto example). A message from a name
// that is not a registered MQTT device is logged, counted and acknowledged
// without storing, since no retry could make it storable.
type Subscriber struct {
	// Broker is the broker's URL, tcp://host:1883.
	Broker string
	// Username and Password are the node's login at the broker.
	Username, Password string
	// ClientID identifies the node's persistent session: healthpost-<node>.
	ClientID string
	// NodeID is this node's ID, the second level of every topic.
	NodeID string

	ConnectTimeout       time.Duration
	MaxReconnectInterval time.Duration
	RedeliveryDelay      time.Duration
	IngestTimeout        time.Duration
	MaxPending           int
	DeviceCacheTime      time.Duration
	LogInterval          time.Duration

	Store    *edge.Store
	Ingestor *devices.Ingestor
	Logger   *slog.Logger

	client paho.Client
	limit  *limiter
	queue  chan *pending // messages in arrival order, awaiting their ack
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // ingests and background loops

	// connMu serialises Connect and Disconnect; it is never held by
	// receive, which paho may be running while Disconnect waits for it.
	connMu sync.Mutex

	mu         sync.Mutex
	closed     bool
	redelivery bool // a reconnect for redelivery is scheduled
	cache      map[string]cachedDevice

	stats struct{ received, stored, bad, unknown, notStored, acked atomic.Int64 }
}

// SubscriberStats counts what the subscriber did since Open.
type SubscriberStats struct {
	Received  int64 // messages on a readings topic
	Stored    int64 // committed and acknowledged
	Bad       int64 // unreadable or without a known code: kept raw, acknowledged
	Unknown   int64 // from a name that is no registered MQTT device: acknowledged, not stored
	NotStored int64 // commit failed: not acknowledged, to be sent again
	Acked     int64 // acknowledgements sent (readings and status)
}

type cachedDevice struct {
	info *deviceInfo
	err  error
	at   time.Time
}

// pending is one received message waiting for its outcome.
type pending struct {
	msg  paho.Message
	done chan struct{}
	ack  bool // set before done is closed
}

// NewSubscriber returns a subscriber to the external broker cfg.Broker for
// node nodeID, logging in with cfg.Username and cfg.Password. Adjust its
// fields, then Open it.
func NewSubscriber(store *edge.Store, in *devices.Ingestor, logger *slog.Logger, cfg edge.MQTTConfig, nodeID string) *Subscriber {
	return &Subscriber{
		Broker:               cfg.Broker,
		Username:             cfg.Username,
		Password:             cfg.Password,
		ClientID:             "healthpost-" + nodeID,
		NodeID:               nodeID,
		ConnectTimeout:       DefaultConnectTimeout,
		MaxReconnectInterval: DefaultMaxReconnectInterval,
		RedeliveryDelay:      DefaultRedeliveryDelay,
		IngestTimeout:        DefaultIngestTimeout,
		MaxPending:           DefaultMaxPending,
		DeviceCacheTime:      DefaultDeviceCacheTime,
		LogInterval:          DefaultLogInterval,
		Store:                store,
		Ingestor:             in,
		Logger:               logger.With(edge.LogKeySubsystem, "mqtt"),
	}
}

// Open connects to the broker and subscribes. A broker that refuses the
// node's login fails Open (the configuration is wrong). A broker that
// cannot be reached does not: the node must work while the LAN's broker
// boots or is down, so Open logs it and keeps trying in the background.
func (s *Subscriber) Open(ctx context.Context) error {
	if !validNodeID(s.NodeID) {
		return fmt.Errorf("MQTT: node ID %q cannot be a topic level; set facility.node_id without / + #", s.NodeID)
	}
	u, err := url.Parse(s.Broker)
	if err != nil || u.Host == "" {
		return fmt.Errorf("MQTT: broker %q is not a URL like tcp://192.168.1.20:1883; check mqtt.broker", s.Broker)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.limit = &limiter{interval: s.LogInterval}
	s.queue = make(chan *pending, s.MaxPending)
	s.cache = map[string]cachedDevice{}

	opts := paho.NewClientOptions().
		AddBroker(s.Broker).
		SetClientID(s.ClientID).
		SetUsername(s.Username).
		SetPassword(s.Password).
		SetProtocolVersion(4).
		SetCleanSession(false). // the broker keeps our subscription and queues messages while we are away
		SetAutoAckDisabled(true).
		SetOrderMatters(true). // receive runs in arrival order and only queues, so it never blocks for long
		SetAutoReconnect(true).
		SetMaxReconnectInterval(s.MaxReconnectInterval).
		SetConnectTimeout(s.ConnectTimeout).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(s.receive). // messages the broker sends before we subscribe again
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.Logger.Warn("lost the connection to the MQTT broker; reconnecting", "broker", s.Broker, "err", err)
		})
	s.client = paho.NewClient(opts)

	s.wg.Add(1)
	go s.acknowledge()

	if err = s.connectOnce(); err != nil {
		if refused(err) {
			s.stop()
			return fmt.Errorf("MQTT broker %s refused the node's login (%w); check mqtt.username and mqtt.password and the broker's ACL", s.Broker, err)
		}
		s.Logger.Warn("cannot reach the MQTT broker; readings will arrive once it answers", "broker", s.Broker, "err", err)
		s.wg.Add(1)
		go s.connectLoop()
	}
	return nil
}

// refused reports whether a connect error is the broker refusing the login.
func refused(err error) bool {
	for _, e := range []error{pahopackets.ErrorRefusedBadUsernameOrPassword, pahopackets.ErrorRefusedNotAuthorised,
		pahopackets.ErrorRefusedIDRejected, pahopackets.ErrorRefusedBadProtocolVersion} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// connectLoop retries the first connection with backoff until it succeeds
// or the subscriber closes. Later losses are paho's auto-reconnect's job.
func (s *Subscriber) connectLoop() {
	defer s.wg.Done()
	wait := time.Second
	for {
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if s.connect() {
			return
		}
		wait = min(2*wait, s.MaxReconnectInterval)
	}
}

// connect makes one connection attempt unless the subscriber is closed, and
// reports whether it succeeded (or the subscriber closed). A refusal is
// logged: the configuration needs fixing.
func (s *Subscriber) connect() bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.isClosed() {
		return true
	}
	err := s.connectOnce()
	if err != nil && refused(err) {
		s.limit.log(s.Logger, slog.LevelError, "refused", "the MQTT broker refused the node's login; check mqtt.username and mqtt.password and the broker's ACL", "broker", s.Broker, "err", err)
	}
	return err == nil
}

// connectOnce makes one connection attempt. paho's ConnectTimeout bounds
// it; the extra wait only guards against a token that never completes.
func (s *Subscriber) connectOnce() error {
	tok := s.client.Connect()
	if !tok.WaitTimeout(2*s.ConnectTimeout + time.Second) {
		return errors.New("the broker did not answer")
	}
	return tok.Error()
}

func (s *Subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// onConnect subscribes (again) after every connection.
func (s *Subscriber) onConnect(c paho.Client) {
	tok := c.SubscribeMultiple(map[string]byte{ReadingsFilter(s.NodeID): 1, StatusFilter(s.NodeID): 1}, s.receive)
	if !tok.WaitTimeout(s.ConnectTimeout) || tok.Error() != nil {
		s.Logger.Error("could not subscribe to the devices' topics at the MQTT broker; check the node's ACL there", "broker", s.Broker, "err", tok.Error())
		return
	}
	s.Logger.Info("connected to the MQTT broker", "broker", s.Broker, "readings", ReadingsFilter(s.NodeID))
}

// receive is paho's handler. paho calls it for one message at a time in
// arrival order; it queues the message for acknowledgement in that order
// and starts its ingest, without waiting for the commit.
func (s *Subscriber) receive(_ paho.Client, msg paho.Message) {
	p := &pending{msg: msg, done: make(chan struct{})}
	name, level, ok := parseDeviceTopic(s.NodeID, msg.Topic())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return // not acknowledged: the broker sends it again next time
	}
	s.wg.Add(1)
	s.mu.Unlock()
	switch {
	case ok && level == ReadingsLevel:
		s.stats.received.Add(1)
		go s.ingest(p, name)
	case ok && level == StatusLevel:
		go s.status(p, name)
	default:
		p.ack = true // not ours; acknowledged so it cannot block the session
		close(p.done)
		s.wg.Done()
	}
	select {
	case s.queue <- p:
	case <-s.ctx.Done():
	}
}

// acknowledge acknowledges messages in the order they arrived, each once
// its outcome is known: MQTT wants PUBACKs in order, and a message whose
// readings did not commit is skipped (never acknowledged).
func (s *Subscriber) acknowledge() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case p := <-s.queue:
			select {
			case <-p.done:
			case <-s.ctx.Done():
				return
			}
			if p.ack {
				p.msg.Ack()
				s.stats.acked.Add(1)
			}
		}
	}
}

// ingest stores one readings message and decides whether it may be acknowledged.
func (s *Subscriber) ingest(p *pending, name string) {
	defer s.wg.Done()
	defer close(p.done)
	ctx, cancel := context.WithTimeout(s.ctx, s.IngestTimeout)
	defer cancel()
	d, err := s.device(ctx, name)
	if err != nil {
		if errors.Is(err, edge.ErrNotFound) {
			s.stats.unknown.Add(1)
			p.ack = true
			s.limit.log(s.Logger, slog.LevelWarn, "unknown:"+name, fmt.Sprintf("a message on the MQTT broker came from %q, which is not a registered MQTT device; it was not stored. Register it (healthpost device add) or remove it from the broker's ACL", clip(name, 64)), "why", err.Error())
			return
		}
		s.stats.notStored.Add(1)
		s.limit.log(s.Logger, slog.LevelError, "lookup:"+name, "could not look up a device; its message was not acknowledged and will come again", edge.LogKeyDevice, clip(name, 64), "err", err)
		s.redeliverLater()
		return
	}
	o, _, problem := ingest(ctx, s.Ingestor, d, p.msg.Payload(), time.Now())
	switch o {
	case stored:
		s.stats.stored.Add(1)
		p.ack = true
	case badPayload, noKnownCode:
		s.stats.bad.Add(1)
		p.ack = true
		s.limit.log(s.Logger, slog.LevelWarn, "payload:"+name, problem, edge.LogKeyDevice, name)
	default:
		s.stats.notStored.Add(1)
		s.limit.log(s.Logger, slog.LevelError, "store:"+name, problem, edge.LogKeyDevice, name)
		s.redeliverLater()
	}
}

// status records a device's retained status ("online", or its will
// "offline") as its connection state.
func (s *Subscriber) status(p *pending, name string) {
	defer s.wg.Done()
	defer close(p.done)
	p.ack = true
	ctx, cancel := context.WithTimeout(s.ctx, s.IngestTimeout)
	defer cancel()
	d, err := s.device(ctx, name)
	if err != nil {
		return
	}
	switch string(p.msg.Payload()) {
	case StatusOnline:
		s.Ingestor.SetStatus(d.dev, "connected to the MQTT broker")
		s.Logger.Info(name+" connected", edge.LogKeyDevice, name)
	case StatusOffline:
		s.Ingestor.SetStatus(d.dev, name+" disconnected from the MQTT broker; check its Wi-Fi and power")
		s.Logger.Warn(name+" disconnected; check its Wi-Fi and power", edge.LogKeyDevice, name)
	}
}

// device looks a device up by name, through a short-lived cache.
func (s *Subscriber) device(ctx context.Context, name string) (*deviceInfo, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.cache[name]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < s.DeviceCacheTime {
		return c.info, c.err
	}
	dev, err := s.Store.Device(ctx, name)
	var info *deviceInfo
	switch {
	case err == nil && (dev.Name != name || !dev.Enabled):
		err = fmt.Errorf("device %q: %w", name, edge.ErrNotFound)
	case err == nil:
		info, err = loadDevice(dev)
		if err != nil {
			err = fmt.Errorf("%v: %w", err, edge.ErrNotFound)
		}
	case !errors.Is(err, edge.ErrNotFound):
		return nil, err // a database problem is not cached
	}
	s.mu.Lock()
	if len(s.cache) > 4096 {
		clear(s.cache)
	}
	s.cache[name] = cachedDevice{info: info, err: err, at: now}
	s.mu.Unlock()
	return info, err
}

// redeliverLater schedules a reconnect after RedeliveryDelay: MQTT brokers
// send unacknowledged messages again only on a new connection.
func (s *Subscriber) redeliverLater() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.redelivery {
		return
	}
	s.redelivery = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(s.RedeliveryDelay)
		defer t.Stop()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		s.redelivery = false
		s.mu.Unlock()
		s.connMu.Lock()
		if s.isClosed() {
			s.connMu.Unlock()
			return
		}
		s.Logger.Info("reconnecting to the MQTT broker so that it sends again the readings that were not stored", "broker", s.Broker)
		s.client.Disconnect(250)
		s.connMu.Unlock()
		if !s.connect() {
			s.wg.Add(1)
			s.connectLoop()
		}
	}()
}

// Stats reports what the subscriber did since Open.
func (s *Subscriber) Stats() SubscriberStats {
	return SubscriberStats{Received: s.stats.received.Load(), Stored: s.stats.stored.Load(), Bad: s.stats.bad.Load(),
		Unknown: s.stats.unknown.Load(), NotStored: s.stats.notStored.Load(), Acked: s.stats.acked.Load()}
}

// Close disconnects from the broker. Messages still committing are not
// acknowledged: the connection that carried them is gone, so the broker
// sends them again next time, and their message IDs keep them from being
// stored twice.
func (s *Subscriber) Close(ctx context.Context) error {
	if s.client == nil {
		return nil
	}
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return nil
	}
	s.connMu.Lock()
	s.client.Disconnect(250)
	s.connMu.Unlock()
	s.stop()
	return nil
}

// stop ends the background work and waits for it.
func (s *Subscriber) stop() {
	s.cancel()
	s.wg.Wait()
}
