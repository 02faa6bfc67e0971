package syncq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/fhir"
	"github.com/healthpost/healthpost/syncq/synctest"
)

func testFacility() edge.FacilityConfig {
	return edge.FacilityConfig{Name: "PHC Rampur", HFRID: "IN0910034387", District: "Sitapur", State: "Uttar Pradesh"}
}

// visitV1 is a final OPD visit with a temperature and a prescription.
func visitV1(patientID string) *edge.Encounter {
	return &edge.Encounter{PatientID: patientID, Type: edge.EncounterOPD, Status: edge.EncounterFinal, Complaint: "fever for 3 days",
		Observations:  []edge.Observation{{LOINC: "8310-5", Value: 38.4, Unit: "Cel"}},
		Diagnoses:     []edge.Diagnosis{{Code: "A01.0", Display: "Typhoid fever"}},
		Prescriptions: []edge.Prescription{{Drug: "Paracetamol", Strength: "500 mg", Dose: "1 tablet", Frequency: "TDS", DurationDays: 3}}}
}

// visitV2 corrects visitV1: another complaint and diagnosis, and the
// prescription removed (it was for another patient).
func visitV2(e *edge.Encounter) *edge.Encounter {
	return &edge.Encounter{ID: e.ID, PatientID: e.PatientID, Type: e.Type, Complaint: "fever for 5 days",
		Observations: []edge.Observation{{LOINC: "8310-5", Value: 38.9, Unit: "Cel"}},
		Diagnoses:    []edge.Diagnosis{{Code: "A09", Display: "Infectious gastroenteritis and colitis"}}}
}

// bundleFacts is what the tests read from a document Bundle.
type bundleFacts struct {
	ID, Status, VersionID, Timestamp string
	Complaint                        string   // the chief complaint Condition's text
	Drugs                            []string // MedicationRequest texts
	RxStatus                         []string
}

