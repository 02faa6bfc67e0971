package edge_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func bp(deviceID, patientID, msgID string, v float64) *edge.Reading {
	return &edge.Reading{DeviceID: deviceID, PatientID: patientID, MessageID: msgID, LOINC: "8480-6", Value: v,
		ValueText: fmt.Sprint(v), Unit: "mm[Hg]", EffectiveAt: time.Now(), Raw: []byte("OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||" + fmt.Sprint(v)), Codec: "hl7"}
}

func TestSaveReading_AcknowledgedOnlyAfterCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	p := MustCreatePatient(t, s, "Sunita Devi")
	d := MustCreateDevice(t, s, "BP monitor 1")
	// A separate connection sees only what has committed.
	raw := edgetest.MustRawDB(t, path)

	const producers, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, producers*each)
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg := fmt.Sprintf("g%d-%d", g, i)
				if err := s.SaveReading(context.Background(), bp(d.ID, p.ID, msg, 120)); err != nil {
					errs <- err
					return
				}
				// Ensure the reading is visible to another connection the moment SaveReading returns.
				var n int
				if err := raw.QueryRow(`SELECT count(*) FROM readings r JOIN observations o ON o.id = r.observation_id
					WHERE r.device_id = ? AND r.message_id = ?`, d.ID, msg).Scan(&n); err != nil || n != 1 {
					errs <- fmt.Errorf("reading %s acknowledged but %d committed (%v)", msg, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.IngestStats()
	if g, w := st.Readings, int64(producers*each); g != w {
		t.Fatalf("Readings=%d, want %d", g, w)
	}
	// Ensure readings were actually grouped: far fewer commits than readings.
	if st.Batches*4 > st.Readings {
		t.Fatalf("%d batches for %d readings: group commit is not grouping", st.Batches, st.Readings)
	}
	if g, w := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE document = 'WellnessRecord' AND lane = 2`), producers*each; g != w {
		t.Fatalf("outbox rows=%d, want %d", g, w)
	}
	if rep, err := s.VerifyAudit(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("VerifyAudit=%+v %v", rep, err)
	}
}

func TestSaveReading_Outcomes(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	raw := edgetest.MustRawDB(t, path)
	p := MustCreatePatient(t, s, "Sunita Devi")
	d := MustCreateDevice(t, s, "BP monitor 1")
	ctx := context.Background()

	t.Run("ReplayStoredOnce", func(t *testing.T) {
		// Ensure a device resending the same message after a lost ACK is stored once and told it is durable.
		if err := s.SaveReading(ctx, bp(d.ID, p.ID, "replay-1", 130)); err != nil {
			t.Fatal(err)
		}
		frames := edgetest.MustCount(t, raw, `SELECT count(*) FROM device_messages`)
		if err := s.SaveReading(ctx, bp(d.ID, p.ID, "replay-1", 130)); !errors.Is(err, edge.ErrDuplicateReading) {
			t.Fatalf("err=%v, want ErrDuplicateReading", err)
		}
		if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM readings WHERE message_id = 'replay-1'`); g != 1 {
			t.Fatalf("readings=%d, want 1", g)
		}
		if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM observations WHERE device_id = ?`, d.ID); g != 1 {
			t.Fatalf("observations=%d, want 1", g)
		}
		if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM device_messages`); g != frames {
			t.Fatalf("raw frames=%d after a replay, want %d: the replay's frame was kept again", g, frames)
		}
	})

	t.Run("UnassignedWaitsInInbox", func(t *testing.T) {
		// Ensure a reading without a patient becomes no observation and no outbox row.
		before := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox`)
		r := bp(d.ID, "", "unbound-1", 118)
		if err := s.SaveReading(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.ObservationID != "" {
			t.Fatalf("ObservationID=%q, want none", r.ObservationID)
		}
		inbox, err := s.UnassignedReadings(ctx, 10)
		if err != nil || len(inbox) != 1 || inbox[0].MessageID != "unbound-1" {
			t.Fatalf("inbox=%+v %v", inbox, err)
		}
		if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox`); g != before {
			t.Fatalf("outbox grew to %d for an unassigned reading", g)
		}
	})

	t.Run("RejectedIsKeptNotObserved", func(t *testing.T) {
		r := bp(d.ID, p.ID, "bad-1", 400)
		r.Rejected = "systolic 400 mm[Hg] is impossible"
		if err := s.SaveReading(ctx, r); err != nil {
			t.Fatal(err)
		}
		if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM readings WHERE message_id = 'bad-1' AND state = 'rejected' AND observation_id IS NULL`); g != 1 {
			t.Fatalf("rejected readings=%d, want 1", g)
		}
	})

	t.Run("BadReadingFailsAlone", func(t *testing.T) {
		// Ensure one reading for an unknown device fails without taking its batch-mates with it.
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dev := d.ID
				if i == 7 {
					dev = "no-such-device"
				}
				errs[i] = s.SaveReading(ctx, bp(dev, p.ID, fmt.Sprintf("mix-%d", i), 121))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if (i == 7) != (err != nil) {
				t.Fatalf("reading %d: err=%v", i, err)
			}
		}
		if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM readings WHERE message_id LIKE 'mix-%'`); g != 19 {
			t.Fatalf("stored=%d, want 19", g)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		r := bp(d.ID, p.ID, "x", 1)
		r.LOINC = "not-a-code"
		if err := s.SaveReading(ctx, r); err == nil {
			t.Fatal("a reading without a LOINC code was accepted")
		}
	})
}

