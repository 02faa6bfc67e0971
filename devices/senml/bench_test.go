package senml_test

import (
	"testing"

	"github.com/healthpost/healthpost/devices/senml"
)

// BenchmarkDecodeEnvelope decodes a BP monitor's envelope, as the MQTT
// broker does for every publish.
func BenchmarkDecodeEnvelope(b *testing.B) {
	payload := []byte(`{"message_id":"bp-3-17","patient":"P-000001","time":"2026-03-14T10:16:00+05:30",` +
		`"readings":[{"loinc":"8480-6","value":120,"unit":"mm[Hg]"},{"loinc":"8462-4","value":80,"unit":"mm[Hg]"}]}`)
	b.ReportAllocs()
	for range b.N {
		if _, err := senml.DecodeEnvelope(payload, testDevice); err != nil {
			b.Fatal(err)
		}
	}
}
