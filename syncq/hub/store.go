package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/healthpost/healthpost/syncq/exportfile"
)

// Sentinel errors of the store; the server turns each into an
// OperationOutcome with the matching status.
var (
	ErrNotFound = errors.New("not found")
	// ErrIdentifierTaken: another Bundle has this identifier (409).
	ErrIdentifierTaken = errors.New("another Bundle has this identifier")
	// ErrIdentifierChanged: a new version must keep its document's identifier (409).
	ErrIdentifierChanged = errors.New("a new version of a Bundle must keep its identifier")
	// ErrForbidden: the Bundle belongs to another node (403).
	ErrForbidden = errors.New("the Bundle was sent by another node")
	// ErrUnauthorized: no valid credentials (401).
	ErrUnauthorized = errors.New("unknown or revoked token")
	// ErrBadNodeName: node names are 3-64 lowercase letters, digits, dashes.
	ErrBadNodeName = errors.New("node names are 3 to 64 lowercase letters, digits and dashes")
)

// hubApplicationID marks the file as a healthpost hub database ("HPHB").
const hubApplicationID = 0x48504842

// schema is applied in order; user_version counts the steps applied.
var schema = []string{
	`CREATE TABLE nodes (
		name        TEXT PRIMARY KEY,
		token_hash  BLOB UNIQUE,              -- SHA-256 of the bearer token (random, high-entropy)
		created_at  INTEGER NOT NULL,
		revoked_at  INTEGER
	) STRICT;
	CREATE TABLE bundles (
		id                 TEXT PRIMARY KEY,
		identifier_system  TEXT NOT NULL,
		identifier_value   TEXT NOT NULL,
		version            INTEGER NOT NULL,  -- current version
		node               TEXT NOT NULL,     -- who sent the first version; only it may update
		updated_at         INTEGER NOT NULL,
		UNIQUE (identifier_system, identifier_value)
	) STRICT;
	CREATE TABLE bundle_versions (
		bundle_id  TEXT NOT NULL REFERENCES bundles (id),
		version    INTEGER NOT NULL,
		hash       BLOB NOT NULL,              -- SHA-256 of the canonical JSON without meta
		body       BLOB NOT NULL,              -- the JSON as stored, meta included
		stored_at  INTEGER NOT NULL,
		PRIMARY KEY (bundle_id, version)
	) STRICT;
	CREATE INDEX bundle_versions_hash ON bundle_versions (bundle_id, hash);
	CREATE TABLE bundle_patients (
		key        TEXT NOT NULL,              -- a reference, id or identifier of the document's subject
		bundle_id  TEXT NOT NULL REFERENCES bundles (id),
		PRIMARY KEY (key, bundle_id)
	) STRICT, WITHOUT ROWID;
	CREATE TABLE arrivals (
		seq        INTEGER PRIMARY KEY,        -- order in which versions were stored
		bundle_id  TEXT NOT NULL,
		version    INTEGER NOT NULL,
		node       TEXT NOT NULL,
		at         INTEGER NOT NULL
	) STRICT;`,
	// USB export files: the key each node signs its files with.
	`ALTER TABLE nodes ADD COLUMN signing_key BLOB;  -- Ed25519 public key of the node's export files
	CREATE UNIQUE INDEX nodes_signing_key ON nodes (signing_key);`,
}

// Store is the hub's SQLite database: one writer, a pool of readers.
type Store struct {
	// Path is the database file.
	Path string
	// Now is the clock; tests replace it.
	Now func() time.Time

	writer, readers *sql.DB
	writeMu         sync.Mutex
	// prepared statements on the writer, by SQL text; guarded by writeMu.
	prepared  map[string]*sql.Stmt
	toPrepare []string

	notifyMu sync.Mutex
	arrived  chan struct{}

	queue   chan *group
	stop    chan struct{}
	stopped chan struct{}
}

// NewStore returns a store for the file at path.
func NewStore(path string) *Store {
	return &Store{Path: path, Now: time.Now, arrived: make(chan struct{}), prepared: map[string]*sql.Stmt{},
		queue: make(chan *group), stop: make(chan struct{}), stopped: make(chan struct{})}
}