func TestStore_CloseDrainsReadings(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.NewTestStore(path)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := MustCreatePatient(t, s, "Sunita Devi")
	d := MustCreateDevice(t, s, "BP monitor 1")

	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	started := make(chan struct{})
	var once sync.Once
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				msg := fmt.Sprintf("g%d-%d", g, i)
				err := s.SaveReading(context.Background(), bp(d.ID, p.ID, msg, 120))
				if errors.Is(err, edge.ErrStopping) {
					return
				}
				if err != nil {
					t.Errorf("SaveReading: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, msg)
				if len(acked) == 500 {
					once.Do(func() { close(started) })
				}
				mu.Unlock()
			}
		}()
	}
	<-started
	// Ensure Close, called while producers are mid-flight, commits everything handed in.
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	raw := edgetest.MustRawDB(t, path)
	for _, msg := range acked {
		if edgetest.MustCount(t, raw, `SELECT count(*) FROM readings WHERE message_id = ?`, msg) != 1 {
			t.Fatalf("acknowledged reading %s missing after Close", msg)
		}
	}
}

// The kill -9 test runs this test binary again as a child that ingests at
// full rate and prints each message ID after SaveReading returned.
const childEnv = "HPTEST_INGEST_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		ingestChild(path)
		return
	}
	os.Exit(m.Run())
}

