package edge

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered SQL file. Applied files are never edited: a
// change to the schema is a new file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order; their numbers must run
// 1, 2, 3, ... without gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this binary migrates databases to.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		panic(err) // the embedded files are part of the binary; tests catch this
	}
	return len(ms)
}

// DatabaseVersion reports the schema version recorded in the store's file.
func (s *Store) DatabaseVersion(ctx context.Context) (int, error) {
	var v int
	err := s.writer.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
	return v, err
}

// checkIdentity reads, without writing, whether the file is an empty new
// database or ours at a version this binary knows, and returns that version.
func (s *Store) checkIdentity(ctx context.Context) (int, error) {
	var appID, version, tables int
	if err := s.writer.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&appID); err != nil {
		return 0, fmt.Errorf("read application_id: %w", err)
	}
	if err := s.writer.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("read user_version: %w", err)
	}
	if err := s.writer.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&tables); err != nil {
		return 0, fmt.Errorf("read schema: %w", err)
	}
	switch {
	case appID == 0 && tables == 0:
		return 0, nil // a new, empty database
	case appID != applicationID:
		return 0, &Error{Code: "db_foreign",
			Message: fmt.Sprintf("%s is an SQLite database of some other program, not healthpost", s.Path),
			Hint:    "point --data-dir at healthpost's own data directory, or move this file aside",
			Err:     ErrForeignDatabase}
	case version > SchemaVersion():
		return 0, &Error{Code: "db_too_new",
			Message: fmt.Sprintf("%s has schema version %d but this healthpost knows only up to %d", s.Path, version, SchemaVersion()),
			Hint:    "install the newer healthpost again (downgrading would damage the records), or restore a backup made by this version",
			Err:     ErrSchemaTooNew}
	}
	return version, nil
}

// migrate brings the schema from version up to date, one transaction per
// file, recording the version in PRAGMA user_version inside the same
// transaction, so a crash mid-way leaves the last complete version.
func (s *Store) migrate(ctx context.Context, version int) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	target := len(ms)
	if s.MaxSchemaVersion > 0 && s.MaxSchemaVersion < target {
		target = s.MaxSchemaVersion
	}
	for _, m := range ms[min(version, target):target] {
		if err := s.applyMigration(ctx, m); err != nil {
			return fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
		}
		s.Logger.Info("migrated database", "version", m.version, "file", m.name)
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, m migration) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if m.version == 1 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id = %d`, applicationID)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, m.version)); err != nil {
		return err
	}
	return tx.Commit()
}
