package astm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Handler stores one complete message for a Receiver. It is called from the
// Receiver's goroutine, once per message (H record through L record), while
// the analyzer waits for the reply to the frame that completed the message.
//
// Return nil only once the message is durably stored (the transaction has
// committed): that nil is what lets the Receiver ACK the frame. Any error
// makes the Receiver NAK it, so the analyzer retransmits the frame and the
// Handler is called again, up to the analyzer's retry limit (6 tries).
//
// Delivery is at least once: a retransmission after a failed call, an
// analyzer that resends a whole message after an abort, or a frame carrying
// two messages whose second one failed all hand over a message again. Use
// the message's identity (sender, specimen ID, test, completion time) to
// store it idempotently.
//
// ctx carries HandlerTimeout; the analyzer stops waiting after 15 s.
type Handler func(ctx context.Context, d *Delivery) error

// Delivery is one complete message handed to a Handler.
type Delivery struct {
	// Raw is the message text exactly as reassembled from the frames' text,
	// H record through the L record's separator. It belongs to the Handler.
	Raw []byte
	// Message is the parsed message, nil when Err is set.
	Message *Message
	// Err is why Raw could not be parsed: a *RecordError. The Handler
	// decides: store Raw for inspection and return nil (the analyzer gets
	// its ACK and moves on), or return an error (NAK, and the analyzer
	// retries the same bytes).
	Err error
	// Deviations lists what lenient mode tolerated in the frames and
	// records of this message.
	Deviations Deviation
}

// Stats counts what a Receiver has seen. Counts never hold message content.
type Stats struct {
	Transmissions     uint64 // ENQs answered with ACK (and frames taken without ENQ)
	BusyRefusals      uint64 // ENQs answered with NAK because Busy returned true
	Frames            uint64 // frames read, good or bad
	Duplicates        uint64 // retransmissions of a frame already accepted: ACKed and dropped
	NAKs              uint64 // frames answered with NAK, for any reason below
	ChecksumErrors    uint64 // frames whose checksum did not match
	FrameNumberErrors uint64 // frames out of sequence
	MalformedFrames   uint64 // frames that break the standard beyond what the mode accepts
	OversizedFrames   uint64 // frames longer than the mode allows
	LimitErrors       uint64 // frames that would push a record or message over Limits
	Delivered         uint64 // messages the Handler accepted
	ParseErrors       uint64 // messages handed over with Delivery.Err set
	HandlerErrors     uint64 // Handler calls that returned an error (frame NAKed)
	Aborted           uint64 // transmissions the sender ended with EOT right after a NAK
	Discarded         uint64 // incomplete messages dropped (EOT, ENQ or a new H before L, timeout, cancel)
	Timeouts          uint64 // transmissions ended because the sender went silent
	JunkBytes         uint64 // bytes outside frames, ignored
	// Deviations counts lenient-mode tolerances by kind: frame-level ones
	// per frame, record-level ones per message.
	Deviations map[Deviation]uint64
}

