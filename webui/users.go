package webui

import (
	"net/http"
	"strings"

	"github.com/healthpost/healthpost/edge"
)

type usersPage struct {
	Users []edge.User
	Roles []string
	Form  edge.User
	// Password is a new password, shown once to the admin to hand over.
	Password    string
	PasswordFor string
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	s.renderUsers(w, r, http.StatusOK, usersPage{Form: edge.User{Role: edge.RoleHealthWorker, Language: "hi"}}, nil)
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, status int, p usersPage, errs edge.FieldErrors) {
	us, err := s.Store.Users(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	p.Users, p.Roles = us, edge.Roles
	v := s.view(r, "page.users")
	v.Data, v.Errors = p, errs
	s.render(w, r, status, "users", v)
}

// createUser adds an account with a generated password, shown once.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	errs := edge.FieldErrors{}
	u := edge.User{Username: strings.ToLower(formText(r, "username", errs)), DisplayName: formText(r, "display_name", errs),
		Role: r.PostFormValue("role"), Language: r.PostFormValue("language"), HPRID: formText(r, "hpr_id", errs)}
	if len(u.DisplayName) > 100 {
		errs["display_name"] = "error.text_invalid"
	}
	pw := edge.GeneratePassword()
	if len(errs) == 0 {
		if err := s.Store.CreateUser(r.Context(), &u, pw); err != nil {
			if errs = fieldErrors(err); errs == nil {
				s.fail(w, r, err)
				return
			}
		}
	}
	if len(errs) > 0 {
		s.renderUsers(w, r, http.StatusUnprocessableEntity, usersPage{Form: u}, errs)
		return
	}
	s.renderUsers(w, r, http.StatusOK, usersPage{Form: edge.User{Role: u.Role, Language: u.Language}, Password: pw, PasswordFor: u.Username}, nil)
}

func (s *Server) userFromPath(w http.ResponseWriter, r *http.Request) (edge.User, bool) {
	u, err := s.Store.UserByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return u, false
	}
	return u, true
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userFromPath(w, r)
	if !ok {
		return
	}
	if u.ID == sessionFrom(r.Context()).User.ID {
		s.renderUsers(w, r, http.StatusConflict, usersPage{Form: edge.User{Role: edge.RoleHealthWorker, Language: "hi"}},
			edge.FieldErrors{"user": "error.disable_self"})
		return
	}
	if err := s.Store.DisableUser(r.Context(), u.Username); err != nil {
		s.fail(w, r, err)
		return
	}
	redirect(w, r, "/admin/users?done=user_disabled")
}

// resetPassword gives a user a new generated password, shown once; their
// sessions end.
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userFromPath(w, r)
	if !ok {
		return
	}
	pw := edge.GeneratePassword()
	if err := s.Store.SetPassword(r.Context(), u.Username, pw); err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderUsers(w, r, http.StatusOK, usersPage{Form: edge.User{Role: edge.RoleHealthWorker, Language: "hi"}, Password: pw, PasswordFor: u.Username}, nil)
}