func MustReadBundle(tb testing.TB, body []byte) bundleFacts {
	tb.Helper()
	var b struct {
		ID        string `json:"id"`
		Timestamp string `json:"timestamp"`
		Meta      struct {
			VersionID string `json:"versionId"`
		} `json:"meta"`
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
				Status       string `json:"status"`
				Category     []any  `json:"category"`
				Code         struct {
					Text string `json:"text"`
				} `json:"code"`
				Medication struct {
					Text string `json:"text"`
				} `json:"medicationCodeableConcept"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		tb.Fatalf("decode bundle: %v", err)
	}
	if len(b.Entry) == 0 || b.Entry[0].Resource.ResourceType != "Composition" {
		tb.Fatal("bundle does not start with a Composition")
	}
	f := bundleFacts{ID: b.ID, Status: b.Entry[0].Resource.Status, VersionID: b.Meta.VersionID, Timestamp: b.Timestamp}
	for _, e := range b.Entry {
		switch r := e.Resource; r.ResourceType {
		case "Condition":
			if len(r.Category) == 0 {
				f.Complaint = r.Code.Text
			}
		case "MedicationRequest":
			f.Drugs = append(f.Drugs, r.Medication.Text)
			f.RxStatus = append(f.RxStatus, r.Status)
		}
	}
	return f
}

// MustOutbox lists the outbox rows of an encounter in commit order.
func MustOutbox(tb testing.TB, s *edge.Store, path, encounterID string) []edge.OutboxItem {
	tb.Helper()
	raw := edgetest.MustRawDB(tb, path)
	rows, err := raw.Query(`SELECT id FROM outbox WHERE entity_id = ? ORDER BY id`, encounterID)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	var out []edge.OutboxItem
	for _, id := range ids {
		it, err := s.OutboxItem(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, it)
	}
	return out
}

func TestFHIRMapper_MapsTheVersionTheRowNames(t *testing.T) {
	// Ensure each outbox row of an amended visit is built from the version
	// it names, even when a later version exists: version 1's rows carry
	// version 1's content, final; version 2's carry version 2's, amended;
	// and the prescription version 2 removed is withdrawn at version 2.
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	ctx := edgetest.Clerk()
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", BirthDate: "1988-07-02", Village: "Rampur"}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	e := visitV1(p.ID)
	if err := s.CreateEncounter(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.AmendEncounter(ctx, visitV2(e), "diagnosis corrected; prescription was another patient's", nil); err != nil {
		t.Fatal(err)
	}
	m, err := syncq.NewFHIRMapper(s, testFacility())
	if err != nil {
		t.Fatal(err)
	}
	items := MustOutbox(t, s, path, e.ID)
	if len(items) != 6 {
		t.Fatalf("outbox rows=%d, want 3 at version 1 and 3 at version 2", len(items))
	}
	raw := edgetest.MustRawDB(t, path)
	reads := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE action = 'encounter.read' AND actor = 'system:syncq'`)
	byKind := map[string]map[int]bundleFacts{}
	for _, it := range items {
		id, body, err := m.Document(context.Background(), it)
		if err != nil {
			t.Fatalf("%s: %v", it.Key, err)
		}
		if _, err := syncq.NewDocument(it, id, body); err != nil {
			t.Fatalf("%s: %v", it.Key, err)
		}
		f := MustReadBundle(t, body)
		if byKind[it.Document] == nil {
			byKind[it.Document] = map[int]bundleFacts{}
		}
		byKind[it.Document][it.EntityVersion] = f
		// The same row gives the same bytes every time.
		if _, again, err := m.Document(context.Background(), it); err != nil || string(again) != string(body) {
			t.Fatalf("%s: a second build differs (%v)", it.Key, err)
		}
	}
	for kind, v := range byKind {
		if v[1].ID != v[2].ID || v[1].ID == "" {
			t.Fatalf("%s: Bundle.id %q at version 1, %q at version 2; want one document", kind, v[1].ID, v[2].ID)
		}
		if v[1].VersionID != "1" || v[2].VersionID != "2" || v[1].Status != "final" || v[1].Timestamp == v[2].Timestamp {
			t.Fatalf("%s: versions %+v", kind, v)
		}
	}
	op := byKind[edge.DocOPConsult]
	if op[1].Complaint != "fever for 3 days" || op[2].Complaint != "fever for 5 days" || op[2].Status != "amended" {
		t.Fatalf("consultation: version 1 %+v, version 2 %+v", op[1], op[2])
	}
	rx := byKind[edge.DocPrescription]
	if !slices.Equal(rx[1].RxStatus, []string{"active"}) || rx[2].Status != "entered-in-error" ||
		!slices.Equal(rx[2].Drugs, rx[1].Drugs) || !slices.Equal(rx[2].RxStatus, []string{"entered-in-error"}) {
		t.Fatalf("prescription: version 1 %+v, version 2 %+v, want version 1's lines withdrawn", rx[1], rx[2])
	}
	if byKind[edge.DocWellness][2].Status != "amended" {
		t.Fatalf("wellness version 2 %+v", byKind[edge.DocWellness][2])
	}
	// Every version read is audited as syncq's.
	if got := edgetest.MustCount(t, raw, `SELECT count(*) FROM audit_log WHERE action = 'encounter.read' AND actor = 'system:syncq'`); got <= reads {
		t.Fatal("the mapper's reads were not audited")
	}

	// Ensure a version the node does not hold is unmappable (quarantined), not retried.
	it := items[0]
	it.EntityVersion, it.Key = 7, edge.DocOPConsult+"/encounter/"+e.ID+"/v7"
	if _, _, err := m.Document(context.Background(), it); !errors.Is(err, edge.ErrNotFound) {
		t.Fatalf("version 7: %v, want ErrNotFound", err)
	}
}