// Receiver is the LIS side of E1381: it answers an analyzer's ENQ, checks
// and acknowledges frames, and hands each complete message to its Handler
// before acknowledging the frame that completed it.
//
// Why per message and not per transmission or per record: a transmission
// (ENQ to EOT) ends with EOT, which the sender sends only after the last
// frame was acknowledged, so acknowledging "after the transmission is
// stored" is impossible. A message ends with its L record, inside a frame
// the Receiver has not yet answered; holding that one ACK until the Handler
// returns nil means the analyzer never sees the message as delivered before
// it is stored. Records before L are acknowledged frame by frame but kept
// only in memory: if the message never completes they are dropped (see
// OnDiscard) and the analyzer, lacking the final ACK, resends. Per-record
// delivery would also work but splits one result set over many
// transactions and leaves orphan patients and orders behind a failure.
//
// Set the exported fields before the first call to Receive or Run. A
// Receiver serves one connection from one goroutine; Stats may be called
// from any goroutine.
type Receiver struct {
	// Lenient accepts the deviations listed on Deviation instead of NAKing
	// the frame (or failing the parse).
	Lenient bool
	// FrameTimeout is how long to wait, inside a transmission, for the next
	// frame, the next byte of a frame, or EOT (30 s in LIS01-A2). While
	// idle the Receiver waits for ENQ without limit. For this and the other
	// timeouts, 0 means no limit.
	FrameTimeout time.Duration
	// TrailerTimeout is how long to wait for each byte after ETX or ETB
	// (checksum, CR, LF) before answering a frame that lacks them.
	TrailerTimeout time.Duration
	// HandlerTimeout bounds each Handler call through its context.
	HandlerTimeout time.Duration
	// Busy, if set, is asked on each ENQ; true answers NAK (receiver not
	// ready) and the analyzer retries after 10 s.
	Busy func() bool

	// Location is the zone of the analyzer's clock, for parsing times.
	// Nil means UTC.
	Location *time.Location
	// Limits caps frames, records and messages; zero fields take
	// DefaultLimits.
	Limits Limits

	// OnDiscard, if set, receives the text of records that were received
	// but will not reach the Handler: the transmission ended, timed out or
	// restarted, or a new H record began, before their L record. The caller may keep them raw for
	// inspection. It is called on the Receiver's goroutine and must not
	// block for long.
	OnDiscard func(text []byte, err error)

	handler Handler
	l       *link
	fr      frameReader

	mu    sync.Mutex
	stats Stats
	devs  [numDeviations]uint64
}

// NewReceiver returns a Receiver for the analyzer on rw (a serial port or a
// TCP connection) that hands complete messages to h. If rw has
// SetReadDeadline, timeouts use it; otherwise a goroutine reads rw, and
// Close stops it.
func NewReceiver(rw io.ReadWriter, h Handler) *Receiver {
	return &Receiver{
		FrameTimeout:   DefaultFrameTimeout,
		TrailerTimeout: DefaultTrailerTimeout,
		HandlerTimeout: DefaultHandlerTimeout,
		handler:        h,
		l:              newLink(rw),
	}
}

// Sender returns a Sender that shares r's connection and read buffer, for a
// LIS that also sends (orders, query answers) on the same line. Use it with
// Role RoleComputer, and never at the same time as r.
func (r *Receiver) Sender() *Sender {
	s := NewSender(nil)
	s.l = r.l
	s.Role = RoleComputer
	return s
}

// Close stops the goroutine that reads connections without read deadlines,
// once its current Read returns. It does not close the connection.
func (r *Receiver) Close() error {
	r.l.close()
	return nil
}

// Run serves transmissions until ctx is done or the connection fails, and
// returns that error: ctx.Err(), or the connection's error wrapped (io.EOF
// when the peer closed it). A transmission that times out is counted and
// Run goes on waiting for the next ENQ.
func (r *Receiver) Run(ctx context.Context) error {
	for {
		err := r.Receive(ctx)
		if err != nil && !errors.Is(err, ErrTimeout) {
			return err
		}
	}
}

// Receive waits for one ENQ (for ever, until ctx is done) and serves the
// transmission that follows until EOT. It returns nil after EOT, or after
// answering an ENQ with NAK because Busy said so; an error wrapping
// ErrTimeout if the analyzer went silent inside the transmission;
// otherwise ctx.Err() or the connection's error.
func (r *Receiver) Receive(ctx context.Context) error {
	stop := r.l.watch(ctx)
	defer stop()
	if r.handler == nil {
		return errors.New("receive: no handler")
	}
	implicit := false
	for {
		c, err := r.l.readByte(ctx, 0)
		if err != nil {
			return r.wrap("wait for enq", err)
		}
		if c == ENQ {
			break
		}
		if c == STX && r.Lenient {
			r.l.unread()
			implicit = true
			r.count(func(s *Stats) { s.Transmissions++ }, DevMissingENQ)
			break
		}
		r.count(func(s *Stats) { s.JunkBytes++ }, 0)
	}
	if !implicit {
		if done, err := r.answerENQ(ctx); done || err != nil {
			return err
		}
	}
	t := transfer{}
	return r.transfer(ctx, &t)
}