func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if writer {
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open creates or migrates the database.
func (s *Store) Open(ctx context.Context) (err error) {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o750); err != nil {
		return fmt.Errorf("create hub data directory: %w", err)
	}
	if s.writer, err = sql.Open("sqlite", dsn(s.Path, true)); err != nil {
		return fmt.Errorf("open hub database: %w", err)
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.writer.SetMaxOpenConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	var mode string
	if err := s.writer.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return fmt.Errorf("open hub database %s: %w", s.Path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("hub database %s: journal_mode is %q, want wal", s.Path, mode)
	}
	var appID, version, tables int
	if err := s.writer.QueryRowContext(ctx, `SELECT (SELECT application_id FROM pragma_application_id),
		(SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_schema)`).Scan(&appID, &version, &tables); err != nil {
		return fmt.Errorf("read hub database %s: %w", s.Path, err)
	}
	if tables > 0 && appID != hubApplicationID {
		return fmt.Errorf("%s is not a healthpost hub database; give 'healthpost hub --db' a new file", s.Path)
	}
	if version > len(schema) {
		return fmt.Errorf("hub database %s is of a newer healthpost (schema %d, this one knows %d)", s.Path, version, len(schema))
	}
	for v := version; v < len(schema); v++ {
		tx, err := s.writer.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, schema[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate hub database to %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d; PRAGMA application_id = %d`, v+1, hubApplicationID)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	if s.readers, err = sql.Open("sqlite", dsn(s.Path, false)); err != nil {
		return err
	}
	s.readers.SetMaxOpenConns(8)
	go s.commitLoop()
	return nil
}

// Close stops taking writes, finishes the group commit in progress and
// closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	if s.readers != nil {
		select {
		case <-s.stop:
		default:
			close(s.stop)
			<-s.stopped
		}
	}
	var errs []error
	if s.readers != nil {
		errs = append(errs, s.readers.Close())
	}
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	return errors.Join(errs...)
}

// write runs fn in one IMMEDIATE transaction and commits.
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for _, q := range s.toPrepare {
		if _, ok := s.prepared[q]; ok {
			continue
		}
		if st, err := s.writer.PrepareContext(ctx, q); err == nil {
			s.prepared[q] = st
		}
	}
	s.toPrepare = s.toPrepare[:0]
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin hub write: %w", err)
	}
	defer tx.Rollback()
	if err := fn(&wtx{Tx: tx, s: s}); err != nil {
		return err
	}
	return tx.Commit()
}

// wtx is a write transaction that runs statements prepared once on the
// write connection: parsing SQL costs more than running these small
// statements. A statement met for the first time runs unprepared and is
// prepared before the next transaction (writeMu is held, so no other
// transaction holds the one connection then).
type wtx struct {
	*sql.Tx
	s *Store
}

func (t *wtx) stmt(ctx context.Context, q string) *sql.Stmt {
	if st, ok := t.s.prepared[q]; ok {
		return t.Tx.StmtContext(ctx, st)
	}
	t.s.toPrepare = append(t.s.toPrepare, q)
	return nil
}

// ExecContext runs q, prepared when it can be.
func (t *wtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, q, args...)
}

// QueryRowContext runs q, prepared when it can be.
func (t *wtx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, q, args...)
}

// Node is a node allowed to deliver.
type Node struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	HasToken  bool      `json:"has_token"`
	// SigningKey is the fingerprint of the key its USB export files are
	// signed with, empty when none is registered.
	SigningKey string `json:"signing_key,omitempty"`
}

func validNodeName(n string) bool {
	if len(n) < 3 || len(n) > 64 {
		return false
	}
	for i, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0) {
			return false
		}
	}
	return true
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// AddNode registers a node, or gives it a new token (the old one stops
// working), and returns the token. It is shown once; the hub keeps its hash.
func (s *Store) AddNode(ctx context.Context, name string) (string, error) {
	if !validNodeName(name) {
		return "", ErrBadNodeName
	}
	b := make([]byte, 32)
	rand.Read(b)
	token := "hpn_" + base64.RawURLEncoding.EncodeToString(b)
	err := s.write(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO nodes (name, token_hash, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, revoked_at = NULL`,
			name, hashToken(token), s.Now().UnixMilli())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("add node %s: %w", name, err)
	}
	return token, nil
}

// RevokeNode stops a node's token and certificate from being accepted.
func (s *Store) RevokeNode(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE nodes SET revoked_at = ?, token_hash = NULL WHERE name = ? AND revoked_at IS NULL`,
			s.Now().UnixMilli(), name)
		if err != nil {
			return fmt.Errorf("revoke node %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("node %s: %w", name, ErrNotFound)
		}
		return nil
	})
}

// Nodes lists the registered nodes.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT name, created_at, coalesce(revoked_at, 0), token_hash IS NOT NULL, signing_key
		FROM nodes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		var created, revoked int64
		var key []byte
		if err := rows.Scan(&n.Name, &created, &revoked, &n.HasToken, &key); err != nil {
			return nil, err
		}
		if len(key) == ed25519.PublicKeySize {
			n.SigningKey = exportfile.Fingerprint(key)
		}
		n.CreatedAt = time.UnixMilli(created)
		if revoked != 0 {
			n.RevokedAt = time.UnixMilli(revoked)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Authenticate returns the node a bearer token belongs to.
func (s *Store) Authenticate(ctx context.Context, token string) (string, error) {
	if token == "" {
		return "", ErrUnauthorized
	}
	var name string
	err := s.readers.QueryRowContext(ctx, `SELECT name FROM nodes WHERE token_hash = ? AND revoked_at IS NULL`, hashToken(token)).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrUnauthorized
	}
	return name, err
}

// NodeActive reports whether a node (named by a client certificate) is
// registered and not revoked.
func (s *Store) NodeActive(ctx context.Context, name string) (bool, error) {
	var n int
	err := s.readers.QueryRowContext(ctx, `SELECT count(*) FROM nodes WHERE name = ? AND revoked_at IS NULL`, name).Scan(&n)
	return n == 1, err
}

// How a write finds the Bundle it writes.
const (
	WriteByID         = iota // PUT Bundle/{id}
	WriteIfNoneExist         // POST Bundle with If-None-Exist: create unless the identifier exists
	WriteByIdentifier        // PUT Bundle?identifier=: update the one with the identifier, or create
)

// Write is one validated Bundle to store.
type Write struct {
	How int
	// ID is the Bundle id: required for WriteByID; for the conditional
	// writes, the id in the body, used for a new Bundle when free.
	ID string
	// Match is the identifier of a conditional write (from If-None-Exist or
	// the URL); empty means the body's.
	Match    Token
	Resource *Resource
}

// Stored is one version of a Bundle as the hub holds it.
type Stored struct {
	ID          string
	Version     int
	LastUpdated time.Time
	Body        []byte
	// Created is true when this write made a new Bundle (201), Changed when
	// it stored a new version of any Bundle.
	Created, Changed bool
}

// Put stores one Bundle.
func (s *Store) Put(ctx context.Context, node string, w Write) (Stored, error) {
	sts, errs, err := s.PutBatch(ctx, node, []Write{w})
	if err != nil {
		return Stored{}, err
	}
	return sts[0], errs[0]
}

// PutBatch stores several Bundles, each on its own: one refused does not
// stop the others (FHIR batch, not transaction). Writes of concurrent
// callers (nodes delivering at once) are committed together, one fsync for
// all (group commit); each caller is answered after that commit.
func (s *Store) PutBatch(ctx context.Context, node string, ws []Write) ([]Stored, []error, error) {
	g := &group{node: node, writes: ws, done: make(chan struct{})}
	select {
	case s.queue <- g:
	case <-s.stop:
		return nil, nil, ErrClosed
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	select {
	case <-g.done:
	case <-ctx.Done():
		return nil, nil, ctx.Err() // the write may still commit; a retry finds it
	}
	if g.err != nil {
		return nil, nil, g.err
	}
	return g.sts, g.errs, nil
}

// ErrClosed means the store is closing.
var ErrClosed = errors.New("hub store is closing")

// maxGroup caps the writes of one group commit.
const maxGroup = 1000

// group is one caller's writes waiting for a group commit.
type group struct {
	node   string
	writes []Write
	sts    []Stored
	errs   []error
	err    error
	done   chan struct{}
}

// commitLoop takes the writes callers hand in, as many as are waiting, and
// commits them in one transaction.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	for {
		var gs []*group
		select {
		case g := <-s.queue:
			gs = append(gs, g)
		case <-s.stop:
			return
		}
		n := len(gs[0].writes)
	more:
		for n < maxGroup {
			select {
			case g := <-s.queue:
				gs = append(gs, g)
				n += len(g.writes)
			default:
				break more
			}
		}
		changed := false
		ctx := context.Background()
		err := s.write(ctx, func(tx *wtx) error {
			changed = false
			for _, g := range gs {
				g.sts, g.errs = make([]Stored, len(g.writes)), make([]error, len(g.writes))
				for i, w := range g.writes {
					if w.Resource == nil {
						continue // refused before the store
					}
					g.sts[i], g.errs[i] = s.put(ctx, tx, g.node, w)
					if g.errs[i] != nil && !isClientError(g.errs[i]) {
						return g.errs[i]
					}
					changed = changed || g.sts[i].Changed
				}
			}
			return nil
		})
		for _, g := range gs {
			g.err = err
			close(g.done)
		}
		if err == nil && changed {
			s.notify()
		}
	}
}

func isClientError(err error) bool {
	return errors.Is(err, ErrIdentifierTaken) || errors.Is(err, ErrIdentifierChanged) ||
		errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound)
}

// put writes one Bundle in tx; client errors (a conflict, another node's
// Bundle) write nothing.
func (s *Store) put(ctx context.Context, tx *wtx, node string, w Write) (Stored, error) {
	r := w.Resource
	match := w.Match
	if match == (Token{}) {
		match = Token{System: r.Identifier.System, Value: r.Identifier.Value, HasSystem: true}
	}
	found, err := findByIdentifier(ctx, tx, match)
	if err != nil {
		return Stored{}, err
	}
	id := w.ID
	switch w.How {
	case WriteByID:
		if found != "" && found != id {
			return Stored{}, fmt.Errorf("%w: Bundle/%s", ErrIdentifierTaken, found)
		}
	case WriteIfNoneExist:
		if found != "" {
			return s.matched(ctx, tx, node, found, r.Hash)
		}
		id = s.freeID(ctx, tx, id)
	case WriteByIdentifier:
		if found != "" {
			if id != "" && id != found {
				return Stored{}, fmt.Errorf("%w: the identifier is on Bundle/%s, the body says %s", ErrIdentifierTaken, found, id)
			}
			id = found
		} else {
			id = s.freeID(ctx, tx, id)
		}
	}

	var cur int
	var owner, sys, val string
	err = tx.QueryRowContext(ctx, `SELECT version, node, identifier_system, identifier_value FROM bundles WHERE id = ?`, id).
		Scan(&cur, &owner, &sys, &val)
	now := s.Now()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		st := Stored{ID: id, Version: 1, LastUpdated: now, Created: true, Changed: true}
		st.Body = r.withMeta(id, 1, now)
		if _, err := tx.ExecContext(ctx, `INSERT INTO bundles (id, identifier_system, identifier_value, version, node, updated_at)
			VALUES (?, ?, ?, 1, ?, ?)`, id, r.Identifier.System, r.Identifier.Value, node, now.UnixMilli()); err != nil {
			return Stored{}, fmt.Errorf("store Bundle/%s: %w", id, err)
		}
		if err := insertVersion(ctx, tx, id, 1, r.Hash, st.Body, now, node); err != nil {
			return Stored{}, err
		}
		for _, k := range r.PatientKeys {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO bundle_patients (key, bundle_id) VALUES (?, ?)`, k, id); err != nil {
				return Stored{}, fmt.Errorf("index Bundle/%s: %w", id, err)
			}
		}
		return st, nil
	case err != nil:
		return Stored{}, fmt.Errorf("read Bundle/%s: %w", id, err)
	}
	if owner != node {
		return Stored{}, fmt.Errorf("%w: Bundle/%s", ErrForbidden, id)
	}
	if sys != r.Identifier.System || val != r.Identifier.Value {
		return Stored{}, fmt.Errorf("%w: Bundle/%s", ErrIdentifierChanged, id)
	}
	if st, err := sameContent(ctx, tx, id, r.Hash); err == nil {
		return st, nil
	} else if !errors.Is(err, errNoSameHash) {
		return Stored{}, err
	}
	v := cur + 1
	st := Stored{ID: id, Version: v, LastUpdated: now, Changed: true}
	st.Body = r.withMeta(id, v, now)
	if _, err := tx.ExecContext(ctx, `UPDATE bundles SET version = ?, updated_at = ? WHERE id = ?`, v, now.UnixMilli(), id); err != nil {
		return Stored{}, fmt.Errorf("update Bundle/%s: %w", id, err)
	}
	if err := insertVersion(ctx, tx, id, v, r.Hash, st.Body, now, node); err != nil {
		return Stored{}, err
	}
	for _, k := range r.PatientKeys {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO bundle_patients (key, bundle_id) VALUES (?, ?)`, k, id); err != nil {
			return Stored{}, fmt.Errorf("index Bundle/%s: %w", id, err)
		}
	}
	return st, nil
}

var errNoSameHash = errors.New("no version with this content")

// sameContent returns the version of Bundle id whose content hashes to hash:
// a retry, even of an older version, changes nothing.
func sameContent(ctx context.Context, tx *wtx, id string, hash []byte) (Stored, error) {
	var st Stored
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT version, body, stored_at FROM bundle_versions WHERE bundle_id = ? AND hash = ?
		ORDER BY version DESC LIMIT 1`, id, hash).Scan(&st.Version, &st.Body, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return st, errNoSameHash
	}
	if err != nil {
		return st, fmt.Errorf("read Bundle/%s: %w", id, err)
	}
	st.ID, st.LastUpdated = id, time.UnixMilli(at)
	return st, nil
}

