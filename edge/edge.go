// Package edge is the healthpost node itself: the domain (patients, encounters,
// observations, device readings, users), the SQLite store with its migrations,
// the transactional outbox, the hash-chained audit log, the clock check, the
// storage watermarks and the configuration.
//
// Everything else in healthpost (webui, devices, syncq) is built on top of it and
// edge imports none of them. edge owns every write: a clinical write, its outbox
// row and its audit entry commit in one transaction, and nothing leaves a
// transaction (no channel send, no acknowledgement) before it has committed.
//
// edge must never log protected health information: log lines carry record IDs,
// never names, ABHA numbers, phone numbers or measured values.
package edge

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNotFound means the record asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNoActor means a write or a read of patient data was attempted without
	// saying who did it; every such access is audited, so there must be someone.
	ErrNoActor = errors.New("no actor in context: every access to patient data must say who makes it")
	// ErrSchemaTooNew means the database was written by a newer healthpost.
	ErrSchemaTooNew = errors.New("database schema is newer than this healthpost binary")
	// ErrForeignDatabase means the file is SQLite but not a healthpost database.
	ErrForeignDatabase = errors.New("not a healthpost database")
	// ErrNotDatabase means the file is not an SQLite database at all, or is damaged.
	ErrNotDatabase = errors.New("not an SQLite database, or the file is damaged")
	// ErrDiskCritical means the data partition is so full that new clinical
	// records are refused rather than risk a half-written database.
	ErrDiskCritical = errors.New("data disk is critically full")
	// ErrClockBehindBuild means the wall clock reads earlier than the time this
	// binary was built, so it cannot be right.
	ErrClockBehindBuild = errors.New("clock is earlier than the build time of this program")
	// ErrClockWentBack means the wall clock reads earlier than a time the node
	// has already seen.
	ErrClockWentBack = errors.New("clock went backwards since it was last seen")
	// ErrNodeRunning means another healthpost process holds the data directory.
	ErrNodeRunning = errors.New("a healthpost node is running on this data directory")
	// ErrStopping means the store is closing and takes no more writes.
	ErrStopping = errors.New("store is closing")
	// ErrDuplicateReading means a device message was already stored; the
	// device can be acknowledged again because its reading is durable.
	ErrDuplicateReading = errors.New("reading already stored")
	// ErrStale means a record was changed by someone else since the form
	// that edits it was read; the edit was not saved.
	ErrStale = errors.New("record changed since it was read")
)

// Log keys, so that every subsystem names the same things the same way.
const (
	LogKeySubsystem = "subsystem"
	LogKeyDevice    = "device"
	LogKeyOutboxID  = "outbox_id"
	LogKeyPatientID = "patient_id"
	LogKeyPath      = "path"
)

// Error is a problem a person can act on: Code is stable for programs and
// translation catalogues (error.<code>), Message is the plain English text, Hint
// says what to do. Its Error string includes the hint.
type Error struct {
	Code    string
	Message string
	Hint    string
	Err     error // the cause, for errors.Is; may be nil
}

func (e *Error) Error() string {
	if e.Hint == "" {
		return e.Message
	}
	return e.Message + "; " + e.Hint
}

func (e *Error) Unwrap() error { return e.Err }

// FieldErrors are the validation problems of one form or record, keyed by field
// name, each a translation key such as "error.abha_invalid".
type FieldErrors map[string]string

func (fe FieldErrors) Error() string {
	keys := make([]string, 0, len(fe))
	for k, v := range fe {
		keys = append(keys, k+": "+v)
	}
	slices.Sort(keys)
	return "invalid " + strings.Join(keys, ", ")
}

// NewID returns a new globally unique, time-ordered record ID (UUIDv7).
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// ActorKind says what kind of party touches a record.
type ActorKind string

const (
	ActorUser   ActorKind = "user"
	ActorDevice ActorKind = "device"
	ActorSystem ActorKind = "system"
)

// Actor is who performs an access: a logged-in user, a device, or the node
// itself (a CLI command run by the operator is ActorSystem with ID "cli").
type Actor struct {
	Kind ActorKind
	ID   string
}

func (a Actor) String() string { return string(a.Kind) + ":" + a.ID }

type actorKey struct{}

// WithActor returns a context that says who performs the accesses made with it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor stored in ctx.
func ActorFrom(ctx context.Context) (Actor, error) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	if !ok || a.Kind == "" || a.ID == "" {
		return Actor{}, ErrNoActor
	}
	return a, nil
}
