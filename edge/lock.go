package edge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFileName is the lock file a running node holds in its data directory.
const LockFileName = "healthpost.lock"

// DirLock is an exclusive hold on a data directory: one node, or one restore,
// at a time. The kernel drops it when the process dies, even by kill -9.
type DirLock struct {
	f *os.File
}

// LockDataDir takes the data directory's lock, or returns an error wrapping
// ErrNodeRunning that names the holder's process ID.
func LockDataDir(dir string) (*DirLock, error) {
	if err := checkDataDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(b[:n]))
			return nil, &Error{Code: "node_running",
				Message: fmt.Sprintf("a healthpost node (process %s) is running on %s", pid, dir),
				Hint:    "stop it first (sudo systemctl stop healthpost), then try again", Err: ErrNodeRunning}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DirLock{f: f}, nil
}

// DataDirLocked reports whether a node holds the data directory's lock.
func DataDirLocked(dir string) bool {
	l, err := LockDataDir(dir)
	if err != nil {
		return errors.Is(err, ErrNodeRunning)
	}
	l.Release()
	return false
}

// Release lets go of the lock.
func (l *DirLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
