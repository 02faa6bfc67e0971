package fhir_test

import (
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/fhir"
)

// BenchmarkBuildDocument maps one OPD encounter of the fixture (complaint,
// notes, 11 measurements from two devices and by hand, one diagnosis, three
// drug lines) to each of its documents, and reports the JSON size and its
// gzip size (what goes on the wire with Content-Encoding: gzip).
func BenchmarkBuildDocument(b *testing.B) {
	for _, kind := range []string{edge.DocOPConsult, edge.DocPrescription, edge.DocWellness} {
		b.Run(kind, func(b *testing.B) {
			in := encounterInput(kind)
			doc := MustBuild(b, in)
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			if _, err := zw.Write(doc.JSON); err != nil {
				b.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fhir.BuildDocument(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(doc.JSON)), "json-bytes")
			b.ReportMetric(float64(buf.Len()), "gzip-bytes")
		})
	}
}
