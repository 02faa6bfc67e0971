package syncq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// Mapper turns one outbox row into the FHIR R4 document Bundle delivered for
// it. syncq/fhir provides the real one; tests use a small one.
//
// Document returns the Bundle's id and its JSON. The Bundle must be of type
// document, carry an identifier (system and value) and the same id as
// returned. The same row must give the same bytes every time (a retry is
// recognised by its content), and every version of one document (an
// amendment) must keep the same Bundle.id and Bundle.identifier with a new
// Bundle.timestamp. The context carries the actor syncq reads as
// (system:syncq), for the audit of the records it reads.
//
// An error wrapping ErrUnmappable, edge.ErrNotFound or edge.FieldErrors
// means the row can never become a document: it is quarantined with the
// error's text, which must therefore hold no PHI. Any other error is taken
// as passing (a busy database) and the row is tried again later.
type Mapper interface {
	Document(ctx context.Context, item edge.OutboxItem) (bundleID string, body []byte, err error)
}

// BatchMapper is a Mapper that builds several documents at once, so that
// the reads of a whole request (and the audit entries of those reads) can
// share one transaction instead of one each. The engine uses Documents when
// the mapper has it, once per request, or, sending one document per
// request, once per worker's share of a pass; the contract of each result
// is Document's.
type BatchMapper interface {
	Mapper
	// Documents returns one result per item, in order.
	Documents(ctx context.Context, items []edge.OutboxItem) []Mapped
}

// Mapped is one document a BatchMapper built, or why not.
type Mapped struct {
	BundleID string
	Body     []byte
	Err      error
}

// MapperFunc adapts a function to Mapper.
type MapperFunc func(ctx context.Context, item edge.OutboxItem) (bundleID string, body []byte, err error)

// Document calls f.
func (f MapperFunc) Document(ctx context.Context, item edge.OutboxItem) (string, []byte, error) {
	return f(ctx, item)
}

// ErrUnmappable means a record cannot be made into a valid document; the
// outbox row is quarantined.
var ErrUnmappable = errors.New("record cannot be made into a FHIR document")

// Identifier is a FHIR Identifier's system and value.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Token is the identifier as a FHIR search token, system|value.
func (id Identifier) Token() string { return id.System + "|" + id.Value }

// Document is one mapped outbox row, ready to send.
type Document struct {
	Item       edge.OutboxItem
	ID         string
	Identifier Identifier
	Timestamp  string
	Body       []byte
}

var fhirIDRe = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// bundleHead is the part of a Bundle syncq looks at.
type bundleHead struct {
	ResourceType string     `json:"resourceType"`
	ID           string     `json:"id"`
	Type         string     `json:"type"`
	Timestamp    string     `json:"timestamp"`
	Identifier   Identifier `json:"identifier"`
	Meta         struct {
		VersionID string `json:"versionId"`
	} `json:"meta"`
}

// NewDocument checks what a mapper produced and reads the identity the
// delivery is checked against. An error wraps ErrUnmappable.
func NewDocument(item edge.OutboxItem, bundleID string, body []byte) (*Document, error) {
	var h bundleHead
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("%w: the mapper's output is not JSON: %v", ErrUnmappable, err)
	}
	switch {
	case h.ResourceType != "Bundle" || h.Type != "document":
		return nil, fmt.Errorf("%w: the mapper's output is not a document Bundle", ErrUnmappable)
	case !fhirIDRe.MatchString(bundleID) || h.ID != bundleID:
		return nil, fmt.Errorf("%w: the Bundle's id %q is not a FHIR id or not the one the mapper named", ErrUnmappable, h.ID)
	case h.Identifier.Value == "" || h.Identifier.System == "":
		return nil, fmt.Errorf("%w: the Bundle has no identifier system and value", ErrUnmappable)
	}
	if h.Timestamp != "" {
		if _, err := parseInstant(h.Timestamp); err != nil {
			return nil, fmt.Errorf("%w: Bundle.timestamp %q is not an instant", ErrUnmappable, h.Timestamp)
		}
	}
	return &Document{Item: item, ID: bundleID, Identifier: h.Identifier, Timestamp: h.Timestamp, Body: body}, nil
}

func parseInstant(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// proves reports whether a resource the upstream returned is the document
// sent, stored: a Bundle with the id (when byID), the identifier and the
// timestamp sent, and a version. It returns the receipt's remote id and
// version, or what does not match.
func (d *Document) proves(body []byte, byID bool) (remoteID, version string, problem string) {
	var h bundleHead
	if err := json.Unmarshal(body, &h); err != nil {
		return "", "", "the answer is not JSON"
	}
	switch {
	case h.ResourceType == "OperationOutcome":
		oo, _ := parseOutcome(body)
		return "", "", "the answer is an OperationOutcome, not the stored Bundle: " + oo.text()
	case h.ResourceType != "Bundle":
		return "", "", fmt.Sprintf("the answer is a %q, not the stored Bundle", h.ResourceType)
	case h.ID == "" || (byID && h.ID != d.ID):
		return "", "", fmt.Sprintf("the answer is Bundle %q, not %q", h.ID, d.ID)
	case h.Identifier != d.Identifier:
		return "", "", "the answer's Bundle.identifier is not the one sent"
	case h.Meta.VersionID == "":
		return "", "", "the answer has no meta.versionId"
	}
	if d.Timestamp != "" {
		got, err1 := parseInstant(h.Timestamp)
		want, _ := parseInstant(d.Timestamp)
		if err1 != nil || !got.Equal(want) {
			return "", "", "the answer's Bundle.timestamp is not the one sent"
		}
	}
	return "Bundle/" + h.ID, h.Meta.VersionID, ""
}
