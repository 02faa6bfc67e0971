package syncq

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors.
var (
	// ErrNoUpstream means no upstream URL is configured, so delivery is off.
	ErrNoUpstream = errors.New("no upstream configured (upstream.url is empty)")
	// ErrBatchRefused means the upstream refused a batch Bundle as such; the
	// engine falls back to one document per request.
	ErrBatchRefused = errors.New("upstream does not accept batch bundles")
)

// Kind says what a failed delivery means for what happens next.
type Kind int

// Kinds of delivery failure. Only KindRefused and KindMapping are permanent
// (the document is quarantined); every other kind is retried later, and
// says something about the upstream rather than the document.
const (
	// KindLink: no usable answer reached the node (refused or reset
	// connection, DNS, TLS, timeout, an answer cut off). The link is probed
	// before the next attempt.
	KindLink Kind = iota + 1
	// KindServer: the upstream answered, but with a 5xx, a 4xx that is not
	// about the document, or a 2xx that does not prove the document was
	// stored (garbage, an error body, another resource).
	KindServer
	// KindThrottled: 429, or 503 with Retry-After; the engine pauses for at
	// least Retry-After.
	KindThrottled
	// KindAuth: 401 or 403: the node's token or certificate is refused.
	KindAuth
	// KindRefused: a 4xx with an OperationOutcome about the document: it is
	// quarantined with the server's diagnostics.
	KindRefused
	// KindMapping: the record cannot be made into a document.
	KindMapping
)

func (k Kind) String() string {
	switch k {
	case KindLink:
		return "link"
	case KindServer:
		return "server"
	case KindThrottled:
		return "throttled"
	case KindAuth:
		return "auth"
	case KindRefused:
		return "refused"
	case KindMapping:
		return "mapping"
	}
	return "unknown"
}

// DeliveryError is why a document was not delivered.
type DeliveryError struct {
	Kind   Kind
	Status int // HTTP status, 0 when there was none
	// Diagnostics is what the server said (its OperationOutcome's issues) or
	// what was wrong with its answer. It goes to the outbox row and the run
	// history, never to the log.
	Diagnostics string
	// Code is the first OperationOutcome issue code, safe to log.
	Code string
	// RetryAfter is the server's Retry-After, 0 when it sent none.
	RetryAfter time.Duration
	Err        error
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	} else {
		b.WriteString(e.Kind.String())
	}
	if e.Diagnostics != "" {
		b.WriteString(": " + e.Diagnostics)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help: the document is quarantined.
func (e *DeliveryError) Permanent() bool { return e.Kind == KindRefused || e.Kind == KindMapping }

// operationOutcome is the part of a FHIR OperationOutcome syncq reads.
type operationOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics"`
		Details     struct {
			Text string `json:"text"`
		} `json:"details"`
		Expression []string `json:"expression"`
	} `json:"issue"`
}

func parseOutcome(b []byte) (operationOutcome, bool) {
	var oo operationOutcome
	if json.Unmarshal(b, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return oo, false
	}
	return oo, true
}

// text joins the issues as "severity code: diagnostics (expression)".
func (oo operationOutcome) text() string {
	var parts []string
	for _, is := range oo.Issue {
		s := is.Severity + " " + is.Code
		msg := is.Diagnostics
		if msg == "" {
			msg = is.Details.Text
		}
		if msg != "" {
			s += ": " + msg
		}
		if len(is.Expression) > 0 {
			s += " (" + strings.Join(is.Expression, ", ") + ")"
		}
		parts = append(parts, s)
	}
	t := strings.Join(parts, "; ")
	if len(t) > 2000 {
		t = t[:2000] + "…"
	}
	return t
}

func (oo operationOutcome) code() string {
	if len(oo.Issue) == 0 {
		return ""
	}
	return oo.Issue[0].Code
}

// classify turns a non-2xx answer into a DeliveryError.
func classify(status int, h http.Header, body []byte, now time.Time) *DeliveryError {
	e := &DeliveryError{Status: status, RetryAfter: parseRetryAfter(h.Get("Retry-After"), now)}
	oo, isOO := parseOutcome(body)
	if isOO {
		e.Diagnostics, e.Code = oo.text(), oo.code()
	} else if len(body) > 0 {
		e.Diagnostics = "the answer is not an OperationOutcome: " + printable(body, 200)
	}
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable && e.RetryAfter > 0:
		e.Kind = KindThrottled
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Kind = KindAuth
	case status >= 500, status == http.StatusRequestTimeout:
		e.Kind = KindServer
	case isOO && (status == http.StatusBadRequest || status == http.StatusConflict || status == http.StatusGone ||
		status == http.StatusPreconditionFailed || status == http.StatusRequestEntityTooLarge ||
		status == http.StatusUnprocessableEntity):
		e.Kind = KindRefused
	default:
		// A 4xx without an OperationOutcome came from something that is not
		// a FHIR server (a captive portal, a proxy), and a 404, 405 or 415
		// is about the URL or the server, not the document: retry, loudly.
		e.Kind = KindServer
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			e.Diagnostics = strings.TrimPrefix(e.Diagnostics+"; check upstream.url: it must be the FHIR base URL", "; ")
		}
	}
	return e
}

// printable is a short, single-line excerpt of an answer for diagnostics.
func printable(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return ' '
		}
		return r
	}, string(b))
	return strings.TrimSpace(s)
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
