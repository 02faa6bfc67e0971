package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq/exportfile"
)

// DefaultInboxInterval is how often the inbox directory is scanned.
const DefaultInboxInterval = 30 * time.Second

// RejectedExt ends the note written beside an export file that was refused.
const RejectedExt = ".rejected.txt"

// Inbox takes export files dropped into a directory (a stick mounted there,
// or files copied in): every FILE.hpx without a receipt beside it is taken,
// and the hub writes FILE.receipt.json beside it, to carry back to the node;
// a file refused gets FILE.rejected.txt saying why, and is tried again only
// when it changes (a copy that was still being written when scanned).
type Inbox struct {
	Dir     string
	Exports *Exports
	// Interval between scans; 0 scans only when Scan is called.
	Interval time.Duration
	Logger   *slog.Logger
	// MaxBytes caps one file; 0 is DefaultMaxExportBytes.
	MaxBytes int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// InboxScan counts what one scan did.
type InboxScan struct {
	Taken    []string // files with a new receipt beside them
	Rejected []string // files with a new rejection note
}

// Open checks the directory and starts scanning it.
func (in *Inbox) Open(ctx context.Context) error {
	if in.Logger == nil {
		in.Logger = slog.New(slog.DiscardHandler)
	}
	in.Logger = in.Logger.With(edge.LogKeySubsystem, "hub-inbox")
	if fi, err := os.Stat(in.Dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("hub inbox %s is not a directory", in.Dir)
	}
	if in.Interval <= 0 {
		return nil
	}
	ctx, in.cancel = context.WithCancel(context.WithoutCancel(ctx))
	in.wg.Go(func() {
		t := time.NewTicker(in.Interval)
		defer t.Stop()
		for {
			if _, err := in.Scan(ctx); err != nil && ctx.Err() == nil {
				in.Logger.Error("scan inbox", edge.LogKeyPath, in.Dir, "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return nil
}

// Close stops scanning, after the file in hand.
func (in *Inbox) Close(ctx context.Context) error {
	if in.cancel == nil {
		return nil
	}
	in.cancel()
	in.wg.Wait()
	return nil
}

// Scan takes every export file in the directory that has neither a receipt
// nor a current rejection note beside it.
func (in *Inbox) Scan(ctx context.Context) (InboxScan, error) {
	var sc InboxScan
	if in.Logger == nil {
		in.Logger = slog.New(slog.DiscardHandler)
	}
	entries, err := os.ReadDir(in.Dir)
	if err != nil {
		return sc, err
	}
	for _, e := range entries {
		name := e.Name()
		if ctx.Err() != nil {
			return sc, ctx.Err()
		}
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, exportfile.Ext) {
			continue
		}
		path := filepath.Join(in.Dir, name)
		base := strings.TrimSuffix(path, exportfile.Ext)
		if _, err := os.Stat(base + exportfile.ReceiptExt); err == nil {
			continue
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue // gone since the listing
		}
		stamp := fmt.Sprintf("file size %d, modified %s", fi.Size(), fi.ModTime().UTC().Format(time.RFC3339Nano))
		if note, err := os.ReadFile(base + RejectedExt); err == nil && strings.Contains(string(note), stamp) {
			continue // refused as it is now
		}
		taken, err := in.take(ctx, path, fi.Size())
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				in.Logger.Error("take export file", edge.LogKeyPath, path, "error", err)
				continue // the hub's own failure: the next scan tries again
			}
			note := fmt.Sprintf("The hub refused %s whole; nothing of it was stored.\n\n%v\n\n(%s; when the file changes it is tried again.)\n",
				name, fe.Err, stamp)
			if werr := exportfile.WriteFileAtomic(base+RejectedExt, []byte(note), 0o644); werr != nil {
				in.Logger.Error("write rejection note", edge.LogKeyPath, path, "error", werr)
			}
			sc.Rejected = append(sc.Rejected, path)
			continue
		}
		if err := exportfile.WriteFileAtomic(base+exportfile.ReceiptExt, taken.Signed, 0o644); err != nil {
			in.Logger.Error("write receipt", edge.LogKeyPath, path, "error", err)
			continue
		}
		os.Remove(base + RejectedExt)
		sc.Taken = append(sc.Taken, path)
	}
	return sc, nil
}

// take reads one file, within the cap, and hands it to Exports.
func (in *Inbox) take(ctx context.Context, path string, size int64) (*Accepted, error) {
	limit := in.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxExportBytes
	}
	if size > limit {
		return nil, &FileError{Status: 413, Code: "too-costly", Err: fmt.Errorf("the file is larger than %d bytes", limit)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	return in.Exports.Accept(ctx, data, "inbox")
}
