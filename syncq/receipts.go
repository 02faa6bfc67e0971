package syncq

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/exportfile"
)

// ReceiptFormat names the layout of a receipt report's payload.
const ReceiptFormat = "healthpost-receipts/1"

// SigningKeyFileName is the node's signing key in its data directory.
const SigningKeyFileName = "node-signing.key"

// ErrBadSignature means a receipt report was changed after it was signed,
// or was not signed by the key it carries.
var ErrBadSignature = errors.New("the report's signature does not match its contents")

// ReceiptLine is one document an upstream acknowledged. It names records by
// their IDs only, never by anything about the patient.
type ReceiptLine struct {
	OutboxID      int64     `json:"outbox_id"`
	Key           string    `json:"key"`
	Document      string    `json:"document"`
	PatientID     string    `json:"patient_id,omitempty"`
	Upstream      string    `json:"upstream"`
	RemoteID      string    `json:"remote_id"`
	RemoteVersion string    `json:"remote_version"`
	DeliveredAt   time.Time `json:"delivered_at"`
}

// ReceiptPayload is what a receipt report says.
type ReceiptPayload struct {
	Format      string        `json:"format"`
	NodeID      string        `json:"node_id"`
	From        time.Time     `json:"from"`
	To          time.Time     `json:"to"`
	GeneratedAt time.Time     `json:"generated_at"`
	Receipts    []ReceiptLine `json:"receipts"`
}

// ReceiptReport is a payload signed with the node's Ed25519 key. The
// signature covers the payload's JSON with insignificant whitespace
// removed (json.Compact), so re-indenting the file does not break it and
// changing any value does.
type ReceiptReport struct {
	Payload   json.RawMessage `json:"payload"`
	PublicKey string          `json:"public_key"` // base64 Ed25519
	Signature string          `json:"signature"`  // base64 Ed25519 over Payload
}

// BuildReceiptReport lists what each upstream acknowledged in [from, to)
// and signs it.
func BuildReceiptReport(ctx context.Context, s *edge.Store, from, to, now time.Time, key ed25519.PrivateKey) (*ReceiptReport, *ReceiptPayload, error) {
	node, err := s.NodeID(ctx)
	if err != nil && !errors.Is(err, edge.ErrNotFound) {
		return nil, nil, err
	}
	items, err := s.DeliveredItems(ctx, from, to)
	if err != nil {
		return nil, nil, err
	}
	p := &ReceiptPayload{Format: ReceiptFormat, NodeID: node, From: from.UTC(), To: to.UTC(), GeneratedAt: now.UTC(), Receipts: []ReceiptLine{}}
	for _, it := range items {
		p.Receipts = append(p.Receipts, ReceiptLine{OutboxID: it.ID, Key: it.Key, Document: it.Document, PatientID: it.PatientID,
			Upstream: it.Upstream, RemoteID: it.RemoteID, RemoteVersion: it.RemoteVersion, DeliveredAt: it.DeliveredAt.UTC()})
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	return &ReceiptReport{
		Payload:   b,
		PublicKey: base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, b)),
	}, p, nil
}

// Verify checks the signature and returns the payload and the signing key's
// fingerprint, to compare with the one the node shows.
func (r *ReceiptReport) Verify() (*ReceiptPayload, string, error) {
	pub, err := base64.StdEncoding.DecodeString(r.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, "", fmt.Errorf("%w: no valid public key", ErrBadSignature)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, r.Payload); err != nil {
		return nil, "", fmt.Errorf("%w: the payload is not JSON", ErrBadSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil || !ed25519.Verify(pub, compact.Bytes(), sig) {
		return nil, "", ErrBadSignature
	}
	var p ReceiptPayload
	if err := json.Unmarshal(r.Payload, &p); err != nil || p.Format != ReceiptFormat {
		return nil, "", fmt.Errorf("not a %s report", ReceiptFormat)
	}
	return &p, Fingerprint(pub), nil
}

// Fingerprint is a short, printable name of a public key.
func Fingerprint(pub ed25519.PublicKey) string { return exportfile.Fingerprint(pub) }

// LoadOrCreateSigningKey reads the node's Ed25519 key from path (PKCS#8
// PEM), or makes one and writes it atomically with mode 0600.
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, error) {
	return exportfile.LoadOrCreateSigningKey(path)
}

// WriteReceiptReport writes the report to path atomically.
func WriteReceiptReport(path string, r *ReceiptReport) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return exportfile.WriteFileAtomic(path, append(b, '\n'), 0o644)
}
