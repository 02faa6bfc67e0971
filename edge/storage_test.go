package edge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// fill writes a file of n bytes into dir, taking free space away.
func fill(tb testing.TB, dir, name string, n int64) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(int64(len(buf)), n)
		if _, err := f.Write(buf[:k]); err != nil {
			tb.Fatalf("fill: %v", err)
		}
		n -= k
	}
	return path
}

func freeBytes(tb testing.TB, dir string) int64 {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		tb.Fatal(err)
	}
	return int64(fs.Bavail) * int64(fs.Bsize)
}

func TestStorage_Watermarks(t *testing.T) {
	dir := edgetest.MustMountTmpfs(t, 64<<20)
	path := filepath.Join(dir, edge.DBFileName)
	s := edgetest.NewTestStore(path)
	s.LowFreeBytes = 40 << 20
	s.CriticalFreeBytes = 20 << 20
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	raw := edgetest.MustRawDB(t, path)
	p := MustCreatePatient(t, s, "Sunita Devi")
	d := MustCreateDevice(t, s, "BP monitor 1")
	if err := s.SaveReading(ctx, bp(d.ID, p.ID, "m1", 120)); err != nil {
		t.Fatal(err)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM device_messages`); g != 1 {
		t.Fatalf("raw frames=%d, want 1 while the disk is fine", g)
	}
	// One document delivered, one pending.
	if err := s.CreateEncounter(edgetest.Clerk(), &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal}); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueOutbox(ctx, time.Now().Add(time.Second), 10)
	if err := s.MarkDelivered(ctx, due[0].ID, edge.Receipt{Upstream: "hub", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	pendingBefore := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'pending'`)

	// Running low: raw frames go, delivered rows go, pending rows and clinical records stay.
	filler := fill(t, dir, "filler", freeBytes(t, dir)-30<<20)
	st, err := s.CheckStorage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := st.Level, edge.StorageLow; g != w {
		t.Fatalf("Level=%s, want %s (free %d)", g, w, st.FreeBytes)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM device_messages`); g != 0 {
		t.Fatalf("raw frames=%d after running low, want 0", g)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'delivered'`); g != 0 {
		t.Fatalf("delivered outbox rows=%d after running low, want 0", g)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE state = 'pending'`); g != pendingBefore {
		t.Fatalf("pending outbox rows=%d, want %d: undelivered documents were pruned", g, pendingBefore)
	}
	if err := s.SaveReading(ctx, bp(d.ID, p.ID, "m2", 121)); err != nil {
		t.Fatalf("a reading was refused while merely low: %v", err)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM device_messages`); g != 0 {
		t.Fatal("a raw frame was kept while the disk is low")
	}

	// Critically full: new clinical records are refused with a clear message, nothing changes.
	fill(t, dir, "filler2", freeBytes(t, dir)-10<<20)
	if st, _ := s.CheckStorage(ctx); st.Level != edge.StorageCritical {
		t.Fatalf("Level=%s, want critical", st.Level)
	}
	patients := edgetest.MustCount(t, raw, `SELECT count(*) FROM patients`)
	err = s.CreatePatient(edgetest.Clerk(), &edge.Patient{Name: "Refused", Gender: "F", StatedAge: 30})
	var ee *edge.Error
	if !errors.Is(err, edge.ErrDiskCritical) || !errors.As(err, &ee) || ee.Hint == "" {
		t.Fatalf("CreatePatient err=%v, want ErrDiskCritical with a hint", err)
	}
	if err := s.SaveReading(ctx, bp(d.ID, p.ID, "m3", 122)); !errors.Is(err, edge.ErrDiskCritical) {
		t.Fatalf("SaveReading err=%v, want ErrDiskCritical", err)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM patients`); g != patients {
		t.Fatal("a patient was written while the disk was critical")
	}

	// Space freed: writes work again.
	os.Remove(filler)
	os.Remove(filepath.Join(dir, "filler2"))
	if st, _ := s.CheckStorage(ctx); st.Level != edge.StorageOK {
		t.Fatalf("Level=%s after freeing space, want ok", st.Level)
	}
	MustCreatePatient(t, s, "Accepted")
}

func TestStorage_DiskFullMidWrite(t *testing.T) {
	// Watermarks off: the filesystem itself runs out under SQLite.
	dir := edgetest.MustMountTmpfs(t, 3<<20)
	path := filepath.Join(dir, edge.DBFileName)
	s := edgetest.NewTestStore(path)
	s.LowFreeBytes, s.CriticalFreeBytes = 1, 0
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := MustCreatePatient(t, s, "Sunita Devi")
	var saved []string
	var err error
	for range 100000 {
		e := OPDVisit(p.ID)
		e.Notes = string(make([]byte, 2000))
		if err = s.CreateEncounter(edgetest.Clerk(), e); err != nil {
			break
		}
		saved = append(saved, e.ID)
	}
	// Ensure the failure is reported as a full disk, with what to do.
	var ee *edge.Error
	if !errors.Is(err, edge.ErrDiskCritical) || !errors.As(err, &ee) || ee.Hint == "" {
		t.Fatalf("err=%v after %d encounters, want ErrDiskCritical with a hint", err, len(saved))
	}
	s.Close(context.Background())

	// Ensure nothing committed before the disk filled is lost or damaged.
	if err := edge.VerifyDatabaseFile(context.Background(), path); err != nil {
		t.Fatalf("database damaged by a full disk: %v", err)
	}
	raw := edgetest.MustRawDB(t, path)
	if g, w := edgetest.MustCount(t, raw, `SELECT count(*) FROM encounters`), len(saved); g != w {
		t.Fatalf("encounters=%d, want %d", g, w)
	}
	if g, w := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox`), 3*len(saved); g != w {
		t.Fatalf("outbox rows=%d, want %d", g, w)
	}
	t.Logf("%d encounters saved before the 3 MiB disk filled", len(saved))
}

func TestStorage_DaysLeft(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	clock := &fakeClock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	s := openWithClock(t, path, clock)
	ctx := context.Background()
	if st, _ := s.CheckStorage(ctx); st.DaysLeft != -1 {
		t.Fatalf("DaysLeft=%v on the first day, want -1 (unknown)", st.DaysLeft)
	}
	p := MustCreatePatient(t, s, "Sunita Devi")
	for range 300 {
		if err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(p.ID)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(clock.Now().Add(24 * time.Hour))
	st, err := s.CheckStorage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Ensure the growth rate and days left follow from the measured sizes.
	if st.GrowthPerDay <= 0 {
		t.Fatalf("GrowthPerDay=%v after a day of writes, want > 0", st.GrowthPerDay)
	}
	want := float64(st.FreeBytes-s.CriticalFreeBytes) / st.GrowthPerDay
	if st.DaysLeft < want*0.999 || st.DaysLeft > want*1.001 {
		t.Fatalf("DaysLeft=%v, want %v", st.DaysLeft, want)
	}
}
