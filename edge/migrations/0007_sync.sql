-- 0007: the history of delivery runs (for `healthpost sync status`, the
-- admin page and the daily byte budget of metered links), and an index to
-- list what each upstream acknowledged by time (delivery receipts).
-- Written by syncq through edge; nothing here is clinical data.

CREATE TABLE sync_runs (
	id           INTEGER PRIMARY KEY,
	trigger      TEXT NOT NULL,               -- auto (the running node), cli, web
	upstream     TEXT NOT NULL,               -- base URL delivered to
	started_at   INTEGER NOT NULL,
	ended_at     INTEGER,                     -- NULL while running, or when the process died
	attempted    INTEGER NOT NULL DEFAULT 0,  -- documents sent, counting retries
	delivered    INTEGER NOT NULL DEFAULT 0,
	failed       INTEGER NOT NULL DEFAULT 0,  -- attempts that will be retried
	quarantined  INTEGER NOT NULL DEFAULT 0,
	bytes_out    INTEGER NOT NULL DEFAULT 0,  -- on the wire, compressed, headers included
	bytes_in     INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT ''     -- never PHI: status, server diagnostics, network errors
) STRICT;
CREATE INDEX sync_runs_started ON sync_runs (started_at);

CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE state = 'delivered';
