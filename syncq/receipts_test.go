package syncq_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
)

func TestReceiptReport(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	docs := MustSeed(t, s, 2, 3)
	h := MustOpenHub(t)
	e := NewTestEngine(t, s, h.URL, h.Token)
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), syncq.SigningKeyFileName)
	key, err := syncq.LoadOrCreateSigningKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		// Ensure the report lists every acknowledged document with the
		// upstream's id and version, and verifies after a round trip.
		now := e.Clock.Now()
		r, p, err := syncq.BuildReceiptReport(context.Background(), s, now.Add(-time.Hour), now.Add(time.Hour), now, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Receipts) != docs || p.Receipts[0].RemoteVersion != "1" || !strings.HasPrefix(p.Receipts[0].RemoteID, "Bundle/") {
			t.Fatalf("receipts=%+v, want %d", p.Receipts, docs)
		}
		path := filepath.Join(t.TempDir(), "receipts.json")
		if err := syncq.WriteReceiptReport(path, r); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		var back syncq.ReceiptReport
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, fp, err := back.Verify()
		if err != nil || len(got.Receipts) != docs || !strings.HasPrefix(fp, "SHA256:") {
			t.Fatalf("Verify=%v %q %v", got, fp, err)
		}
	})

	t.Run("ErrTampered", func(t *testing.T) {
		// Ensure a report changed after signing is refused whole.
		now := time.Now()
		r, _, err := syncq.BuildReceiptReport(context.Background(), s, now.Add(-24*time.Hour), now.Add(24*time.Hour), now, key)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(r.Payload), `"remote_version":"1"`) {
			t.Fatalf("payload %s", r.Payload)
		}
		r.Payload = []byte(strings.Replace(string(r.Payload), `"remote_version":"1"`, `"remote_version":"2"`, 1))
		if _, _, err := r.Verify(); !errors.Is(err, syncq.ErrBadSignature) {
			t.Fatalf("tampered report: %v, want ErrBadSignature", err)
		}
	})

	t.Run("KeyKept", func(t *testing.T) {
		// Ensure the key is written once, private, and read back the same.
		fi, err := os.Stat(keyPath)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v %v", fi, err)
		}
		again, err := syncq.LoadOrCreateSigningKey(keyPath)
		if err != nil || !again.Equal(key) {
			t.Fatalf("reloaded key differs: %v", err)
		}
	})
}
