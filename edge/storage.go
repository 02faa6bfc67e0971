package edge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Storage levels of the data partition.
const (
	StorageOK       = "ok"
	StorageLow      = "low"
	StorageCritical = "critical"
)

// StorageStatus is what the node knows about its disk.
type StorageStatus struct {
	CheckedAt  time.Time `json:"checked_at"`
	FreeBytes  int64     `json:"free_bytes"`
	TotalBytes int64     `json:"total_bytes"`
	DBBytes    int64     `json:"db_bytes"`
	Level      string    `json:"level"`
	// GrowthPerDay is how fast the database grew over the last week of
	// samples; 0 when not yet known.
	GrowthPerDay float64 `json:"growth_bytes_per_day"`
	// DaysLeft is how many days of writes fit before the critical watermark
	// at that rate; -1 when the rate is not known yet.
	DaysLeft float64 `json:"days_left"`
}

// Message is a plain sentence for operators.
func (st StorageStatus) Message() string {
	days := "days of room left not known yet (the node measures growth over its first day)"
	if st.DaysLeft >= 0 {
		days = fmt.Sprintf("room for about %.0f more days at the current rate", st.DaysLeft)
	}
	switch st.Level {
	case StorageCritical:
		return fmt.Sprintf("disk almost full: %d MB free; new records are refused until space is freed (delete old backups or copies from the data partition)", st.FreeBytes>>20)
	case StorageLow:
		return fmt.Sprintf("disk running low: %d MB free, %s; raw device frames are no longer kept and delivered records are pruned", st.FreeBytes>>20, days)
	}
	return fmt.Sprintf("%d MB free; %s", st.FreeBytes>>20, days)
}

// sampleInterval is how often the database size is recorded.
const sampleInterval = time.Hour

// CheckStorage measures free space, records a size sample, prunes what can go
// when space runs low, and returns the status. It is safe to call at any time.
func (s *Store) CheckStorage(ctx context.Context) (StorageStatus, error) {
	st, err := s.measureStorage()
	if err != nil {
		return st, err
	}
	prev := s.setStorage(st)
	if prev.Level != "" && st.Level != prev.Level || prev.Level == "" && st.Level != StorageOK {
		switch st.Level {
		case StorageOK:
			s.Logger.Info("disk space is fine again", "free_mb", st.FreeBytes>>20)
		default:
			s.Logger.Warn("disk space "+st.Level, "free_mb", st.FreeBytes>>20, "hint", st.Message())
		}
	}
	if st.Level == StorageCritical {
		return st, nil // no writes at all, not even pruning bookkeeping
	}
	if err := s.recordSample(ctx, st); err != nil {
		return st, err
	}
	if err := s.prune(ctx, st.Level); err != nil {
		return st, err
	}
	st.GrowthPerDay, st.DaysLeft = s.growth(ctx, st)
	s.setStorage(st)
	if s.capacityLogDue() {
		s.Logger.Info("disk capacity", "free_mb", st.FreeBytes>>20, "db_mb", st.DBBytes>>20,
			"growth_mb_per_day", int64(st.GrowthPerDay)>>20, "days_left", int64(st.DaysLeft))
	}
	return st, nil
}

// Storage returns the last measured storage status.
func (s *Store) Storage() StorageStatus {
	s.storageMu.Lock()
	defer s.storageMu.Unlock()
	return s.storage
}

func (s *Store) setStorage(st StorageStatus) StorageStatus {
	s.storageMu.Lock()
	defer s.storageMu.Unlock()
	prev := s.storage
	s.storageLow.Store(st.Level != StorageOK)
	if st.GrowthPerDay == 0 && st.DaysLeft == 0 {
		st.GrowthPerDay, st.DaysLeft = prev.GrowthPerDay, prev.DaysLeft
	}
	s.storage = st
	return prev
}

func (s *Store) measureStorage() (StorageStatus, error) {
	var fs unix.Statfs_t
	dir := filepath.Dir(s.Path)
	if err := unix.Statfs(dir, &fs); err != nil {
		return StorageStatus{}, fmt.Errorf("measure free space of %s: %w", dir, err)
	}
	st := StorageStatus{
		CheckedAt:  s.Now(),
		FreeBytes:  int64(fs.Bavail) * int64(fs.Bsize),
		TotalBytes: int64(fs.Blocks) * int64(fs.Bsize),
		DaysLeft:   -1,
	}
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(s.Path + suffix); err == nil {
			st.DBBytes += fi.Size()
		}
	}
	switch {
	case st.FreeBytes < s.CriticalFreeBytes:
		st.Level = StorageCritical
	case st.FreeBytes < s.LowFreeBytes:
		st.Level = StorageLow
	default:
		st.Level = StorageOK
	}
	return st, nil
}

