package webui

import (
	"net/http"

	"github.com/healthpost/healthpost/edge"
)

type homePage struct {
	Inbox   int // readings waiting in the device inbox
	Clinic  bool
	Admin   bool
	Devices bool
}

// showHome is the start page: what the user's role does most.
func (s *Server) showHome(w http.ResponseWriter, r *http.Request) {
	ss := sessionFrom(r.Context())
	role := ss.User.Role
	p := homePage{
		Clinic:  contains(rolesClinical, role),
		Admin:   role == edge.RoleAdmin,
		Devices: contains(rolesDevices, role),
	}
	if contains(rolesInbox, role) {
		rs, err := s.Store.UnassignedReadings(r.Context(), 100)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		p.Inbox = len(rs)
	}
	v := s.view(r, "page.home")
	v.Data = p
	s.render(w, r, http.StatusOK, "home", v)
}
