package webui

import (
	"net/http"

	"github.com/healthpost/healthpost/edge"
)

// The user's own settings: language and PIN.

func (s *Server) showSettings(w http.ResponseWriter, r *http.Request) {
	v := s.view(r, "page.settings")
	v.Data = sessionFrom(r.Context()).HasPIN
	s.render(w, r, http.StatusOK, "settings", v)
}

func (s *Server) saveLanguage(w http.ResponseWriter, r *http.Request) {
	ss := sessionFrom(r.Context())
	lang := r.PostFormValue("language")
	if _, ok := s.tpl.cats.byLan[lang]; !ok {
		http.Error(w, "unknown language", http.StatusBadRequest)
		return
	}
	if err := s.Store.SetUserLanguage(r.Context(), ss.User.ID, lang); err != nil {
		s.fail(w, r, err)
		return
	}
	redirect(w, r, localPath(r.PostFormValue("next")))
}

func (s *Server) savePIN(w http.ResponseWriter, r *http.Request) {
	ss := sessionFrom(r.Context())
	pin, again := r.PostFormValue("pin"), r.PostFormValue("pin_again")
	errs := edge.FieldErrors{}
	if pin != again {
		errs["pin_again"] = "error.pin_mismatch"
	} else if err := s.Store.SetPIN(r.Context(), ss.User.ID, pin); err != nil {
		if errs = fieldErrors(err); errs == nil {
			s.fail(w, r, err)
			return
		}
	}
	if len(errs) > 0 {
		v := s.view(r, "page.settings")
		v.Data, v.Errors = ss.HasPIN, errs
		s.render(w, r, http.StatusUnprocessableEntity, "settings", v)
		return
	}
	redirect(w, r, "/settings?done=pin_saved")
}
