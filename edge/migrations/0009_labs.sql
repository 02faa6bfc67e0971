-- 0009: lab orders and their results, referrals, and the vaccines given as
-- rows of their own (until now an immunization visit kept its vaccines as
-- diagnoses of system urn:healthpost:uip-vaccine; they move here).

-- One test ordered in an encounter. Its result, when there is one, is on
-- the same row: entered in the visit, or later from the patient's page for
-- a pending order (then with its own audit entry and outbox row).
CREATE TABLE lab_orders (
	id              TEXT PRIMARY KEY,
	encounter_id    TEXT NOT NULL REFERENCES encounters (id) ON DELETE CASCADE,
	patient_id      TEXT NOT NULL REFERENCES patients (id),
	test            TEXT NOT NULL,                 -- edge/catalogue lab test code
	loinc           TEXT NOT NULL,
	status          TEXT NOT NULL CHECK (status IN ('ordered', 'resulted', 'cancelled')),
	ordered_at      INTEGER NOT NULL,
	value           REAL,                          -- numeric tests, in unit
	value_text      TEXT NOT NULL DEFAULT '',      -- as typed
	unit            TEXT NOT NULL DEFAULT '',      -- UCUM
	answer          TEXT NOT NULL DEFAULT '',      -- coded tests: the catalogue's answer code
	interpretation  TEXT NOT NULL DEFAULT '' CHECK (interpretation IN ('', 'N', 'A', 'L', 'H', 'LL', 'HH')),
	resulted_at     INTEGER,
	resulted_by     TEXT,                          -- user id
	result_version  INTEGER NOT NULL DEFAULT 0,    -- DiagnosticReportRecord version sent
	cancelled_at    INTEGER,
	cancelled_by    TEXT,
	created_at      INTEGER NOT NULL,
	node_seq        INTEGER NOT NULL,
	clock_suspect   INTEGER NOT NULL DEFAULT 0,
	CHECK ((status = 'resulted') = (resulted_at IS NOT NULL))
) STRICT;
CREATE INDEX lab_orders_encounter ON lab_orders (encounter_id);
CREATE INDEX lab_orders_pending ON lab_orders (patient_id, ordered_at) WHERE status = 'ordered';

-- At most one referral per encounter.
CREATE TABLE referrals (
	id            TEXT PRIMARY KEY,
	encounter_id  TEXT NOT NULL UNIQUE REFERENCES encounters (id) ON DELETE CASCADE,
	facility      TEXT NOT NULL CHECK (length(facility) > 0),
	reason        TEXT NOT NULL DEFAULT '',
	urgency       TEXT NOT NULL CHECK (urgency IN ('routine', 'urgent', 'emergency')),
	created_at    INTEGER NOT NULL,
	node_seq      INTEGER NOT NULL
) STRICT;

-- A vaccine (or Vitamin A) given: edge/catalogue vaccine code, the dose
-- number where the UIP schedule numbers it (0: birth dose), booster.
CREATE TABLE immunizations (
	id            TEXT PRIMARY KEY,
	encounter_id  TEXT NOT NULL REFERENCES encounters (id) ON DELETE CASCADE,
	patient_id    TEXT NOT NULL REFERENCES patients (id),
	vaccine       TEXT NOT NULL,
	dose          INTEGER CHECK (dose IS NULL OR dose BETWEEN 0 AND 20),
	booster       INTEGER NOT NULL DEFAULT 0 CHECK (booster IN (0, 1)),
	given_on      TEXT NOT NULL,                 -- YYYY-MM-DD, India time
	created_at    INTEGER NOT NULL,
	node_seq      INTEGER NOT NULL
) STRICT;
CREATE INDEX immunizations_encounter ON immunizations (encounter_id);
CREATE INDEX immunizations_patient ON immunizations (patient_id, given_on);

-- The vaccine diagnoses of earlier versions, by the web UI's old codes. Td
-- at 10 and 16 years and the Td booster in pregnancy are all Td boosters.
-- A code not in this list (none was ever written) keeps its code as the
-- vaccine, with no dose.
CREATE TEMP TABLE uip_codes (code TEXT PRIMARY KEY, vaccine TEXT NOT NULL, dose INTEGER, booster INTEGER NOT NULL);
INSERT INTO uip_codes (code, vaccine, dose, booster) VALUES
	('BCG', 'BCG', NULL, 0), ('OPV-0', 'OPV', 0, 0), ('HEPB-0', 'HEPB', 0, 0),
	('OPV-1', 'OPV', 1, 0), ('PENTA-1', 'PENTA', 1, 0), ('ROTA-1', 'ROTA', 1, 0), ('FIPV-1', 'FIPV', 1, 0), ('PCV-1', 'PCV', 1, 0),
	('OPV-2', 'OPV', 2, 0), ('PENTA-2', 'PENTA', 2, 0), ('ROTA-2', 'ROTA', 2, 0),
	('OPV-3', 'OPV', 3, 0), ('PENTA-3', 'PENTA', 3, 0), ('ROTA-3', 'ROTA', 3, 0), ('FIPV-2', 'FIPV', 2, 0), ('PCV-2', 'PCV', 2, 0),
	('MR-1', 'MR', 1, 0), ('JE-1', 'JE', 1, 0), ('PCV-B', 'PCV', NULL, 1), ('VITA-1', 'VITA', 1, 0),
	('MR-2', 'MR', 2, 0), ('JE-2', 'JE', 2, 0), ('DPT-B1', 'DPT', 1, 1), ('OPV-B', 'OPV', NULL, 1),
	('DPT-B2', 'DPT', 2, 1), ('TD-10', 'TD', NULL, 1), ('TD-16', 'TD', NULL, 1),
	('TD-1', 'TD', 1, 0), ('TD-2', 'TD', 2, 0), ('TD-B', 'TD', NULL, 1);

-- The row keeps the diagnosis's id, time and sequence; the date given is
-- the visit's day in India time (UTC+5:30).
INSERT INTO immunizations (id, encounter_id, patient_id, vaccine, dose, booster, given_on, created_at, node_seq)
SELECT d.id, d.encounter_id, e.patient_id, coalesce(u.vaccine, d.code), u.dose, coalesce(u.booster, 0),
	date(e.started_at / 1000, 'unixepoch', '+330 minutes'), d.created_at, d.node_seq
FROM diagnoses d JOIN encounters e ON e.id = d.encounter_id LEFT JOIN uip_codes u ON u.code = d.code
WHERE d.system = 'urn:healthpost:uip-vaccine';
DELETE FROM diagnoses WHERE system = 'urn:healthpost:uip-vaccine';
DROP TABLE uip_codes;