// matched answers a conditional create that found the identifier on Bundle
// id: the version with the same content if there is one, else the current
// version; nothing is written.
func (s *Store) matched(ctx context.Context, tx *wtx, node, id string, hash []byte) (Stored, error) {
	var owner string
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT node, version FROM bundles WHERE id = ?`, id).Scan(&owner, &cur); err != nil {
		return Stored{}, fmt.Errorf("read Bundle/%s: %w", id, err)
	}
	if owner != node {
		return Stored{}, fmt.Errorf("%w: Bundle/%s", ErrForbidden, id)
	}
	st, err := sameContent(ctx, tx, id, hash)
	if !errors.Is(err, errNoSameHash) {
		return st, err
	}
	var at int64
	if err := tx.QueryRowContext(ctx, `SELECT body, stored_at FROM bundle_versions WHERE bundle_id = ? AND version = ?`, id, cur).
		Scan(&st.Body, &at); err != nil {
		return Stored{}, fmt.Errorf("read Bundle/%s: %w", id, err)
	}
	st.ID, st.Version, st.LastUpdated = id, cur, time.UnixMilli(at)
	return st, nil
}

// freeID is want when it is a valid id no Bundle has, else a new UUID.
func (s *Store) freeID(ctx context.Context, tx *wtx, want string) string {
	if want != "" {
		var n int
		if tx.QueryRowContext(ctx, `SELECT count(*) FROM bundles WHERE id = ?`, want).Scan(&n) == nil && n == 0 {
			return want
		}
	}
	return uuid.NewString()
}

func insertVersion(ctx context.Context, tx *wtx, id string, v int, hash, body []byte, now time.Time, node string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO bundle_versions (bundle_id, version, hash, body, stored_at) VALUES (?, ?, ?, ?, ?)`,
		id, v, hash, body, now.UnixMilli()); err != nil {
		return fmt.Errorf("store Bundle/%s version %d: %w", id, v, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO arrivals (bundle_id, version, node, at) VALUES (?, ?, ?, ?)`,
		id, v, node, now.UnixMilli()); err != nil {
		return fmt.Errorf("record arrival of Bundle/%s: %w", id, err)
	}
	return nil
}

func findByIdentifier(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, t Token) (string, error) {
	if !t.HasSystem {
		// Any system: the value alone must name one Bundle.
		var id string
		var n int
		err := q.QueryRowContext(ctx, `SELECT min(id), count(*) FROM bundles WHERE identifier_value = ?`, t.Value).Scan(&id, &n)
		if err != nil || n == 0 {
			return "", nil
		}
		return id, nil
	}
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM bundles WHERE identifier_system = ? AND identifier_value = ?`, t.System, t.Value).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// Read returns a Bundle's current version, or version v when v > 0.
func (s *Store) Read(ctx context.Context, id string, v int) (Stored, error) {
	var st Stored
	var at int64
	q := `SELECT bv.version, bv.body, bv.stored_at FROM bundles b JOIN bundle_versions bv
		ON bv.bundle_id = b.id AND bv.version = b.version WHERE b.id = ?`
	args := []any{id}
	if v > 0 {
		q = `SELECT version, body, stored_at FROM bundle_versions WHERE bundle_id = ? AND version = ?`
		args = append(args, v)
	}
	err := s.readers.QueryRowContext(ctx, q, args...).Scan(&st.Version, &st.Body, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return st, ErrNotFound
	}
	if err != nil {
		return st, fmt.Errorf("read Bundle/%s: %w", id, err)
	}
	st.ID, st.LastUpdated = id, time.UnixMilli(at)
	return st, nil
}

// owner is the node that sent Bundle id.
func (s *Store) owner(ctx context.Context, id string) (string, error) {
	var n string
	err := s.readers.QueryRowContext(ctx, `SELECT node FROM bundles WHERE id = ?`, id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return n, err
}

// Search is a Bundle search: every set field must match.
type Search struct {
	Identifier *Token
	// Patient matches a reference (Patient/123), an id, or an identifier
	// (system|value or value) of the document's subject.
	Patient string
	// Node limits the search to the Bundles one node sent; empty is all.
	Node   string
	Count  int
	Offset int
}

// Search returns the current versions of matching Bundles, oldest first,
// and the total number of matches.
func (s *Store) Search(ctx context.Context, q Search) ([]Stored, int, error) {
	if q.Count <= 0 {
		q.Count = DefaultSearchCount
	}
	where := []string{"1 = 1"}
	var args []any
	if t := q.Identifier; t != nil {
		if t.HasSystem {
			where = append(where, "b.identifier_system = ?")
			args = append(args, t.System)
		}
		if t.Value != "" {
			where = append(where, "b.identifier_value = ?")
			args = append(args, t.Value)
		}
	}
	if q.Patient != "" {
		where = append(where, "b.id IN (SELECT bundle_id FROM bundle_patients WHERE key = ?)")
		args = append(args, q.Patient)
	}
	if q.Node != "" {
		where = append(where, "b.node = ?")
		args = append(args, q.Node)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.readers.QueryRowContext(ctx, `SELECT count(*) FROM bundles b WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("search bundles: %w", err)
	}
	rows, err := s.readers.QueryContext(ctx, `SELECT b.id, bv.version, bv.body, bv.stored_at FROM bundles b
		JOIN bundle_versions bv ON bv.bundle_id = b.id AND bv.version = b.version WHERE `+cond+`
		ORDER BY b.rowid LIMIT ? OFFSET ?`, append(args, q.Count, q.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("search bundles: %w", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var st Stored
		var at int64
		if err := rows.Scan(&st.ID, &st.Version, &st.Body, &at); err != nil {
			return nil, 0, err
		}
		st.LastUpdated = time.UnixMilli(at)
		out = append(out, st)
	}
	return out, total, rows.Err()
}

// Arrival is one version stored, in the order the hub stored them.
type Arrival struct {
	Seq              int64
	BundleID         string
	Version          int
	Node             string
	At               time.Time
	IdentifierSystem string
	IdentifierValue  string
}

// Arrivals lists arrivals after seq, in order; limit 0 means all.
func (s *Store) Arrivals(ctx context.Context, after int64, limit int) ([]Arrival, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.readers.QueryContext(ctx, `SELECT a.seq, a.bundle_id, a.version, a.node, a.at, b.identifier_system,
		b.identifier_value FROM arrivals a JOIN bundles b ON b.id = a.bundle_id WHERE a.seq > ? ORDER BY a.seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list arrivals: %w", err)
	}
	defer rows.Close()
	var out []Arrival
	for rows.Next() {
		var a Arrival
		var at int64
		if err := rows.Scan(&a.Seq, &a.BundleID, &a.Version, &a.Node, &at, &a.IdentifierSystem, &a.IdentifierValue); err != nil {
			return nil, err
		}
		a.At = time.UnixMilli(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ArrivalCount is the number of versions stored.
func (s *Store) ArrivalCount(ctx context.Context) (int64, error) {
	var n int64
	err := s.readers.QueryRowContext(ctx, `SELECT count(*) FROM arrivals`).Scan(&n)
	return n, err
}

// Arrived returns a channel closed after the next commit that stored a new
// version; take a new one after each wake-up.
func (s *Store) Arrived() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.arrived
}

func (s *Store) notify() {
	s.notifyMu.Lock()
	close(s.arrived)
	s.arrived = make(chan struct{})
	s.notifyMu.Unlock()
}
