-- 0006: what the web UI needs: the idle lock of web sessions, phonetic search
-- keys of patients' names, known allergies, the clocks tablets report, and
-- facility settings edited from the admin pages.

-- A session is locked when its tablet sat idle or someone pressed "lock";
-- the user's PIN unlocks it (users.pin_hash, from 0001).
ALTER TABLE web_sessions ADD COLUMN locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1));

-- Search keys, one row per word of a patient's name: a phonetic key that is
-- the same for the usual spellings of a name in Latin or Devanagari
-- (edge.NameKey). Prefix ranges on token are the name search.
CREATE TABLE patient_search_tokens (
	token       TEXT NOT NULL,
	patient_id  TEXT NOT NULL REFERENCES patients (id),
	PRIMARY KEY (token, patient_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX patient_search_tokens_patient ON patient_search_tokens (patient_id);

-- Per patient: the keys as indexed, for ranking and the duplicate check.
CREATE TABLE patient_search (
	patient_id   TEXT PRIMARY KEY REFERENCES patients (id),
	name_keys    TEXT NOT NULL,   -- phonetic keys of the name's words, space separated
	name_latin   TEXT NOT NULL,   -- the name in lower-case Latin letters
	village_key  TEXT NOT NULL,
	birth_year   INTEGER NOT NULL  -- from birth_date or stated age; 0 unknown
) STRICT;
CREATE INDEX patient_search_birth ON patient_search (birth_year);

-- Patients whose keys are missing or stale. Triggers fill it whoever writes
-- the patient (web UI, CLI import, a restore), and the store indexes them in
-- Go before the next search.
CREATE TABLE patient_search_pending (
	patient_id TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
CREATE TRIGGER patients_search_insert AFTER INSERT ON patients
BEGIN INSERT OR IGNORE INTO patient_search_pending (patient_id) VALUES (new.id); END;
CREATE TRIGGER patients_search_update AFTER UPDATE OF name, village, birth_date, stated_age ON patients
BEGIN INSERT OR IGNORE INTO patient_search_pending (patient_id) VALUES (new.id); END;
INSERT INTO patient_search_pending (patient_id) SELECT id FROM patients;

-- Known allergies, shown on the patient's summary and slips.
CREATE TABLE patient_allergies (
	id             TEXT PRIMARY KEY,
	patient_id     TEXT NOT NULL REFERENCES patients (id),
	substance      TEXT NOT NULL CHECK (length(substance) > 0),
	reaction       TEXT NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	created_by     TEXT NOT NULL,
	node_seq       INTEGER NOT NULL,
	clock_suspect  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX patient_allergies_patient ON patient_allergies (patient_id);

-- What a tablet's clock said at sign-in next to the node's, so a node clock
-- that several tablets disagree with can be shown to the admin.
CREATE TABLE clock_reports (
	id           INTEGER PRIMARY KEY,
	client       TEXT NOT NULL,
	user_id      TEXT,
	node_time    INTEGER NOT NULL,
	tablet_time  INTEGER NOT NULL
) STRICT;
CREATE INDEX clock_reports_node_time ON clock_reports (node_time);

-- Facility settings edited in the admin pages (the identity itself comes
-- from the config file, table facility).
CREATE TABLE settings (
	key         TEXT PRIMARY KEY,
	value       TEXT NOT NULL,
	updated_at  INTEGER NOT NULL,
	updated_by  TEXT NOT NULL
) STRICT;
