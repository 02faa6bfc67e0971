package webui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/webui"
)

func TestAdmin_Users(t *testing.T) {
	n := MustStartNode(t)
	admin := n.Client()
	boss := n.MustCreateUser("boss", edge.RoleAdmin)
	admin.LoginAs(n, boss)

	resp, body := admin.Post("/admin/users", url.Values{"username": {"Ravi"}, "display_name": {"Dr Ravi"},
		"role": {"doctor"}, "language": {"hi"}, "hpr_id": {""}})
	wantStatus(t, resp, body, http.StatusOK)
	m := regexp.MustCompile(`<p class="secret">([a-z0-9-]+)</p>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no password shown:\n%.2000s", body)
	}
	// The new user signs in with it, in Hindi.
	ravi := n.Client()
	resp, body = ravi.TryLogin("ravi", m[1])
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = ravi.Get("/")
	if !strings.Contains(body, `lang="hi"`) || !strings.Contains(body, "मरीज़ खोजें") {
		t.Fatal("the new user's page is not in Hindi")
	}
	// A taken username and a bad role come back as field errors.
	resp, body = admin.Post("/admin/users", url.Values{"username": {"ravi"}, "display_name": {"X"}, "role": {"doctor"}, "language": {"en"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "This username is taken") {
		t.Fatal("no taken message")
	}
	id, _ := n.Store.UserIDByUsername(context.Background(), "ravi")
	resp, body = admin.Post("/admin/users/"+id+"/disable", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if resp, _ := ravi.Get("/"); !strings.HasPrefix(location(resp), "/login") {
		t.Fatal("a disabled user's tablet is still signed in")
	}
	resp, body = admin.Post("/admin/users/"+boss.ID+"/disable", nil)
	wantStatus(t, resp, body, http.StatusConflict)
	resp, body = admin.Post("/admin/users/"+id+"/password", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `class="secret"`) {
		t.Fatal("no new password shown")
	}
}

func TestAdmin_Clock(t *testing.T) {
	n := MustStartNode(t)
	admin := n.Client()
	admin.LoginAs(n, n.MustCreateUser("boss", edge.RoleAdmin))
	resp, body := admin.Get("/admin")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `<svg class="qr"`) || !strings.Contains(body, `id="lan-url"`) {
		t.Fatal("no LAN address QR code")
	}

	// A tablet an hour ahead: the node's clock is set to it, audited.
	tablet := time.Now().Add(time.Hour)
	resp, body = admin.Post("/admin/clock", url.Values{"tablet_time": {fmt.Sprint(tablet.UnixMilli())}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := <-n.ClockSets; !got.Equal(time.UnixMilli(tablet.UnixMilli())) {
		t.Fatalf("clock set to %v, want %v", got, tablet)
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'node.clock_set' AND detail LIKE '%applied=true%'`); got != 1 {
		t.Fatal("clock set not audited")
	}
	// A tablet whose own clock is impossible is refused.
	resp, body = admin.Post("/admin/clock", url.Values{"tablet_time": {"86400000"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
}

func TestAdmin_ClockNotSettable(t *testing.T) {
	n := MustStartNodeAt(t, filepath.Join(t.TempDir(), edge.DBFileName), &fakeClock{}, func(s *webui.Server) {
		s.SetClock = func(context.Context, time.Time) error {
			return &edge.Error{Code: "clock_not_settable", Message: "the node runs without permission to set the system clock",
				Hint: "as root run: date -u -s '2030-01-01 00:00:00'", Err: webui.ErrClockNotSettable}
		}
	})
	admin := n.Client()
	admin.LoginAs(n, n.MustCreateUser("boss", edge.RoleAdmin))
	resp, body := admin.Post("/admin/clock", url.Values{"tablet_time": {fmt.Sprint(time.Now().Add(time.Hour).UnixMilli())}})
	wantStatus(t, resp, body, http.StatusConflict)
	if !strings.Contains(body, "date -u -s") {
		t.Fatal("no hint how to set the clock")
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'node.clock_set' AND detail LIKE '%applied=false%'`); got != 1 {
		t.Fatal("the attempt was not audited")
	}
}

// TestAdmin_ClockCheckAtLogin proves sign-in compares the tablet's clock
// with the node's and shows the admin when they disagree.
func TestAdmin_ClockCheckAtLogin(t *testing.T) {
	n := MustStartNode(t)
	n.MustCreateUser("boss", edge.RoleAdmin)
	c := n.Client()
	c.Get("/login")
	resp, body := c.Post("/login", url.Values{"username": {"boss"}, "password": {Password("boss")}, "next": {"/"},
		"tablet_time": {fmt.Sprint(time.Now().Add(-3 * time.Hour).UnixMilli())}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if location(resp) != "/admin?done=clock_differs" {
		t.Fatalf("Location=%q", location(resp))
	}
	resp, body = c.Get(location(resp))
	if !strings.Contains(body, "differ by more than 5 minutes") {
		t.Fatal("no clock message")
	}
	// A second tablet signs in, agreeing: the banner says several tablets
	// disagree with the node.
	if _, err := n.Store.RecordClockReport(context.Background(), "192.0.2.9", "", time.Now().Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	resp, body = n.Client().TryLogin("boss", Password("boss"))
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = c.Get("/")
	if !strings.Contains(body, `id="clock-banner"`) || !strings.Contains(body, "2 tablets say") || !strings.Contains(body, `action="/admin/clock"`) {
		t.Fatalf("no clock banner:\n%.1500s", body)
	}
}

func TestAdmin_DevicesAndFacility(t *testing.T) {
	n := MustStartNode(t)
	tech, admin := n.Client(), n.Client()
	tech.LoginAs(n, n.MustCreateUser("tara", edge.RoleTechnician))
	admin.LoginAs(n, n.MustCreateUser("boss", edge.RoleAdmin))
	dev := &edge.Device{Name: "BP 1", Kind: "bp-monitor", Transport: "serial"}
	if err := n.Store.CreateDevice(system(), dev); err != nil {
		t.Fatal(err)
	}
	if err := n.Store.RecordDeviceActivity(context.Background(), dev.ID, edge.DeviceActivity{Frames: 1234, Readings: 1200,
		Errors: 3, LastSeen: time.Now(), Status: "listening on /dev/ttyUSB0", LastError: "checksum wrong; check the cable"}); err != nil {
		t.Fatal(err)
	}
	resp, body := tech.Get("/admin/devices")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"BP 1", "1,234 frames", "1,200 readings", "3 errors", "listening on /dev/ttyUSB0", "check the cable"} {
		if !strings.Contains(body, want) {
			t.Errorf("devices page lacks %q", want)
		}
	}
	resp, body = admin.Post("/admin/facility", url.Values{"address": {"PHC Rampur"}, "idle_lock_minutes": {"0"}, "session_hours": {"12"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, `value="PHC Rampur"`) || !strings.Contains(body, "Between 1 and 60 minutes") {
		t.Fatal("facility form not re-rendered with its error")
	}
	resp, body = admin.Post("/admin/facility", url.Values{"address": {"PHC Rampur"}, "slip_footer": {"Free medicines"},
		"idle_lock_minutes": {"2"}, "session_hours": {"8"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	// The new idle lock applies at once.
	n.Clock.Advance(2*time.Minute + time.Second)
	if resp, _ := tech.Get("/admin/devices"); !strings.HasPrefix(location(resp), "/lock") {
		t.Fatalf("idle lock of 2 minutes not applied: %d %q", resp.StatusCode, location(resp))
	}
}