func ingestChild(path string) {
	s := edgetest.NewTestStore(path)
	if err := s.Open(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ids := strings.Split(os.Getenv("HPTEST_IDS"), ",")
	patientID, deviceID, prefix := ids[0], ids[1], ids[2]
	out := make(chan string, 1024)
	for g := range 16 {
		go func() {
			for i := 0; ; i++ {
				msg := fmt.Sprintf("%s-%d-%d", prefix, g, i)
				if err := s.SaveReading(context.Background(), bp(deviceID, patientID, msg, 120)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				out <- msg
			}
		}()
	}
	w := bufio.NewWriter(os.Stdout)
	for msg := range out {
		// Written only after commit; flushed at once so the parent never sees
		// an ID that was not acknowledged.
		w.WriteString("ack " + msg + "\n")
		w.Flush()
	}
}

func TestSaveReading_KillNineLosesNothingAcknowledged(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	p := MustCreatePatient(t, s, "Sunita Devi")
	d := MustCreateDevice(t, s, "BP monitor 1")
	s.Close(context.Background())

	var acked []string
	for round, killAfter := range []int{300, 1500, 4000} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path, fmt.Sprintf("HPTEST_IDS=%s,%s,r%d", p.ID, d.ID, round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			if msg, ok := strings.CutPrefix(line, "ack "); ok {
				acked = append(acked, msg)
				n++
			}
			if n == killAfter {
				// A real kill -9, mid-batch: the child gets no chance to flush or close.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		// Lines already written before the kill were acknowledged too.
		for sc.Scan() {
			if msg, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
				acked = append(acked, msg)
			}
		}
		cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child stopped after %d acks", round, n)
		}
	}

	// Ensure every acknowledged reading is stored exactly once, and the database is sound.
	s2 := edgetest.MustOpenStoreAt(t, path)
	if err := s2.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw := edgetest.MustRawDB(t, path)
	stored := map[string]int{}
	rows, err := raw.Query(`SELECT message_id FROM readings`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m string
		rows.Scan(&m)
		stored[m]++
	}
	rows.Close()
	for _, msg := range acked {
		if stored[msg] != 1 {
			t.Fatalf("acknowledged reading %s stored %d times", msg, stored[msg])
		}
	}
	if rep, err := s2.VerifyAudit(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("audit after kill -9: %+v %v", rep, err)
	}
	t.Logf("%d acknowledged readings over 3 kills, %d stored", len(acked), len(stored))
}

// TestSaveReading_OneBatch puts readings for several patients and devices
// into a single group commit: bound by identifier, by ABHA number, by a
// device binding, unassigned, rejected, a message replayed inside the batch
// and, in one case, a reading for an unknown device. Enough of them (75) to
// span several multi-row INSERTs.
func TestSaveReading_OneBatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  bool
	}{{"AllGood", false}, {"OneBad", true}} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 75
			path := filepath.Join(t.TempDir(), edge.DBFileName)
			s := edgetest.NewTestStore(path)
			// The batch commits once it holds n readings, not before.
			s.BatchMax, s.BatchDelay = n, time.Hour
			if err := s.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close(context.Background()) })
			raw := edgetest.MustRawDB(t, path)
			sunita := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 34, ABHANumber: "91-2666-2007-2857"}
			if err := s.CreatePatient(edgetest.Clerk(), sunita); err != nil {
				t.Fatal(err)
			}
			meena := MustCreatePatient(t, s, "Meena Kumari")
			d1, d2, d3 := MustCreateDevice(t, s, "BP monitor 1"), MustCreateDevice(t, s, "BP monitor 2"), MustCreateDevice(t, s, "BP monitor 3")
			if err := s.BindDevice(edgetest.Clerk(), d2.ID, meena.ID, time.Hour); err != nil {
				t.Fatal(err)
			}
			audited := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`)

			// What each reading should become.
			type want struct {
				patient string // "" unassigned
				state   string
				dupOf   int // index of the reading it replays, or -1
				bad     bool
			}
			rs := make([]*edge.Reading, n)
			wants := make([]want, n)
			for i := range rs {
				w := want{dupOf: -1, state: "assigned"}
				var r *edge.Reading
				switch i % 5 {
				case 0: // device 1, the patient's local ID
					r = bp(d1.ID, "", fmt.Sprintf("m-%d", i), 120)
					r.PatientRef, w.patient = sunita.LocalID, sunita.ID
				case 1: // device 1, the ABHA number spelt with spaces
					r = bp(d1.ID, "", fmt.Sprintf("m-%d", i), 121)
					r.PatientRef, w.patient = "91 2666 2007 2857", sunita.ID
				case 2: // device 2, bound to Meena
					r = bp(d2.ID, "", fmt.Sprintf("m-%d", i), 122)
					w.patient = meena.ID
				case 3: // device 3, no patient: the inbox
					r = bp(d3.ID, "", fmt.Sprintf("m-%d", i), 123)
					w.state = "unassigned"
				case 4: // device 2, an impossible value: rejected, no observation
					r = bp(d2.ID, "", fmt.Sprintf("m-%d", i), 400)
					r.Rejected, w.patient, w.state = "systolic 400 mm[Hg] is impossible", meena.ID, "rejected"
				}
				rs[i], wants[i] = r, w
			}
			// Readings 10 and 61 replay 3 and 12, in the same batch.
			for _, p := range [][2]int{{10, 3}, {61, 12}} {
				rs[p[0]] = bp(rs[p[1]].DeviceID, "", rs[p[1]].MessageID, rs[p[1]].Value)
				rs[p[0]].PatientRef, rs[p[0]].Rejected = rs[p[1]].PatientRef, rs[p[1]].Rejected
				wants[p[0]] = wants[p[1]]
				wants[p[0]].dupOf = p[1]
			}
			if tc.bad {
				rs[40] = bp("no-such-device", sunita.ID, "m-40", 120)
				wants[40] = want{dupOf: -1, bad: true}
			}

			errs := make([]error, n)
			var wg sync.WaitGroup
			for i, r := range rs {
				wg.Add(1)
				go func() { defer wg.Done(); errs[i] = s.SaveReading(context.Background(), r) }()
			}
			wg.Wait()
			if g, w := s.IngestStats().Batches, int64(1); g != w {
				t.Fatalf("batches=%d, want %d", g, w)
			}

			// Ensure each reading got its own outcome: the bad one alone failed, the replays were told they are durable.
			stored := 0
			for i, w := range wants {
				switch {
				case w.bad:
					if errs[i] == nil || errors.Is(errs[i], edge.ErrDuplicateReading) || rs[i].ID != "" {
						t.Fatalf("reading %d for an unknown device: err=%v ID=%q", i, errs[i], rs[i].ID)
					}
				case w.dupOf >= 0 && i > w.dupOf:
					if !errors.Is(errs[i], edge.ErrDuplicateReading) || rs[i].ID != "" {
						t.Fatalf("replayed reading %d: err=%v ID=%q, want ErrDuplicateReading", i, errs[i], rs[i].ID)
					}
				default:
					if errs[i] != nil || rs[i].ID == "" {
						t.Fatalf("reading %d: err=%v ID=%q", i, errs[i], rs[i].ID)
					}
					stored++
				}
			}

			// Ensure each stored reading has its row, its one raw frame, and when observed, its observation and outbox row.
			for i, r := range rs {
				w := wants[i]
				if w.bad || (w.dupOf >= 0 && i > w.dupOf) {
					continue
				}
				var patient, state, obs string
				var frame int64
				if err := raw.QueryRow(`SELECT coalesce(patient_id, ''), state, coalesce(observation_id, ''), raw_message_id FROM readings WHERE id = ?`,
					r.ID).Scan(&patient, &state, &obs, &frame); err != nil {
					t.Fatalf("reading %d: %v", i, err)
				}
				if patient != w.patient || state != w.state {
					t.Fatalf("reading %d: patient=%q state=%q, want %q %q", i, patient, state, w.patient, w.state)
				}
				if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM device_messages WHERE id = ? AND device_id = ? AND raw = ?`, frame, r.DeviceID, r.Raw); g != 1 {
					t.Fatalf("reading %d: its raw frame %d is missing", i, frame)
				}
				if (obs != "") != (w.state == "assigned") || obs != r.ObservationID {
					t.Fatalf("reading %d (%s): observation=%q, reported %q", i, w.state, obs, r.ObservationID)
				}
				if obs == "" {
					continue
				}
				if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM observations WHERE id = ? AND patient_id = ? AND device_id = ?`, obs, w.patient, r.DeviceID); g != 1 {
					t.Fatalf("reading %d: observation %s missing", i, obs)
				}
				if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox WHERE entity = 'observation' AND entity_id = ? AND patient_id = ? AND state = 'pending'`, obs, w.patient); g != 1 {
					t.Fatalf("reading %d: outbox rows for observation %s=%d, want 1", i, obs, g)
				}
				// Ensure exactly one audit entry names the observation, written by its device, about its patient.
				var actor, patientID string
				if err := raw.QueryRow(`SELECT actor, patient_id FROM audit_log WHERE action = 'reading.store'
					AND ',' || entity_id || ',' LIKE '%,' || ? || ',%'`, obs).Scan(&actor, &patientID); err != nil {
					t.Fatalf("reading %d: audit entry of observation %s: %v", i, obs, err)
				}
				if actor != "device:"+r.DeviceID || patientID != w.patient {
					t.Fatalf("reading %d audited as %s about %s, want device:%s about %s", i, actor, patientID, r.DeviceID, w.patient)
				}
			}
			if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM readings`); g != stored {
				t.Fatalf("readings=%d, want %d", g, stored)
			}
			if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM device_messages`); g != stored {
				t.Fatalf("raw frames=%d, want %d (one per stored reading, none for a replay or the bad one)", g, stored)
			}
			observed := edgetest.MustCount(t, raw, `SELECT count(*) FROM observations`)
			if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox`); g != observed {
				t.Fatalf("outbox=%d, observations=%d", g, observed)
			}
			// Ensure the audit entries are one per device and patient: (device 1, Sunita) and (device 2, Meena).
			if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`); g != audited+2 {
				t.Fatalf("audit entries=%d, want %d", g, audited+2)
			}
			if rep, err := s.VerifyAudit(context.Background()); err != nil || !rep.OK() {
				t.Fatalf("VerifyAudit=%+v %v", rep, err)
			}
			// Ensure every record got its own node sequence number.
			if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM (SELECT node_seq FROM (
				SELECT node_seq FROM patients UNION ALL SELECT node_seq FROM readings UNION ALL SELECT node_seq FROM observations
				UNION ALL SELECT node_seq FROM outbox UNION ALL SELECT node_seq FROM audit_log) GROUP BY node_seq HAVING count(*) > 1)`); g != 0 {
				t.Fatalf("%d node sequence numbers given twice", g)
			}
		})
	}
}
