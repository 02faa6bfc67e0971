package edge_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

func TestStore_DeviceRegistry(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	ctx := edgetest.Clerk()
	d := &edge.Device{Name: "BP monitor 2", Kind: "bp-monitor", Transport: "serial", Codec: "line", Settings: `{"port":"/dev/ttyUSB0","baud":9600}`}
	if err := s.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	// Ensure bad registrations name the field.
	for _, bad := range []edge.Device{
		{Name: "BP monitor 2", Kind: "bp-monitor", Transport: "serial"},
		{Name: "x", Kind: "toaster", Transport: "serial"},
		{Name: "x", Kind: "scale", Transport: "carrier-pigeon"},
		{Name: "../../etc", Kind: "scale", Transport: "serial"},
	} {
		var fe edge.FieldErrors
		if err := s.CreateDevice(ctx, &bad); !errors.As(err, &fe) {
			t.Errorf("CreateDevice(%+v)=%v, want field errors", bad, err)
		}
	}
	token, err := s.NewDeviceSecret(ctx, "BP monitor 2")
	if err != nil || len(token) != 36 {
		t.Fatalf("token=%q %v", token, err)
	}
	if got, err := s.AuthenticateDevice(ctx, "BP monitor 2", token); err != nil || got.ID != d.ID {
		t.Fatalf("AuthenticateDevice=%+v %v", got, err)
	}
	if _, err := s.AuthenticateDevice(ctx, "BP monitor 2", token[:35]+"x"); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("wrong token err=%v", err)
	}
	if err := s.RecordDeviceActivity(ctx, d.ID, edge.DeviceActivity{Frames: 5, Readings: 12, Errors: 1, LastSeen: time.Now(),
		Status: "listening on /dev/ttyUSB0", LastError: "checksum mismatch in frame 3; check the cable"}); err != nil {
		t.Fatal(err)
	}
	s.RecordDeviceActivity(ctx, d.ID, edge.DeviceActivity{Frames: 1, Status: "listening on /dev/ttyUSB0"})
	got, err := s.Device(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Frames != 6 || got.Readings != 12 || got.Errors != 1 || got.LastError == "" || !got.HasSecret || got.LastSeenAt.IsZero() {
		t.Fatalf("device=%+v", got)
	}
	// Ensure removal keeps the row (its readings refer to it) and revokes its token.
	if err := s.RemoveDevice(ctx, "BP monitor 2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateDevice(ctx, "BP monitor 2", token); !errors.Is(err, edge.ErrNotFound) {
		t.Fatal("a removed device can still authenticate")
	}
	list, _ := s.Devices(ctx)
	if len(list) != 1 || list[0].Enabled {
		t.Fatalf("devices=%+v", list)
	}
	if err := s.RemoveDevice(ctx, "BP monitor 2"); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("second removal err=%v", err)
	}
}

func TestSaveReading_PatientResolution(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	raw := edgetest.MustRawDB(t, path)
	ctx := context.Background()
	sunita := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 34, ABHANumber: "91-2666-2007-2857"}
	if err := s.CreatePatient(edgetest.Clerk(), sunita); err != nil {
		t.Fatal(err)
	}
	meena := MustCreatePatient(t, s, "Meena Kumari")
	d := MustCreateDevice(t, s, "Oximeter 1")
	save := func(msg, ref string) *edge.Reading {
		t.Helper()
		r := bp(d.ID, "", msg, 97)
		r.PatientRef = ref
		if err := s.SaveReading(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	patientOf := func(r *edge.Reading) string {
		var id string
		raw.QueryRow(`SELECT coalesce(patient_id, '') FROM readings WHERE message_id = ?`, r.MessageID).Scan(&id)
		return id
	}

	// Ensure the identifier a message carries binds it: local ID or ABHA number in any spelling.
	if got := patientOf(save("r1", meena.LocalID)); got != meena.ID {
		t.Fatalf("by local ID: patient=%q, want Meena", got)
	}
	if got := patientOf(save("r2", "91 2666 2007 2857")); got != sunita.ID {
		t.Fatalf("by ABHA: patient=%q, want Sunita", got)
	}
	// Ensure an identifier that matches nobody is never guessed.
	if got := patientOf(save("r3", "P-999999")); got != "" {
		t.Fatalf("unknown identifier bound to %q", got)
	}

	// Ensure a health worker's binding takes the device's anonymous readings, until it expires.
	if err := s.BindDevice(ctx, d.ID, meena.ID, time.Minute); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("anonymous binding err=%v", err)
	}
	if err := s.BindDevice(edgetest.Clerk(), d.ID, meena.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := patientOf(save("r4", "")); got != meena.ID {
		t.Fatalf("bound reading patient=%q, want Meena", got)
	}
	// A reading naming someone else still goes to them, not to the binding.
	if got := patientOf(save("r5", sunita.LocalID)); got != sunita.ID {
		t.Fatalf("identified reading patient=%q, want Sunita", got)
	}
	if err := s.BindDevice(edgetest.Clerk(), d.ID, meena.ID, -time.Second); err != nil { // expired
		t.Fatal(err)
	}
	unassigned := save("r6", "")
	if got := patientOf(unassigned); got != "" {
		t.Fatalf("reading after the binding expired went to %q", got)
	}

	// Ensure the inbox: assigning makes an observation with its outbox row; discarding keeps the reason.
	inbox, _ := s.UnassignedReadings(ctx, 10)
	if len(inbox) != 2 {
		t.Fatalf("inbox=%d readings, want 2 (r3, r6)", len(inbox))
	}
	outbox := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox`)
	if err := s.AssignReading(edgetest.Clerk(), inbox[1].ID, sunita.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.AssignReading(edgetest.Clerk(), inbox[1].ID, sunita.ID); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("assigning twice err=%v", err)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM outbox`); g != outbox+1 {
		t.Fatalf("outbox=%d, want %d", g, outbox+1)
	}
	if err := s.DiscardReading(edgetest.Clerk(), inbox[0].ID, "test measurement"); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.UnassignedReadings(ctx, 10); len(left) != 0 {
		t.Fatalf("inbox still has %d", len(left))
	}
	trail, _ := s.AuditTrail(ctx, sunita.ID)
	last := trail[len(trail)-1]
	if last.Action != edge.ActionReadingStore || last.Actor != "user:clerk-1" {
		t.Fatalf("assignment audited as %+v, want a reading.store by the clerk", last)
	}
	if rep, err := s.VerifyAudit(ctx); err != nil || !rep.OK() {
		t.Fatalf("audit %+v %v", rep, err)
	}
}
