package mllp_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/mllp"
	"github.com/healthpost/healthpost/edge"
)

// MustOpenStore opens a store on a new file, closed when the test ends, and
// a separate read connection to the same file for checking what committed.
func MustOpenStore(tb testing.TB) (*edge.Store, *sql.DB) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), edge.DBFileName)
	s := edge.NewStore(path)
	s.DiskCheckPeriod = 0
	s.LowFreeBytes, s.CriticalFreeBytes = 64<<20, 16<<20
	if err := s.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return s, db
}

// MustCreateDevice registers an MLLP device with these settings.
func MustCreateDevice(tb testing.TB, s *edge.Store, name string, st devices.Settings) edge.Device {
	tb.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		tb.Fatal(err)
	}
	d := edge.Device{Name: name, Kind: "monitor", Transport: "mllp", Codec: "hl7", Settings: string(b)}
	if err := s.CreateDevice(context.Background(), &d); err != nil {
		tb.Fatal(err)
	}
	return d
}

// MustCreatePatient registers a patient and returns its local ID.
func MustCreatePatient(tb testing.TB, s *edge.Store) string {
	tb.Helper()
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "nurse"})
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 40}
	if err := s.CreatePatient(ctx, p); err != nil {
		tb.Fatal(err)
	}
	return p.LocalID
}

// MustCount runs a count query on db.
func MustCount(tb testing.TB, db *sql.DB, q string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// oru builds an IHE PCD-01 style blood-pressure message.
func oru(controlID, patient string, sys, dia int) []byte {
	pid := ""
	if patient != "" {
		pid = "PID|||" + patient + "^^^HEALTHPOST^MR\r"
	}
	return []byte("MSH|^~\\&|BPMON^0012FFFE00A1B2C3^EUI-64||HEALTHPOST||20261122093000+0530||ORU^R01^ORU_R01|" + controlID + "|P|2.6|||NE|AL\r" +
		pid +
		"OBR|1|" + controlID + "||150020^MDC_PRESS_BLD_NONINV^MDC|||20261122092955+0530\r" +
		fmt.Sprintf("OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.0.1.1|%d|266016^MDC_DIM_MMHG^MDC|||||R\r", sys) +
		fmt.Sprintf("OBX|2|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.0.1.2|%d|266016^MDC_DIM_MMHG^MDC|||||R\r", dia))
}

// statuses collects the statuses a Server reports.
type statuses struct {
	mu  sync.Mutex
	all []string
	ch  chan string
}

func newStatuses() *statuses { return &statuses{ch: make(chan string, 1000)} }

func (st *statuses) record(d edge.Device, s string) {
	st.mu.Lock()
	st.all = append(st.all, d.Name+": "+s)
	st.mu.Unlock()
	st.ch <- d.Name + ": " + s
}

// wait returns the first status from now on that contains want.
func (st *statuses) wait(tb testing.TB, want string) string {
	tb.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case s := <-st.ch:
			if strings.Contains(s, want) {
				return s
			}
		case <-timeout:
			st.mu.Lock()
			defer st.mu.Unlock()
			tb.Fatalf("no status containing %q; got %q", want, st.all)
		}
	}
}

// MustOpenServer opens a Server for the store's MLLP devices, closed when
// the test ends.
func MustOpenServer(tb testing.TB, s *edge.Store, adjust func(*mllp.Server)) (*mllp.Server, *statuses) {
	tb.Helper()
	in := devices.NewIngestor(s, slog.New(slog.DiscardHandler))
	srv := mllp.NewServer(s, in, slog.New(slog.DiscardHandler))
	srv.FlushInterval = 0
	st := newStatuses()
	srv.OnStatus = st.record
	if adjust != nil {
		adjust(srv)
	}
	if err := srv.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close(context.Background()) })
	return srv, st
}

// MustDial connects to a device's address on srv.
func MustDial(tb testing.TB, srv *mllp.Server, device string) net.Conn {
	tb.Helper()
	addr := srv.Addr(device)
	if addr == nil {
		tb.Fatalf("%s is not listening", device)
	}
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
