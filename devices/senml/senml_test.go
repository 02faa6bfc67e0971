package senml_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/senml"
)

// caseDir holds the shared catalogue of payloads (see its README.md). Each
// <format>-<case>.json has a <format>-<case>.want golden file: one line per
// measurement, or one "error: ..." line.
const caseDir = "../../testdata/senml"

var update = flag.Bool("update", false, "rewrite the .want files of testdata/senml")

// The fixed inputs every catalogue case is decoded with.
var (
	testNow    = time.Date(2026, 3, 14, 4, 46, 0, 0, time.UTC)
	testDevice = "BP monitor 1"
)

// MustCases returns the catalogue's payload files with the given prefix.
func MustCases(tb testing.TB, prefix string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(caseDir, prefix+"*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no %s cases in %s", prefix, caseDir)
	}
	return files
}

// render is the golden form of a decode result.
func render(ms []devices.Measurement, err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, m := range ms {
		at := "-"
		if !m.At.IsZero() {
			at = m.At.UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(&b, "system=%q code=%q value=%q unit=%q at=%s patient=%q id=%q\n", m.System, m.Code, m.Value, m.Unit, at, m.PatientRef, m.MessageID)
	}
	return b.String()
}

// Ensure every payload in the catalogue decodes to its golden result, by its
// own decoder and by Decode with the "auto" codec.
func TestCatalogue(t *testing.T) {
	for _, c := range []struct {
		prefix, codec string
		decode        func([]byte) ([]devices.Measurement, error)
	}{
		{"senml-", senml.CodecSenML, func(b []byte) ([]devices.Measurement, error) { return senml.DecodeSenML(b, testNow) }},
		{"envelope-", senml.CodecJSON, func(b []byte) ([]devices.Measurement, error) { return senml.DecodeEnvelope(b, testDevice) }},
	} {
		for _, file := range MustCases(t, c.prefix) {
			name := strings.TrimSuffix(filepath.Base(file), ".json")
			t.Run(name, func(t *testing.T) {
				payload, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				ms, err := c.decode(payload)
				got := render(ms, err)
				wantFile := strings.TrimSuffix(file, ".json") + ".want"
				if *update {
					if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err2 := os.ReadFile(wantFile)
				if err2 != nil {
					t.Fatalf("%v (run go test -update to write it)", err2)
				}
				if got != string(want) {
					t.Fatalf("decode %s:\ngot  %s\nwant %s", name, got, want)
				}
				if err != nil {
					var e *senml.Error
					if !errors.As(err, &e) || e.Err == nil {
						t.Fatalf("error %T %v, want *senml.Error with a sentinel", err, err)
					}
				}

				// Ensure "auto" picks the same decoder for the payloads that
				// are JSON arrays (SenML) or objects (the envelope).
				ams, format, aerr := senml.Decode(senml.CodecAuto, payload, testDevice, testNow)
				if err == nil {
					if format != c.codec || render(ams, aerr) != got {
						t.Fatalf("auto decoded as %s: %s", format, render(ams, aerr))
					}
				} else if aerr == nil && format == c.codec {
					t.Fatalf("auto accepted what %s refused", c.codec)
				}
			})
		}
	}
}

func TestDecode(t *testing.T) {
	// Ensure a codec that cannot travel over MQTT is named in the error.
	t.Run("UnsupportedCodec", func(t *testing.T) {
		_, _, err := senml.Decode("hl7", []byte(`{}`), testDevice, testNow)
		if !errors.Is(err, senml.ErrUnsupportedCodec) || !strings.Contains(err.Error(), "senml, json or auto") {
			t.Fatalf("err=%v", err)
		}
	})
	// Ensure auto refuses what is neither an array nor an object.
	t.Run("AutoNeither", func(t *testing.T) {
		for _, p := range []string{`"text"`, `42`, ``, `   `, "\xef\xbb\xbf[]"} {
			if _, _, err := senml.Decode(senml.CodecAuto, []byte(p), testDevice, testNow); !errors.Is(err, senml.ErrNotJSON) && !errors.Is(err, senml.ErrInvalidUTF8) {
				t.Fatalf("Decode(%q) err=%v, want ErrNotJSON", p, err)
			}
		}
	})
	// Ensure the envelope's device check is skipped when the transport does
	// not know the sender's name (it always does over MQTT).
	t.Run("EnvelopeAnyDevice", func(t *testing.T) {
		p := []byte(`{"message_id":"m1","device":"BP monitor 9","readings":[{"loinc":"8480-6","value":120}]}`)
		if _, err := senml.DecodeEnvelope(p, ""); err != nil {
			t.Fatal(err)
		}
	})
	// Ensure no error quotes a value, time or patient identifier (PHI).
	t.Run("ErrorsCarryNoPHI", func(t *testing.T) {
		for _, p := range []string{
			`{"message_id":"m1","patient":"P-000777","time":"14/03/2026","readings":[{"loinc":"8480-6","value":120}]}`,
			`{"message_id":"m1","patient":"P-000777","readings":[{"loinc":"8480-6","value":"999","unit":"mm\u0001"}]}`,
			`[{"n":"a:8480-6","v":"777"}]`,
			`[{"n":"a:8480-6","v":777,"t":99999999999999}]`,
		} {
			_, _, err := senml.Decode(senml.CodecAuto, []byte(p), testDevice, testNow)
			if err == nil {
				t.Fatalf("Decode(%s) succeeded", p)
			}
			for _, phi := range []string{"777", "P-000", "14/03", "99999"} {
				if strings.Contains(err.Error(), phi) {
					t.Fatalf("error %q quotes %q", err, phi)
				}
			}
		}
	})
	// Ensure a SenML replay gets the same message IDs, and a pack with
	// relative times none (two identical thermometer readings ten minutes
	// apart are two readings, not a replay).
	t.Run("SenMLMessageIDs", func(t *testing.T) {
		abs := []byte(`[{"bn":"x:","bt":1773463560,"n":"8480-6","u":"mmHg","v":120},{"n":"8462-4","u":"mmHg","v":80}]`)
		a, _ := senml.DecodeSenML(abs, testNow)
		b, _ := senml.DecodeSenML(abs, testNow.Add(time.Hour))
		if a[0].MessageID == "" || a[0].MessageID != b[0].MessageID || a[0].MessageID == a[1].MessageID {
			t.Fatalf("ids %q %q %q", a[0].MessageID, b[0].MessageID, a[1].MessageID)
		}
		rel, _ := senml.DecodeSenML([]byte(`[{"n":"x:8310-5","u":"Cel","v":37}]`), testNow)
		if rel[0].MessageID != "" || !rel[0].At.Equal(testNow) {
			t.Fatalf("relative: %+v", rel[0])
		}
	})
}