// answerENQ replies to an ENQ; done is true when it was refused.
func (r *Receiver) answerENQ(ctx context.Context) (done bool, err error) {
	if r.Busy != nil && r.Busy() {
		r.count(func(s *Stats) { s.BusyRefusals++ }, 0)
		return true, r.reply(ctx, NAK)
	}
	r.count(func(s *Stats) { s.Transmissions++ }, 0)
	return false, r.reply(ctx, ACK)
}

// transfer is the state of one transmission.
type transfer struct {
	numbered  bool // a numbered frame has been accepted
	lastFN    int
	lastText  []byte // text of the last accepted frame, to spot retransmissions
	lastEnd   byte
	lastReply byte

	pend  []byte // text received since the last delivered message
	split int    // pend[:split] is split into recs; the rest is ETB text
	recs  []span // complete records in pend
	dev   Deviation
}

// span locates one record in transfer.pend: text is [start, end), the
// separator after it ends before next.
type span struct{ start, end, next int }

func (r *Receiver) transfer(ctx context.Context, t *transfer) error {
	lim := r.Limits.orDefault()
	r.fr = frameReader{
		l: r.l, lenient: r.Lenient, maxText: MaxFrameText,
		wait: r.FrameTimeout, trailer: r.TrailerTimeout, scratch: r.fr.scratch,
	}
	if r.FrameTimeout > 0 && (r.TrailerTimeout <= 0 || r.TrailerTimeout > r.FrameTimeout) {
		r.fr.trailer = r.FrameTimeout
	}
	if r.Lenient {
		r.fr.maxText = lim.MaxFrameBytes
	}
	for {
		c, err := r.l.readByte(ctx, r.FrameTimeout)
		if err != nil {
			return r.endTransfer(t, "wait for frame", err)
		}
		switch c {
		case EOT:
			if t.lastReply == NAK {
				r.count(func(s *Stats) { s.Aborted++ }, 0)
			}
			r.discard(t, fmt.Errorf("end transmission: %w", ErrNoTerminator))
			return nil
		case ENQ:
			// The sender started over without EOT, perhaps because our ACK
			// to its ENQ was lost.
			r.discard(t, fmt.Errorf("restart transmission: %w", ErrNoTerminator))
			*t = transfer{}
			if done, err := r.answerENQ(ctx); done || err != nil {
				return err
			}
		case STX:
			f, err := r.fr.read(ctx)
			if err != nil {
				return r.endTransfer(t, "read frame", err)
			}
			reply := r.frame(ctx, t, &f, lim)
			t.lastReply = reply
			if err := r.reply(ctx, reply); err != nil {
				r.discard(t, err)
				return err
			}
		default:
			r.count(func(s *Stats) { s.JunkBytes++ }, 0)
		}
	}
}

// frame handles one frame and returns the reply to send.
func (r *Receiver) frame(ctx context.Context, t *transfer, f *frame, lim Limits) byte {
	r.count(func(s *Stats) { s.Frames++ }, 0)
	if f.bad != nil {
		return r.nak(f.bad)
	}
	dup, err := t.checkNumber(f, r.Lenient)
	if err != nil {
		return r.nak(err)
	}
	if dup {
		r.count(func(s *Stats) { s.Duplicates++ }, 0)
		return ACK
	}
	if len(t.pend)+len(f.text) > lim.MaxMessageBytes {
		return r.nak(errLimit)
	}
	oldPend, oldRecs, oldSplit := len(t.pend), len(t.recs), t.split
	t.pend = append(t.pend, f.text...)
	if f.end == ETX {
		err := t.splitRecords(r.Lenient, lim)
		if err == nil {
			err = r.deliverComplete(ctx, t, oldRecs, t.dev|f.dev)
		}
		if err != nil {
			// Forget this frame; its retransmission starts from here again.
			t.pend, t.recs, t.split = t.pend[:oldPend], t.recs[:oldRecs], oldSplit
			if errors.Is(err, errLimit) {
				return r.nak(err)
			}
			return NAK // the Handler failed; counted in deliver
		}
	}
	r.count(func(*Stats) {}, f.dev)
	t.accept(f)
	return ACK
}

