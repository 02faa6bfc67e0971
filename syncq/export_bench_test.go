package syncq_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
)

// BenchmarkUSBExport measures the stick's round trip for a backlog of
// 10,000 encounters (about 15,000 ABDM documents, built by the real FHIR
// mapper): how fast the node exports (map, compress, encrypt, write, mark),
// the file's size per encounter, how fast the hub takes the file (check,
// decrypt, store, sign the receipt) and how fast the node imports the
// receipt. Run it once:
//
//	go test ./syncq -run '^$' -bench USBExport -benchtime 1x
func BenchmarkUSBExport(b *testing.B) {
	encounters := 10000
	if v := os.Getenv("HPBENCH_ENCOUNTERS"); v != "" {
		encounters, _ = strconv.Atoi(v)
	}
	ctx := edgetest.Clerk()
	for range b.N {
		b.StopTimer()
		s := edgetest.MustOpenStoreAt(b, filepath.Join(b.TempDir(), edge.DBFileName))
		docs := MustSeed(b, s, 1000, encounters)
		m, err := syncq.NewFHIRMapper(s, edge.FacilityConfig{Name: "PHC Rampur", HFRID: "IN0910034387"})
		if err != nil {
			b.Fatal(err)
		}
		key := mustNodeKey(b)
		h := MustOpenExportHub(b, key)
		b.StartTimer()

		start := time.Now()
		res, err := syncq.Export(ctx, s, m, syncq.ExportOptions{Dir: b.TempDir(), HubKey: h.Keys.ExportKey(), Key: key, NodeID: "phc-bench"})
		exportTime := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if res.Documents != docs {
			b.Fatalf("exported %d of %d documents (%d quarantined)", res.Documents, docs, res.Quarantined)
		}
		data, err := os.ReadFile(res.Path)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		acc, err := h.Exports.Accept(context.Background(), data, "bench")
		acceptTime := time.Since(start)
		if err != nil || acc.New != docs {
			b.Fatalf("hub took %v new versions of %d (err %v)", acc, docs, err)
		}
		start = time.Now()
		ir, err := syncq.ImportReceipt(ctx, s, acc.Signed, syncq.ImportOptions{HubKey: h.ReceiptKey(), NodeKey: key.Public().(ed25519.PublicKey)})
		importTime := time.Since(start)
		if err != nil || ir.Confirmed != docs {
			b.Fatalf("imported %+v (err %v)", ir, err)
		}
		b.StopTimer()
		b.ReportMetric(float64(docs)/exportTime.Seconds(), "export-docs/s")
		b.ReportMetric(float64(docs)/acceptTime.Seconds(), "hub-docs/s")
		b.ReportMetric(float64(docs)/importTime.Seconds(), "import-docs/s")
		b.ReportMetric(float64(res.Bytes)/float64(encounters), "file-B/encounter")
		b.ReportMetric(float64(len(acc.Signed))/float64(encounters), "receipt-B/encounter")
		s.Close(context.Background())
	}
}
