package edge

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DBFileName is the name of the database file inside the data directory.
const DBFileName = "healthpost.db"

// applicationID marks the SQLite file as ours ("HPST"), so a foreign SQLite
// file handed to --data-dir is refused instead of migrated.
const applicationID = 0x48505354

// Defaults for the store's settings.
const (
	DefaultBusyTimeout     = 5 * time.Second
	DefaultReaders         = 4
	DefaultBatchMax        = 512
	DefaultBatchDelay      = 20 * time.Millisecond
	DefaultClockTolerance  = 2 * time.Minute
	DefaultLowFreeBytes    = 1 << 30   // 1 GiB
	DefaultCriticalFree    = 128 << 20 // 128 MiB
	DefaultRawKeepDays     = 30
	DefaultDiskCheckPeriod = time.Minute
)

// Store is the node's one SQLite database. There is exactly one write
// connection (invariant 4): every write goes through Store.write, which holds
// writeMu for the whole transaction so the node's in-memory state (sequence,
// audit chain head, clock high-water mark) moves in step with what commits.
// Readers use a separate pool and never block the writer (WAL).
type Store struct {
	// Path is the database file. Set before Open.
	Path string

	// Logger receives operational messages; never PHI.
	Logger *slog.Logger

	// Now is the wall clock; tests replace it.
	Now func() time.Time
	// BuildTime is when this binary was built; a clock earlier than it is wrong.
	BuildTime time.Time
	// ClockTolerance is how far the clock may step back (NTP slew, a tablet
	// setting it) before records are flagged.
	ClockTolerance time.Duration

	// Readers is the size of the read pool.
	Readers int

	// Group commit of device readings: a batch is committed when it holds
	// BatchMax readings or BatchDelay after its first reading arrived. The
	// delay bounds the fsync rate (at most 1/BatchDelay commits a second,
	// 50 with the default, whatever the reading rate), at the cost of that
	// much latency before a lone reading is acknowledged.
	BatchMax   int
	BatchDelay time.Duration

	// Storage watermarks for the data partition, in free bytes.
	LowFreeBytes      int64
	CriticalFreeBytes int64
	// RawKeepDays is how long raw device frames are kept in normal times.
	RawKeepDays int
	// DiskCheckPeriod is how often free space is measured; 0 turns the
	// background check off (tests call CheckStorage directly).
	DiskCheckPeriod time.Duration

	// MaxSchemaVersion limits migrations; 0 means all. Only tests that build
	// databases of earlier versions set it.
	MaxSchemaVersion int

	writer  *sql.DB
	readers *sql.DB

	writeMu   sync.Mutex // held for the whole of each write transaction
	highWater time.Time  // latest trusted wall time seen
	clock     ClockStatus

	storageMu  sync.Mutex
	storage    StorageStatus
	storageLow atomic.Bool // storage.Level != StorageOK, for the hot path
	// capacityLoggedAt is when days-left was last logged (daily); guarded by storageMu.
	capacityLoggedAt time.Time

	notifyMu sync.Mutex
	outboxCh chan struct{}

	ingest     *ingestQueue
	readAudits *readAudits

	// commits counts write transactions committed since Open: each is one
	// fsync of the WAL with synchronous=FULL.
	commits atomic.Int64

	// prepared caches statements on the write connection, by SQL text;
	// guarded by writeMu.
	prepared  map[string]*sql.Stmt
	toPrepare []string
	// rawStmts caches, by SQL text, the batch INSERTs prepared on the
	// driver connection rawConn under the write connection; guarded by
	// writeMu. See Tx.execRaw.
	rawConn  any
	rawStmts map[string]driver.Stmt

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewStore returns a store for the database file at path with default settings.
func NewStore(path string) *Store {
	return &Store{
		Path:              path,
		Logger:            slog.New(slog.DiscardHandler),
		Now:               time.Now,
		BuildTime:         BuildTime(),
		ClockTolerance:    DefaultClockTolerance,
		Readers:           DefaultReaders,
		BatchMax:          DefaultBatchMax,
		BatchDelay:        DefaultBatchDelay,
		LowFreeBytes:      DefaultLowFreeBytes,
		CriticalFreeBytes: DefaultCriticalFree,
		RawKeepDays:       DefaultRawKeepDays,
		DiskCheckPeriod:   DefaultDiskCheckPeriod,
		outboxCh:          make(chan struct{}),
	}
}

// Open checks the file is ours, opens the writer and the reader pool, applies
// pending migrations and starts the group-commit writers (device readings,
// audit entries of reads) and the disk monitor.
func (s *Store) Open(ctx context.Context) (err error) {
	s.Logger = s.Logger.With(LogKeySubsystem, "store")
	if err := checkDataDir(filepath.Dir(s.Path)); err != nil {
		return err
	}
	if err := checkDatabaseFile(s.Path); err != nil {
		return err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.closeDBs(false)
		}
	}()

	if s.writer, err = sql.Open("sqlite", dsn(s.Path, true)); err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	// Identify the file before anything can write to it: a foreign or newer
	// database must be left exactly as it was.
	version, err := s.checkIdentity(ctx)
	if err != nil {
		return explainOpenError(s.Path, err)
	}
	if err := s.checkPragmas(ctx); err != nil {
		return explainOpenError(s.Path, err)
	}
	if err := s.migrate(ctx, version); err != nil {
		return explainOpenError(s.Path, err)
	}
	if s.MaxSchemaVersion > 0 && s.MaxSchemaVersion < SchemaVersion() {
		return nil // a database of an earlier version, built for tests; no writer runs on it
	}
	if s.readers, err = sql.Open("sqlite", dsn(s.Path, false)); err != nil {
		return fmt.Errorf("open read pool: %w", err)
	}
	s.readers.SetMaxOpenConns(s.Readers)
	s.readers.SetMaxIdleConns(s.Readers)
	if err := s.loadState(ctx); err != nil {
		return explainOpenError(s.Path, err)
	}
	if err := s.reconcileCounters(ctx); err != nil {
		return explainOpenError(s.Path, err)
	}
	if _, err := s.CheckStorage(ctx); err != nil {
		return explainOpenError(s.Path, err)
	}

	s.ingest = newIngestQueue(s)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.ingest.run(s.ctx) }()
	s.readAudits = newReadAudits(s)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.readAudits.run() }()
	if s.DiskCheckPeriod > 0 {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.monitorStorage(s.ctx) }()
	}
	return nil
}

