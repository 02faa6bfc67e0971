package exportfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
)

// Format is the first line of every export file, without its newline.
const Format = "healthpost-export/1"

// Ext is the file name extension of export files.
const Ext = ".hpx"

// Limits of what a reader accepts.
const (
	MaxHeaderBytes = 64 << 10
	// DefaultMaxDocumentBytes caps one document line once decrypted and
	// decompressed: the hub's largest request body.
	DefaultMaxDocumentBytes = 16 << 20
)

// Errors of reading an export file. Each is wrapped with what exactly is
// wrong; all mean the whole file is refused.
var (
	// ErrNotExportFile: the file does not start as an export file does.
	ErrNotExportFile = errors.New("not a healthpost export file")
	// ErrTruncated: the file ends before its header says it does.
	ErrTruncated = errors.New("the export file is cut short")
	// ErrTampered: a signature, digest or authenticated decryption failed:
	// the file changed after the node wrote it.
	ErrTampered = errors.New("the export file was changed after it was written (corrupted or tampered with)")
	// ErrWrongRecipient: the payload is encrypted to a key other than the
	// reader's.
	ErrWrongRecipient = errors.New("the export file is encrypted to another hub's key")
	// ErrBadContent: the file checks out cryptographically but its content
	// breaks the format (a node wrote it wrong).
	ErrBadContent = errors.New("the export file's content is not in the export format")
)

// Header is the file's second line: what it is, who signed it, for whom,
// and how long its payload is. The signature covers it.
type Header struct {
	Format   string    `json:"format"`
	ExportID string    `json:"export_id"`
	NodeID   string    `json:"node_id,omitempty"` // the node's own name for itself; the hub goes by NodeKey
	Created  time.Time `json:"created_at"`
	// NodeKey is the signer's Ed25519 public key, base64.
	NodeKey string `json:"node_key"`
	// Recipient is the hub key the payload is encrypted to (age1...).
	Recipient     string `json:"recipient"`
	Documents     int    `json:"documents"`
	PayloadBytes  int64  `json:"payload_bytes"`
	PayloadSHA256 string `json:"payload_sha256"`
}

// Document is one document in the file: a FHIR Bundle and the outbox row
// it was built from.
type Document struct {
	OutboxID int64  `json:"outbox_id"`
	Key      string `json:"key"`      // the row's idempotency key
	Kind     string `json:"document"` // e.g. OPConsultRecord
	BundleID string `json:"bundle_id"`
	// Bundle is the document Bundle's JSON.
	Bundle json.RawMessage `json:"bundle"`
}

// manifest is the payload's first line: it repeats the export and the
// signer, binding the encrypted content to the signed header.
type manifest struct {
	Format   string `json:"format"`
	ExportID string `json:"export_id"`
	NodeKey  string `json:"node_key"`
}

// EncodePublicKey is the text form of an Ed25519 public key: base64.
func EncodePublicKey(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// ParsePublicKey reads the text form of an Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not an Ed25519 public key (44 characters of base64)", s)
	}
	return ed25519.PublicKey(b), nil
}

// Fingerprint is a short, printable name of a public key.
func Fingerprint(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return "SHA256:" + hex.EncodeToString(h[:16])
}

// Writer seals documents into an export file. The payload is built in
// memory, compressed and encrypted (about a tenth of the documents' size),
// so that the header, which comes first, can state its length and digest.
type Writer struct {
	h       Header
	key     ed25519.PrivateKey
	payload bytes.Buffer
	enc     io.WriteCloser
	zw      *gzip.Writer
	line    bytes.Buffer
	head    []byte
	closed  bool
}

// NewWriter starts a file for the export h (ExportID, NodeID and Created
// are used), encrypted to the hub key recipient (age1...) and signed with
// key.
func NewWriter(h Header, recipient string, key ed25519.PrivateKey) (*Writer, error) {
	r, err := age.ParseX25519Recipient(strings.TrimSpace(recipient))
	if err != nil {
		return nil, fmt.Errorf("the hub's export key %q is not an age X25519 key (age1...): %v", recipient, err)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("no Ed25519 signing key")
	}
	if h.ExportID == "" {
		return nil, errors.New("an export needs an id")
	}
	h.Format, h.Recipient = Format, r.String()
	h.NodeKey = EncodePublicKey(key.Public().(ed25519.PublicKey))
	w := &Writer{h: h, key: key}
	if w.enc, err = age.Encrypt(&w.payload, r); err != nil {
		return nil, fmt.Errorf("encrypt export: %w", err)
	}
	w.zw, _ = gzip.NewWriterLevel(w.enc, gzip.DefaultCompression)
	m, _ := json.Marshal(manifest{Format: Format, ExportID: h.ExportID, NodeKey: h.NodeKey})
	if _, err := w.zw.Write(append(m, '\n')); err != nil {
		return nil, err
	}
	return w, nil
}

