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

func MustCreateUser(tb testing.TB, s *edge.Store, username, role string) *edge.User {
	tb.Helper()
	u := &edge.User{Username: username, DisplayName: username, Role: role}
	if err := s.CreateUser(edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorSystem, ID: "test"}), u, "correct horse"); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return u
}

func TestStore_WebSession(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.NewTestStore(path)
	now := time.Now()
	s.Now = func() time.Time { return now }
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	u := MustCreateUser(t, s, "asha", edge.RoleHealthWorker)

	// Ensure a session is created, read back with its user, and audited.
	token, ws, err := s.CreateWebSession(t.Context(), u.ID, "192.0.2.7", 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ws.CSRFToken == "" || token == "" || ws.User.Username != "asha" {
		t.Fatalf("session=%+v", ws)
	}
	got, err := s.WebSession(t.Context(), token)
	if err != nil || got.User.ID != u.ID || got.CSRFToken != ws.CSRFToken || got.Locked || got.HasPIN {
		t.Fatalf("WebSession=%+v, %v", got, err)
	}
	if _, err := s.WebSession(t.Context(), token+"x"); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("wrong token: %v", err)
	}

	// Ensure the session survives a restart (it is in the database, hashed).
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	db := edgetest.MustRawDB(t, path)
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM web_sessions WHERE token_hash = ?`, token); n != 0 {
		t.Fatal("the token is stored in clear")
	}
	s = edgetest.MustOpenStoreAt(t, path)
	s.Now = func() time.Time { return now }
	if got, err := s.WebSession(t.Context(), token); err != nil || got.User.ID != u.ID {
		t.Fatalf("after restart WebSession=%+v, %v", got, err)
	}

	// Ensure lock, PIN and unlock.
	if err := s.LockWebSession(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.WebSession(t.Context(), token); !got.Locked {
		t.Fatal("not locked")
	}
	if ok, err := s.CheckPIN(t.Context(), u.ID, "1234"); ok || err != nil {
		t.Fatalf("CheckPIN without a PIN=%v, %v", ok, err)
	}
	if err := s.SetPIN(t.Context(), u.ID, "12a4"); err == nil {
		t.Fatal("accepted a PIN with a letter")
	}
	if err := s.SetPIN(t.Context(), u.ID, "2468"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.CheckPIN(t.Context(), u.ID, "1357"); ok {
		t.Fatal("wrong PIN accepted")
	}
	if ok, _ := s.CheckPIN(t.Context(), u.ID, "2468"); !ok {
		t.Fatal("right PIN refused")
	}
	now = now.Add(time.Minute)
	if err := s.UnlockWebSession(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.WebSession(t.Context(), token); got.Locked || !got.HasPIN || !got.LastSeenAt.Equal(time.UnixMilli(now.UnixMilli())) {
		t.Fatalf("after unlock=%+v", got)
	}

	// Ensure a session expires, and ends on sign-out and when the user is disabled.
	now = now.Add(13 * time.Hour)
	if _, err := s.WebSession(t.Context(), token); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	now = now.Add(-13 * time.Hour)
	if err := s.EndWebSession(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebSession(t.Context(), token); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("ended session: %v", err)
	}
	token, _, _ = s.CreateWebSession(t.Context(), u.ID, "192.0.2.7", time.Hour)
	if err := s.DisableUser(edgetest.Clerk(), "asha"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebSession(t.Context(), token); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("disabled user's session: %v", err)
	}

	db = edgetest.MustRawDB(t, path)
	for _, action := range []string{"user.login", "user.lock", "user.unlock", "user.pin", "user.logout"} {
		if n := edgetest.MustCount(t, db, `SELECT count(*) FROM audit_log WHERE action = ? AND actor = ?`, action, "user:"+u.ID); n == 0 {
			t.Errorf("no %s audit entry", action)
		}
	}
	if rep, err := s.VerifyAudit(t.Context()); err != nil || !rep.OK() {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
}

func TestStore_SetUserLanguage(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	u := MustCreateUser(t, s, "doc", edge.RoleDoctor)
	if err := s.SetUserLanguage(t.Context(), u.ID, "hi"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserByID(t.Context(), u.ID); got.Language != "hi" {
		t.Fatalf("language=%q", got.Language)
	}
	if err := s.SetUserLanguage(t.Context(), u.ID, "<b>"); err == nil {
		t.Fatal("accepted a bad language")
	}
	if id, err := s.UserIDByUsername(t.Context(), "DOC"); err != nil || id != u.ID {
		t.Fatalf("UserIDByUsername=%q, %v", id, err)
	}
}

func TestStore_ClockReports(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	now := time.Now()
	s.Now = func() time.Time { return now }
	u := MustCreateUser(t, s, "admin2", edge.RoleAdmin)
	token, _, _ := s.CreateWebSession(t.Context(), u.ID, "a", time.Hour)

	// Two tablets say the node is an hour behind; one is an old report.
	for _, r := range []struct {
		client string
		off    time.Duration
	}{{"a", 2 * time.Hour}, {"a", time.Hour}, {"b", time.Hour + time.Minute}, {"c", -time.Second}} {
		if _, err := s.RecordClockReport(t.Context(), r.client, u.ID, now.Add(r.off)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.ClockConsensus(t.Context(), edge.DefaultClockReportWindow)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tablets != 3 || c.Offset != time.Hour || !c.Disagrees(2, edge.DefaultClockDisagreement) {
		t.Fatalf("consensus=%+v", c)
	}

	// Ensure setting the clock moves sessions with it and is audited.
	ctx := edge.WithActor(t.Context(), edge.Actor{Kind: edge.ActorUser, ID: u.ID})
	from := now
	now = now.Add(time.Hour)
	if err := s.RecordClockSet(ctx, from, now, true); err != nil {
		t.Fatal(err)
	}
	ws, err := s.WebSession(t.Context(), token)
	if err != nil || ws.ExpiresAt.Sub(now) < 59*time.Minute {
		t.Fatalf("session after clock set=%+v, %v", ws, err)
	}
	if c, _ := s.ClockConsensus(t.Context(), edge.DefaultClockReportWindow); c.Disagrees(2, edge.DefaultClockDisagreement) {
		t.Fatalf("consensus after set=%+v", c)
	}
	db := edgetest.MustRawDB(t, s.Path)
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM audit_log WHERE action = 'node.clock_set'`); n != 1 {
		t.Fatalf("clock set audit entries=%d", n)
	}
}

func TestStore_FacilitySettings(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	f, err := s.FacilitySettings(t.Context())
	if err != nil || f != edge.DefaultFacilitySettings() {
		t.Fatalf("defaults=%+v, %v", f, err)
	}
	f.Address, f.IdleLockMinutes = "PHC Rampur, Dist. Sitapur", 3
	if err := s.SaveFacilitySettings(edgetest.Clerk(), f); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FacilitySettings(t.Context()); got != f {
		t.Fatalf("saved=%+v, want %+v", got, f)
	}
	f.IdleLockMinutes = 0
	var fe edge.FieldErrors
	if err := s.SaveFacilitySettings(edgetest.Clerk(), f); !errors.As(err, &fe) || fe["idle_lock_minutes"] == "" {
		t.Fatalf("bad settings: %v", err)
	}
	if err := s.SaveFacilitySettings(t.Context(), edge.DefaultFacilitySettings()); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("no actor: %v", err)
	}
}
