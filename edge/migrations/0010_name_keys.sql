-- 0010: the phonetic name keys changed (Singh/सिंह, Maurya/मौर्य, Mohd/Mohammad
-- share keys now), so every patient is queued to be indexed again; the node
-- does it in the background after it starts listening (Store.IndexPatients).
INSERT OR IGNORE INTO patient_search_pending (patient_id) SELECT id FROM patients;
