package webui

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/healthpost/healthpost/edge"
)

// formText reads a form field, trimmed. Text that is not valid UTF-8 is
// recorded as a field error and kept, made valid, so the form can show it.
func formText(r *http.Request, name string, errs edge.FieldErrors) string {
	v := strings.TrimSpace(r.PostFormValue(name))
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		errs[name] = "error.text_invalid"
		v = strings.ToValidUTF8(strings.ReplaceAll(v, "\x00", ""), "\uFFFD")
	}
	return v
}

// fieldErrors returns err as field errors, or nil when it is another kind.
func fieldErrors(err error) edge.FieldErrors {
	var fe edge.FieldErrors
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}

// merge adds the errors of b to a, keeping a's for the same field.
func merge(a, b edge.FieldErrors) edge.FieldErrors {
	if a == nil {
		a = edge.FieldErrors{}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			a[k] = v
		}
	}
	return a
}
