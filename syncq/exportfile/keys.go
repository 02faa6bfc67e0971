package exportfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

// LoadOrCreateSigningKey reads an Ed25519 key from path (PKCS#8 PEM), or
// makes one and writes it atomically with mode 0600. Nodes sign export
// files and receipt reports with theirs; the hub signs receipts with its own.
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s is not a PEM key; move it aside to make a new one", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read signing key %s: %w", path, err)
		}
		key, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s is not an Ed25519 key", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("save signing key: %w", err)
	}
	return key, nil
}

// LoadOrCreateIdentity reads the hub's age X25519 identity from path (one
// AGE-SECRET-KEY-1... line), or makes one and writes it atomically with
// mode 0600. Export files are encrypted to its public key.
func LoadOrCreateIdentity(path string) (*age.X25519Identity, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		id, err := age.ParseX25519Identity(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s is not an age identity; move it aside to make a new one: %w", path, err)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read export key: %w", err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(path, []byte(id.String()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("save export key: %w", err)
	}
	return id, nil
}

// WriteFileAtomic writes a file so that a crash leaves either the old file
// or the whole new one.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return WriteAtomic(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic writes a file so that a crash, a full disk or a stick pulled
// out leaves either no file (or the old one) or the whole new one: write to
// a hidden temporary file in the same directory, fsync it, rename it into
// place, fsync the directory. On failure the temporary file is removed
// (which gives back a full disk's space) and the error is returned.
func WriteAtomic(path string, mode os.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	// CreateTemp made it 0600; a FAT stick refuses any other mode, which
	// matters nothing there.
	if err := f.Chmod(mode); err != nil && mode != 0o600 && !errors.Is(err, fs.ErrPermission) {
		f.Close()
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
