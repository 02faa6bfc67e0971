-- 0003: medical devices, the raw frames they send, and the readings decoded
-- from them. A reading bound to a patient also becomes an observation; one
-- without a patient waits in the unassigned inbox (state 'unassigned').

CREATE TABLE devices (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	kind          TEXT NOT NULL,
	transport     TEXT NOT NULL,
	settings      TEXT NOT NULL DEFAULT '{}',   -- JSON, transport and codec settings
	enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	last_seen_at  INTEGER,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

-- Raw frames as received, kept for inspection; the first thing dropped when
-- the disk runs low.
CREATE TABLE device_messages (
	id           INTEGER PRIMARY KEY,
	device_id    TEXT NOT NULL REFERENCES devices (id),
	received_at  INTEGER NOT NULL,
	codec        TEXT NOT NULL,
	raw          BLOB NOT NULL,
	error        TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX device_messages_received ON device_messages (received_at);

CREATE TABLE readings (
	id              TEXT PRIMARY KEY,
	device_id       TEXT NOT NULL REFERENCES devices (id),
	message_id      TEXT,              -- the device's own message ID, for replays
	patient_id      TEXT REFERENCES patients (id),
	observation_id  TEXT REFERENCES observations (id) DEFERRABLE INITIALLY DEFERRED,
	loinc           TEXT NOT NULL,
	value           REAL,
	value_text      TEXT NOT NULL DEFAULT '',
	unit            TEXT NOT NULL DEFAULT '',
	effective_at    INTEGER NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('assigned', 'unassigned', 'rejected', 'discarded')),
	reject_reason   TEXT NOT NULL DEFAULT '',
	raw_message_id  INTEGER,          -- device_messages.id; the frame may be pruned
	received_at     INTEGER NOT NULL,
	node_seq        INTEGER NOT NULL,
	clock_suspect   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX readings_message ON readings (device_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX readings_unassigned ON readings (received_at) WHERE state = 'unassigned';
-- Foreign-key lookups from the parent side need plain indexes on the child
-- columns; without this one every observation insert scans readings.
CREATE INDEX readings_observation ON readings (observation_id);
CREATE INDEX readings_patient ON readings (patient_id);
