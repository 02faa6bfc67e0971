package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"filippo.io/age"

	"github.com/healthpost/healthpost/syncq/exportfile"
)

// USB export files: a health centre without a link writes its documents to
// a stick (`healthpost export`), encrypted to this hub's export key and
// signed by the node's own key, registered here. The hub takes the file by
// upload (POST [base]/$export-file, `healthpost push`) or from a directory it
// scans (Inbox), checks it whole before storing anything, stores each
// Bundle as a PUT by id from that node would (idempotent on the identifier:
// a file taken twice stores nothing twice), and answers with a receipt
// signed by its receipt key, which the node imports.

// Key files of the hub, in the directory of its database.
const (
	ExportKeyFile  = "export.key"          // age X25519 identity: export files are encrypted to it
	ReceiptKeyFile = "receipt-signing.key" // Ed25519: receipts are signed with it
)

// Defaults of export files.
const (
	DefaultMaxExportBytes = 512 << 20
)

// Errors of node signing keys.
var (
	// ErrKeyTaken: another node registered this signing key.
	ErrKeyTaken = errors.New("another node has registered this signing key")
	// ErrUnknownSigner: no node registered the key a file is signed with.
	ErrUnknownSigner = errors.New("no node registered at this hub signs with this key")
	// ErrRevoked: the node that signed the file was revoked.
	ErrRevoked = errors.New("the node that signed the file is revoked")
)

// Keys are the hub's two key pairs for export files.
type Keys struct {
	// Identity decrypts export files; its recipient is the export key.
	Identity *age.X25519Identity
	// Signing signs receipts.
	Signing ed25519.PrivateKey
}

// LoadOrCreateKeys reads the hub's keys from dir, making them on first use.
func LoadOrCreateKeys(dir string) (*Keys, error) {
	id, err := exportfile.LoadOrCreateIdentity(filepath.Join(dir, ExportKeyFile))
	if err != nil {
		return nil, err
	}
	sk, err := exportfile.LoadOrCreateSigningKey(filepath.Join(dir, ReceiptKeyFile))
	if err != nil {
		return nil, err
	}
	return &Keys{Identity: id, Signing: sk}, nil
}

// ExportKey is what nodes put in upstream.export_key.
func (k *Keys) ExportKey() string { return k.Identity.Recipient().String() }

// ReceiptKey is what nodes put in upstream.receipt_key.
func (k *Keys) ReceiptKey() string {
	return exportfile.EncodePublicKey(k.Signing.Public().(ed25519.PublicKey))
}

// SetSigningKey registers the key a node signs its export files with,
// registering the node when it is new (a node that only ever sends sticks
// needs no token). A key belongs to one node.
func (s *Store) SetSigningKey(ctx context.Context, node string, pub ed25519.PublicKey) error {
	if !validNodeName(node) {
		return ErrBadNodeName
	}
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("not an Ed25519 public key")
	}
	return s.write(ctx, func(tx *wtx) error {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT name FROM nodes WHERE signing_key = ?`, []byte(pub)).Scan(&other)
		switch {
		case err == nil && other != node:
			return fmt.Errorf("%w (%s)", ErrKeyTaken, other)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO nodes (name, created_at, signing_key) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET signing_key = excluded.signing_key`, node, s.Now().UnixMilli(), []byte(pub))
		if err != nil {
			return fmt.Errorf("register signing key of %s: %w", node, err)
		}
		return nil
	})
}

// NodeBySigningKey returns the node that registered pub.
func (s *Store) NodeBySigningKey(ctx context.Context, pub ed25519.PublicKey) (string, error) {
	var name string
	var revoked sql.NullInt64
	err := s.readers.QueryRowContext(ctx, `SELECT name, revoked_at FROM nodes WHERE signing_key = ?`, []byte(pub)).Scan(&name, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", ErrUnknownSigner
	case err != nil:
		return "", err
	case revoked.Valid:
		return name, fmt.Errorf("%w (%s)", ErrRevoked, name)
	}
	return name, nil
}

