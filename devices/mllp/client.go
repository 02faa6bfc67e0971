package mllp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/healthpost/healthpost/devices/hl7"
)

// DefaultReplyTimeout is how long a Client waits for an ACK, as a monitor
// would before it sends the message again.
const DefaultReplyTimeout = 30 * time.Second

// ErrNoACK means no ACK for the message arrived within ReplyTimeout.
var ErrNoACK = errors.New("no acknowledgement")

// Reply is the ACK a device got for one message.
type Reply struct {
	Code      hl7.AckCode // MSA-1: AA, AE, AR (or CA, CE, CR)
	ControlID string      // MSA-2, the message's MSH-10
	Text      string      // MSA-3
	Raw       []byte      // the ACK message
}

// Client plays a device that sends HL7 over MLLP: it frames each message,
// writes it and waits for the ACK naming its control ID. The simulator and
// the tests use it. A Client is used from one goroutine.
type Client struct {
	// ReplyTimeout bounds the wait for each ACK; 0 means
	// DefaultReplyTimeout.
	ReplyTimeout time.Duration

	rw Stream
	r  *hl7.Reader
}

// NewClient returns a Client on rw.
func NewClient(rw Stream) *Client {
	return &Client{ReplyTimeout: DefaultReplyTimeout, rw: rw, r: hl7.NewReader(rw)}
}

// Send writes msg (segments ending in CR, without framing) and returns the
// ACK whose MSA-2 is msg's control ID; ACKs for earlier messages, which a
// slow receiver may still send, are skipped. Errors: ErrNoACK (wrapped) when
// none came in time, ctx.Err(), a message without a readable MSH, or the
// stream's error.
func (c *Client) Send(ctx context.Context, msg []byte) (Reply, error) {
	h, err := hl7.ParseHeader(msg)
	if err != nil {
		return Reply{}, fmt.Errorf("send hl7: %w", err)
	}
	if err := hl7.WriteFrame(c.rw, msg); err != nil {
		return Reply{}, fmt.Errorf("send hl7: %w", err)
	}
	timeout := c.ReplyTimeout
	if timeout <= 0 {
		timeout = DefaultReplyTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.rw.SetReadDeadline(deadline); err != nil {
		return Reply{}, fmt.Errorf("send hl7: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.rw.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		frame, err := c.r.ReadFrame()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return Reply{}, cerr
			}
			if isTimeout(err) {
				return Reply{}, fmt.Errorf("send hl7 %s: %w within %s", h.ControlID, ErrNoACK, timeout)
			}
			return Reply{}, fmt.Errorf("send hl7 %s: wait for ack: %w", h.ControlID, err)
		}
		rep, ok := parseReply(frame)
		if ok && rep.ControlID == h.ControlID {
			return rep, nil
		}
	}
}

// parseReply reads the MSA of an ACK.
func parseReply(frame []byte) (Reply, bool) {
	m, err := hl7.Parse(frame)
	if err != nil {
		return Reply{}, false
	}
	d := m.Delimiters
	for _, seg := range m.Segments {
		if seg.ID == "MSA" {
			return Reply{
				Code:      hl7.AckCode(d.Unescape(d.Component(seg.Field(1), 1))),
				ControlID: d.Unescape(seg.Field(2)),
				Text:      d.Unescape(seg.Field(3)),
				Raw:       frame,
			}, true
		}
	}
	return Reply{}, false
}