// checkNumber checks f's frame number against the sequence. dup reports a
// retransmission of the frame accepted last (its ACK was lost).
func (t *transfer) checkNumber(f *frame, lenient bool) (dup bool, err error) {
	if f.fn < 0 {
		return false, nil // lenient only; strict has already rejected it
	}
	if t.numbered && f.fn == t.lastFN {
		if f.end == t.lastEnd && bytes.Equal(f.text, t.lastText) {
			return true, nil
		}
		if lenient {
			f.dev |= DevFrameNumberRepeat
			return false, nil
		}
		return false, errFrameNumber
	}
	want := 1
	if t.numbered {
		want = (t.lastFN + 1) % 8
	}
	if f.fn == want {
		return false, nil
	}
	if lenient && !t.numbered {
		f.dev |= DevFrameNumberStart
		return false, nil
	}
	return false, errFrameNumber
}

// accept records f as the last accepted frame.
func (t *transfer) accept(f *frame) {
	if f.fn >= 0 {
		t.numbered = true
		t.lastFN = f.fn
	}
	t.lastEnd = f.end
	t.lastText = append(t.lastText[:0], f.text...)
	t.dev |= f.dev
	if len(t.recs) == 0 && t.split == len(t.pend) {
		t.dev = 0 // nothing pending: the next message starts clean
	}
}

// splitRecords splits the text after t.split into records, as an ETX frame
// ends the last of them.
func (t *transfer) splitRecords(lenient bool, lim Limits) error {
	s := t.pend
	start := t.split
	for i := start; i <= len(s); i++ {
		if i < len(s) && s[i] != CR && !(lenient && s[i] == LF) {
			continue
		}
		if i > start {
			if i-start > lim.MaxRecordBytes || len(t.recs) >= lim.MaxRecords {
				return errLimit
			}
			next := min(i+1, len(s))
			t.recs = append(t.recs, span{start: start, end: i, next: next})
		}
		start = i + 1
	}
	t.split = len(s)
	return nil
}

// deliverComplete hands every message completed by the records from index
// first on to the Handler, then drops them from t. An H record that follows
// other undelivered records starts a new message: the records before it
// (a message whose L record never came) are discarded. On error t is left
// for the caller to roll back.
func (r *Receiver) deliverComplete(ctx context.Context, t *transfer, first int, dev Deviation) error {
	msgStart := 0
	var dropped []span
	for i := first; i < len(t.recs); i++ {
		rec := t.pend[t.recs[i].start:t.recs[i].end]
		switch {
		case isRecord(rec, 'H') && i > msgStart:
			dropped = append(dropped, span{start: t.recs[msgStart].start, end: t.recs[i].start})
			msgStart = i
		case isRecord(rec, 'L'):
			raw := t.pend[t.recs[msgStart].start:t.recs[i].next]
			if err := r.deliver(ctx, raw, dev); err != nil {
				return err
			}
			msgStart = i + 1
		}
	}
	if msgStart == 0 {
		return nil
	}
	for _, d := range dropped {
		r.discardText(t.pend[d.start:d.end], fmt.Errorf("start new message: %w", ErrNoTerminator))
	}
	// Drop what was delivered or discarded; keep records of the next
	// message, if any.
	cut := len(t.pend)
	if msgStart < len(t.recs) {
		cut = t.recs[msgStart].start
	}
	n := copy(t.pend, t.pend[cut:])
	t.pend = t.pend[:n]
	kept := copy(t.recs, t.recs[msgStart:])
	t.recs = t.recs[:kept]
	for i := range t.recs {
		t.recs[i].start -= cut
		t.recs[i].end -= cut
		t.recs[i].next -= cut
	}
	t.split = len(t.pend)
	t.dev = 0
	return nil
}

