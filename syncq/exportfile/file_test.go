package exportfile_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/healthpost/healthpost/syncq/exportfile"
)

const caseDir = "../../testdata/exportfile"

// MustIdentity is the test hub's identity the testdata file is encrypted to.
func MustIdentity(tb testing.TB) *age.X25519Identity {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(caseDir, "hub-identity.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	id, err := age.ParseX25519Identity(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// MustSeal writes docs into a file for the recipient, signed with key.
func MustSeal(tb testing.TB, recipient string, key ed25519.PrivateKey, docs ...exportfile.Document) []byte {
	tb.Helper()
	w, err := exportfile.NewWriter(exportfile.Header{ExportID: "0195b3c2-7a10-7c00-8000-0000000e0009", NodeID: "phc-test", Created: time.Now()}, recipient, key)
	if err != nil {
		tb.Fatal(err)
	}
	for _, d := range docs {
		if err := w.Add(d); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		tb.Fatal(err)
	}
	if got, want := int64(b.Len()), w.Size(); got != want {
		tb.Fatalf("wrote %d bytes, Size()=%d", got, want)
	}
	return b.Bytes()
}

func mustKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func docs(n int) []exportfile.Document {
	var out []exportfile.Document
	for i := range n {
		out = append(out, exportfile.Document{OutboxID: int64(i + 1), Key: "OPConsultRecord/encounter/e" + string(rune('a'+i)) + "/v1",
			Kind: "OPConsultRecord", BundleID: "b" + string(rune('a'+i)),
			Bundle: json.RawMessage("{\n  \"resourceType\": \"Bundle\",\n  \"id\": \"b" + string(rune('a'+i)) + "\"\n}")})
	}
	return out
}

// openAll parses and decrypts a file and returns its documents.
func openAll(data []byte, id age.Identity) (*exportfile.File, []exportfile.Document, error) {
	f, err := exportfile.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	var got []exportfile.Document
	err = f.Open(id, 0, func(d exportfile.Document) error { got = append(got, d); return nil })
	return f, got, err
}

func TestFile_RoundTrip(t *testing.T) {
	id := MustIdentity(t)
	key := mustKey(t)
	data := MustSeal(t, id.Recipient().String(), key, docs(3)...)

	// Ensure the file opens, names its signer, and gives back every document in order, compacted.
	f, got, err := openAll(data, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.NodeKey, key.Public().(ed25519.PublicKey); !got.Equal(want) {
		t.Fatalf("NodeKey=%x, want %x", got, want)
	}
	if f.Header.Documents != 3 || len(got) != 3 {
		t.Fatalf("header says %d documents, read %d; want 3", f.Header.Documents, len(got))
	}
	for i, d := range got {
		want := docs(3)[i]
		if d.OutboxID != want.OutboxID || d.Key != want.Key || d.BundleID != want.BundleID || d.Kind != want.Kind {
			t.Fatalf("document %d = %+v, want %+v", i, d, want)
		}
		var c bytes.Buffer
		json.Compact(&c, want.Bundle)
		if !bytes.Equal(d.Bundle, c.Bytes()) {
			t.Fatalf("document %d Bundle = %s, want %s", i, d.Bundle, c.Bytes())
		}
	}
	// Ensure the header is readable as text: what a technician sees with head -2.
	if lines := strings.SplitN(string(data), "\n", 4); lines[0] != exportfile.Format || !strings.Contains(lines[1], `"documents":3`) || !strings.HasPrefix(lines[2], "signature ") {
		t.Fatalf("file starts %q", lines[:3])
	}
}

func TestFile_RejectedWhole(t *testing.T) {
	id := MustIdentity(t)
	key := mustKey(t)
	valid := MustSeal(t, id.Recipient().String(), key, docs(5)...)
	headerEnd := bytes.Index(valid, []byte("\nsignature ")) + 1
	payloadStart := bytes.IndexByte(valid[headerEnd:], '\n') + headerEnd + 1

	flip := func(at int) []byte {
		b := bytes.Clone(valid)
		b[at] ^= 0x01
		return b
	}
	otherHub, _ := age.GenerateX25519Identity()
	toOther := MustSeal(t, otherHub.Recipient().String(), key, docs(5)...)

	// A thief re-signs another node's file with its own key: the header checks out, the payload does not.
	resigned := func() []byte {
		thief := mustKey(t)
		lines := bytes.SplitN(valid, []byte("\n"), 4)
		var h map[string]any
		json.Unmarshal(lines[1], &h)
		h["node_key"] = base64.StdEncoding.EncodeToString(thief.Public().(ed25519.PublicKey))
		hj, _ := json.Marshal(h)
		signed := append(append([]byte(exportfile.Format+"\n"), hj...), '\n')
		sig := ed25519.Sign(thief, signed)
		out := append(signed, []byte("signature "+base64.StdEncoding.EncodeToString(sig)+"\n")...)
		return append(out, lines[3]...)
	}()

	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"Empty", nil, exportfile.ErrTruncated},
		{"NotAnExportFile", []byte("PK\x03\x04 a zip file"), exportfile.ErrNotExportFile},
		{"FlippedMagic", flip(3), exportfile.ErrNotExportFile},
		{"FlippedHeader", flip(len(exportfile.Format) + 30), exportfile.ErrTampered},
		{"FlippedDocumentCount", bytes.Replace(valid, []byte(`"documents":5`), []byte(`"documents":4`), 1), exportfile.ErrTampered},
		{"FlippedSignature", flip(headerEnd + 20), exportfile.ErrTampered},
		{"FlippedPayloadFirstByte", flip(payloadStart), exportfile.ErrTampered},
		{"FlippedPayloadMiddle", flip((payloadStart + len(valid)) / 2), exportfile.ErrTampered},
		{"FlippedPayloadLastByte", flip(len(valid) - 1), exportfile.ErrTampered},
		{"CutInHeader", valid[:len(exportfile.Format)+20], exportfile.ErrTruncated},
		{"CutInSignature", valid[:headerEnd+15], exportfile.ErrTruncated},
		{"CutAtPayload", valid[:payloadStart], exportfile.ErrTruncated},
		{"CutInPayload", valid[:len(valid)-10], exportfile.ErrTruncated},
		{"TrailingBytes", append(bytes.Clone(valid), "more"...), exportfile.ErrTampered},
		{"EncryptedToAnotherHub", toOther, exportfile.ErrWrongRecipient},
		{"ResignedByAnotherNode", resigned, exportfile.ErrTampered},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Ensure the file is refused with the error that names the problem, and no document comes out.
			_, got, err := openAll(c.data, id)
			if !errors.Is(err, c.want) {
				t.Fatalf("err=%v, want %v", err, c.want)
			}
			if len(got) > 0 {
				t.Fatalf("%d documents came out of a refused file", len(got))
			}
		})
	}
}

