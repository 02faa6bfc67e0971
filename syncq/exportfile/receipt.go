package exportfile

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ReceiptFormat names the layout of a receipt's payload.
const ReceiptFormat = "healthpost-export-receipt/1"

// ReceiptExt ends the name of a receipt file; it replaces Ext of the export
// file it answers.
const ReceiptExt = ".receipt.json"

// MaxReceiptBytes caps the receipt files a reader accepts.
const MaxReceiptBytes = 64 << 20

// ErrBadReceipt means a receipt was changed after the hub signed it, is not
// a receipt, or was signed by a key other than the hub's.
var ErrBadReceipt = errors.New("not a valid receipt of a USB export file")

// Receipt is the hub's answer to an export file: what became of each
// document. It names records by outbox id, key and Bundle id only.
type Receipt struct {
	Format   string `json:"format"`
	ExportID string `json:"export_id"`
	// FileSHA256 is the hex digest of the export file answered.
	FileSHA256 string `json:"file_sha256"`
	// NodeKey is the key that signed the export file; Node its name at the hub.
	NodeKey    string            `json:"node_key"`
	Node       string            `json:"node"`
	ReceivedAt time.Time         `json:"received_at"`
	Documents  []ReceiptDocument `json:"documents"`
}

// ReceiptDocument is what the hub did with one document: stored it as
// RemoteID at RemoteVersion, or refused it with Refused saying why.
type ReceiptDocument struct {
	OutboxID      int64     `json:"outbox_id"`
	Key           string    `json:"key"`
	RemoteID      string    `json:"remote_id,omitempty"`
	RemoteVersion string    `json:"remote_version,omitempty"`
	StoredAt      time.Time `json:"stored_at,omitzero"`
	Refused       string    `json:"refused,omitempty"`
}

// SignedReceipt is a receipt's payload signed with the hub's Ed25519 key.
// The signature covers the payload's JSON with insignificant whitespace
// removed (json.Compact), so re-indenting the file does not break it and
// changing any value does.
type SignedReceipt struct {
	Payload   json.RawMessage `json:"payload"`
	PublicKey string          `json:"public_key"`
	Signature string          `json:"signature"`
}

// SignReceipt signs r and returns the receipt file's bytes.
func SignReceipt(r *Receipt, key ed25519.PrivateKey) ([]byte, error) {
	r.Format = ReceiptFormat
	if r.Documents == nil {
		r.Documents = []ReceiptDocument{}
	}
	p, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	// One line per field: a receipt lists thousands of documents, and is
	// read by programs; the header fields stay easy to find.
	var b bytes.Buffer
	b.WriteString("{\n  \"public_key\": " + jsonString(EncodePublicKey(key.Public().(ed25519.PublicKey))))
	b.WriteString(",\n  \"signature\": " + jsonString(base64.StdEncoding.EncodeToString(ed25519.Sign(key, p))))
	b.WriteString(",\n  \"payload\": ")
	b.Write(p)
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

// ParseReceipt checks a receipt file's signature against hubKey and returns
// its payload.
func ParseReceipt(b []byte, hubKey ed25519.PublicKey) (*Receipt, error) {
	if len(b) > MaxReceiptBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadReceipt, MaxReceiptBytes)
	}
	var sr SignedReceipt
	if err := json.Unmarshal(b, &sr); err != nil {
		return nil, fmt.Errorf("%w: it is not JSON", ErrBadReceipt)
	}
	pub, err := ParsePublicKey(sr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: it names no valid signing key", ErrBadReceipt)
	}
	if len(hubKey) == ed25519.PublicKeySize && !bytes.Equal(pub, hubKey) {
		return nil, fmt.Errorf("%w: it is signed by key %s, not by the hub's key %s (upstream.receipt_key)",
			ErrBadReceipt, Fingerprint(pub), Fingerprint(hubKey))
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, sr.Payload); err != nil {
		return nil, fmt.Errorf("%w: its payload is not JSON", ErrBadReceipt)
	}
	sig, err := base64.StdEncoding.DecodeString(sr.Signature)
	if err != nil || !ed25519.Verify(pub, compact.Bytes(), sig) {
		return nil, fmt.Errorf("%w: the signature does not match its contents (changed after the hub signed it)", ErrBadReceipt)
	}
	var r Receipt
	if err := json.Unmarshal(sr.Payload, &r); err != nil || r.Format != ReceiptFormat {
		return nil, fmt.Errorf("%w: not a %s payload", ErrBadReceipt, ReceiptFormat)
	}
	if r.ExportID == "" {
		return nil, fmt.Errorf("%w: it names no export", ErrBadReceipt)
	}
	return &r, nil
}

// Verifies reports whether the receipt answers the export file f.
func (r *Receipt) Verifies(f *File) bool {
	return r.ExportID == f.Header.ExportID && r.FileSHA256 == f.SHA256 && r.NodeKey == f.Header.NodeKey
}
