// Package edgetest gives tests of packages built on edge a real store in a
// temporary directory, a plain SQLite connection to look under it, and an
// audited actor. It is for tests only and must never be imported by the node.
package edgetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/healthpost/healthpost/edge"
)

// NewTestStore returns an unopened store with test settings: no background
// disk check, and watermarks a test machine's disk passes.
func NewTestStore(path string) *edge.Store {
	s := edge.NewStore(path)
	s.DiskCheckPeriod = 0
	s.LowFreeBytes = 64 << 20
	s.CriticalFreeBytes = 16 << 20
	return s
}

// MustOpenStore opens a store on a new file in a temporary directory and
// closes it when the test ends.
func MustOpenStore(tb testing.TB) *edge.Store {
	tb.Helper()
	return MustOpenStoreAt(tb, filepath.Join(tb.TempDir(), edge.DBFileName))
}

// MustOpenStoreAt opens the store at path and closes it when the test ends.
func MustOpenStoreAt(tb testing.TB, path string) *edge.Store {
	tb.Helper()
	s := NewTestStore(path)
	if err := s.Open(context.Background()); err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return s
}

// MustRawDB opens the store's file on a separate plain SQLite connection,
// which sees only what has committed.
func MustRawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustCount returns the result of a count query.
func MustCount(tb testing.TB, db *sql.DB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// Clerk is the context of a logged-in health worker, for audited writes.
func Clerk() context.Context {
	return edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "clerk-1"})
}

// MustMountTmpfs mounts a tmpfs of size bytes: a real, small filesystem that
// really fills up. It needs root, as the tests run under .ci/run.
func MustMountTmpfs(tb testing.TB, size int64) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		tb.Fatalf("mount a %d-byte tmpfs at %s: %v (the disk-full tests need root; run them as .ci/run does)", size, dir, err)
	}
	tb.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}
