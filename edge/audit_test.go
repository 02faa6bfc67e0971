package edge_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// mustAuditedStore returns a store with a dozen audit entries.
func mustAuditedStore(t *testing.T) (*edge.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	for range 4 {
		p := MustCreatePatient(t, s, "Sunita Devi")
		if _, err := s.Patient(edgetest.Clerk(), p.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateEncounter(edgetest.Clerk(), OPDVisit(p.ID)); err != nil {
			t.Fatal(err)
		}
	}
	return s, path
}

func TestVerifyAudit_DetectsTampering(t *testing.T) {
	cases := []struct {
		name     string
		tamper   string
		wantSeq  int64
		wantWord string
	}{
		{"AlteredEntry", `DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'user:someone-else' WHERE seq = 5`, 5, "altered"},
		{"AlteredHash", `DROP TRIGGER audit_log_no_update; UPDATE audit_log SET hash = zeroblob(32) WHERE seq = 7`, 7, "altered"},
		{"DeletedMiddleEntry", `DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 6`, 6, "missing"},
		{"DeletedNewestEntries", `DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 10`, 11, "newest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Ensure verification names the entry that was changed or removed.
			s, path := mustAuditedStore(t)
			if rep, err := s.VerifyAudit(context.Background()); err != nil || !rep.OK() || rep.Entries != 12 {
				t.Fatalf("before tampering: %+v %v", rep, err)
			}
			if _, err := edgetest.MustRawDB(t, path).Exec(tc.tamper); err != nil {
				t.Fatal(err)
			}
			rep, err := s.VerifyAudit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("tampering went unnoticed")
			}
			if g, w := rep.Problems[0].Seq, tc.wantSeq; g != w {
				t.Fatalf("first problem at entry %d, want %d (%+v)", g, w, rep.Problems)
			}
			if !strings.Contains(rep.Problems[0].Problem, tc.wantWord) {
				t.Fatalf("problem %q does not say %q", rep.Problems[0].Problem, tc.wantWord)
			}
		})
	}
}

func TestAudit_AppendOnlyAndReadsAudited(t *testing.T) {
	s, path := mustAuditedStore(t)
	raw := edgetest.MustRawDB(t, path)
	// Ensure the table itself refuses edits.
	if _, err := raw.Exec(`UPDATE audit_log SET detail = 'x' WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("UPDATE err=%v, want append-only refusal", err)
	}
	if _, err := raw.Exec(`DELETE FROM audit_log WHERE seq = 1`); err == nil {
		t.Fatal("DELETE on the audit log succeeded")
	}

	// Ensure a read is audited with who read it, and an anonymous read is refused and leaves no entry.
	p := MustCreatePatient(t, s, "Meena Kumari")
	before := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`)
	if _, err := s.Patient(context.Background(), p.ID); !errors.Is(err, edge.ErrNoActor) {
		t.Fatalf("anonymous read err=%v, want ErrNoActor", err)
	}
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log`); g != before {
		t.Fatalf("anonymous read changed the audit log")
	}
	got, err := s.Patient(edgetest.Clerk(), p.ID)
	if err != nil || got.Name != "Meena Kumari" {
		t.Fatalf("Patient=%+v %v", got, err)
	}
	trail, err := s.AuditTrail(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := len(trail), 2; g != w {
		t.Fatalf("trail=%d entries, want %d", g, w)
	}
	if trail[1].Action != edge.ActionPatientRead || trail[1].Actor != "user:clerk-1" {
		t.Fatalf("trail[1]=%+v, want a read by user:clerk-1", trail[1])
	}
	// Ensure the log carries IDs, never the patient's name.
	if g := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE detail LIKE '%Meena%' OR entity_id LIKE '%Meena%'`); g != 0 {
		t.Fatal("the audit log holds a patient's name")
	}
}

func TestAudit_TwoProcessesContinueOneChain(t *testing.T) {
	// Ensure a CLI command writing while the node runs (two stores on one
	// file) extends the same chain instead of forking it.
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	node := edgetest.MustOpenStoreAt(t, path)
	cli := edgetest.MustOpenStoreAt(t, path)
	for i := range 10 {
		s := node
		if i%2 == 1 {
			s = cli
		}
		MustCreatePatient(t, s, "Patient")
	}
	rep, err := node.VerifyAudit(context.Background())
	if err != nil || !rep.OK() || rep.Entries != 10 {
		t.Fatalf("VerifyAudit=%+v %v", rep, err)
	}
	raw := edgetest.MustRawDB(t, path)
	if g := edgetest.MustCount(t, raw, `SELECT count(DISTINCT local_id) FROM patients`); g != 10 {
		t.Fatalf("distinct local IDs=%d, want 10", g)
	}
}
