package main_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// BenchmarkServeIdle measures `healthpost serve` on a database the size of a
// busy PHC after some years: 100,000 patients and 1,000,000 observations.
// It reports the time from exec to listening (target under 1 s) and the
// resident memory once idle (target under 40 MB).
func BenchmarkServeIdle(b *testing.B) {
	n := newNode(b)
	seedStart := time.Now()
	seedLarge(b, n, 100_000, 1_000_000)
	fi, _ := os.Stat(filepath.Join(n.dataDir, edge.DBFileName))
	b.Logf("seeded %d MB in %v", fi.Size()>>20, time.Since(seedStart).Round(time.Second))

	var startup time.Duration
	var rssKB int64
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		srv := n.serve()
		startup += time.Since(t0)
		b.Logf("start-up %v", time.Since(t0).Round(time.Millisecond))
		// Idle: let start-up work (first storage check, GC) settle before reading RSS.
		time.Sleep(3 * time.Second)
		rssKB += vmRSS(b, srv.cmd.Process.Pid)
		srv.cmd.Process.Kill()
		<-srv.exited
	}
	b.ReportMetric(float64(startup.Milliseconds())/float64(b.N), "startup-ms")
	b.ReportMetric(float64(rssKB)/1024/float64(b.N), "idle-rss-MB")
}

func vmRSS(tb testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// seedLarge migrates a new data dir with the binary, then fills it with
// plain batched INSERTs (the node's own API would audit every row, which is
// right for real use and needlessly slow for building a fixture).
func seedLarge(tb testing.TB, n *node, patients, observations int) {
	tb.Helper()
	n.mustRun("migrate")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(n.dataDir, edge.DBFileName)+"?_txlock=immediate&_pragma=synchronous(OFF)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ids := make([]string, patients)
	now := time.Now().UnixMilli()
	const batch = 20_000
	for start := 0; start < patients; start += batch {
		tx, _ := db.Begin()
		st, err := tx.Prepare(`INSERT INTO patients (id, local_id, name, gender, birth_date, phone, village, created_at, updated_at, node_seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			tb.Fatal(err)
		}
		for i := start; i < min(start+batch, patients); i++ {
			ids[i] = edge.NewID()
			if _, err := st.Exec(ids[i], fmt.Sprintf("P-%06d", i+1), fmt.Sprintf("Patient %d", i), "FMOU"[i%4:i%4+1],
				fmt.Sprintf("19%02d-0%d-1%d", 40+i%60, 1+i%9, i%10), fmt.Sprintf("9%09d", i), "Village "+strconv.Itoa(i%300), now, now, i); err != nil {
				tb.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	loinc := []string{"8480-6", "8462-4", "8867-4", "8310-5", "2708-6", "29463-7"}
	for start := 0; start < observations; start += batch {
		tx, _ := db.Begin()
		st, err := tx.Prepare(`INSERT INTO observations (id, patient_id, loinc, value, value_text, unit, effective_at, source, created_at, node_seq)
			VALUES (?, ?, ?, ?, ?, 'mm[Hg]', ?, 'manual', ?, ?)`)
		if err != nil {
			tb.Fatal(err)
		}
		for i := start; i < min(start+batch, observations); i++ {
			v := 60 + i%100
			if _, err := st.Exec(edge.NewID(), ids[i%patients], loinc[i%len(loinc)], v, strconv.Itoa(v), now-int64(i)*1000, now, patients+i); err != nil {
				tb.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		tb.Fatal(err)
	}
}