func TestFHIRMapper_AmendmentDeliveredInOrder(t *testing.T) {
	for _, mode := range []string{edge.UpstreamModePut, edge.UpstreamModeConditional} {
		t.Run(mode, func(t *testing.T) {
			// Ensure, from the node's engine to the hub over HTTP, that an
			// amendment arrives as a new version of the same Bundle, after
			// the version before it, each version with its own content: v1
			// and v2 both pending at once, then v3 after both went.
			path := filepath.Join(t.TempDir(), edge.DBFileName)
			s := edgetest.MustOpenStoreAt(t, path)
			ctx := edgetest.Clerk()
			p := &edge.Patient{Name: "Sunita Devi", Gender: "F", BirthDate: "1988-07-02", Village: "Rampur"}
			if err := s.CreatePatient(ctx, p); err != nil {
				t.Fatal(err)
			}
			e := visitV1(p.ID)
			if err := s.CreateEncounter(ctx, e); err != nil {
				t.Fatal(err)
			}
			if err := s.AmendEncounter(ctx, visitV2(e), "diagnosis corrected", nil); err != nil {
				t.Fatal(err)
			}
			h := MustOpenHub(t)
			eng := NewTestEngine(t, s, h.URL, h.Token)
			eng.Client.Mode = mode
			m, err := syncq.NewFHIRMapper(s, testFacility())
			if err != nil {
				t.Fatal(err)
			}
			eng.Mapper = m
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			drain := func() {
				t.Helper()
				if _, err := eng.Drain(dctx, syncq.DrainOptions{Expedite: true, Wait: true}); err != nil {
					t.Fatal(err)
				}
			}
			drain()
			v3 := visitV2(e)
			v3.Complaint = "fever for 5 days, vomiting"
			if err := s.AmendEncounter(ctx, v3, "complaint completed", nil); err != nil {
				t.Fatal(err)
			}
			drain()

			// What the node sent, in commit order: each row is the next
			// version of its document at the hub.
			items := MustOutbox(t, s, path, e.ID)
			type arrival struct {
				bundle  string
				version int
			}
			var want []arrival
			next := map[string]int{}
			for _, it := range items {
				if it.State != edge.OutboxDelivered {
					t.Fatalf("%s is %s, want delivered", it.Key, it.State)
				}
				id, _, err := fhir.DocumentIdentity(it)
				if err != nil {
					t.Fatal(err)
				}
				next[id]++
				want = append(want, arrival{id, next[id]})
			}
			if len(next) != 3 {
				t.Fatalf("documents=%d, want 3 (consultation, prescription, wellness)", len(next))
			}
			as, err := h.Store.Arrivals(context.Background(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []arrival
			for _, a := range as {
				got = append(got, arrival{a.BundleID, a.Version})
			}
			if !slices.Equal(got, want) {
				t.Fatalf("hub stored %v, want %v (each version once, in the order written)", got, want)
			}

			// Each hub version holds the content of the node's version.
			opID, _, _ := fhir.DocumentIdentity(items[0])
			for v, complaint := range map[int]string{1: "fever for 3 days", 2: "fever for 5 days", 3: "fever for 5 days, vomiting"} {
				st, err := h.Store.Read(context.Background(), opID, v)
				if err != nil {
					t.Fatal(err)
				}
				if f := MustReadBundle(t, st.Body); f.Complaint != complaint || f.ID != opID {
					t.Fatalf("hub consultation version %d: complaint %q, want %q", v, f.Complaint, complaint)
				}
			}
			cur, err := h.Store.Read(context.Background(), opID, 0)
			if err != nil {
				t.Fatal(err)
			}
			if f := MustReadBundle(t, cur.Body); cur.Version != 3 || f.Status != "amended" {
				t.Fatalf("hub's current consultation: version %d status %q, want 3 amended", cur.Version, f.Status)
			}
		})
	}
}

// Ensure every outbox row a visit with lab orders, a referral and vaccines
// makes, and the row of a result entered later, maps from the real store
// into a document Bundle of the row's kind, reading (and auditing) the
// records as syncq.
func TestFHIRMapper_LabsAndVaccines(t *testing.T) {
	s := edgetest.MustOpenStore(t)
	nurse := &edge.User{Username: "anm.kavita", DisplayName: "Kavita (ANM)", Role: edge.RoleHealthWorker}
	if err := s.CreateUser(edgetest.Clerk(), nurse, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: nurse.ID})
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", BirthDate: "1990-04-12", Village: "Rampur"}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	dose := 1
	e := &edge.Encounter{PatientID: p.ID, Type: edge.EncounterANC, PractitionerID: nurse.ID, Complaint: "first antenatal visit",
		LabOrders: []edge.LabOrder{
			{Test: "hb", Status: edge.LabOrdered},
			{Test: "upt", Status: edge.LabResulted, Result: &edge.LabResult{Answer: "pos"}},
		},
		Referral:      &edge.Referral{Facility: "CHC Sitapur", Urgency: edge.UrgencyRoutine},
		Immunizations: []edge.Immunization{{Vaccine: "TD", Dose: &dose}},
	}
	if err := s.SaveEncounter(ctx, e, nil, true); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordLabResult(ctx, e.LabOrders[0].ID, &edge.LabResult{Value: 10.4, ValueText: "10.4", Unit: "g/dL"}); err != nil {
		t.Fatal(err)
	}
	m, err := syncq.NewFHIRMapper(s, edge.FacilityConfig{Name: "PHC Rampur", HFRID: "IN0910034387"})
	if err != nil {
		t.Fatal(err)
	}
	items, err := s.DueOutbox(context.Background(), s.Now().Add(1e12), 100)
	if err != nil {
		t.Fatal(err)
	}
	// Rows of one patient come one at a time; read them all from the table.
	db := edgetest.MustRawDB(t, s.Path)
	n := edgetest.MustCount(t, db, `SELECT count(*) FROM outbox`)
	if n != 4 || len(items) != 1 {
		t.Fatalf("outbox rows=%d (due %d), want OPConsult, Immunization and two DiagnosticReports", n, len(items))
	}
	kinds := map[string]int{}
	for id := int64(1); id <= int64(n); id++ {
		it, err := s.OutboxItem(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		bundleID, data, err := m.Document(context.Background(), it)
		if err != nil {
			t.Fatalf("%s: %v", it.Key, err)
		}
		var b struct {
			ID    string
			Entry []struct{ Resource struct{ ResourceType string } }
		}
		if err := json.Unmarshal(data, &b); err != nil || b.ID != bundleID {
			t.Fatalf("%s: bundle %q, err %v", it.Key, b.ID, err)
		}
		for _, en := range b.Entry {
			kinds[it.Document+"/"+en.Resource.ResourceType]++
		}
	}
	for k, want := range map[string]int{
		"DiagnosticReportRecord/DiagnosticReport": 2, "OPConsultRecord/ServiceRequest": 3, "ImmunizationRecord/Immunization": 1,
	} {
		if kinds[k] != want {
			t.Fatalf("%s=%d, want %d (all: %v)", k, kinds[k], want, kinds)
		}
	}
	if n := edgetest.MustCount(t, db, `SELECT count(*) FROM audit_log WHERE action = 'lab.read' AND actor = 'system:syncq'`); n != 2 {
		t.Fatalf("lab order reads audited as syncq=%d, want 2", n)
	}
}

// immunizationFacts reads a Bundle's Composition status and each
// Immunization as "<vaccine text> <dose> <status>".
func immunizationFacts(tb testing.TB, body []byte) (string, []string) {
	tb.Helper()
	var b struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				Status       string `json:"status"`
				VaccineCode  struct {
					Text string `json:"text"`
				} `json:"vaccineCode"`
				ProtocolApplied []struct {
					Dose int `json:"doseNumberPositiveInt"`
				} `json:"protocolApplied"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil || len(b.Entry) == 0 {
		tb.Fatalf("decode bundle: %v", err)
	}
	var doses []string
	for _, e := range b.Entry {
		if r := e.Resource; r.ResourceType == "Immunization" {
			d := 0
			if len(r.ProtocolApplied) > 0 {
				d = r.ProtocolApplied[0].Dose
			}
			doses = append(doses, fmt.Sprintf("%s %d %s", r.VaccineCode.Text, d, r.Status))
		}
	}
	return b.Entry[0].Resource.Status, doses
}

// Ensure, from the node's engine to the hub over HTTP, that an antenatal
// visit's vaccine amended and then removed arrives as versions 1, 2 and 3
// of one ImmunizationRecord (Td 1; Td 2 amended; Td 2 withdrawn), that a
// result entered in the amendment arrives as its own report, once, and
// that the result the lab recorded before stays delivered once.
func TestFHIRMapper_AmendedVaccinesDelivered(t *testing.T) {
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	nurse := &edge.User{Username: "anm.kavita", DisplayName: "Kavita (ANM)", Role: edge.RoleHealthWorker}
	if err := s.CreateUser(edgetest.Clerk(), nurse, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: nurse.ID})
	p := &edge.Patient{Name: "Sunita Devi", Gender: "F", BirthDate: "1990-04-12", Village: "Rampur"}
	if err := s.CreatePatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	dose := func(n int) *int { return &n }
	e := &edge.Encounter{PatientID: p.ID, Type: edge.EncounterANC, Complaint: "first antenatal visit",
		LabOrders:     []edge.LabOrder{{Test: "hb", Status: edge.LabOrdered}, {Test: "malaria_rdt", Status: edge.LabOrdered}},
		Referral:      &edge.Referral{Facility: "CHC Sitapur", Urgency: edge.UrgencyRoutine},
		Immunizations: []edge.Immunization{{Vaccine: "TD", Dose: dose(1)}},
	}
	if err := s.SaveEncounter(ctx, e, nil, true); err != nil {
		t.Fatal(err)
	}
	hb, rdt := e.LabOrders[0], e.LabOrders[1]
	if err := s.RecordLabResult(ctx, hb.ID, &edge.LabResult{Value: 10.4, ValueText: "10.4", Unit: "g/dL"}); err != nil {
		t.Fatal(err)
	}
	rdt.Status, rdt.Result = edge.LabResulted, &edge.LabResult{Answer: "neg"}
	v2 := &edge.Encounter{ID: e.ID, PatientID: p.ID, Type: e.Type, Complaint: e.Complaint, LabOrders: []edge.LabOrder{rdt},
		Referral: e.Referral, Immunizations: []edge.Immunization{{Vaccine: "TD", Dose: dose(2)}}}
	if err := s.AmendEncounter(ctx, v2, "it was the second Td dose; RDT read", nil); err != nil {
		t.Fatal(err)
	}
	v3 := &edge.Encounter{ID: e.ID, PatientID: p.ID, Type: e.Type, Complaint: e.Complaint, Referral: e.Referral}
	if err := s.AmendEncounter(ctx, v3, "Td was not given: out of stock", nil); err != nil {
		t.Fatal(err)
	}

	h := MustOpenHub(t)
	eng := NewTestEngine(t, s, h.URL, h.Token)
	m, err := syncq.NewFHIRMapper(s, testFacility())
	if err != nil {
		t.Fatal(err)
	}
	eng.Mapper = m
	dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := eng.Drain(dctx, syncq.DrainOptions{Expedite: true, Wait: true}); err != nil {
		t.Fatal(err)
	}
	var imm edge.OutboxItem
	for _, id := range []string{e.ID, hb.ID, rdt.ID} {
		for _, it := range MustOutbox(t, s, path, id) {
			if it.State != edge.OutboxDelivered {
				t.Fatalf("%s is %s (%s), want delivered", it.Key, it.State, it.LastError)
			}
			if it.Document == edge.DocImmunization {
				imm = it
			}
		}
	}
	immID, _, err := fhir.DocumentIdentity(imm)
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[int]string{1: "final [Td (tetanus-diphtheria) 1 completed]", 2: "amended [Td (tetanus-diphtheria) 2 completed]", 3: "entered-in-error [Td (tetanus-diphtheria) 2 entered-in-error]"} {
		st, err := h.Store.Read(context.Background(), immID, v)
		if err != nil {
			t.Fatalf("hub ImmunizationRecord version %d: %v", v, err)
		}
		status, doses := immunizationFacts(t, st.Body)
		if g := fmt.Sprintf("%s %v", status, doses); g != want {
			t.Fatalf("hub ImmunizationRecord version %d=%q, want %q", v, g, want)
		}
	}
	as, err := h.Store.Arrivals(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	reports := map[string]int{}
	for _, o := range []edge.LabOrder{hb, rdt} {
		it := edge.OutboxItem{Key: "DiagnosticReportRecord/lab_order/" + o.ID + "/v1", Document: edge.DocDiagnosticReport,
			Entity: fhir.EntityLabOrder, EntityID: o.ID, EntityVersion: 1}
		id, _, err := fhir.DocumentIdentity(it)
		if err != nil {
			t.Fatal(err)
		}
		reports[id] = 0
	}
	for _, a := range as {
		if _, ok := reports[a.BundleID]; ok {
			reports[a.BundleID]++
		}
	}
	for id, n := range reports {
		if n != 1 {
			t.Fatalf("report %s arrived %d times, want once", id, n)
		}
	}
}

// mustOpenTickingStoreAt opens the store at path with a clock that moves
// on a millisecond every time it is read: a write transaction reads it once,
// so the audit entries of one transaction share their time and those of
// two never do.
func mustOpenTickingStoreAt(tb testing.TB, path string) *edge.Store {
	tb.Helper()
	s := edgetest.NewTestStore(path)
	base := time.Now()
	var ticks atomic.Int64
	s.Now = func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Millisecond) }
	if err := s.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// mustAllOutbox lists every outbox row, in commit order.
func mustAllOutbox(tb testing.TB, s *edge.Store) []edge.OutboxItem {
	tb.Helper()
	items, err := s.OutboxItems(context.Background(), edge.OutboxFilter{Limit: 1 << 30})
	if err != nil {
		tb.Fatal(err)
	}
	return items
}

// auditByTime counts the audit entries after seq by system:syncq, and the
// distinct times among them: the transactions they were written in.
func auditByTime(tb testing.TB, path string, seq int) (entries, transactions int) {
	tb.Helper()
	raw := edgetest.MustRawDB(tb, path)
	if err := raw.QueryRow(`SELECT count(*), count(DISTINCT at) FROM audit_log WHERE seq > ? AND actor = 'system:syncq'`,
		seq).Scan(&entries, &transactions); err != nil {
		tb.Fatal(err)
	}
	return entries, transactions
}

func lastAuditSeq(tb testing.TB, path string) int {
	tb.Helper()
	return edgetest.MustCount(tb, edgetest.MustRawDB(tb, path), `SELECT coalesce(max(seq), 0) FROM audit_log`)
}

func TestFHIRMapper_Documents(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	synctest.Backlog{Patients: 60, Encounters: 200}.MustCopy(t, path)
	s := mustOpenTickingStoreAt(t, path)
	m, err := syncq.NewFHIRMapper(s, synctest.BacklogFacility)
	if err != nil {
		t.Fatal(err)
	}
	// A visit that maps to nothing: an immunization session with no notes
	// (the node records no vaccine details), and rows that name nothing.
	p := &edge.Patient{Name: "Baby of Sunita", Gender: "F", StatedAge: 1}
	if err := s.CreatePatient(edgetest.Clerk(), p); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEncounter(edgetest.Clerk(), &edge.Encounter{PatientID: p.ID, Type: edge.EncounterImmunization, Status: edge.EncounterFinal}); err != nil {
		t.Fatal(err)
	}
	items := mustAllOutbox(t, s)
	empty := items[len(items)-1]
	noVersion, noReading, noEntity := items[0], items[0], items[0]
	noVersion.EntityVersion, noVersion.Key = 7, strings.TrimSuffix(items[0].Key, "/v1")+"/v7"
	noReading.Entity, noReading.EntityID = edge.EntityObservation, edge.NewID()
	noEntity.Entity = "referral"
	bad := []edge.OutboxItem{noVersion, noReading, noEntity}
	// Each bad row sits among good ones, and several rows of one visit and
	// one patient share a request.
	var all []edge.OutboxItem
	for i, it := range items {
		all = append(all, it)
		if i%50 == 25 && len(bad) > 0 {
			all, bad = append(all, bad[0]), bad[1:]
		}
	}
	all = append(all, bad...)

	t.Run("SameAsDocument", func(t *testing.T) {
		// Ensure each row built in a batch is byte for byte what Document
		// builds for it alone, and that a row that does not map fails alone,
		// with Document's error.
		var withdrawn, failed int
		for i := 0; i < len(all); i += syncq.DefaultBatchSize {
			batch := all[i:min(i+syncq.DefaultBatchSize, len(all))]
			got := m.Documents(context.Background(), batch)
			if len(got) != len(batch) {
				t.Fatalf("%d results for %d rows", len(got), len(batch))
			}
			for k, it := range batch {
				id, body, err := m.Document(context.Background(), it)
				g := got[k]
				if g.BundleID != id || !bytes.Equal(g.Body, body) {
					t.Fatalf("%s: Documents built %s (%d bytes), Document %s (%d bytes)", it.Key, g.BundleID, len(g.Body), id, len(body))
				}
				if (g.Err == nil) != (err == nil) || (err != nil && g.Err.Error() != err.Error()) {
					t.Fatalf("%s: Documents: %v; Document: %v", it.Key, g.Err, err)
				}
				if err != nil {
					failed++
					if !errors.Is(g.Err, syncq.ErrUnmappable) && !errors.Is(g.Err, edge.ErrNotFound) {
						t.Fatalf("%s: %v, want an error that quarantines the row", it.Key, g.Err)
					}
					continue
				}
				if _, err := syncq.NewDocument(it, id, body); err != nil {
					t.Fatalf("%s: %v", it.Key, err)
				}
				if bytes.Contains(body, []byte(`"status":"entered-in-error"`)) {
					withdrawn++
				}
			}
		}
		if failed != 4 || withdrawn == 0 {
			t.Fatalf("%d rows failed, want the 4 bad ones; %d withdrawn documents, want some", failed, withdrawn)
		}
		if _, _, err := m.Document(context.Background(), empty); !errors.Is(err, syncq.ErrUnmappable) || !errors.Is(err, fhir.ErrEmptyDocument) {
			t.Fatalf("immunization without notes: %v, want unmappable, empty", err)
		}
	})

	t.Run("OneTransactionPerRequest", func(t *testing.T) {
		// Ensure the reads of a request are audited once per record, as
		// syncq's, in one transaction, where Document takes one per read.
		due, err := s.DueOutbox(context.Background(), time.Now().Add(time.Hour), syncq.DefaultBatchSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != syncq.DefaultBatchSize {
			t.Fatalf("due=%d", len(due))
		}
		records := map[string]bool{}
		for _, it := range due {
			records[fmt.Sprint(it.Entity, it.EntityID, it.EntityVersion)] = true
			records[it.PatientID] = true
		}
		seq := lastAuditSeq(t, path)
		for _, r := range m.Documents(context.Background(), due) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		if entries, txs := auditByTime(t, path, seq); entries != len(records) || txs != 1 {
			t.Fatalf("a request of %d rows wrote %d audit entries in %d transactions, want %d in 1", len(due), entries, txs, len(records))
		}
		seq = lastAuditSeq(t, path)
		if _, _, err := m.Document(context.Background(), due[0]); err != nil {
			t.Fatal(err)
		}
		if entries, txs := auditByTime(t, path, seq); entries != 2 || txs != 2 {
			t.Fatalf("Document wrote %d audit entries in %d transactions, want the record and the patient, one each", entries, txs)
		}
	})
}
