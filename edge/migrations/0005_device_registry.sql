-- 0005: the device registry's details (codec, credentials, counters, status),
-- the identifier a device message carried for its patient, and short-lived
-- bindings of a device to a patient ("the next readings from BP monitor 2
-- belong to this patient").

ALTER TABLE devices ADD COLUMN codec TEXT NOT NULL DEFAULT '';
-- SHA-256 of the device's random token (high-entropy, so a fast hash is
-- right; a slow KDF would cost 64 MiB per device on every reconnect).
ALTER TABLE devices ADD COLUMN secret_hash BLOB;
ALTER TABLE devices ADD COLUMN frames INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN readings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN last_error TEXT NOT NULL DEFAULT '';

ALTER TABLE readings ADD COLUMN patient_ref TEXT NOT NULL DEFAULT '';

CREATE TABLE device_bindings (
	device_id   TEXT PRIMARY KEY REFERENCES devices (id),
	patient_id  TEXT NOT NULL REFERENCES patients (id),
	bound_by    TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX device_bindings_patient ON device_bindings (patient_id);