// Close stops taking readings and audited reads, commits every reading and
// audit entry already handed in, and closes the database. It is safe to
// call more than once.
func (s *Store) Close(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	if s.ingest != nil {
		s.ingest.stop()
	}
	if s.readAudits != nil {
		s.readAudits.stop()
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close store: %w", ctx.Err())
	}
	s.logStats()
	return s.closeDBs(true)
}

// closeDBs closes the connections; checkpoint folds the WAL into the file
// first, which a refused (foreign, newer) database must never get.
func (s *Store) closeDBs(checkpoint bool) error {
	var errs []error
	if s.readers != nil {
		errs = append(errs, s.readers.Close())
	}
	if s.writer != nil {
		s.closeRawStmts()
		// A last checkpoint keeps the -wal file small for backups and copies.
		if checkpoint {
			_, _ = s.writer.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		}
		errs = append(errs, s.writer.Close())
	}
	return errors.Join(errs...)
}

// dsn builds the modernc DSN. The writer begins IMMEDIATE transactions so a
// write never fails half-way on a lock upgrade; synchronous=FULL makes every
// commit durable (invariant 1), group commit keeps that affordable.
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+fmt.Sprint(DefaultBusyTimeout.Milliseconds())+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if writer {
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + path + "?" + q.Encode()
}

// checkPragmas turns on WAL (it persists in the file) and checks that it and
// the foreign keys took.
func (s *Store) checkPragmas(ctx context.Context) error {
	var mode string
	if err := s.writer.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return fmt.Errorf("read journal_mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal_mode is %q, want wal (is the data directory on a network filesystem?)", mode)
	}
	var fk int
	if err := s.writer.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
		return fmt.Errorf("read foreign_keys: %w", err)
	}
	if fk != 1 {
		return errors.New("foreign_keys did not turn on")
	}
	return nil
}

