package mqtt_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// failingHook lets every client in and answers every publish with err, as a
// hook whose commit failed.
type failingHook struct {
	mochi.HookBase
	err error
}

func (h *failingHook) ID() string { return "failing" }
func (h *failingHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublish}, []byte{b})
}
func (h *failingHook) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (h *failingHook) OnACLCheck(*mochi.Client, string, bool) bool              { return true }
func (h *failingHook) OnPublish(_ *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	return pk, h.err
}

// The broker's design rests on how mochi answers a publish whose OnPublish
// hook failed. Ensure, against the mochi version in go.mod, that a plain
// error still gets a success PUBACK (on MQTT 3.1.1, and on 5 when it is not
// a packets.Code), so it must never be used for a failed commit, and that
// packets.ErrRejectPacket, wrapped or not, gets no PUBACK at all on MQTT
// 3.1.1 and 5.
func TestMochi_HookErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		err     error
		version byte
		ack     bool // a success PUBACK arrives
	}{
		{"PlainError/MQTT4", errors.New("commit failed"), 4, true},
		{"PlainError/MQTT5", errors.New("commit failed"), 5, true}, // not a packets.Code: success too
		{"RejectPacket/MQTT4", packets.ErrRejectPacket, 4, false},
		{"RejectPacket/MQTT5", packets.ErrRejectPacket, 5, false},
		{"WrappedRejectPacket/MQTT4", fmt.Errorf("commit failed: %w", packets.ErrRejectPacket), 4, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := mochi.New(&mochi.Options{})
			if err := srv.AddHook(&failingHook{err: c.err}, nil); err != nil {
				t.Fatal(err)
			}
			tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
			if err := srv.AddListener(tcp); err != nil {
				t.Fatal(err)
			}
			if err := srv.Serve(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })

			rc := MustDialRaw(t, tcp.Address(), c.version)
			if code := rc.Connect("c", "u", "p", nil); code != 0 {
				t.Fatalf("CONNACK %#x", code)
			}
			rc.Publish(1, 1, "x/readings", []byte("{}"), false)
			rc.Ping() // mochi handles one client's packets in order, answering each before the next
			r := rc.MustNext()
			switch {
			case c.ack && (r.Type != packets.Puback || r.Code != 0):
				t.Fatalf("reply %+v, want a success PUBACK", r)
			case !c.ack && r.Type != packets.Pingresp:
				t.Fatalf("reply %+v, want no PUBACK before the PINGRESP", r)
			}
		})
	}
}
