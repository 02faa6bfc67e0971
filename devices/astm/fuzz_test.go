package astm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/healthpost/healthpost/devices/astm"
)

// fuzzLimits keep fuzz iterations small while still exercising the caps.
var fuzzLimits = astm.Limits{MaxFrameBytes: 4096, MaxRecordBytes: 2048, MaxFields: 64, MaxRecords: 256, MaxMessageBytes: 16384}

// addCatalogueSeeds adds every sample transmission, raw and as record text.
func addCatalogueSeeds(f *testing.F, add func(b []byte)) {
	for _, name := range MustCaseNames(f) {
		b := MustReadCase(f, name)
		add(b)
		add(frameTexts(b))
	}
}

// FuzzParseRecords feeds arbitrary text to the record parser, strict and
// lenient. It must never panic, must fail only with a *RecordError, must
// respect its limits, and whatever strict mode accepts lenient mode must
// accept identically, with no deviation.
func FuzzParseRecords(f *testing.F) {
	addCatalogueSeeds(f, func(b []byte) { f.Add(b) })
	f.Add([]byte("H|\\\\^&\rL|1|N"))
	f.Add([]byte("H!~`$\rP!1\rL!1"))
	f.Add([]byte("H|\\^&\rO|1\rR|1|&F&&S&&R&&E&&X&\rC|1\rM|1\rQ|1\rS|1\rL|1|N\r"))
	f.Fuzz(func(t *testing.T, text []byte) {
		strict := astm.Parser{Limits: fuzzLimits}
		ms, serr := strict.Parse(text)
		lenient := astm.Parser{Lenient: true, Limits: fuzzLimits}
		ml, lerr := lenient.Parse(text)
		for _, err := range []error{serr, lerr} {
			var re *astm.RecordError
			if err != nil && (!errors.As(err, &re) || re.Record < 1) {
				t.Fatalf("error %v is not a *RecordError with a record number", err)
			}
		}
		if serr == nil {
			if lerr != nil {
				t.Fatalf("strict accepts, lenient fails: %v", lerr)
			}
			if ms.Deviations != 0 || ml.Deviations != 0 || len(ms.Records) != len(ml.Records) {
				t.Fatalf("strict and lenient differ: %v/%d vs %v/%d", ms.Deviations, len(ms.Records), ml.Deviations, len(ml.Records))
			}
			if ms.Terminator.Record.Num == 0 || ms.Records[0].Type != 'H' {
				t.Fatal("strict message without H or L")
			}
		}
		if ml != nil {
			if len(ml.Records) > fuzzLimits.MaxRecords {
				t.Fatalf("%d records, limit %d", len(ml.Records), fuzzLimits.MaxRecords)
			}
			for _, r := range ml.Records {
				if len(r.Fields) > fuzzLimits.MaxFields {
					t.Fatalf("%d fields, limit %d", len(r.Fields), fuzzLimits.MaxFields)
				}
			}
		}
	})
}

// eventConn replays the analyzer's bytes and logs, in order, every reply the
// Receiver writes and every Handler result, so the fuzz target can check
// that replies follow the Handler's verdict.
type eventConn struct {
	r      io.Reader
	mu     sync.Mutex
	events []byte // 'A' ACK, 'N' NAK, '+' Handler nil, '-' Handler error
}

func (c *eventConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *eventConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p {
		switch b {
		case astm.ACK:
			c.events = append(c.events, 'A')
		case astm.NAK:
			c.events = append(c.events, 'N')
		default:
			c.events = append(c.events, '?')
		}
	}
	return len(p), nil
}

func (c *eventConn) log(e byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

// FuzzReceiver feeds arbitrary bytes as the analyzer side of a Receiver. It
// must never panic or hang, must write nothing but ACK and NAK, and must
// answer the frame that completed a message with ACK only when every
// Handler call for that frame returned nil, and with NAK when one failed.
func FuzzReceiver(f *testing.F) {
	addCatalogueSeeds(f, func(b []byte) {
		f.Add(b, false, uint8(0))
		f.Add(b, true, uint8(0))
		f.Add(b, true, uint8(0b101))
	})
	f.Fuzz(func(t *testing.T, data []byte, lenient bool, failMask uint8) {
		conn := &eventConn{r: bytes.NewReader(data)}
		calls := 0
		r := astm.NewReceiver(conn, func(ctx context.Context, d *astm.Delivery) error {
			calls++
			if (d.Message == nil) == (d.Err == nil) || len(d.Raw) == 0 {
				t.Fatalf("Delivery with Message=%v Err=%v Raw=%d bytes", d.Message != nil, d.Err, len(d.Raw))
			}
			if len(d.Raw) > fuzzLimits.MaxMessageBytes {
				t.Fatalf("Raw %d bytes, limit %d", len(d.Raw), fuzzLimits.MaxMessageBytes)
			}
			if failMask&(1<<(calls%8)) != 0 {
				conn.log('-')
				return errors.New("store failed")
			}
			conn.log('+')
			return nil
		})
		r.Lenient = lenient
		r.Limits = fuzzLimits
		defer r.Close()
		if err := r.Run(context.Background()); !errors.Is(err, io.EOF) {
			t.Fatalf("Run=%v, want io.EOF", err)
		}

		// Handler results come in runs that end with the reply they decide.
		ev := conn.events
		for i := 0; i < len(ev); i++ {
			switch ev[i] {
			case '?':
				t.Fatalf("Receiver wrote something other than ACK or NAK: %q", ev)
			case '+', '-':
				j := i
				for j < len(ev) && ev[j] == '+' {
					j++
				}
				if j == len(ev) {
					t.Fatalf("Handler result without a reply: %q", ev)
				}
				switch {
				case ev[j] == '-' && (j+1 == len(ev) || ev[j+1] != 'N'):
					t.Fatalf("Handler failed but the frame was not NAKed: %q", ev)
				case ev[j] == 'N' && j > i:
					t.Fatalf("every Handler call succeeded but the frame was NAKed: %q", ev)
				case ev[j] != '-' && ev[j] != 'A' && ev[j] != 'N':
					t.Fatalf("unexpected event after Handler results: %q", ev)
				}
				if ev[j] == '-' {
					j++
				}
				i = j
			}
		}
		if s := r.Stats(); s.Delivered+s.HandlerErrors != uint64(calls) {
			t.Fatalf("Stats %+v, %d calls", s, calls)
		}
	})
}
