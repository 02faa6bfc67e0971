package syncq

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/exportfile"
)

// USB export: for weeks without a link, `healthpost export` writes every
// document not yet confirmed into one file on a stick, encrypted to the
// hub's key and signed by the node; the hub (or `healthpost push` from any
// machine with a link) takes it and signs a receipt; `healthpost import`
// reads the receipt on the node and marks the documents delivered, keeping
// what the hub answered as online delivery does. Rows wait for the receipt
// in state exported until ExportOptions.Wait has passed; then the online
// engine may send them again, which is harmless (upstream writes are
// idempotent) and confirms them as well.

// exportMapBatch is how many rows are mapped at once.
const exportMapBatch = 200

// ErrNothingToExport means every document has been delivered (or refused).
var ErrNothingToExport = errors.New("nothing to export: every document has been delivered or is waiting for an administrator")

// ExportOptions say what to write where.
type ExportOptions struct {
	// Dir is where the file goes: the stick's directory. It must exist.
	Dir string
	// HubKey is the hub's export key (age1...) the file is encrypted to.
	HubKey string
	// Key is the node's signing key.
	Key ed25519.PrivateKey
	// NodeID names the node in the file's name and header.
	NodeID string
	// Wait is how long the documents wait for the receipt before online
	// delivery may send them again; 0 is edge.DefaultExportWait.
	Wait time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// ExportResult says what Export wrote.
type ExportResult struct {
	Path     string         `json:"path"`
	ExportID string         `json:"export_id"`
	Bytes    int64          `json:"bytes"`
	SHA256   string         `json:"sha256"`
	Patients int            `json:"patients"`
	ByKind   map[string]int `json:"by_kind"`
	// Documents were written; Again of them were in an earlier file whose
	// receipt has not come back.
	Documents int `json:"documents"`
	Again     int `json:"again"`
	// Quarantined rows can never become documents (an administrator sees
	// why in `healthpost sync status`); Held rows could not be read now and
	// stay pending, with their patients' later rows.
	Quarantined int `json:"quarantined"`
	Held        int `json:"held"`
	// Skipped rows were delivered by the running node while the file was
	// written; they are in the file but stay delivered.
	Skipped   int       `json:"skipped"`
	WaitUntil time.Time `json:"wait_until"`
}

// Export writes every document not yet confirmed by the upstream
// (pending, or exported in an earlier file still awaiting its receipt) to
// one export file in opts.Dir, mapped with m exactly as online delivery
// maps them, in commit order (so each patient's order is kept), and then,
// in one transaction, marks them exported and audits each. The file is
// written atomically: a full stick or a stick pulled out leaves no file
// that looks whole, and the rows stay as they were. A full stick is an
// *edge.Error with code "export_no_space".
func Export(ctx context.Context, s *edge.Store, m Mapper, opts ExportOptions) (*ExportResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Wait <= 0 {
		opts.Wait = edge.DefaultExportWait
	}
	if _, err := edge.ActorFrom(ctx); err != nil {
		ctx = edge.WithActor(ctx, edge.Actor{Kind: edge.ActorSystem, ID: "syncq"})
	}
	if fi, err := os.Stat(opts.Dir); err != nil || !fi.IsDir() {
		return nil, &edge.Error{Code: "export_no_dir", Message: fmt.Sprintf("%s is not a directory", opts.Dir),
			Hint: "plug the stick in and give the directory it is mounted at, e.g. --to /media/usb"}
	}
	items, err := s.ExportableOutbox(ctx, 0)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, ErrNothingToExport
	}
	now := opts.Now()
	h := exportfile.Header{ExportID: edge.NewID(), NodeID: opts.NodeID, Created: now.UTC()}
	w, err := exportfile.NewWriter(h, opts.HubKey, opts.Key)
	if err != nil {
		return nil, err
	}
	res := &ExportResult{ExportID: h.ExportID, ByKind: map[string]int{}}
	var ids []int64
	var quarantine []edge.OutboxOutcome
	held := map[string]bool{} // patients whose earlier row could not be read now
	patients := map[string]bool{}
	for i := 0; i < len(items); i += exportMapBatch {
		batch := items[i:min(i+exportMapBatch, len(items))]
		for k, mp := range mapAll(ctx, m, batch) {
			it := batch[k]
			if it.PatientID != "" && held[it.PatientID] {
				res.Held++
				continue
			}
			var d *Document
			err := mp.Err
			if err == nil {
				d, err = NewDocument(it, mp.BundleID, mp.Body)
			}
			if err != nil {
				if unmappable(err) {
					quarantine = append(quarantine, edge.OutboxOutcome{ID: it.ID, State: edge.OutboxQuarantined,
						Reason: (&DeliveryError{Kind: KindMapping, Diagnostics: "build document: " + err.Error()}).Error()})
					res.Quarantined++
					continue
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.Held++
				if it.PatientID != "" {
					held[it.PatientID] = true
				}
				continue
			}
			if err := w.Add(exportfile.Document{OutboxID: it.ID, Key: it.Key, Kind: it.Document, BundleID: d.ID, Bundle: d.Body}); err != nil {
				return nil, err
			}
			ids = append(ids, it.ID)
			res.ByKind[it.Document]++
			if it.State == edge.OutboxExported {
				res.Again++
			}
			if it.PatientID != "" {
				patients[it.PatientID] = true
			}
		}
	}
	if len(quarantine) > 0 {
		if _, err := s.SettleOutbox(ctx, 0, quarantine, edge.SyncUsage{}); err != nil {
			return nil, err
		}
	}
	if len(ids) == 0 {
		return res, ErrNothingToExport
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	hd := w.Header()
	res.Documents, res.Patients, res.Bytes = hd.Documents, len(patients), w.Size()
	res.Path = filepath.Join(opts.Dir, exportFileName(opts.NodeID, now, hd.ExportID))
	if err := exportfile.WriteAtomic(res.Path, 0o600, func(f io.Writer) error {
		_, err := w.WriteTo(f)
		return err
	}); err != nil {
		return nil, writeError(opts.Dir, res.Bytes, err)
	}
	res.SHA256 = w.SHA256()
	skipped, err := s.RecordExport(ctx, edge.ExportRecord{ID: hd.ExportID, File: filepath.Base(res.Path), SHA256: res.SHA256, Wait: opts.Wait}, ids)
	if err != nil {
		// Rows not marked: the file must not travel as if they were.
		os.Remove(res.Path)
		return nil, fmt.Errorf("record the export (the file was removed again; nothing was exported): %w", err)
	}
	res.Skipped, res.WaitUntil = skipped, now.Add(opts.Wait)
	return res, nil
}

// mapAll maps rows with the BatchMapper when there is one.
func mapAll(ctx context.Context, m Mapper, items []edge.OutboxItem) []Mapped {
	if bm, ok := m.(BatchMapper); ok {
		if got := bm.Documents(ctx, items); len(got) == len(items) {
			return got
		}
	}
	out := make([]Mapped, len(items))
	for i, it := range items {
		out[i].BundleID, out[i].Body, out[i].Err = m.Document(ctx, it)
	}
	return out
}

// unmappable reports whether a mapping error is one no retry cures.
func unmappable(err error) bool {
	var fe edge.FieldErrors
	return errors.Is(err, ErrUnmappable) || errors.Is(err, edge.ErrNotFound) || errors.As(err, &fe)
}

// exportFileName is healthpost-NODE-YYYYMMDD-HHMMSS-ID8.hpx: sorted by
// time in a listing, unique by the export id.
func exportFileName(node string, at time.Time, id string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(node) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		}
	}
	name := b.String()
	if name == "" {
		name = "node"
	}
	if len(name) > 40 {
		name = name[:40]
	}
	short := strings.ReplaceAll(id, "-", "")
	return fmt.Sprintf("healthpost-%s-%s-%s%s", name, at.Format("20060102-150405"), short[len(short)-8:], exportfile.Ext)
}