// sqliteHeader is the first 16 bytes of every SQLite 3 database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// checkDatabaseFile refuses a file that exists but is not an SQLite database,
// before SQLite gets a chance to treat it as one.
func checkDatabaseFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &Error{Code: "db_unreadable", Message: fmt.Sprintf("cannot read database %s: %v", path, err),
			Hint: "check the file's owner and permissions", Err: err}
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil // an empty file is a new database
	}
	if err != nil || !bytes.Equal(head, sqliteHeader) {
		return &Error{Code: "db_not_sqlite", Message: fmt.Sprintf("%s is not a healthpost database (it is not SQLite, or its start is damaged)", path),
			Hint: "move it aside and restore the latest backup with 'healthpost restore FILE'", Err: ErrNotDatabase}
	}
	return nil
}

// checkDataDir makes sure the data directory exists and is writable, with a
// message that names it.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return &Error{Code: "data_dir_unwritable", Message: fmt.Sprintf("cannot create data directory %s: %v", dir, err),
			Hint: "create it, or point --data-dir (HEALTHPOST_DATA_DIR) at a writable directory", Err: err}
	}
	probe, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return &Error{Code: "data_dir_unwritable", Message: fmt.Sprintf("data directory %s is not writable: %v", dir, err),
			Hint: "give the healthpost user write access (chown healthpost " + dir + "), or point --data-dir at a writable directory", Err: err}
	}
	name := probe.Name()
	probe.Close()
	return os.Remove(name)
}

// explainOpenError turns SQLite's codes into messages that name the file and
// the fix.
func explainOpenError(path string, err error) error {
	var ee *Error
	if errors.As(err, &ee) {
		return err
	}
	switch sqliteCode(err) {
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return &Error{Code: "db_corrupt", Message: fmt.Sprintf("database %s is damaged: %v", path, err),
			Hint: "stop here; run 'healthpost doctor', then restore the latest backup with 'healthpost restore FILE'", Err: ErrNotDatabase}
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM:
		return &Error{Code: "db_unwritable", Message: fmt.Sprintf("cannot write database %s: %v", path, err),
			Hint: "check that the data partition is mounted read-write and owned by the healthpost user", Err: err}
	case sqlite3.SQLITE_FULL:
		return &Error{Code: "disk_full", Message: fmt.Sprintf("the disk holding %s is full", path),
			Hint: "free space on the data partition, then start again; nothing already saved was lost", Err: ErrDiskCritical}
	case sqlite3.SQLITE_BUSY:
		return &Error{Code: "db_busy", Message: fmt.Sprintf("database %s is locked by another program", path),
			Hint: "stop the other healthpost process (systemctl stop healthpost) and try again", Err: err}
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// sqliteCode returns the primary SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// Tx is one write transaction. It carries the wall time and clock verdict
// fixed at begin, and hands out node sequence numbers.
type Tx struct {
	*sql.Tx
	conn      *sql.Conn // the write connection the transaction runs on
	ctx       context.Context
	now       time.Time
	suspect   bool
	seq       int64
	auditHead auditHead
	actor     Actor
	touched   bool // an outbox row was added
	store     *Store
	bound     map[string]*sql.Stmt

	vals       []any               // reused by rowsInsert
	args       []driver.NamedValue // reused by rowsInsert
	rawFrameID int64               // the last raw frame ID handed out, 0 before the first
}

// Now is the transaction's wall time, in Unix milliseconds.
func (tx *Tx) Now() int64 { return tx.now.UnixMilli() }

// Suspect reports, as 0 or 1 for the clock_suspect columns, whether the wall
// clock was untrusted when the transaction began.
func (tx *Tx) Suspect() int {
	if tx.suspect {
		return 1
	}
	return 0
}

// NextSeq returns the next node sequence number.
func (tx *Tx) NextSeq() int64 {
	tx.seq++
	return tx.seq
}

// stmt returns the statement for query bound to this transaction. Parsing
// SQL costs more than running these small inserts, so statements are kept
// prepared on the write connection. The connection is busy with this
// transaction, so a statement met for the first time is prepared inside it
// and queued; the next write prepares it on the connection for good before
// it begins.
func (tx *Tx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := tx.bound[query]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if ps, ok := tx.store.prepared[query]; ok {
		st = tx.StmtContext(tx.ctx, ps)
	} else {
		var err error
		if st, err = tx.PrepareContext(tx.ctx, query); err != nil {
			return nil, err
		}
		tx.store.toPrepare = append(tx.store.toPrepare, query)
	}
	if tx.bound == nil {
		tx.bound = map[string]*sql.Stmt{}
	}
	tx.bound[query] = st
	return st, nil
}

// prepareQueued prepares the statements transactions met for the first time.
// Callers hold writeMu, with no transaction open.
func (s *Store) prepareQueued(ctx context.Context) {
	for _, q := range s.toPrepare {
		if _, ok := s.prepared[q]; ok {
			continue
		}
		ps, err := s.writer.PrepareContext(ctx, q)
		if err != nil {
			continue // the transaction that met it reported the error
		}
		if s.prepared == nil {
			s.prepared = map[string]*sql.Stmt{}
		}
		s.prepared[q] = ps
	}
	s.toPrepare = s.toPrepare[:0]
}

// exec runs a cached statement in the transaction.
func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	st, err := tx.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(tx.ctx, args...)
}

// execRaw runs query in the transaction on the driver connection itself,
// prepared once: a batch INSERT binds hundreds of values, and database/sql
// would copy and check every one of them, allocating, before the driver
// binds them again. args must hold driver values (driverValue). The
// statements stay prepared on the connection until the store closes, or
// until database/sql replaces the connection.
func (tx *Tx) execRaw(query string, args []driver.NamedValue) (driver.Result, error) {
	s := tx.store
	var res driver.Result
	err := tx.conn.Raw(func(dc any) error {
		if dc != s.rawConn {
			// A new connection: the old one's statements went with it.
			s.rawConn, s.rawStmts = dc, map[string]driver.Stmt{}
		}
		st, ok := s.rawStmts[query]
		if !ok {
			prep, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return errors.New("the SQLite driver cannot prepare statements with a context")
			}
			var err error
			if st, err = prep.PrepareContext(tx.ctx, query); err != nil {
				return err
			}
			s.rawStmts[query] = st
		}
		ex, ok := st.(driver.StmtExecContext)
		if !ok {
			return errors.New("the SQLite driver cannot execute statements with a context")
		}
		var err error
		res, err = ex.ExecContext(tx.ctx, args)
		return err
	})
	return res, err
}

