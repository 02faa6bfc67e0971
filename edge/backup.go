package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	sqlite3 "modernc.org/sqlite/lib"
)

// Progress receives how many bytes of a backup are written out of an estimate
// of the total.
type Progress func(done, total int64)

// Backup writes a consistent copy of the store's database to dest while the
// node keeps running (see BackupFile), and records the backup in the audit log.
func (s *Store) Backup(ctx context.Context, dest string, progress Progress) error {
	if err := BackupFile(ctx, s.Path, dest, progress); err != nil {
		return err
	}
	ctx = WithActor(ctx, Actor{Kind: ActorSystem, ID: "cli"})
	return s.write(ctx, func(tx *Tx) error { return tx.audit(ActionBackup, "node", "database", "", "") })
}

// BackupFile writes a consistent copy of the database at path to dest without
// opening it as a store, so nothing is migrated or written: a database of an
// earlier schema is copied as it is (a backup taken before an upgrade). It
// uses VACUUM INTO on a connection of its own: one read transaction, so the
// copy is the database as of one commit, and writers go on meanwhile (WAL).
// The copy is checked with integrity_check and must carry our schema before
// it is renamed to dest; a failed backup leaves no file at dest.
func BackupFile(ctx context.Context, path, dest string, progress Progress) error {
	if _, err := DatabaseFileVersion(ctx, path); err != nil {
		return err
	}
	dest, err := filepath.Abs(dest)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dest); err == nil {
		return &Error{Code: "backup_exists", Message: fmt.Sprintf("%s already exists", dest),
			Hint: "choose a new file name, or delete the old backup first"}
	}
	tmp := dest + ".partial"
	os.Remove(tmp)
	defer os.Remove(tmp)

	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("open database for backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	var total int64
	if err := db.QueryRowContext(ctx, `SELECT page_count * page_size FROM pragma_page_count, pragma_page_size`).Scan(&total); err != nil {
		return fmt.Errorf("size database: %w", err)
	}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if progress == nil {
			return
		}
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if fi, err := os.Stat(tmp); err == nil {
					progress(min(fi.Size(), total), total)
				}
			}
		}
	}()
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, tmp)
	close(stop)
	<-watched
	if err != nil {
		if sqliteCode(err) == sqlite3.SQLITE_FULL {
			return &Error{Code: "backup_disk_full", Message: fmt.Sprintf("the disk of %s is full, so no backup was written", dest),
				Hint: "use a larger USB stick or free space on it, then back up again", Err: err}
		}
		return fmt.Errorf("copy database to %s: %w", tmp, err)
	}
	if err := VerifyDatabaseFile(ctx, tmp); err != nil {
		return fmt.Errorf("check backup: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("finish backup: %w", err)
	}
	if err := syncDir(filepath.Dir(dest)); err != nil {
		return err
	}
	if progress != nil {
		fi, _ := os.Stat(dest)
		progress(fi.Size(), fi.Size())
	}
	return nil
}

// DatabaseFileVersion reads, without writing or migrating, the schema version
// of the healthpost database at path. A missing file, a file that is not ours
// and a schema newer than this binary knows are errors.
func DatabaseFileVersion(ctx context.Context, path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, &Error{Code: "db_missing", Message: fmt.Sprintf("there is no database at %s", path),
			Hint: "check --data-dir (HEALTHPOST_DATA_DIR); 'healthpost serve' creates the database on first start", Err: err}
	}
	if err := checkDatabaseFile(path); err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var appID, version int
	if err := db.QueryRowContext(ctx, `SELECT application_id, user_version FROM pragma_application_id, pragma_user_version`).Scan(&appID, &version); err != nil {
		return 0, explainOpenError(path, err)
	}
	switch {
	case appID != applicationID:
		return 0, &Error{Code: "db_foreign", Message: fmt.Sprintf("%s is not a healthpost database", path),
			Hint: "check --data-dir (HEALTHPOST_DATA_DIR)", Err: ErrForeignDatabase}
	case version > SchemaVersion():
		return 0, &Error{Code: "db_too_new", Message: fmt.Sprintf("%s has schema version %d, newer than this healthpost knows (%d)", path, version, SchemaVersion()),
			Hint: "use the newer healthpost that wrote it", Err: ErrSchemaTooNew}
	}
	return version, nil
}

// VerifyDatabaseFile checks that path is a healthy healthpost database that
// this binary can open: SQLite, integrity_check ok, our application ID, and a
// schema no newer than ours.
func VerifyDatabaseFile(ctx context.Context, path string) error {
	if err := checkDatabaseFile(path); err != nil {
		return err
	}
	if fi, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	} else if fi.Size() == 0 {
		return &Error{Code: "db_empty", Message: fmt.Sprintf("%s is empty", path), Hint: "choose another backup file", Err: ErrNotDatabase}
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return explainOpenError(path, err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return explainOpenError(path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return explainOpenError(path, err)
	}
	if len(problems) > 0 {
		return &Error{Code: "db_corrupt", Message: fmt.Sprintf("%s is damaged (%d problems; first: %s)", path, len(problems), problems[0]),
			Hint: "use an older backup", Err: ErrNotDatabase}
	}
	var appID, version int
	if err := db.QueryRowContext(ctx, `SELECT application_id, user_version FROM pragma_application_id, pragma_user_version`).Scan(&appID, &version); err != nil {
		return explainOpenError(path, err)
	}
	if appID != applicationID {
		return &Error{Code: "db_foreign", Message: fmt.Sprintf("%s is not a healthpost database", path),
			Hint: "choose a file made by 'healthpost backup'", Err: ErrForeignDatabase}
	}
	if version > SchemaVersion() {
		return &Error{Code: "db_too_new", Message: fmt.Sprintf("%s has schema version %d, newer than this healthpost knows (%d)", path, version, SchemaVersion()),
			Hint: "restore it with the newer healthpost it came from", Err: ErrSchemaTooNew}
	}
	return nil
}

// Restore replaces the database in dataDir with the backup at src. It refuses
// while a node holds the data directory. The database it replaces is kept
// beside it as healthpost.db.before-restore-<time>, never deleted. It returns
// that file's path ("" when there was no database).
func Restore(ctx context.Context, dataDir, src string, now time.Time) (string, error) {
	lock, err := LockDataDir(dataDir)
	if err != nil {
		return "", err
	}
	defer lock.Release()
	if err := VerifyDatabaseFile(ctx, src); err != nil {
		return "", err
	}
	dbPath := filepath.Join(dataDir, DBFileName)
	tmp := dbPath + ".restoring"
	if err := copyFile(src, tmp); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("copy backup into %s: %w", dataDir, err)
	}
	aside := ""
	if _, err := os.Stat(dbPath); err == nil {
		aside = fmt.Sprintf("%s.before-restore-%s", dbPath, now.UTC().Format("20060102T150405Z"))
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(dbPath+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				os.Remove(tmp)
				return "", fmt.Errorf("move current database aside: %w", err)
			}
		}
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		return aside, fmt.Errorf("put restored database in place: %w", err)
	}
	return aside, syncDir(dataDir)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// RecordRestore writes the audit entry for a restore just made from src.
func (s *Store) RecordRestore(ctx context.Context, src string) error {
	return s.write(ctx, func(tx *Tx) error {
		if tx.actor.Kind == "" {
			tx.actor = Actor{Kind: ActorSystem, ID: "cli"}
		}
		return tx.audit(ActionRestore, "node", "database", "", "from "+filepath.Base(src))
	})
}