// writeError explains a failed write of the file: a full stick names the
// space needed and free.
func writeError(dir string, size int64, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		free := int64(-1)
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) == nil {
			free = int64(st.Bavail) * int64(st.Bsize)
		}
		msg := fmt.Sprintf("the stick at %s is full: the export file needs %s", dir, mb(size))
		if free >= 0 {
			msg += fmt.Sprintf(" and %s is free", mb(free))
		}
		return &edge.Error{Code: "export_no_space", Message: msg + "; nothing was marked exported",
			Hint: "free space on the stick or use a bigger one, then export again", Err: err}
	}
	return &edge.Error{Code: "export_write", Message: fmt.Sprintf("cannot write the export file in %s: %v; nothing was marked exported", dir, err),
		Hint: "check the stick is plugged in and writable, then export again", Err: err}
}

func mb(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d kB", (n+1023)>>10)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

// ImportOptions say whose receipts to trust.
type ImportOptions struct {
	// HubKey is the hub's receipt key (upstream.receipt_key). Required.
	HubKey ed25519.PublicKey
	// NodeKey is this node's signing key: a receipt must answer a file
	// this node signed.
	NodeKey ed25519.PublicKey
	// Upstream is recorded as the receipts' upstream, as online delivery
	// records its base URL; empty names the hub by its key.
	Upstream string
}

// ImportResult says what a receipt confirmed.
type ImportResult struct {
	ExportID  string `json:"export_id"`
	Documents int    `json:"documents"`
	// Confirmed rows are delivered now; Already were delivered before (by
	// the link, or an earlier import of this receipt); Refused rows the hub
	// refused are quarantined with its reason.
	Confirmed int `json:"confirmed"`
	Already   int `json:"already"`
	Refused   int `json:"refused"`
}

// ImportReceipt checks a hub's receipt of an export file and records what
// it confirms: each stored document becomes delivered with the hub's id and
// version (the record online delivery keeps, so `healthpost sync receipts`
// lists it), each refused one quarantined with the hub's reason. A receipt
// that is not signed by opts.HubKey, answers another node's file, or names
// outbox rows this node does not have changes nothing. Importing it again
// changes nothing more.
func ImportReceipt(ctx context.Context, s *edge.Store, data []byte, opts ImportOptions) (*ImportResult, error) {
	if len(opts.HubKey) != ed25519.PublicKeySize {
		return nil, &edge.Error{Code: "receipt_key_missing", Message: "the hub's receipt key is not configured, so its receipts cannot be checked",
			Hint: "set upstream.receipt_key to the key 'healthpost hub key' prints on the hub"}
	}
	r, err := exportfile.ParseReceipt(data, opts.HubKey)
	if err != nil {
		return nil, err
	}
	if len(opts.NodeKey) > 0 && r.NodeKey != exportfile.EncodePublicKey(opts.NodeKey) {
		return nil, fmt.Errorf("%w: it answers a file signed by another node (key %s); import it on the node that exported the file",
			exportfile.ErrBadReceipt, fingerprintOf(r.NodeKey))
	}
	upstream := opts.Upstream
	if upstream == "" {
		upstream = "hub " + exportfile.Fingerprint(opts.HubKey)
	}
	res := &ImportResult{ExportID: r.ExportID, Documents: len(r.Documents)}
	var outs []edge.OutboxOutcome
	for i, d := range r.Documents {
		it, err := s.OutboxItem(ctx, d.OutboxID)
		if errors.Is(err, edge.ErrNotFound) || (err == nil && it.Key != d.Key) {
			return nil, fmt.Errorf("%w: document %d of the receipt is outbox item %d (%s), which this node does not have; is this the node that exported the file?",
				exportfile.ErrBadReceipt, i+1, d.OutboxID, d.Key)
		}
		if err != nil {
			return nil, err
		}
		stored := d.RemoteID != "" && d.RemoteVersion != ""
		if stored == (d.Refused != "") {
			return nil, fmt.Errorf("%w: document %d of the receipt is neither stored with an id and version nor refused with a reason",
				exportfile.ErrBadReceipt, i+1)
		}
		if it.State != edge.OutboxPending && it.State != edge.OutboxExported {
			res.Already++
			continue
		}
		if stored {
			at := d.StoredAt
			if at.IsZero() {
				at = r.ReceivedAt
			}
			outs = append(outs, edge.OutboxOutcome{ID: it.ID, State: edge.OutboxDelivered,
				Receipt: edge.Receipt{Upstream: upstream, RemoteID: d.RemoteID, RemoteVersion: d.RemoteVersion, At: at}})
		} else {
			outs = append(outs, edge.OutboxOutcome{ID: it.ID, State: edge.OutboxQuarantined,
				Reason: "refused by the hub (USB export " + r.ExportID + "): " + d.Refused})
		}
	}
	skipped, err := s.SettleOutbox(ctx, 0, outs, edge.SyncUsage{})
	if err != nil {
		return nil, err
	}
	for _, o := range outs {
		if o.State == edge.OutboxDelivered {
			res.Confirmed++
		} else {
			res.Refused++
		}
	}
	// Rows settled by another process between the read and the write.
	res.Confirmed -= min(skipped, res.Confirmed)
	res.Already += skipped
	return res, nil
}

func fingerprintOf(key string) string {
	pub, err := exportfile.ParsePublicKey(key)
	if err != nil {
		return "unknown"
	}
	return exportfile.Fingerprint(pub)
}