// refuseIfCritical is called before a new clinical record is written. It
// re-measures when the last measurement is more than a second old, so a disk
// that fills between periodic checks is still caught.
func (s *Store) refuseIfCritical() error {
	st := s.Storage()
	if s.Now().Sub(st.CheckedAt) > time.Second {
		fresh, err := s.measureStorage()
		if err == nil {
			s.setStorage(fresh)
			st = fresh
		}
	}
	if st.Level == StorageCritical {
		return &Error{Code: "disk_full",
			Message: fmt.Sprintf("the data disk is almost full (%d MB free), so new records cannot be saved", st.FreeBytes>>20),
			Hint:    "ask the technician to free space on the data partition; everything saved so far is safe",
			Err:     ErrDiskCritical}
	}
	return nil
}

// keepRawFrames reports whether raw device frames are still stored. It is on
// the ingest hot path, so it reads an atomic rather than taking storageMu.
func (s *Store) keepRawFrames() bool { return !s.storageLow.Load() }

func (s *Store) recordSample(ctx context.Context, st StorageStatus) error {
	return s.write(ctx, func(tx *Tx) error {
		var last int64
		_ = tx.queryRow(`SELECT coalesce(max(at), 0) FROM storage_samples`).Scan(&last)
		if tx.suspect || tx.Now()-last < sampleInterval.Milliseconds() {
			return nil
		}
		if _, err := tx.exec(`INSERT INTO storage_samples (at, bytes) VALUES (?, ?)`, tx.Now(), st.DBBytes); err != nil {
			return fmt.Errorf("record storage sample: %w", err)
		}
		_, err := tx.exec(`DELETE FROM storage_samples WHERE at < ?`, tx.Now()-(30*24*time.Hour).Milliseconds())
		return err
	})
}

// growth estimates bytes per day over the last week of samples, and the days
// left before the critical watermark.
func (s *Store) growth(ctx context.Context, st StorageStatus) (perDay, daysLeft float64) {
	var at, bytes int64
	now := s.Now().UnixMilli()
	err := s.readers.QueryRowContext(ctx, `SELECT at, bytes FROM storage_samples WHERE at >= ? ORDER BY at LIMIT 1`,
		now-(7*24*time.Hour).Milliseconds()).Scan(&at, &bytes)
	if err != nil || now-at < (6*time.Hour).Milliseconds() {
		return 0, -1
	}
	perDay = float64(st.DBBytes-bytes) / (float64(now-at) / float64((24 * time.Hour).Milliseconds()))
	if perDay <= 0 {
		return perDay, -1
	}
	return perDay, float64(st.FreeBytes-s.CriticalFreeBytes) / perDay
}

// prune removes what may go. In normal times: raw frames older than
// RawKeepDays. Running low: every raw frame, and outbox rows the upstream has
// already confirmed. Never a clinical record, never an undelivered document.
func (s *Store) prune(ctx context.Context, level string) error {
	cutoff := s.Now().Add(-time.Duration(s.RawKeepDays) * 24 * time.Hour).UnixMilli()
	if level == StorageLow {
		cutoff = s.Now().UnixMilli() + 1
	}
	return s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM device_messages WHERE received_at < ?`, cutoff)
		if err != nil {
			return fmt.Errorf("prune raw frames: %w", err)
		}
		frames, _ := res.RowsAffected()
		var delivered int64
		if level == StorageLow {
			res, err := tx.exec(`DELETE FROM outbox WHERE state IN ('delivered', 'discarded')`)
			if err != nil {
				return fmt.Errorf("prune delivered outbox rows: %w", err)
			}
			delivered, _ = res.RowsAffected()
		}
		if frames+delivered > 0 {
			s.Logger.Info("pruned storage", "raw_frames", frames, "delivered_outbox_rows", delivered, "level", level)
		}
		return nil
	})
}

func (s *Store) monitorStorage(ctx context.Context) {
	t := time.NewTicker(s.DiskCheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.CheckStorage(ctx); err != nil && ctx.Err() == nil {
				s.Logger.Error("storage check failed", "err", err)
			}
		}
	}
}

// capacityLogDue reports, once a day, that days-left should be logged.
func (s *Store) capacityLogDue() bool {
	s.storageMu.Lock()
	defer s.storageMu.Unlock()
	now := s.Now()
	if now.Sub(s.capacityLoggedAt) < 24*time.Hour && !now.Before(s.capacityLoggedAt) {
		return false
	}
	s.capacityLoggedAt = now
	return true
}
