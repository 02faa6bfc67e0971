package edge_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// BenchmarkIngest compares group commit of device readings (many devices
// submitting at once, each told only after its row is durable) with a bare
// loop of batched INSERTs of the same rows into the same schema, with the
// same synchronous=FULL durability. The ratio of the two readings/s figures
// is the cost of the group-commit machinery (target: at least 0.8). The
// bare loop inserts row by row and audits each reading; group commit
// writes many rows to an INSERT and audits once per device and patient,
// so it may be the faster.
func BenchmarkIngest(b *testing.B) {
	b.Run("GroupCommit", func(b *testing.B) {
		s := edgetest.MustOpenStore(b)
		p := MustCreatePatient(b, s, "Sunita Devi")
		d := MustCreateDevice(b, s, "BP monitor 1")
		var n atomic.Int64
		b.SetParallelism(512) // 512 × GOMAXPROCS readings in flight, as from 50 devices with 20 each
		b.ResetTimer()
		cpu0 := cpuTime(b)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if err := s.SaveReading(context.Background(), bp(d.ID, p.ID, strconv.FormatInt(i, 10), 120)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "readings/s")
		// CPU per reading, the callers' included: less sensitive than the
		// rate to other work on a shared machine.
		b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu_us/reading")
		st := s.IngestStats()
		b.ReportMetric(float64(st.Readings)/float64(max(st.Batches, 1)), "readings/batch")
	})

	b.Run("BareBatchedInserts", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), edge.DBFileName)
		s := edgetest.MustOpenStoreAt(b, path)
		p := MustCreatePatient(b, s, "Sunita Devi")
		d := MustCreateDevice(b, s, "BP monitor 1")
		s.Close(context.Background())
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		stmts := []string{
			`INSERT INTO device_messages (device_id, received_at, codec, raw) VALUES (?, ?, 'hl7', ?)`,
			`INSERT INTO readings (id, device_id, message_id, patient_id, observation_id, loinc, value, value_text, unit,
				effective_at, state, received_at, node_seq) VALUES (?, ?, ?, ?, ?, '8480-6', 120, '120', 'mm[Hg]', ?, 'assigned', ?, ?)`,
			`INSERT INTO observations (id, patient_id, loinc, value, value_text, unit, effective_at, source, device_id, created_at, node_seq)
				VALUES (?, ?, '8480-6', 120, '120', 'mm[Hg]', ?, 'device', ?, ?, ?)`,
			`INSERT INTO outbox (key, document, lane, patient_id, entity, entity_id, next_attempt_at, created_at, node_seq)
				VALUES (?, 'WellnessRecord', 2, ?, 'observation', ?, ?, ?, ?)`,
			`INSERT INTO audit_log (seq, at, node_seq, actor, action, entity, entity_id, patient_id, prev_hash, hash)
				VALUES (?, ?, ?, ?, 'reading.store', 'observation', ?, ?, ?, ?)`,
		}
		var seq int64 = 1 << 20
		prev := make([]byte, 32)
		b.ResetTimer()
		start := time.Now()
		for done := 0; done < b.N; {
			tx, err := db.Begin()
			if err != nil {
				b.Fatal(err)
			}
			var prepared []*sqlStmt
			for _, q := range stmts {
				st, err := tx.Prepare(q)
				if err != nil {
					b.Fatal(err)
				}
				prepared = append(prepared, st)
			}
			for k := 0; k < edge.DefaultBatchMax && done < b.N; k++ {
				now := time.Now().UnixMilli()
				readingID, obsID := edge.NewID(), edge.NewID()
				raw := []byte("OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||120")
				seq++
				h := sha256.Sum256(append(prev, obsID...))
				mustExec(b, prepared[0], d.ID, now, raw)
				mustExec(b, prepared[1], readingID, d.ID, fmt.Sprint(done), p.ID, obsID, now, now, seq)
				mustExec(b, prepared[2], obsID, p.ID, now, d.ID, now, seq)
				mustExec(b, prepared[3], "WellnessRecord/observation/"+obsID+"/v1", p.ID, obsID, now, now, seq)
				mustExec(b, prepared[4], seq, now, seq, "device:"+d.ID, obsID, p.ID, prev, h[:])
				prev = h[:]
				done++
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "readings/s")
	})
}

// BenchmarkCreateEncounter saves one final OPD encounter with 5 observations,
// a diagnosis, a prescription, 3 outbox rows and an audit entry, each in its
// own durable transaction, and reports the median and 99th percentile.
func BenchmarkCreateEncounter(b *testing.B) {
	s := edgetest.MustOpenStore(b)
	p := MustCreatePatient(b, s, "Sunita Devi")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		e := OPDVisit(p.ID)
		t0 := time.Now()
		if err := s.CreateEncounter(edgetest.Clerk(), e); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

type sqlStmt = sql.Stmt

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mustExec(b *testing.B, st *sql.Stmt, args ...any) {
	if _, err := st.Exec(args...); err != nil {
		b.Fatal(err)
	}
}
