package exportfile

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

const caseDir = "../../testdata/exportfile"

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(caseDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustIdentity(tb testing.TB) *age.X25519Identity {
	tb.Helper()
	id, err := age.ParseX25519Identity(strings.TrimSpace(string(mustRead(tb, "hub-identity.txt"))))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// FuzzParse feeds hostile files to the whole reader: Parse, then Open with
// the hub's identity. Nothing may panic, and a file that is refused gives
// no document.
func FuzzParse(f *testing.F) {
	valid := mustRead(f, "valid.hpx")
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	flipped := bytes.Clone(valid)
	flipped[len(flipped)-5] ^= 0x40
	f.Add(flipped)
	f.Add([]byte(Format + "\n{}\nsignature AAAA\n"))
	id := mustIdentity(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrNotExportFile) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTampered) && !errors.Is(err, ErrBadContent) {
				t.Fatalf("Parse error %v is none of the package's", err)
			}
			return
		}
		n := 0
		if err := file.Open(id, 1<<20, func(Document) error { n++; return nil }); err == nil && n != file.Header.Documents {
			t.Fatalf("opened %d documents, header says %d", n, file.Header.Documents)
		}
	})
}

// seal builds a signed file whose decrypted payload is plain, gzipped when
// gz: the way to reach the line parser with hostile content.
func seal(tb testing.TB, plain []byte, gz bool, documents int, key ed25519.PrivateKey, id *age.X25519Identity) []byte {
	tb.Helper()
	var payload bytes.Buffer
	enc, err := age.Encrypt(&payload, id.Recipient())
	if err != nil {
		tb.Fatal(err)
	}
	if gz {
		zw := gzip.NewWriter(enc)
		zw.Write(plain)
		zw.Close()
	} else {
		enc.Write(plain)
	}
	enc.Close()
	sum := sha256.Sum256(payload.Bytes())
	h := Header{Format: Format, ExportID: "e1", Created: time.Unix(0, 0).UTC(), NodeKey: EncodePublicKey(key.Public().(ed25519.PublicKey)),
		Recipient: id.Recipient().String(), Documents: documents, PayloadBytes: int64(payload.Len()), PayloadSHA256: hex.EncodeToString(sum[:])}
	hj, _ := json.Marshal(h)
	signed := append(append([]byte(Format+"\n"), hj...), '\n')
	out := append(signed, "signature "+base64.StdEncoding.EncodeToString(ed25519.Sign(key, signed))+"\n"...)
	return append(out, payload.Bytes()...)
}

// FuzzOpen feeds hostile decrypted content, signed and encrypted as a real
// node would, to the line parser.
func FuzzOpen(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	manifestLine := `{"format":"` + Format + `","export_id":"e1","node_key":"` + EncodePublicKey(key.Public().(ed25519.PublicKey)) + `"}` + "\n"
	f.Add([]byte(manifestLine+`{"outbox_id":1,"key":"k","document":"OPConsultRecord","bundle_id":"b","bundle":{"resourceType":"Bundle"}}`+"\n"), true, 1)
	f.Add([]byte(manifestLine), true, 0)
	f.Add([]byte(manifestLine+"{\n"), true, 1)
	f.Add([]byte(`{"format":"x"}`+"\n"), true, 0)
	f.Add([]byte("not gzip"), false, 0)
	id := mustIdentity(f)
	f.Fuzz(func(t *testing.T, plain []byte, gz bool, documents int) {
		if documents < 0 || documents > 1000 {
			return
		}
		file, err := Parse(seal(t, plain, gz, documents, key, id))
		if err != nil {
			t.Fatalf("a well-signed file does not parse: %v", err)
		}
		n := 0
		err = file.Open(id, 4096, func(d Document) error {
			n++
			if d.Key == "" || len(d.Bundle) == 0 {
				t.Fatalf("a document without key or Bundle came out: %+v", d)
			}
			return nil
		})
		if err == nil && n != documents {
			t.Fatalf("opened %d documents, header says %d", n, documents)
		}
		if err != nil && !errors.Is(err, ErrBadContent) && !errors.Is(err, ErrTampered) {
			t.Fatalf("Open error %v is none of the package's", err)
		}
	})
}

// FuzzParseReceipt feeds hostile receipts to the node's reader.
func FuzzParseReceipt(f *testing.F) {
	valid := mustRead(f, "valid.receipt.json")
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte(`{"payload":{},"public_key":"","signature":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReceipt(data, nil)
		if err != nil {
			if !errors.Is(err, ErrBadReceipt) {
				t.Fatalf("error %v is not ErrBadReceipt", err)
			}
			return
		}
		if r.ExportID == "" || r.Format != ReceiptFormat {
			t.Fatalf("accepted a receipt without export or format: %+v", r)
		}
	})
}
