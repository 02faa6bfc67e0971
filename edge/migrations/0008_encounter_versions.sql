-- 0008: amendments. A finalized encounter is corrected by an amendment,
-- never edited in place, and every finalized version is kept here as it
-- was: version 1 when the visit is finalized, version 2, 3, ... with each
-- amendment. The outbox row of a version maps to that version's snapshot,
-- so a row still pending when a later version is written is sent with its
-- own content. Rows are never changed or removed.

CREATE TABLE encounter_versions (
	encounter_id   TEXT NOT NULL REFERENCES encounters (id),
	version        INTEGER NOT NULL CHECK (version >= 1),
	patient_id     TEXT NOT NULL REFERENCES patients (id),
	status         TEXT NOT NULL CHECK (status IN ('final', 'amended')),
	snapshot       TEXT NOT NULL CHECK (json_valid(snapshot)), -- the encounter with its parts (edge.Encounter as JSON)
	reason         TEXT NOT NULL DEFAULT '',  -- why it was amended; '' for version 1
	actor          TEXT NOT NULL DEFAULT '',  -- who made the version, as in the audit log; '' when not known
	author_id      TEXT,                      -- users.id when a signed-in user made it
	at             INTEGER NOT NULL,          -- when the version was made, Unix ms
	node_seq       INTEGER NOT NULL,
	clock_suspect  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (encounter_id, version)
) STRICT;

CREATE TRIGGER encounter_versions_no_update BEFORE UPDATE ON encounter_versions
BEGIN SELECT RAISE(ABORT, 'encounter versions are never changed; amend the encounter instead'); END;
CREATE TRIGGER encounter_versions_no_delete BEFORE DELETE ON encounter_versions
BEGIN SELECT RAISE(ABORT, 'encounter versions are never removed'); END;
