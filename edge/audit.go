package edge

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"time"
)

// The audit log records every read and write of patient data and every
// administrative action. Each entry's hash is SHA-256 over the previous
// entry's hash and the entry's own fields, so changing or removing an entry
// breaks the chain at that entry. The head (sequence and hash of the last
// entry) is also kept in meta, so removing the newest entries is caught too.
// Triggers refuse UPDATE and DELETE on the table; the chain catches whoever
// goes around them with a hex editor.

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Seq          int64     `json:"seq"`
	At           time.Time `json:"at"`
	NodeSeq      int64     `json:"node_seq"`
	ClockSuspect bool      `json:"clock_suspect"`
	Actor        string    `json:"actor"`
	Action       string    `json:"action"`
	Entity       string    `json:"entity"`
	// EntityID is the record's ID; a reading.store entry names, separated
	// by commas, every observation one device (or person) wrote for the
	// patient in one transaction.
	EntityID  string `json:"entity_id"`
	PatientID string `json:"patient_id,omitempty"`
	// Detail is free text for operators; never PHI.
	Detail string `json:"detail,omitempty"`
}

// Audit actions. Reads are audited as well as writes (invariant 7).
const (
	ActionPatientCreate   = "patient.create"
	ActionPatientRead     = "patient.read"
	ActionPatientUpdate   = "patient.update"
	ActionEncounterCreate = "encounter.create"
	ActionEncounterFinal  = "encounter.finalize"
	ActionEncounterRead   = "encounter.read"
	ActionReadingStore    = "reading.store"
	ActionObservationRead = "observation.read"
	ActionUserCreate      = "user.create"
	ActionUserPassword    = "user.password"
	ActionUserDisable     = "user.disable"
	ActionOutboxDeliver   = "outbox.deliver"
	ActionOutboxQuarant   = "outbox.quarantine"
	ActionBackup          = "node.backup"
	ActionRestore         = "node.restore"
)

type auditHead struct {
	seq  int64
	hash []byte
}

// genesis is the previous-hash of the first entry.
var genesis = make([]byte, sha256.Size)

func (e *AuditEntry) hash(prev []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	var num [8]byte
	putInt := func(v int64) { binary.BigEndian.PutUint64(num[:], uint64(v)); h.Write(num[:]) }
	putStr := func(s string) { putInt(int64(len(s))); h.Write([]byte(s)) }
	putInt(e.Seq)
	putInt(e.At.UnixMilli())
	putInt(e.NodeSeq)
	if e.ClockSuspect {
		putInt(1)
	} else {
		putInt(0)
	}
	putStr(e.Actor)
	putStr(e.Action)
	putStr(e.Entity)
	putStr(e.EntityID)
	putStr(e.PatientID)
	putStr(e.Detail)
	return h.Sum(nil)
}

// audit appends an entry to the log inside tx. The actor comes from the
// transaction's context; there is no audited access without one.
func (tx *Tx) audit(action, entity, entityID, patientID, detail string) error {
	return tx.auditAs(tx.actor, action, entity, entityID, patientID, detail)
}

