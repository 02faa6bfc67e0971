package edgetest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

// cacheMu makes the tests of one process build each cached database once.
var cacheMu sync.Mutex

// MustCopyCached puts at path (a file that must not exist yet) a copy of a
// database that takes long to build: built once by build, into the file
// it is given, and kept between runs in the directory the environment
// variable dirEnv names (by default dirName in the system's temporary
// directory), under name and the hash of this binary's schema, so a copy
// built by another branch or an older binary is never used. Name must
// change whenever build writes something else. Two processes building at
// once each build into their own directory; the first to rename it into
// place wins.
func MustCopyCached(tb testing.TB, dirEnv, dirName, name, path string, build func(path string) error) {
	tb.Helper()
	cacheMu.Lock()
	cached, err := cachedDB(dirEnv, dirName, name, build)
	cacheMu.Unlock()
	if err != nil {
		tb.Fatalf("build %s: %v", name, err)
	}
	if err := copyFile(cached, path); err != nil {
		tb.Fatalf("copy %s: %v", name, err)
	}
}

func cachedDB(dirEnv, dirName, name string, build func(path string) error) (string, error) {
	root := os.Getenv(dirEnv)
	if root == "" {
		root = filepath.Join(os.TempDir(), dirName)
	}
	schema, err := schemaHash()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, name+"-"+schema)
	path := filepath.Join(dir, edge.DBFileName)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, "building-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := build(filepath.Join(tmp, edge.DBFileName)); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(path); statErr != nil {
			return "", err
		}
	}
	return path, nil
}

// schemaHash names the schema this binary's migrations create.
func schemaHash() (string, error) {
	dir, err := os.MkdirTemp("", "healthpost-schema-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	s := NewTestStore(filepath.Join(dir, edge.DBFileName))
	if err := s.Open(context.Background()); err != nil {
		return "", err
	}
	s.Close(context.Background())
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, edge.DBFileName)+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var schema string
	if err := db.QueryRow(`SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_schema
		WHERE sql IS NOT NULL ORDER BY type, name)`).Scan(&schema); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", sha256.Sum256([]byte(schema)))[:12], nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