// Add appends a document.
func (w *Writer) Add(d Document) error {
	if w.closed {
		return errors.New("export file already closed")
	}
	w.line.Reset()
	fmt.Fprintf(&w.line, `{"outbox_id":%d,"key":%s,"document":%s,"bundle_id":%s,"bundle":`,
		d.OutboxID, jsonString(d.Key), jsonString(d.Kind), jsonString(d.BundleID))
	if err := json.Compact(&w.line, d.Bundle); err != nil {
		return fmt.Errorf("outbox %d: the Bundle is not JSON: %w", d.OutboxID, err)
	}
	w.line.WriteString("}\n")
	if _, err := w.zw.Write(w.line.Bytes()); err != nil {
		return err
	}
	w.h.Documents++
	return nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Close finishes the payload and signs the header. WriteTo writes the file
// after it.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.zw.Close(); err != nil {
		return err
	}
	if err := w.enc.Close(); err != nil {
		return err
	}
	sum := sha256.Sum256(w.payload.Bytes())
	w.h.PayloadBytes, w.h.PayloadSHA256 = int64(w.payload.Len()), hex.EncodeToString(sum[:])
	hj, err := json.Marshal(w.h)
	if err != nil {
		return err
	}
	signed := append(append([]byte(Format+"\n"), hj...), '\n')
	sig := ed25519.Sign(w.key, signed)
	w.head = append(signed, "signature "+base64.StdEncoding.EncodeToString(sig)+"\n"...)
	return nil
}

// Header is the file's header; complete after Close.
func (w *Writer) Header() Header { return w.h }

// Size is the file's size in bytes; known after Close.
func (w *Writer) Size() int64 { return int64(len(w.head)) + int64(w.payload.Len()) }

// SHA256 is the hex digest of the whole file; known after Close.
func (w *Writer) SHA256() string {
	h := sha256.New()
	h.Write(w.head)
	h.Write(w.payload.Bytes())
	return hex.EncodeToString(h.Sum(nil))
}

// WriteTo writes the whole file to dst; Close first.
func (w *Writer) WriteTo(dst io.Writer) (int64, error) {
	if !w.closed {
		return 0, errors.New("close the export file before writing it")
	}
	n, err := dst.Write(w.head)
	if err != nil {
		return int64(n), err
	}
	m, err := dst.Write(w.payload.Bytes())
	return int64(n + m), err
}

// File is an export file whose header signature, payload length and payload
// digest have been checked. Its documents are read with Open.
type File struct {
	Header Header
	// NodeKey is the key that signed it (Header.NodeKey, decoded).
	NodeKey ed25519.PublicKey
	// SHA256 is the hex digest of the whole file.
	SHA256 string
	// Size is the file's length in bytes.
	Size    int64
	payload []byte
}