// FileError is why an export file was refused whole; nothing of it was
// stored. Status and Code are the HTTP status and OperationOutcome issue
// code of the answer to an upload.
type FileError struct {
	Status int
	Code   string
	Err    error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Exports takes export files: checks, stores, answers with a receipt.
type Exports struct {
	Store *Store
	Keys  *Keys
	// Logger receives one line per file: node, export id, counts. No PHI.
	Logger *slog.Logger
	// MaxDocumentBytes caps one document; 0 is DefaultMaxBodyBytes.
	MaxDocumentBytes int
}

// Accepted is what became of an export file.
type Accepted struct {
	Receipt *exportfile.Receipt
	// Signed is the receipt file's bytes.
	Signed []byte
	// New counts the Bundle versions this file stored for the first time;
	// a file taken again stores none.
	New     int
	Refused int
}

// Accept checks an export file whole (framing, signature by a registered
// node, payload digest, authenticated decryption, every line) and only then
// stores its Bundles, in the file's order, and signs the receipt. via says
// how it came ("upload by NODE", "inbox"), for the log. A file that fails
// any check is a *FileError and nothing of it is stored. A document that
// fails the hub's checks, or names another node's Bundle, is refused on its
// own, with the reason in the receipt, as it would be online.
func (x *Exports) Accept(ctx context.Context, data []byte, via string) (*Accepted, error) {
	logger := x.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f, err := exportfile.Parse(data)
	if err != nil {
		logger.Warn("export file refused", "via", via, "error", err)
		return nil, fileError(err)
	}
	node, err := x.Store.NodeBySigningKey(ctx, f.NodeKey)
	switch {
	case errors.Is(err, ErrUnknownSigner):
		err = &FileError{Status: 403, Code: "security", Err: fmt.Errorf("the file is signed by key %s, which no node registered at this hub signs with: "+
			"on the node, 'healthpost export key' prints its key; here, 'healthpost hub token signing-key NODE KEY' registers it", exportfile.Fingerprint(f.NodeKey))}
	case errors.Is(err, ErrRevoked):
		err = &FileError{Status: 403, Code: "security", Err: fmt.Errorf("%w: its files are no longer taken", err)}
	}
	if err != nil {
		logger.Warn("export file refused", "via", via, "export", f.Header.ExportID, "error", err)
		return nil, err
	}
	maxDoc := x.MaxDocumentBytes
	if maxDoc <= 0 {
		maxDoc = DefaultMaxBodyBytes
	}
	// First pass: every byte is checked before anything is stored.
	if err := f.Open(x.Keys.Identity, maxDoc, func(exportfile.Document) error { return nil }); err != nil {
		if errors.Is(err, exportfile.ErrWrongRecipient) {
			err = fmt.Errorf("%w, not this hub's (%s): set upstream.export_key on node %s to this hub's key ('healthpost hub key') and export again",
				err, x.Keys.ExportKey(), node)
		}
		logger.Warn("export file refused", "via", via, "node", node, "export", f.Header.ExportID, "error", err)
		return nil, fileError(err)
	}
	r := &exportfile.Receipt{ExportID: f.Header.ExportID, FileSHA256: f.SHA256, NodeKey: f.Header.NodeKey, Node: node,
		ReceivedAt: x.Store.Now().UTC(), Documents: make([]exportfile.ReceiptDocument, 0, f.Header.Documents)}
	acc := &Accepted{Receipt: r}
	var chunk []Write
	var at []int // index in r.Documents of each write
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		sts, errs, err := x.Store.PutBatch(ctx, node, chunk)
		if err != nil {
			return err
		}
		for k, st := range sts {
			d := &r.Documents[at[k]]
			if errs[k] != nil {
				_, is := storeError(errs[k])
				d.Refused = is.Diagnostics
				acc.Refused++
				continue
			}
			d.RemoteID, d.RemoteVersion, d.StoredAt = "Bundle/"+st.ID, strconv.Itoa(st.Version), st.LastUpdated.UTC()
			if st.Changed {
				acc.New++
			}
		}
		chunk, at = chunk[:0], at[:0]
		return nil
	}
	err = f.Open(x.Keys.Identity, maxDoc, func(d exportfile.Document) error {
		r.Documents = append(r.Documents, exportfile.ReceiptDocument{OutboxID: d.OutboxID, Key: d.Key})
		res, issues := ParseBundle(d.Bundle)
		if len(issues) == 0 && res.ID != d.BundleID {
			issues = []Issue{issue("value", "Bundle.id", "Bundle.id is not the document's bundle_id")}
		}
		if len(issues) > 0 {
			r.Documents[len(r.Documents)-1].Refused = issuesText(issues)
			acc.Refused++
			return nil
		}
		chunk = append(chunk, Write{How: WriteByID, ID: res.ID, Resource: res})
		at = append(at, len(r.Documents)-1)
		if len(chunk) >= DefaultMaxBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		// The file checked out, so this is the store's failure: taking the
		// file again finishes the job, storing nothing twice.
		logger.Error("store export file", "via", via, "node", node, "export", f.Header.ExportID, "error", err)
		return nil, fmt.Errorf("store the export file's documents: %w", err)
	}
	if acc.Signed, err = exportfile.SignReceipt(r, x.Keys.Signing); err != nil {
		return nil, err
	}
	logger.Info("export file taken", "via", via, "node", node, "export", f.Header.ExportID,
		"documents", len(r.Documents), "new_versions", acc.New, "refused", acc.Refused)
	return acc, nil
}

// fileError gives a refusal of the file its status and issue code.
func fileError(err error) *FileError {
	fe := &FileError{Status: 400, Code: "invalid", Err: err}
	switch {
	case errors.Is(err, exportfile.ErrTampered), errors.Is(err, exportfile.ErrWrongRecipient):
		fe.Code = "security"
	case errors.Is(err, exportfile.ErrNotExportFile), errors.Is(err, exportfile.ErrTruncated):
		fe.Code = "structure"
	}
	return fe
}

func issuesText(issues []Issue) string {
	var b strings.Builder
	for i, is := range issues {
		if i > 0 {
			b.WriteString("; ")
		}
		if len(is.Expression) > 0 {
			b.WriteString(is.Expression[0] + ": ")
		}
		b.WriteString(is.Diagnostics)
	}
	return b.String()
}

// exportFile is POST [base]/$export-file: an export file as the body, the
// signed receipt as the answer. The uploader authenticates as any node
// does; the file's own signature says whose documents it holds (the
// district office's laptop carries other nodes' files).
func (s *Server) exportFile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.methodNotAllowed(w, r, "POST")
		return
	}
	if s.Exports == nil {
		s.outcome(w, r, http.StatusNotFound, issue("not-supported", "", "this hub takes no USB export files"))
		return
	}
	limit := s.MaxExportBytes
	if limit <= 0 {
		limit = DefaultMaxExportBytes
	}
	data, err := io.ReadAll(io.LimitReader(http.MaxBytesReader(w, r.Body, limit), limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || int64(len(data)) > limit:
		s.outcome(w, r, http.StatusRequestEntityTooLarge, issue("too-costly", "", "the file is larger than %d bytes", limit))
		return
	case err != nil:
		s.outcome(w, r, http.StatusBadRequest, issue("structure", "", "cannot read the file: %v", err))
		return
	}
	acc, err := s.Exports.Accept(r.Context(), data, "upload by "+nodeOf(r))
	var fe *FileError
	switch {
	case errors.As(err, &fe):
		s.outcome(w, r, fe.Status, issue(fe.Code, "", "the export file was refused whole and nothing of it was stored: %v", fe.Err))
		return
	case err != nil:
		s.outcome(w, r, http.StatusInternalServerError, issue("exception", "", "the hub could not store the file; send it again"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(acc.Signed)))
	w.WriteHeader(http.StatusOK)
	io.Copy(w, bytes.NewReader(acc.Signed))
}