func TestReceipt_Signed(t *testing.T) {
	hub := mustKey(t)
	r := &exportfile.Receipt{ExportID: "e1", FileSHA256: "ab", NodeKey: "k", Node: "phc-test", ReceivedAt: time.Now().UTC(),
		Documents: []exportfile.ReceiptDocument{{OutboxID: 7, Key: "k7", RemoteID: "Bundle/b7", RemoteVersion: "2"}}}
	b, err := exportfile.SignReceipt(r, hub)
	if err != nil {
		t.Fatal(err)
	}
	pub := hub.Public().(ed25519.PublicKey)

	// Ensure the hub's receipt checks out against its key, and says what it was signed with.
	got, err := exportfile.ParseReceipt(b, pub)
	if err != nil {
		t.Fatal(err)
	}
	if got.Documents[0].RemoteVersion != "2" || got.ExportID != "e1" {
		t.Fatalf("receipt = %+v", got)
	}
	// Ensure re-indenting does not break it, and changing a value does.
	var sr exportfile.SignedReceipt
	json.Unmarshal(b, &sr)
	indented, _ := json.MarshalIndent(sr, "", "\t")
	if _, err := exportfile.ParseReceipt(indented, pub); err != nil {
		t.Fatalf("re-indented receipt: %v", err)
	}
	for name, bad := range map[string][]byte{
		"ChangedVersion":  bytes.Replace(b, []byte(`"remote_version":"2"`), []byte(`"remote_version":"3"`), 1),
		"ChangedOutboxID": bytes.Replace(b, []byte(`"outbox_id":7`), []byte(`"outbox_id":8`), 1),
		"OtherHubsKey":    func() []byte { b, _ := exportfile.SignReceipt(r, mustKey(t)); return b }(),
		"NotJSON":         []byte("receipt"),
	} {
		if bytes.Equal(bad, b) {
			t.Fatalf("%s: the test did not change the receipt", name)
		}
		if _, err := exportfile.ParseReceipt(bad, pub); !errors.Is(err, exportfile.ErrBadReceipt) {
			t.Fatalf("%s: err=%v, want ErrBadReceipt", name, err)
		}
	}
}
