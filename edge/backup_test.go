package edge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func TestBackup_WhileWritesContinue(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	p := MustCreatePatient(t, s, "Sunita Devi")
	d := MustCreateDevice(t, s, "BP monitor 1")
	ctx := context.Background()
	for range 500 {
		if err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(p.ID)); err != nil {
			t.Fatal(err)
		}
	}

	// Writers keep going for the whole backup: encounters and device readings.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes int
	running := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(p.ID)); err != nil {
				t.Error(err)
				return
			}
			if err := s.SaveReading(ctx, bp(d.ID, p.ID, "b"+strconv.Itoa(i), 120)); err != nil {
				t.Error(err)
				return
			}
			writes++
			if writes == 3 {
				close(running)
			}
		}
	}()
	<-running
	dest := filepath.Join(t.TempDir(), "backup.db")
	var progressCalls int
	err := s.Backup(ctx, dest, func(done, total int64) {
		progressCalls++
		if done > total || total <= 0 {
			t.Errorf("progress %d of %d", done, total)
		}
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if progressCalls == 0 {
		t.Fatal("no progress reported")
	}
	if _, err := os.Stat(dest + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a .partial file was left behind")
	}

	// Ensure the backup restores to a consistent database: every encounter with
	// its outbox rows, every reading with its observation, an intact audit chain.
	restoreDir := t.TempDir()
	if _, err := edge.Restore(ctx, restoreDir, dest, time.Now()); err != nil {
		t.Fatal(err)
	}
	rpath := filepath.Join(restoreDir, edge.DBFileName)
	r := edgetest.MustOpenStoreAt(t, rpath)
	if err := r.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := r.VerifyAudit(ctx); err != nil || !rep.OK() {
		t.Fatalf("restored audit chain: %+v %v", rep, err)
	}
	raw := edgetest.MustRawDB(t, rpath)
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM encounters e WHERE (SELECT count(*) FROM outbox o WHERE o.entity_id = e.id) != 3`); g != 0 {
		t.Fatalf("%d encounters in the backup lack their outbox rows", g)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM readings r LEFT JOIN observations o ON o.id = r.observation_id WHERE o.id IS NULL`); g != 0 {
		t.Fatalf("%d readings in the backup lack their observation", g)
	}
	enc := edgetest.MustCount(t, raw, `SELECT count(*) FROM encounters`)
	if enc < 500 {
		t.Fatalf("backup holds %d encounters, want at least the 500 written before it", enc)
	}
	t.Logf("backup holds %d encounters; %d more write rounds ran during it", enc, writes)

	// Ensure a second backup to the same name is refused rather than overwriting.
	if err := s.Backup(ctx, dest, nil); err == nil {
		t.Fatal("backup over an existing file succeeded")
	}
}

func TestRestore(t *testing.T) {
	ctx := context.Background()
	mkBackup := func(t *testing.T) string {
		s := edgetest.MustOpenStore(t)
		MustCreatePatient(t, s, "From Backup")
		dest := filepath.Join(t.TempDir(), "b.db")
		if err := s.Backup(ctx, dest, nil); err != nil {
			t.Fatal(err)
		}
		return dest
	}

	t.Run("OK", func(t *testing.T) {
		// Ensure the replaced database is kept beside the restored one.
		backup := mkBackup(t)
		dir := t.TempDir()
		s := edgetest.MustOpenStoreAt(t, filepath.Join(dir, edge.DBFileName))
		MustCreatePatient(t, s, "Current")
		s.Close(ctx)
		aside, err := edge.Restore(ctx, dir, backup, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if g := edgetest.MustCount(t, edgetest.MustRawDB(t, aside), `SELECT count(*) FROM patients WHERE name = 'Current'`); g != 1 {
			t.Fatal("the replaced database was not kept")
		}
		if g := edgetest.MustCount(t, edgetest.MustRawDB(t, filepath.Join(dir, edge.DBFileName)), `SELECT count(*) FROM patients WHERE name = 'From Backup'`); g != 1 {
			t.Fatal("the backup was not restored")
		}
	})

	t.Run("ErrNodeRunning", func(t *testing.T) {
		// Ensure a restore is refused while a node holds the data directory, and changes nothing.
		backup := mkBackup(t)
		dir := t.TempDir()
		lock, err := edge.LockDataDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Release()
		s := edgetest.MustOpenStoreAt(t, filepath.Join(dir, edge.DBFileName))
		MustCreatePatient(t, s, "Current")
		before := fileHash(t, filepath.Join(dir, edge.DBFileName))
		if _, err := edge.Restore(ctx, dir, backup, time.Now()); !errors.Is(err, edge.ErrNodeRunning) {
			t.Fatalf("err=%v, want ErrNodeRunning", err)
		}
		if fileHash(t, filepath.Join(dir, edge.DBFileName)) != before {
			t.Fatal("refused restore changed the database")
		}
	})

	t.Run("ErrNotDatabase", func(t *testing.T) {
		// Ensure a bad backup file is refused before the current database is touched.
		dir := t.TempDir()
		s := edgetest.MustOpenStoreAt(t, filepath.Join(dir, edge.DBFileName))
		MustCreatePatient(t, s, "Current")
		s.Close(ctx)
		before := fileHash(t, filepath.Join(dir, edge.DBFileName))
		bad := filepath.Join(t.TempDir(), "photo.jpg")
		os.WriteFile(bad, []byte("\xff\xd8\xff\xe0 not a database"), 0o600)
		if _, err := edge.Restore(ctx, dir, bad, time.Now()); !errors.Is(err, edge.ErrNotDatabase) {
			t.Fatalf("err=%v, want ErrNotDatabase", err)
		}
		if fileHash(t, filepath.Join(dir, edge.DBFileName)) != before {
			t.Fatal("refused restore changed the database")
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if filepath.Ext(e.Name()) == ".restoring" {
				t.Fatalf("left behind %s", e.Name())
			}
		}
	})
}