// auditAs appends an entry made by actor, who need not be the transaction's:
// one transaction of the read-audit writer holds the entries of many users.
// Every entry, whoever made it, takes the next place in the chain.
func (tx *Tx) auditAs(actor Actor, action, entity, entityID, patientID, detail string) error {
	if actor.Kind == "" {
		return ErrNoActor
	}
	e := AuditEntry{
		Seq: tx.auditHead.seq + 1, At: tx.now, NodeSeq: tx.NextSeq(), ClockSuspect: tx.suspect,
		Actor: actor.String(), Action: action, Entity: entity, EntityID: entityID, PatientID: patientID, Detail: detail,
	}
	sum := e.hash(tx.auditHead.hash)
	if _, err := tx.exec(`INSERT INTO audit_log
		(seq, at, node_seq, clock_suspect, actor, action, entity, entity_id, patient_id, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.At.UnixMilli(), e.NodeSeq, tx.Suspect(), e.Actor, e.Action, e.Entity, e.EntityID,
		nullString(e.PatientID), e.Detail, tx.auditHead.hash, sum); err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	tx.auditHead = auditHead{seq: e.Seq, hash: sum}
	return nil
}

// AuditProblem is one place where the audit chain is broken.
type AuditProblem struct {
	Seq     int64  `json:"seq"`
	Problem string `json:"problem"`
}

// AuditReport is the outcome of VerifyAudit.
type AuditReport struct {
	Entries  int64          `json:"entries"`
	Problems []AuditProblem `json:"problems"`
}

// OK reports whether the chain is intact.
func (r AuditReport) OK() bool { return len(r.Problems) == 0 }

// VerifyAudit walks the whole audit log and names every entry that was
// changed, removed, or inserted out of order.
func (s *Store) VerifyAudit(ctx context.Context) (AuditReport, error) {
	var rep AuditReport
	rows, err := s.readers.QueryContext(ctx, `SELECT seq, at, node_seq, clock_suspect, actor, action, entity,
		entity_id, coalesce(patient_id, ''), detail, prev_hash, hash FROM audit_log ORDER BY seq`)
	if err != nil {
		return rep, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	prev := genesis
	var want int64 = 1
	for rows.Next() {
		var e AuditEntry
		var at int64
		var suspect int
		var prevHash, hash []byte
		if err := rows.Scan(&e.Seq, &at, &e.NodeSeq, &suspect, &e.Actor, &e.Action, &e.Entity, &e.EntityID,
			&e.PatientID, &e.Detail, &prevHash, &hash); err != nil {
			return rep, fmt.Errorf("read audit entry: %w", err)
		}
		e.At, e.ClockSuspect = time.UnixMilli(at), suspect == 1
		rep.Entries++
		if e.Seq != want {
			rep.Problems = append(rep.Problems, AuditProblem{Seq: want,
				Problem: fmt.Sprintf("entries %d to %d are missing (deleted)", want, e.Seq-1)})
		}
		if string(prevHash) != string(prev) {
			rep.Problems = append(rep.Problems, AuditProblem{Seq: e.Seq,
				Problem: fmt.Sprintf("entry %d does not follow the entry before it (chain broken)", e.Seq)})
		}
		if string(e.hash(prevHash)) != string(hash) {
			rep.Problems = append(rep.Problems, AuditProblem{Seq: e.Seq,
				Problem: fmt.Sprintf("entry %d was altered after it was written", e.Seq)})
		}
		prev, want = hash, e.Seq+1
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("read audit log: %w", err)
	}
	var head sql.NullString
	_ = s.readers.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'audit_head'`).Scan(&head)
	if head.Valid {
		var headSeq int64
		var headHash string
		fmt.Sscanf(head.String, "%d:%s", &headSeq, &headHash)
		switch {
		case headSeq > want-1:
			rep.Problems = append(rep.Problems, AuditProblem{Seq: want,
				Problem: fmt.Sprintf("entries %d to %d, the newest, are missing (deleted)", want, headSeq)})
		case headSeq == want-1 && headHash != fmt.Sprintf("%x", prev):
			rep.Problems = append(rep.Problems, AuditProblem{Seq: headSeq,
				Problem: fmt.Sprintf("entry %d does not match the recorded head of the log", headSeq)})
		}
	} else if rep.Entries > 0 {
		rep.Problems = append(rep.Problems, AuditProblem{Seq: 0, Problem: "the recorded head of the log is missing"})
	}
	return rep, nil
}

// AuditTrail returns the audit entries about one patient, oldest first.
func (s *Store) AuditTrail(ctx context.Context, patientID string) ([]AuditEntry, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT seq, at, node_seq, clock_suspect, actor, action, entity,
		entity_id, coalesce(patient_id, ''), detail FROM audit_log WHERE patient_id = ? ORDER BY seq`, patientID)
	if err != nil {
		return nil, fmt.Errorf("read audit trail: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		var suspect int
		if err := rows.Scan(&e.Seq, &at, &e.NodeSeq, &suspect, &e.Actor, &e.Action, &e.Entity, &e.EntityID,
			&e.PatientID, &e.Detail); err != nil {
			return nil, err
		}
		e.At, e.ClockSuspect = time.UnixMilli(at), suspect == 1
		out = append(out, e)
	}
	return out, rows.Err()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