// isRecord reports whether rec is a record of type typ: the letter, then
// the end or a delimiter.
func isRecord(rec []byte, typ byte) bool {
	return len(rec) > 0 && rec[0] == typ && (len(rec) == 1 || !isAlnum(rec[1]))
}

// deliver parses one message and calls the Handler.
func (r *Receiver) deliver(ctx context.Context, raw []byte, dev Deviation) error {
	d := &Delivery{Raw: bytes.Clone(raw)}
	p := Parser{Lenient: r.Lenient, Location: r.Location, Limits: r.Limits}
	d.Message, d.Err = p.Parse(d.Raw)
	d.Deviations = dev
	if d.Message != nil {
		d.Message.Deviations |= dev
		d.Deviations = d.Message.Deviations
	}
	hctx, cancel := ctx, context.CancelFunc(func() {})
	if r.HandlerTimeout > 0 {
		hctx, cancel = context.WithTimeout(ctx, r.HandlerTimeout)
	}
	err := r.handler(hctx, d)
	cancel()
	if err != nil {
		r.count(func(s *Stats) { s.HandlerErrors++ }, 0)
		return err
	}
	r.count(func(s *Stats) {
		s.Delivered++
		if d.Err != nil {
			s.ParseErrors++
		}
	}, d.Deviations&recordDeviations)
	return nil
}

// recordDeviations are the deviations the parser reports; the others are
// counted per frame.
const recordDeviations = DevNoHeader | DevDelimiters | DevNoTerminator | DevImplicitParent |
	DevBadSequence | DevBadTimestamp | DevUnknownRecord

// nak counts why a frame is refused and returns NAK.
func (r *Receiver) nak(why error) byte {
	r.count(func(s *Stats) {
		s.NAKs++
		switch why {
		case errChecksum:
			s.ChecksumErrors++
		case errFrameNumber:
			s.FrameNumberErrors++
		case errOversized:
			s.OversizedFrames++
		case errLimit:
			s.LimitErrors++
		default:
			s.MalformedFrames++
		}
	}, 0)
	return NAK
}

// endTransfer ends a transmission on a read error.
func (r *Receiver) endTransfer(t *transfer, what string, err error) error {
	err = r.wrap(what, err)
	if errors.Is(err, ErrTimeout) {
		r.count(func(s *Stats) { s.Timeouts++ }, 0)
	}
	r.discard(t, err)
	return err
}

// discard drops the records of an incomplete message.
func (r *Receiver) discard(t *transfer, why error) {
	if len(t.pend) == 0 {
		return
	}
	r.discardText(t.pend, why)
	t.pend, t.recs, t.split = t.pend[:0], t.recs[:0], 0
}

// discardText counts undeliverable text and hands it to OnDiscard.
func (r *Receiver) discardText(text []byte, why error) {
	r.count(func(s *Stats) { s.Discarded++ }, 0)
	if r.OnDiscard != nil {
		r.OnDiscard(bytes.Clone(text), why)
	}
}

func (r *Receiver) reply(ctx context.Context, c byte) error {
	if err := r.l.write(ctx, []byte{c}, r.FrameTimeout); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

// wrap turns the link's timeout into ErrTimeout and names what was waited
// for.
func (r *Receiver) wrap(what string, err error) error {
	if errors.Is(err, errReadTimeout) {
		return fmt.Errorf("%s: %w", what, ErrTimeout)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// count updates the counters under the lock.
func (r *Receiver) count(f func(*Stats), dev Deviation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.stats)
	for i := range numDeviations {
		if dev&(1<<i) != 0 {
			r.devs[i]++
		}
	}
}

// Stats returns a snapshot of the counters.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Deviations = make(map[Deviation]uint64)
	for i, n := range r.devs {
		if n > 0 {
			s.Deviations[1<<i] = n
		}
	}
	return s
}