// Parse checks an export file's framing, signature, length and digest. It
// does not decrypt: who signed it (NodeKey) is for the caller to trust or
// not before calling Open.
func Parse(data []byte) (*File, error) {
	magic := []byte(Format + "\n")
	if !bytes.HasPrefix(data, magic) {
		if len(data) < len(magic) && bytes.HasPrefix(magic, data) {
			return nil, fmt.Errorf("%w: it ends after %d bytes", ErrTruncated, len(data))
		}
		return nil, fmt.Errorf("%w: it does not start with %q", ErrNotExportFile, Format)
	}
	rest := data[len(magic):]
	nl := bytes.IndexByte(rest[:min(len(rest), MaxHeaderBytes)], '\n')
	if nl < 0 {
		if len(rest) < MaxHeaderBytes {
			return nil, fmt.Errorf("%w: it ends inside its header", ErrTruncated)
		}
		return nil, fmt.Errorf("%w: its header is longer than %d bytes", ErrNotExportFile, MaxHeaderBytes)
	}
	headerLine := rest[:nl]
	signed := data[:len(magic)+nl+1]
	rest = rest[nl+1:]
	const sigPrefix = "signature "
	nl = bytes.IndexByte(rest[:min(len(rest), 200)], '\n')
	if nl < 0 {
		if len(rest) < 200 && bytes.HasPrefix([]byte(sigPrefix), rest[:min(len(rest), len(sigPrefix))]) {
			return nil, fmt.Errorf("%w: it ends inside its signature", ErrTruncated)
		}
		return nil, fmt.Errorf("%w: the third line is not its signature", ErrTampered)
	}
	sigLine, payload := rest[:nl], rest[nl+1:]
	sigText, ok := bytes.CutPrefix(sigLine, []byte(sigPrefix))
	if !ok {
		return nil, fmt.Errorf("%w: the third line is not its signature", ErrTampered)
	}
	sig, err := base64.StdEncoding.DecodeString(string(sigText))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: the signature is not an Ed25519 signature", ErrTampered)
	}
	var h Header
	if err := json.Unmarshal(headerLine, &h); err != nil {
		return nil, fmt.Errorf("%w: the header is not JSON", ErrTampered)
	}
	pub, err := ParsePublicKey(h.NodeKey)
	if err != nil {
		return nil, fmt.Errorf("%w: the header names no valid signing key", ErrTampered)
	}
	if !ed25519.Verify(pub, signed, sig) {
		return nil, fmt.Errorf("%w: the header's signature does not match (key %s)", ErrTampered, Fingerprint(pub))
	}
	if h.Format != Format {
		return nil, fmt.Errorf("%w: the header says format %q", ErrNotExportFile, h.Format)
	}
	// The header is the signer's from here on.
	switch {
	case h.ExportID == "" || h.Documents < 0 || h.PayloadBytes < 0:
		return nil, fmt.Errorf("%w: the header has no export id or negative counts", ErrBadContent)
	case int64(len(payload)) < h.PayloadBytes:
		return nil, fmt.Errorf("%w: %d of its %d bytes are there (was it copied whole? was the stick pulled out early?)",
			ErrTruncated, len(data), int64(len(data)-len(payload))+h.PayloadBytes)
	case int64(len(payload)) > h.PayloadBytes:
		return nil, fmt.Errorf("%w: it has %d bytes more than its header says", ErrTampered, int64(len(payload))-h.PayloadBytes)
	}
	sum := sha256.Sum256(payload)
	if hex.EncodeToString(sum[:]) != h.PayloadSHA256 {
		return nil, fmt.Errorf("%w: the payload's SHA-256 is not the one signed", ErrTampered)
	}
	whole := sha256.Sum256(data)
	return &File{Header: h, NodeKey: pub, SHA256: hex.EncodeToString(whole[:]), Size: int64(len(data)), payload: payload}, nil
}

// Open decrypts the payload with the hub's identity and calls fn with each
// document in order. Every line is read and checked; an error from fn stops
// the reading and is returned. Call it once with a fn that only checks,
// before one that stores, to refuse a bad file whole. maxDocument caps one
// document's line (0 is DefaultMaxDocumentBytes).
func (f *File) Open(id age.Identity, maxDocument int, fn func(Document) error) error {
	if maxDocument <= 0 {
		maxDocument = DefaultMaxDocumentBytes
	}
	r, err := age.Decrypt(bytes.NewReader(f.payload), id)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return fmt.Errorf("%w (%s)", ErrWrongRecipient, f.Header.Recipient)
		}
		return fmt.Errorf("%w: cannot decrypt: %v", ErrTampered, err)
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return decodeError(err, "the payload is not gzip")
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 64<<10), maxDocument+4096)
	line := 0
	n := 0
	for sc.Scan() {
		line++
		if line == 1 {
			var m manifest
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Format != Format {
				return fmt.Errorf("%w: the payload has no manifest", ErrBadContent)
			}
			if m.ExportID != f.Header.ExportID || m.NodeKey != f.Header.NodeKey {
				return fmt.Errorf("%w: the payload belongs to another export or another node's signature", ErrTampered)
			}
			continue
		}
		var d Document
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return fmt.Errorf("%w: document line %d is not JSON", ErrBadContent, line-1)
		}
		if len(d.Bundle) == 0 || d.Key == "" {
			return fmt.Errorf("%w: document line %d has no Bundle or no key", ErrBadContent, line-1)
		}
		if n++; n > f.Header.Documents {
			return fmt.Errorf("%w: the payload holds more documents than the %d its header says", ErrBadContent, f.Header.Documents)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%w: document line %d is longer than %d bytes", ErrBadContent, line, maxDocument)
		}
		return decodeError(err, "the payload cannot be read to its end")
	}
	if line == 0 {
		return fmt.Errorf("%w: the payload has no manifest", ErrBadContent)
	}
	if n != f.Header.Documents {
		return fmt.Errorf("%w: the payload holds %d documents, its header says %d", ErrBadContent, n, f.Header.Documents)
	}
	return nil
}

// decodeError says what a failure while decrypting and decompressing
// means: age authenticates every chunk, so a changed or cut payload fails
// there; anything else is the writer's fault.
func decodeError(err error, what string) error {
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s", ErrBadContent, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrTampered, what, err)
}
