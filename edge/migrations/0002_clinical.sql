-- 0002: patients and what happens to them: encounters, diagnoses,
-- observations and prescriptions.

CREATE TABLE patients (
	id              TEXT PRIMARY KEY,
	local_id        TEXT NOT NULL UNIQUE,
	abha_number     TEXT UNIQUE CHECK (abha_number IS NULL OR (length(abha_number) = 14 AND abha_number NOT GLOB '*[^0-9]*')),
	abha_address    TEXT UNIQUE COLLATE NOCASE,
	name            TEXT NOT NULL CHECK (length(name) > 0),
	gender          TEXT NOT NULL CHECK (gender IN ('M', 'F', 'O', 'U')),
	birth_date      TEXT,             -- YYYY-MM-DD when known
	stated_age      INTEGER,          -- years, when only an age was given
	stated_age_at   INTEGER,          -- when that age was stated
	phone           TEXT,
	address         TEXT NOT NULL DEFAULT '',
	village         TEXT NOT NULL DEFAULT '',
	consent_link    INTEGER NOT NULL DEFAULT 0 CHECK (consent_link IN (0, 1)),
	consent_at      INTEGER,
	consent_by      TEXT,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	node_seq        INTEGER NOT NULL,
	clock_suspect   INTEGER NOT NULL DEFAULT 0,
	CHECK (birth_date IS NOT NULL OR stated_age IS NOT NULL)
) STRICT;
CREATE INDEX patients_phone ON patients (phone) WHERE phone IS NOT NULL;
CREATE INDEX patients_name ON patients (name COLLATE NOCASE);

CREATE TABLE encounters (
	id               TEXT PRIMARY KEY,
	patient_id       TEXT NOT NULL REFERENCES patients (id),
	type             TEXT NOT NULL CHECK (type IN ('opd', 'anc', 'immunization', 'follow-up')),
	practitioner_id  TEXT REFERENCES users (id),
	started_at       INTEGER NOT NULL,
	ended_at         INTEGER,
	complaint        TEXT NOT NULL DEFAULT '',
	notes            TEXT NOT NULL DEFAULT '',
	status           TEXT NOT NULL CHECK (status IN ('draft', 'final', 'amended', 'cancelled')),
	version          INTEGER NOT NULL DEFAULT 1,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	node_seq         INTEGER NOT NULL,
	clock_suspect    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX encounters_patient ON encounters (patient_id, started_at);

CREATE TABLE diagnoses (
	id            TEXT PRIMARY KEY,
	encounter_id  TEXT NOT NULL REFERENCES encounters (id) ON DELETE CASCADE,
	system        TEXT NOT NULL,          -- e.g. http://hl7.org/fhir/sid/icd-10
	code          TEXT NOT NULL,
	display       TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	node_seq      INTEGER NOT NULL
) STRICT;
CREATE INDEX diagnoses_encounter ON diagnoses (encounter_id);

CREATE TABLE observations (
	id             TEXT PRIMARY KEY,
	patient_id     TEXT NOT NULL REFERENCES patients (id),
	encounter_id   TEXT REFERENCES encounters (id) ON DELETE CASCADE,
	loinc          TEXT NOT NULL,
	value          REAL,
	value_text     TEXT NOT NULL DEFAULT '',   -- as measured or typed
	unit           TEXT NOT NULL DEFAULT '',   -- UCUM
	effective_at   INTEGER NOT NULL,
	source         TEXT NOT NULL CHECK (source IN ('manual', 'device')),
	device_id      TEXT,
	created_at     INTEGER NOT NULL,
	node_seq       INTEGER NOT NULL,
	clock_suspect  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX observations_patient ON observations (patient_id, loinc, effective_at);
CREATE INDEX observations_encounter ON observations (encounter_id) WHERE encounter_id IS NOT NULL;

CREATE TABLE prescriptions (
	id            TEXT PRIMARY KEY,
	encounter_id  TEXT NOT NULL REFERENCES encounters (id) ON DELETE CASCADE,
	drug          TEXT NOT NULL,
	strength      TEXT NOT NULL DEFAULT '',
	dose          TEXT NOT NULL DEFAULT '',
	frequency     TEXT NOT NULL DEFAULT '',
	duration_days INTEGER,
	instructions  TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	node_seq      INTEGER NOT NULL
) STRICT;
CREATE INDEX prescriptions_encounter ON prescriptions (encounter_id);
