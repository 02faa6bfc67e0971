package syncq_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/hub"
)

func TestExport_ABDMDocumentsArriveValid(t *testing.T) {
	t.Parallel()
	ctx := edgetest.Clerk()
	s := edgetest.MustOpenStore(t)
	facility := edge.FacilityConfig{Name: "PHC Rampur", HFRID: "IN0910034387"}
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
	m, err := syncq.NewFHIRMapper(s, facility)
	if err != nil {
		t.Fatal(err)
	}
	key := mustNodeKey(t)
	h := MustOpenExportHub(t, key)

	// Ensure the documents the real mapper puts in a file reach the hub whole and pass the FHIR R4 schema there.
	res, err := syncq.Export(ctx, s, m, syncq.ExportOptions{Dir: t.TempDir(), HubKey: h.Keys.ExportKey(), Key: key, NodeID: "phc-rampur"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Documents != 3 || res.Quarantined != 0 {
		t.Fatalf("exported %d documents, %d quarantined; want OPConsult, Prescription and Wellness", res.Documents, res.Quarantined)
	}
	in := &hub.Inbox{Dir: filepath.Dir(res.Path), Exports: h.Exports}
	if sc, err := in.Scan(context.Background()); err != nil || len(sc.Taken) != 1 {
		t.Fatalf("inbox took %+v (err %v)", sc, err)
	}
	stored, total, err := h.Store.Search(context.Background(), hub.Search{})
	if err != nil || total != 3 {
		t.Fatalf("the hub holds %d Bundles (err %v), want 3", total, err)
	}
	for _, st := range stored {
		MustPassFHIRSchema(t, "Bundle/"+st.ID+" as stored", st.Body)
	}
	receipt, err := os.ReadFile(filepath.Join(filepath.Dir(res.Path), filepath.Base(res.Path[:len(res.Path)-4])+".receipt.json"))
	if err != nil {
		t.Fatal(err)
	}
	ir, err := syncq.ImportReceipt(ctx, s, receipt, syncq.ImportOptions{HubKey: h.ReceiptKey(), NodeKey: key.Public().(ed25519.PublicKey)})
	if err != nil || ir.Confirmed != 3 {
		t.Fatalf("import: %+v, %v", ir, err)
	}
}
