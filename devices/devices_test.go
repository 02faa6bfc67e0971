package devices_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/edge"
)

func mustStore(t *testing.T) (*edge.Store, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edge.NewStore(path)
	s.DiskCheckPeriod = 0
	s.LowFreeBytes, s.CriticalFreeBytes = 64<<20, 16<<20
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return s, raw
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIngestor_Ingest(t *testing.T) {
	s, raw := mustStore(t)
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "nurse"})
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 40}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	dev := edge.Device{Name: "BP monitor 1", Kind: "bp-monitor", Transport: "mllp", Codec: "hl7"}
	if err := s.CreateDevice(ctx, &dev); err != nil {
		t.Fatal(err)
	}
	in := devices.NewIngestor(s, slog.New(slog.DiscardHandler))
	at := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	msg := []devices.Measurement{
		{System: "MDC", Code: "150021", Value: "128", Unit: "266016", At: at, PatientRef: p.LocalID, MessageID: "MSG1/1"},
		{System: "MDC", Code: "150022", Value: "84", Unit: "mmHg", At: at, PatientRef: p.LocalID, MessageID: "MSG1/2"},
		{System: "MDC", Code: "150456", Value: "140", Unit: "%", At: at, PatientRef: p.LocalID, MessageID: "MSG1/3"},
		{System: "MDC", Code: "999999", Value: "1", Unit: "%", At: at, PatientRef: p.LocalID, MessageID: "MSG1/4"},
	}
	frame := []byte("MSH|^~\\&|...")
	n, err := in.Ingest(context.Background(), dev, "hl7", frame, msg, nil)
	if err != nil || n != 3 {
		t.Fatalf("Ingest=%d %v, want 3 stored", n, err)
	}
	// Ensure normalized values land as observations of the patient named in the message.
	if g := count(t, raw, `SELECT count(*) FROM observations WHERE patient_id = ? AND loinc = '8480-6' AND value = 128 AND unit = 'mm[Hg]'`, p.ID); g != 1 {
		t.Fatalf("systolic observations=%d, want 1", g)
	}
	// Ensure the impossible SpO2 is kept as rejected with a reason, and is no observation.
	var reason string
	raw.QueryRow(`SELECT reject_reason FROM readings WHERE message_id = 'MSG1/3' AND state = 'rejected'`).Scan(&reason)
	if reason == "" {
		t.Fatal("SpO2 of 140 % was not kept as rejected with a reason")
	}
	if g := count(t, raw, `SELECT count(*) FROM device_messages`); g != 1 {
		t.Fatalf("raw frames=%d, want 1", g)
	}
	// Ensure a replay stores nothing new and still succeeds (the device gets its ACK again).
	if n, err := in.Ingest(context.Background(), dev, "hl7", frame, msg, nil); err != nil || n != 0 {
		t.Fatalf("replay: Ingest=%d %v, want 0 stored, no error", n, err)
	}
	// Ensure a message with nothing the node knows is refused, kept raw, and counted.
	_, err = in.Ingest(context.Background(), dev, "hl7", []byte("junk"), msg[3:], nil)
	if !errors.Is(err, devices.ErrNothingStored) {
		t.Fatalf("unknown-only message err=%v", err)
	}
	if err := in.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Device(ctx, dev.ID)
	if got.Frames != 3 || got.Readings != 3 || got.Errors != 1 || got.LastError == "" {
		t.Fatalf("device counters=%+v", got)
	}
	if g := count(t, raw, `SELECT count(*) FROM device_messages WHERE error != ''`); g != 1 {
		t.Fatalf("kept bad frames=%d, want 1", g)
	}
}
