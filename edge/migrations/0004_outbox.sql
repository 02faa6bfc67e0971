-- 0004: the transactional outbox. Each row is one document to deliver
-- upstream; edge writes it in the transaction of the clinical write it
-- describes, syncq reads it and records the outcome. Rows are delivered in id
-- order per patient.

CREATE TABLE outbox (
	id               INTEGER PRIMARY KEY,
	key              TEXT NOT NULL UNIQUE,      -- idempotency key, stable across retries
	document         TEXT NOT NULL,             -- e.g. OPConsultRecord
	lane             INTEGER NOT NULL CHECK (lane BETWEEN 0 AND 2), -- 0 alert, 1 clinical, 2 bulk
	patient_id       TEXT REFERENCES patients (id),
	entity           TEXT NOT NULL,             -- encounter, observation, ...
	entity_id        TEXT NOT NULL,
	entity_version   INTEGER NOT NULL DEFAULT 1,
	state            TEXT NOT NULL DEFAULT 'pending'
	                 CHECK (state IN ('pending', 'exported', 'delivered', 'quarantined', 'discarded')),
	attempts         INTEGER NOT NULL DEFAULT 0,
	next_attempt_at  INTEGER NOT NULL,
	last_error       TEXT NOT NULL DEFAULT '',
	upstream         TEXT NOT NULL DEFAULT '',
	remote_id        TEXT NOT NULL DEFAULT '',
	remote_version   TEXT NOT NULL DEFAULT '',
	delivered_at     INTEGER,
	created_at       INTEGER NOT NULL,
	node_seq         INTEGER NOT NULL,
	clock_suspect    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX outbox_due ON outbox (state, lane, next_attempt_at, id);
CREATE INDEX outbox_patient ON outbox (patient_id, state, id);

-- Daily size samples of the database, for "days of capacity left".
CREATE TABLE storage_samples (
	at     INTEGER PRIMARY KEY,
	bytes  INTEGER NOT NULL
) STRICT;
