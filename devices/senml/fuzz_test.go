package senml_test

import (
	"errors"
	"math"
	"os"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/senml"
)

// addCatalogue seeds f with every payload of the catalogue.
func addCatalogue(f *testing.F, prefix string) {
	f.Helper()
	for _, file := range MustCases(f, prefix) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// checkResult holds for any decode result, whatever the input.
func checkResult(t *testing.T, payload []byte, ms []devices.Measurement, err error) {
	t.Helper()
	if err != nil {
		var e *senml.Error
		if !errors.As(err, &e) || e.Err == nil {
			t.Fatalf("error %T %v, want *senml.Error wrapping a sentinel", err, err)
		}
		if ms != nil {
			t.Fatalf("error %v with %d measurements", err, len(ms))
		}
		if !utf8.ValidString(err.Error()) {
			t.Fatalf("error text is not UTF-8: %q", err.Error())
		}
		return
	}
	if len(payload) > senml.MaxPayload || !utf8.Valid(payload) {
		t.Fatalf("accepted a payload over the caps (%d bytes)", len(payload))
	}
	if len(ms) == 0 || len(ms) > senml.MaxRecords {
		t.Fatalf("%d measurements", len(ms))
	}
	for _, m := range ms {
		for _, s := range []string{m.System, m.Code, m.Value, m.Unit, m.PatientRef, m.MessageID} {
			if !utf8.ValidString(s) || len(s) > 2*senml.MaxString {
				t.Fatalf("measurement field %q over the caps", s)
			}
		}
		if m.Value == "" {
			t.Fatalf("empty value in %+v", m)
		}
		if f, err := strconv.ParseFloat(m.Value, 64); err == nil && (math.IsInf(f, 0) || math.IsNaN(f)) {
			t.Fatalf("non-finite value %q", m.Value)
		}
		if m.At.Year() > 9999 {
			t.Fatalf("time %v", m.At)
		}
	}
}

func FuzzDecodeSenML(f *testing.F) {
	addCatalogue(f, "senml-")
	f.Fuzz(func(t *testing.T, payload []byte) {
		ms, err := senml.DecodeSenML(payload, testNow)
		checkResult(t, payload, ms, err)
		// Ensure decoding is deterministic: a replay gets the same IDs.
		ms2, err2 := senml.DecodeSenML(payload, testNow)
		if render(ms, err) != render(ms2, err2) {
			t.Fatal("two decodes of one payload differ")
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	addCatalogue(f, "envelope-")
	f.Fuzz(func(t *testing.T, payload []byte) {
		ms, err := senml.DecodeEnvelope(payload, testDevice)
		checkResult(t, payload, ms, err)
		if err == nil {
			for _, m := range ms {
				if m.MessageID == "" {
					t.Fatal("envelope measurement without a message ID")
				}
			}
		}
	})
}

func FuzzDecodeAuto(f *testing.F) {
	addCatalogue(f, "senml-")
	addCatalogue(f, "envelope-")
	f.Fuzz(func(t *testing.T, payload []byte) {
		ms, format, err := senml.Decode(senml.CodecAuto, payload, testDevice, testNow)
		checkResult(t, payload, ms, err)
		if err == nil && format != senml.CodecSenML && format != senml.CodecJSON {
			t.Fatalf("format %q", format)
		}
	})
}
