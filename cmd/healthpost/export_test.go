package main_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

func TestExport_StickToHubAndBack(t *testing.T) {
	// The district hub: its keys for USB export files, and a token for the office laptop.
	hubNode := newNode(t)
	var keys struct {
		ExportKey  string `json:"export_key"`
		ReceiptKey string `json:"receipt_key"`
	}
	if err := json.Unmarshal([]byte(hubNode.mustRun("hub", "key", "--json")), &keys); err != nil || !strings.HasPrefix(keys.ExportKey, "age1") {
		t.Fatalf("hub key: %+v, %v", keys, err)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(hubNode.mustRun("hub", "token", "add", "district-office", "--json")), &tok); err != nil || tok.Token == "" {
		t.Fatal(err)
	}

	// The health centre: configured with the hub's keys, no link, one visit recorded.
	n := newNode(t)
	n.env = append(n.env, "HEALTHPOST_UPSTREAM_EXPORT_KEY="+keys.ExportKey, "HEALTHPOST_UPSTREAM_RECEIPT_KEY="+keys.ReceiptKey,
		"HEALTHPOST_FACILITY_HFR_ID=IN0910034387", "HEALTHPOST_FACILITY_NAME=PHC Rampur", "HEALTHPOST_FACILITY_NODE_ID=phc-rampur")
	n.mustRun("migrate")
	s := edge.NewStore(filepath.Join(n.dataDir, edge.DBFileName))
	s.DiskCheckPeriod = 0
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: "nurse"})
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 34, ABHANumber: "91-2666-2007-2857"}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	e := &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal, Complaint: "fever",
		Observations:  []edge.Observation{{LOINC: "8480-6", Value: 128, Unit: "mm[Hg]"}, {LOINC: "8462-4", Value: 84, Unit: "mm[Hg]"}},
		Prescriptions: []edge.Prescription{{Drug: "Paracetamol", Strength: "500 mg", Dose: "1 tablet", Frequency: "TDS", DurationDays: 3}}}
	if err := s.CreateEncounter(ctx, e); err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	var nodeKey struct{ Key string }
	if err := json.Unmarshal([]byte(n.mustRun("export", "key", "--json")), &nodeKey); err != nil {
		t.Fatal(err)
	}
	hubNode.mustRun("hub", "token", "signing-key", "phc-rampur", nodeKey.Key)
	h := hubNode.start("hub", "--listen", "127.0.0.1:0")

	// Ensure export writes one file to the stick and says what to do next.
	stick := t.TempDir()
	out := n.mustRun("export", "--to", stick)
	if !strings.Contains(out, "Wrote 3 documents of 1 patients") || !strings.Contains(out, "healthpost push") {
		t.Fatalf("export said:\n%s", out)
	}
	files, _ := filepath.Glob(filepath.Join(stick, "healthpost-phc-rampur-*.hpx"))
	if len(files) != 1 {
		t.Fatalf("the stick holds %v, want one export file", files)
	}
	if st := n.mustRun("sync", "status"); !strings.Contains(st, "3 documents await the hub's receipt") {
		t.Fatalf("sync status does not say what waits on the receipt:\n%s", st)
	}

	// Ensure a file cut short on the way is refused, with no receipt.
	office := newNode(t)
	cut := filepath.Join(t.TempDir(), "cut.hpx")
	data, _ := os.ReadFile(files[0])
	os.WriteFile(cut, data[:len(data)-50], 0o644)
	if r := office.run("", "push", cut, "--upstream", h.url, "--token", tok.Token); r.code != 1 || !strings.Contains(r.stdout, "cut short") {
		t.Fatalf("push of a cut file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(strings.TrimSuffix(cut, ".hpx") + ".receipt.json"); !os.IsNotExist(err) {
		t.Fatalf("a refused file got a receipt (%v)", err)
	}

	// Ensure the office pushes the stick, twice without harm, and a receipt lands beside the file.
	for range 2 {
		if out := office.mustRun("push", stick, "--upstream", h.url, "--token", tok.Token); !strings.Contains(out, "3 documents taken by the hub") {
			t.Fatalf("push said:\n%s", out)
		}
	}
	// Ensure importing the receipt at the health centre marks all three delivered, once.
	if out := n.mustRun("import", stick); !strings.Contains(out, "3 documents confirmed delivered") {
		t.Fatalf("import said:\n%s", out)
	}
	if out := n.mustRun("import", stick); !strings.Contains(out, "0 documents confirmed delivered, 3 confirmed before") {
		t.Fatalf("second import said:\n%s", out)
	}
	var st struct{ Counts []edge.OutboxCount }
	if err := json.Unmarshal([]byte(n.mustRun("sync", "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Counts {
		if c.State != edge.OutboxDelivered && c.Count > 0 {
			t.Fatalf("after import %d documents are %s", c.Count, c.State)
		}
	}
	if out := n.mustRun("export", "--to", stick); !strings.Contains(out, "Nothing to export") {
		t.Fatalf("export after import said:\n%s", out)
	}
	// Ensure the hub holds the three documents once, from phc-rampur, which never needed a token.
	r := hubNode.run("", "hub", "token", "list")
	if !strings.Contains(r.stdout, "phc-rampur") || !strings.Contains(r.stdout, "no token") || !strings.Contains(r.stdout, "SHA256:") {
		t.Fatalf("hub token list:\n%s", r.stdout)
	}
	h.stop(t)
	db, err := sql.Open("sqlite", filepath.Join(hubNode.dataDir, "hub", "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var arrivals, bundles int
	db.QueryRow(`SELECT (SELECT count(*) FROM arrivals), (SELECT count(*) FROM bundles WHERE node = 'phc-rampur')`).Scan(&arrivals, &bundles)
	if arrivals != 3 || bundles != 3 {
		t.Fatalf("the hub stored %d versions, %d Bundles of phc-rampur; want 3 and 3", arrivals, bundles)
	}
}
