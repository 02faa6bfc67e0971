package hl7_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices/hl7"
)

// addCatalogue seeds f with every sample in testdata/hl7, passed through fn.
func addCatalogue(f *testing.F, fn func([]byte) []byte) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join(caseDir, "*.hl7"))
	if err != nil {
		f.Fatal(err)
	}
	if len(files) == 0 {
		f.Fatal("no seeds in " + caseDir)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fn(data))
	}
}

func FuzzParse(f *testing.F) {
	addCatalogue(f, func(b []byte) []byte { return b })
	at := MustTime(f, "2026-03-14T10:16:00+05:30")

	f.Fuzz(func(t *testing.T, data []byte) {
		oru, err := hl7.ParseORU(data)
		if err != nil {
			var pe *hl7.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseORU error %T %v, want *ParseError", err, err)
			}
		} else {
			if _, perr := hl7.Parse(data); perr != nil {
				t.Fatalf("ParseORU succeeded but Parse failed: %v", perr)
			}
			checkORU(t, oru)
		}

		// Whatever the input, an ACK can be built and reads back.
		h, herr := hl7.ParseHeader(data)
		if herr != nil {
			h = nil
		} else if err == nil && h.ControlID != oru.Header.ControlID {
			t.Fatalf("ParseHeader ControlID=%q, ParseORU %q", h.ControlID, oru.Header.ControlID)
		}
		ack := hl7.BuildACK(h, hl7.ACK{Err: err, Time: at})
		m, aerr := hl7.Parse(ack)
		if aerr != nil {
			t.Fatalf("Parse(ACK): %v\n%q", aerr, ack)
		}
		if len(m.Segments) < 2 || m.Segments[1].ID != "MSA" {
			t.Fatalf("ACK segments: %q", ack)
		}
		msa := m.Segments[1]
		if got, want := msa.Field(1), string(hl7.AckCodeFor(err)); got != want {
			t.Fatalf("MSA-1=%q, want %q", got, want)
		}
		if h != nil && h.Delimiters.EscapeChar != 0 {
			if got, want := m.Delimiters.Unescape(msa.Field(2)), h.ControlID; got != want {
				t.Fatalf("MSA-2=%q, want %q\n%q", got, want, ack)
			}
		}
	})
}

// checkORU checks invariants of a decoded message.
func checkORU(t *testing.T, oru *hl7.ORU) {
	t.Helper()
	valid := func(what, s string) {
		if !utf8.ValidString(s) {
			t.Fatalf("%s %q is not valid UTF-8", what, s)
		}
	}
	valid("ControlID", oru.Header.ControlID)
	for _, r := range oru.Results {
		if r.Patient != nil {
			if len(r.Patient.Identifiers) > hl7.MaxRepetitions {
				t.Fatalf("%d identifiers", len(r.Patient.Identifiers))
			}
		}
		for _, o := range r.Orders {
			for _, obs := range o.Observations {
				valid("Value", obs.Value)
				valid("ValueText", obs.ValueText)
				valid("Code", obs.Code.Identifier)
				if obs.Value == "" {
					t.Fatalf("observation %d has no value", obs.Segment)
				}
				if obs.HasNumber && (math.IsNaN(obs.Number) || math.IsInf(obs.Number, 0)) {
					t.Fatalf("Number=%v from %q", obs.Number, obs.Value)
				}
				if len(obs.AbnormalFlags) > hl7.MaxRepetitions {
					t.Fatalf("%d flags", len(obs.AbnormalFlags))
				}
				if obs.Effective.IsZero() && !(obs.ObservedAt.IsZero() && o.ObservedAt.IsZero() && oru.Header.Time.IsZero()) {
					t.Fatalf("Effective is zero though a time was sent")
				}
			}
		}
	}
}

func FuzzMLLPReader(f *testing.F) {
	addCatalogue(f, frame)
	addCatalogue(f, func(b []byte) []byte {
		// Junk, a frame cut short by a restart, a frame with no CR.
		out := append([]byte("junk\r\n\x0bMSH|cut"), frame(b)...)
		return append(append(out, 0x0b), append(b, 0x1c)...)
	})
	f.Add([]byte{0x0b, 0x1c, 0x0d, 0x1c, 0x0b, 0x0b, 0x0d})

	const maxFrame = 512
	f.Fuzz(func(t *testing.T, data []byte) {
		r := hl7.NewReader(bytes.NewReader(data))
		r.MaxFrameSize = maxFrame
		var frames [][]byte
		var framed int64 // bytes of returned frames plus their start and end bytes
		calls := 0
		for {
			calls++
			if calls > len(data)+2 {
				t.Fatalf("ReadFrame makes no progress after %d calls", calls)
			}
			fr, err := r.ReadFrame()
			if errors.Is(err, hl7.ErrFrameTooLarge) {
				continue
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if len(fr) > maxFrame {
				t.Fatalf("frame of %d bytes passed the %d cap", len(fr), maxFrame)
			}
			if bytes.IndexByte(fr, 0x0b) >= 0 || bytes.IndexByte(fr, 0x1c) >= 0 {
				t.Fatalf("frame %q holds a framing byte", fr)
			}
			frames = append(frames, fr)
			framed += int64(len(fr)) + 2
		}
		if got, max := r.Skipped()+framed, int64(len(data)); got > max {
			t.Fatalf("Skipped %d + framed %d > %d bytes read", r.Skipped(), framed, max)
		}

		// Every frame read survives a write and a read back.
		var buf bytes.Buffer
		for _, fr := range frames {
			if err := hl7.WriteFrame(&buf, fr); err != nil {
				t.Fatal(err)
			}
		}
		r2 := hl7.NewReader(&buf)
		r2.MaxFrameSize = maxFrame
		for i, want := range frames {
			got, err := r2.ReadFrame()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("frame %d round trip=%q, %v; want %q", i, got, err, want)
			}
		}
		if _, err := r2.ReadFrame(); err != io.EOF {
			t.Fatalf("after round trip err=%v, want io.EOF", err)
		}
		if got := r2.Skipped(); got != 0 {
			t.Fatalf("round trip Skipped=%d, want 0", got)
		}
	})
}
