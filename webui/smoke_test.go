package webui_test

import (
	"net/http"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

func TestSmoke(t *testing.T) {
	n := MustStartNode(t)
	n.MustCreateUser("asha", edge.RoleHealthWorker)
	n.MustCreateUser("boss", edge.RoleAdmin)
	c := n.Client()
	c.Login("asha")
	for _, p := range []string{"/", "/patients", "/patients?q=sunita", "/patients/new", "/inbox", "/settings"} {
		resp, body := c.Get(p)
		wantStatus(t, resp, body, http.StatusOK)
	}
	a := n.Client()
	a.Login("boss")
	for _, p := range []string{"/admin", "/admin/users", "/admin/devices", "/admin/facility"} {
		resp, body := a.Get(p)
		wantStatus(t, resp, body, http.StatusOK)
	}
}
