package astm_test

import (
	"context"
	"testing"

	"github.com/healthpost/healthpost/devices/astm"
)

// BenchmarkParser_Parse parses the haematology sample: 22 results, a
// histogram, comments.
func BenchmarkParser_Parse(b *testing.B) {
	text := frameTexts(MustReadCase(b, "haematology-etb"))
	p := astm.Parser{Location: ist}
	if _, err := p.Parse(text); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceiver_Replay runs the whole low-level path on the same sample:
// ENQ, nine frames with checksums, reassembly, parsing, ACKs.
func BenchmarkReceiver_Replay(b *testing.B) {
	data := MustReadCase(b, "haematology-etb")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := astm.NewReceiver(newReplayConn(data), func(context.Context, *astm.Delivery) error { return nil })
		r.Run(context.Background())
		r.Close()
	}
}
