-- 0001: node metadata, facility, users, web sessions and the audit log.
-- Times are INTEGER Unix milliseconds (UTC wall clock). Every record written
-- by the node also keeps node_seq (a monotonic sequence that survives clock
-- jumps) and clock_suspect (1 when the wall clock was not trustworthy).

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

CREATE TABLE facility (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	name        TEXT NOT NULL DEFAULT '',
	hfr_id      TEXT NOT NULL DEFAULT '',
	district    TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL DEFAULT '',
	updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
	id             TEXT PRIMARY KEY,
	username       TEXT NOT NULL UNIQUE COLLATE NOCASE,
	display_name   TEXT NOT NULL DEFAULT '',
	role           TEXT NOT NULL CHECK (role IN ('health-worker', 'doctor', 'admin', 'technician')),
	hpr_id         TEXT,
	password_hash  TEXT NOT NULL,
	pin_hash       TEXT,
	language       TEXT NOT NULL DEFAULT 'en',
	disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	node_seq       INTEGER NOT NULL,
	clock_suspect  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE web_sessions (
	token_hash   BLOB PRIMARY KEY,
	user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf_token   TEXT NOT NULL,
	client       TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- Append-only: each entry's hash covers the previous entry's hash and its own
-- fields, so a changed or deleted entry breaks the chain (edge.VerifyAudit).
CREATE TABLE audit_log (
	seq            INTEGER PRIMARY KEY,
	at             INTEGER NOT NULL,
	node_seq       INTEGER NOT NULL,
	clock_suspect  INTEGER NOT NULL DEFAULT 0,
	actor          TEXT NOT NULL,
	action         TEXT NOT NULL,
	entity         TEXT NOT NULL,
	entity_id      TEXT NOT NULL,
	patient_id     TEXT,
	detail         TEXT NOT NULL DEFAULT '',
	prev_hash      BLOB NOT NULL,
	hash           BLOB NOT NULL
) STRICT;
CREATE INDEX audit_log_patient ON audit_log (patient_id, seq) WHERE patient_id IS NOT NULL;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
