package edge_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// schemaOf returns the database's schema as sorted SQL statements.
func schemaOf(tb testing.TB, path string) []string {
	tb.Helper()
	rows, err := edgetest.MustRawDB(tb, path).Query(`SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_schema ORDER BY 1`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// seedAtVersion writes, with plain SQL, a record into each table that exists
// at schema version v, the way a node of that version would have.
func seedAtVersion(tb testing.TB, path string, v int) {
	tb.Helper()
	db := edgetest.MustRawDB(tb, path)
	exec := func(q string, args ...any) {
		if _, err := db.Exec(q, args...); err != nil {
			tb.Fatalf("seed v%d: %s: %v", v, q, err)
		}
	}
	if v >= 1 {
		exec(`INSERT INTO users (id, username, role, password_hash, created_at, updated_at, node_seq) VALUES ('u1', 'old.admin', 'admin', 'x', 1, 1, 1)`)
	}
	if v >= 2 {
		exec(`INSERT INTO patients (id, local_id, name, gender, birth_date, created_at, updated_at, node_seq) VALUES ('p1', 'P-000001', 'Old Patient', 'F', '1980-01-01', 1, 1, 2)`)
		exec(`INSERT INTO encounters (id, patient_id, type, started_at, status, created_at, updated_at, node_seq) VALUES ('e1', 'p1', 'opd', 1, 'final', 1, 1, 3)`)
	}
	if v >= 3 {
		exec(`INSERT INTO devices (id, name, kind, transport, created_at, updated_at) VALUES ('d1', 'Old scale', 'scale', 'serial', 1, 1)`)
	}
	if v >= 4 {
		exec(`INSERT INTO outbox (key, document, lane, patient_id, entity, entity_id, next_attempt_at, created_at, node_seq) VALUES ('k1', 'OPConsultRecord', 1, 'p1', 'encounter', 'e1', 1, 1, 4)`)
	}
}

func TestMigrations_FromEveryEarlierVersion(t *testing.T) {
	latest := edge.SchemaVersion()
	if latest < 2 {
		t.Fatalf("SchemaVersion=%d, want the numbered migrations", latest)
	}
	fresh := filepath.Join(t.TempDir(), edge.DBFileName)
	edgetest.MustOpenStoreAt(t, fresh)
	want := schemaOf(t, fresh)

	for v := 1; v < latest; v++ {
		t.Run("FromVersion"+strconv.Itoa(v), func(t *testing.T) {
			// Ensure a database left at version v by an older node migrates in place and keeps its records.
			path := filepath.Join(t.TempDir(), edge.DBFileName)
			old := edgetest.NewTestStore(path)
			old.MaxSchemaVersion = v
			if err := old.Open(context.Background()); err != nil {
				t.Fatalf("open at version %d: %v", v, err)
			}
			if got, _ := old.DatabaseVersion(context.Background()); got != v {
				t.Fatalf("DatabaseVersion=%d, want %d", got, v)
			}
			old.Close(context.Background())
			seedAtVersion(t, path, v)

			s := edgetest.MustOpenStoreAt(t, path)
			if got, _ := s.DatabaseVersion(context.Background()); got != latest {
				t.Fatalf("after migration DatabaseVersion=%d, want %d", got, latest)
			}
			if got := schemaOf(t, path); !slices.Equal(got, want) {
				t.Fatalf("migrated schema differs from a fresh one:\n got %q\nwant %q", got, want)
			}
			raw := edgetest.MustRawDB(t, path)
			if got := edgetest.MustCount(t, raw, `SELECT count(*) FROM users WHERE username = 'old.admin'`); got != 1 {
				t.Fatalf("old user count=%d, want 1", got)
			}
			if v >= 2 {
				if got := edgetest.MustCount(t, raw, `SELECT count(*) FROM encounters WHERE id = 'e1' AND patient_id = 'p1'`); got != 1 {
					t.Fatalf("old encounter count=%d, want 1", got)
				}
			}
			// The migrated node works: a new patient gets the next local ID.
			p := MustCreatePatient(t, s, "New Patient")
			if v >= 2 && p.LocalID == "P-000001" {
				t.Fatalf("LocalID=%s collides with the old patient", p.LocalID)
			}
		})
	}
}

// Ensure patients indexed with the name keys of schema 9 are indexed again,
// so a search in Devanagari finds a name kept in Latin (सिंह, Singh).
func TestMigrations_NameKeysIndexedAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	old := edgetest.NewTestStore(path)
	old.MaxSchemaVersion = 9
	if err := old.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	old.Close(context.Background())
	db := edgetest.MustRawDB(t, path)
	for _, q := range []string{
		`INSERT INTO patients (id, local_id, name, gender, birth_date, created_at, updated_at, node_seq) VALUES ('p1', 'P-000001', 'Ravi Singh', 'M', '1980-01-01', 1, 1, 1)`,
		// The keys schema 9 wrote: Singh was "sng", सिंह "sn".
		`INSERT INTO patient_search (patient_id, name_keys, name_latin, village_key, birth_year) VALUES ('p1', 'rv sng', 'ravi singh', '', 1980)`,
		`DELETE FROM patient_search_pending`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := edgetest.MustOpenStoreAt(t, path)
	found, _, err := s.SearchPatients(edgetest.Clerk(), "रवि सिंह", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Patient.ID != "p1" {
		t.Fatalf("search for रवि सिंह after the migration found %+v, want Ravi Singh", found)
	}
}

func fileHash(tb testing.TB, path string) [32]byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestOpen_RefusesWithoutDamage(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error
	}{
		{"SchemaTooNew", func(t *testing.T, path string) {
			s := edgetest.MustOpenStoreAt(t, path)
			s.Close(context.Background())
			mustExecAndClose(t, path, `PRAGMA user_version = 99`)
		}, edge.ErrSchemaTooNew},
		{"ForeignSQLite", func(t *testing.T, path string) {
			mustExecAndClose(t, path, `CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)`)
		}, edge.ErrForeignDatabase},
		{"NotSQLite", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("PK\x03\x04 this is a zip file, not a database"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, edge.ErrNotDatabase},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Ensure the store refuses the file with a message and leaves its bytes as they were.
			path := filepath.Join(t.TempDir(), edge.DBFileName)
			tc.prepare(t, path)
			before := fileHash(t, path)
			s := edgetest.NewTestStore(path)
			err := s.Open(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open err=%v, want %v", err, tc.want)
			}
			var ee *edge.Error
			if !errors.As(err, &ee) || ee.Hint == "" {
				t.Fatalf("Open err=%v, want an edge.Error with a hint", err)
			}
			if fileHash(t, path) != before {
				t.Fatal("the refused file was modified")
			}
		})
	}
}

func TestOpen_CorruptDatabaseIsDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	for i := range 200 {
		MustCreatePatient(t, s, "Patient "+string(rune('A'+i%26)))
	}
	s.Close(context.Background())

	// Scribble over pages in the middle of the file, as a failing SD card does.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := make([]byte, 4096)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	f.WriteAt(junk, fi.Size()/2)
	f.Close()

	// Ensure either opening or the integrity check reports the damage, as an ErrNotDatabase with a hint.
	s2 := edgetest.NewTestStore(path)
	err = s2.Open(context.Background())
	if err == nil {
		defer s2.Close(context.Background())
		err = s2.IntegrityCheck(context.Background())
	}
	if !errors.Is(err, edge.ErrNotDatabase) {
		t.Fatalf("err=%v, want ErrNotDatabase", err)
	}
	if err := edge.VerifyDatabaseFile(context.Background(), path); !errors.Is(err, edge.ErrNotDatabase) {
		t.Fatalf("VerifyDatabaseFile err=%v, want ErrNotDatabase", err)
	}
}

func TestOpen_Pragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	edgetest.MustOpenStoreAt(t, path)
	var mode string
	if err := edgetest.MustRawDB(t, path).QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if got, want := mode, "wal"; got != want {
		t.Fatalf("journal_mode=%q, want %q", got, want)
	}
}

// mustExecAndClose runs statements on the file with a connection of its own
// and closes it, so nothing is left in a WAL.
func mustExecAndClose(tb testing.TB, path, query string) {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		tb.Fatal(err)
	}
}