// driverValue converts the Go values the store binds to the driver's.
func driverValue(v any) driver.Value {
	switch x := v.(type) {
	case int:
		return int64(x)
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// closeRawStmts finalizes the statements execRaw prepared, before the write
// connection closes. Callers hold writeMu or have stopped every writer.
func (s *Store) closeRawStmts() {
	if len(s.rawStmts) == 0 {
		return
	}
	conn, err := s.writer.Conn(context.Background())
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Raw(func(dc any) error {
		if dc == s.rawConn {
			for _, st := range s.rawStmts {
				st.Close()
			}
		}
		return nil
	})
	s.rawConn, s.rawStmts = nil, nil
}

// queryRow runs a cached query in the transaction.
func (tx *Tx) queryRow(query string, args ...any) *sql.Row {
	st, err := tx.stmt(query)
	if err != nil {
		return tx.QueryRowContext(tx.ctx, query, args...) // reports the same error on Scan
	}
	return st.QueryRowContext(tx.ctx, args...)
}

// write runs fn in one IMMEDIATE transaction on the write connection and
// commits. The node sequence, the audit chain head and the clock high-water
// mark are read inside the transaction, so a CLI command writing while
// `serve` runs (both are processes on one file) continues the same chain.
// Listeners are woken only after the commit.
func (s *Store) write(ctx context.Context, fn func(tx *Tx) error) error {
	if s.writer == nil {
		return ErrStopping
	}
	actor, _ := ActorFrom(ctx)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	if len(s.toPrepare) > 0 {
		s.prepareQueued(ctx)
	}
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return s.classifyWriteError(fmt.Errorf("begin write: %w", err))
	}
	defer conn.Close()
	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return s.classifyWriteError(fmt.Errorf("begin write: %w", err))
	}
	defer sqlTx.Rollback()
	tx := &Tx{Tx: sqlTx, conn: conn, ctx: ctx, actor: actor, store: s}
	var seq, highWater, auditSeq sql.NullInt64
	var auditHash []byte
	if err := tx.queryRow(`SELECT
		(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'node_seq'),
		(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'clock_high_water'),
		(SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1),
		(SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1)`).Scan(&seq, &highWater, &auditSeq, &auditHash); err != nil {
		return s.classifyWriteError(fmt.Errorf("read node state: %w", err))
	}
	if auditHash == nil {
		auditHash = genesis
	}
	if hw := time.UnixMilli(highWater.Int64); highWater.Valid && hw.After(s.highWater) {
		s.highWater = hw
	}
	now := s.Now()
	suspect, reason := s.judgeClock(now)
	tx.now, tx.suspect, tx.seq = now, suspect, seq.Int64
	tx.auditHead = auditHead{seq: auditSeq.Int64, hash: auditHash}
	if err := fn(tx); err != nil {
		return s.classifyWriteError(err)
	}
	if tx.seq != seq.Int64 {
		if _, err := tx.exec(`INSERT INTO meta (key, value) VALUES ('node_seq', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fmt.Sprint(tx.seq)); err != nil {
			return s.classifyWriteError(fmt.Errorf("save node sequence: %w", err))
		}
	}
	if tx.auditHead.seq != auditSeq.Int64 {
		if _, err := tx.exec(`INSERT INTO meta (key, value) VALUES ('audit_head', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fmt.Sprintf("%d:%x", tx.auditHead.seq, tx.auditHead.hash)); err != nil {
			return s.classifyWriteError(fmt.Errorf("save audit head: %w", err))
		}
	}
	if !suspect && now.UnixMilli() > highWater.Int64 {
		if _, err := tx.exec(`INSERT INTO meta (key, value) VALUES ('clock_high_water', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fmt.Sprint(now.UnixMilli())); err != nil {
			return s.classifyWriteError(fmt.Errorf("save clock high-water mark: %w", err))
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return s.classifyWriteError(fmt.Errorf("commit: %w", err))
	}
	s.commits.Add(1)
	s.noteClock(now, suspect, reason)
	if tx.touched {
		s.notifyOutbox()
	}
	return nil
}

// classifyWriteError turns a full disk and a damaged file into errors that
// say what to do.
func (s *Store) classifyWriteError(err error) error {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_FULL:
		return &Error{Code: "disk_full", Message: "the data disk is full, so this record was not saved",
			Hint: "free space on the data partition (delete old backups or copies), then save again", Err: ErrDiskCritical}
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return explainOpenError(s.Path, err)
	}
	return err
}

// OutboxChanged returns a channel that is closed the next time an outbox row
// commits. Take a new channel after each wake-up.
func (s *Store) OutboxChanged() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.outboxCh
}

func (s *Store) notifyOutbox() {
	s.notifyMu.Lock()
	close(s.outboxCh)
	s.outboxCh = make(chan struct{})
	s.notifyMu.Unlock()
}

// loadState judges the clock once against the saved high-water mark, so a
// wrong clock is logged at start.
func (s *Store) loadState(ctx context.Context) error {
	var hw sql.NullInt64
	if err := s.writer.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'clock_high_water'`).Scan(&hw); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read clock high-water mark: %w", err)
	}
	s.highWater = time.UnixMilli(hw.Int64)
	if !hw.Valid {
		s.highWater = time.Time{}
	}
	now := s.Now()
	suspect, reason := s.judgeClock(now)
	s.noteClock(now, suspect, reason)
	return nil
}

// Ping checks that the database answers a query and that the write
// connection can begin a transaction; systemd's watchdog is fed only after it.
func (s *Store) Ping(ctx context.Context) error {
	if s.readers == nil {
		return ErrStopping
	}
	var one int
	if err := s.readers.QueryRowContext(ctx, `SELECT 1 FROM meta LIMIT 1`).Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("ping database: %w", err)
	}
	return s.write(ctx, func(tx *Tx) error { return nil })
}
