package vitals

import (
	"errors"
	"fmt"
)

// Sentinel errors. Lookup and ParseUnit wrap them in *CodeError and
// *UnitError; Normalize wraps those in *Rejection. Test with errors.Is.
var (
	// ErrUnknownCode means the code is well formed but not in the tables.
	ErrUnknownCode = errors.New("unknown code")
	// ErrMalformedCode means a LOINC code is not digits, a hyphen and a
	// valid mod-10 check digit, or an MDC code is neither a number nor a
	// reference id.
	ErrMalformedCode = errors.New("malformed code")
	// ErrBadMapping means a per-device local table maps a code to a LOINC
	// code that is not in the catalogue.
	ErrBadMapping = errors.New("local table maps to a LOINC code not in the catalogue")
	// ErrNoUnit means the unit text is empty or only spaces.
	ErrNoUnit = errors.New("no unit")
	// ErrUnknownUnit means the unit text is not one this package knows.
	ErrUnknownUnit = errors.New("unknown unit")
)

// maxText caps the code, unit and value text this package looks at. Longer
// input is refused before any other work, and error messages quote at most
// this much of it.
const maxText = 64

// CodeError reports a code that Lookup could not map. Err is ErrUnknownCode,
// ErrMalformedCode or ErrBadMapping.
type CodeError struct {
	System string // the code system as given, cut to 64 bytes
	Code   string // the code as given, cut to 64 bytes
	Target string // for ErrBadMapping: the LOINC code the local table named
	Err    error
}

// Error says which code failed and why. Codes are not PHI.
func (e *CodeError) Error() string {
	if e.Target != "" {
		return fmt.Sprintf("vitals: code %q (system %q): %v: %q", e.Code, e.System, e.Err, e.Target)
	}
	return fmt.Sprintf("vitals: code %q (system %q): %v", e.Code, e.System, e.Err)
}

// Unwrap returns the sentinel.
func (e *CodeError) Unwrap() error { return e.Err }

// UnitError reports a unit that ParseUnit could not understand. Err is
// ErrNoUnit or ErrUnknownUnit; Detail says more when there is more to say
// ("not valid UTF-8", "longer than 64 bytes").
type UnitError struct {
	Unit   string // the unit as given, cut to 64 bytes
	Detail string
	Err    error
}

// Error says which unit failed and why. Units are not PHI.
func (e *UnitError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("vitals: unit %q: %v (%s)", e.Unit, e.Err, e.Detail)
	}
	return fmt.Sprintf("vitals: unit %q: %v", e.Unit, e.Err)
}

// Unwrap returns the sentinel.
func (e *UnitError) Unwrap() error { return e.Err }

// clip cuts s to maxText bytes for quoting in an error. It may cut a rune in
// half; %q shows the stray bytes escaped.
func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	return s[:maxText] + "…"
}
