package webui_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

func visitForm(action string) url.Values {
	return url.Values{"type": {"opd"}, "action": {action}, "complaint": {"Cough <b>and</b> fever"},
		"v_sys": {"128"}, "v_dia": {"84"}, "v_temp": {"101.3"}, "v_weight": {"54,5"},
		"dx_rows": {"2"}, "dx_0": {"J06.9 Acute upper respiratory infection"}, "dx_1": {""},
		"rx_rows": {"1"}, "rx_drug_0": {"Paracetamol 500 mg tablet"}, "rx_dose_0": {"1 tablet"}, "rx_freq_0": {"TDS"},
		"rx_days_0": {"3"}, "rx_instr_0": {"After food"}, "notes": {"Refer if fever persists"}}
}

func TestEncounter_DraftFinalizePrint(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("meera", edge.RoleDoctor))
	p := n.MustCreatePatient(&edge.Patient{Name: "Ram Lal", Gender: "M", StatedAge: 60, Village: "Rampur"})

	resp, body := c.Get("/patients/" + p.ID + "/encounters/new?type=anc")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `id="v_fhr"`) || !strings.Contains(body, `<datalist id="icd10">`) {
		t.Fatal("antenatal form lacks its fields or the diagnosis list")
	}

	// Ensure mistakes come back with what was typed and save nothing.
	f := visitForm("save")
	f.Del("v_dia")
	f.Set("v_temp", "48") // °C: no living patient
	f.Set("dx_1", "Z99.9 made up")
	f.Set("rx_drug_0", "Wonder pill")
	resp, body = c.Post("/patients/"+p.ID+"/encounters", f)
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	for _, want := range []string{"Cough &lt;b&gt;and&lt;/b&gt; fever", `value="48"`, `value="Wonder pill"`,
		"Give both the upper", "not possible for a living patient", "Choose a condition from the list", "must be in the formulary"} {
		if !strings.Contains(body, want) {
			t.Errorf("re-rendered visit form lacks %q", want)
		}
	}
	if got := n.count(`SELECT count(*) FROM encounters`); got != 0 {
		t.Fatalf("encounters=%d after a refused form", got)
	}

	// Ensure "another medicine" adds a row and keeps everything.
	f = visitForm("add_rx")
	resp, body = c.Post("/patients/"+p.ID+"/encounters", f)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `id="rx_drug_1"`) || !strings.Contains(body, `value="Paracetamol 500 mg tablet"`) {
		t.Fatal("row not added or values lost")
	}

	// Save a draft, read it back, then finalize it.
	resp, body = c.Post("/patients/"+p.ID+"/encounters", visitForm("save"))
	wantStatus(t, resp, body, http.StatusSeeOther)
	enc := strings.TrimPrefix(strings.Split(location(resp), "?")[0], "/encounters/")
	resp, body = c.Get("/encounters/" + enc)
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`value="128"`, `value="38.5"`, `value="54.5"`, "J06.9 Acute upper respiratory infection", `value="Paracetamol 500 mg tablet"`} {
		if !strings.Contains(body, want) {
			t.Errorf("draft form lacks %q", want)
		}
	}
	if got := n.count(`SELECT count(*) FROM outbox`); got != 0 {
		t.Fatalf("a draft wrote %d outbox rows", got)
	}
	f = visitForm("finalize")
	f.Set("complaint", "Cough and fever")
	resp, body = c.Post("/encounters/"+enc, f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := n.count(`SELECT count(*) FROM outbox WHERE entity_id = ? AND document IN
		('OPConsultRecord', 'PrescriptionRecord', 'WellnessRecord')`, enc); got != 3 {
		t.Fatalf("outbox rows=%d, want 3", got)
	}
	resp, body = c.Get("/encounters/" + enc)
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"Acute upper respiratory infection", "Paracetamol", "3 times a day", "38.5 °C", "Final"} {
		if !strings.Contains(body, want) {
			t.Errorf("visit page lacks %q", want)
		}
	}
	// A final visit is never edited in place.
	resp, body = c.Post("/encounters/"+enc, visitForm("save"))
	wantStatus(t, resp, body, http.StatusConflict)

	// The timeline shows it, and the slips print in every paper size, bilingual.
	resp, body = c.Get("/patients/" + p.ID)
	if !strings.Contains(body, "OPD consultation") || !strings.Contains(body, "/encounters/"+enc) || !strings.Contains(body, `<svg class="chart"`) {
		t.Fatal("timeline or chart missing")
	}
	for _, doc := range []string{"slip", "summary"} {
		for _, paper := range []string{"a5", "a4", "80mm"} {
			resp, body := c.Get(fmt.Sprintf("/encounters/%s/print?doc=%s&paper=%s", enc, doc, paper))
			wantStatus(t, resp, body, http.StatusOK)
			if !strings.Contains(body, "print-"+paper) || !strings.Contains(body, "दवा") || !strings.Contains(body, "Paracetamol") {
				t.Errorf("%s on %s: not the bilingual document", doc, paper)
			}
		}
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'encounter.print' AND patient_id = ?`, p.ID); got != 6 {
		t.Fatalf("prints audited=%d", got)
	}
}

// TestEncounter_LiveReadings proves "take from device": the visit binds the
// device, and a reading that commits reaches the page's event stream.
func TestEncounter_LiveReadings(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))
	p := n.MustCreatePatient(&edge.Patient{Name: "Sita", Gender: "F", StatedAge: 25})
	dev := &edge.Device{Name: "Oximeter", Kind: "pulse-oximeter", Transport: "mqtt"}
	if err := n.Store.CreateDevice(system(), dev); err != nil {
		t.Fatal(err)
	}
	f := url.Values{"type": {"opd"}, "action": {"bind"}, "device": {dev.ID}, "complaint": {"breathless"}}
	resp, body := c.Post("/patients/"+p.ID+"/encounters", f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	enc := strings.TrimPrefix(strings.Split(location(resp), "?")[0], "/encounters/")
	resp, body = c.Get("/encounters/" + enc)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Oximeter is measuring for this patient") || !strings.Contains(body, "breathless") {
		t.Fatal("binding not shown or complaint lost")
	}

	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/patients/%s/readings?since=%d", n.URL, p.ID, time.Now().Add(-time.Minute).UnixMilli()), nil)
	req.Header.Set("Accept", "text/event-stream")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := c.hc.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if ct := stream.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type=%q", ct)
	}
	lines := bufio.NewScanner(stream.Body)
	lines.Scan() // "retry:"; the stream is open, the reading comes now
	r := &edge.Reading{DeviceID: dev.ID, LOINC: "2708-6", Value: 91, Unit: "%", EffectiveAt: time.Now(), MessageID: "ox-1"}
	if err := n.Store.SaveReading(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Obs, Name, Value, Unit, Device string
	}
	for lines.Scan() {
		if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if ev.Value != "91" || ev.Device != "Oximeter" || ev.Obs != r.ObservationID || ev.Name != "SpO2" {
		t.Fatalf("event=%+v (reading %s)", ev, r.ObservationID)
	}

	// Finalizing with the reading ticked puts it in the visit.
	f = url.Values{"type": {"opd"}, "action": {"finalize"}, "attach": {ev.Obs}}
	resp, body = c.Post("/encounters/"+enc, f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := n.count(`SELECT count(*) FROM observations WHERE id = ? AND encounter_id = ?`, ev.Obs, enc); got != 1 {
		t.Fatal("device reading not attached to the visit")
	}
	resp, body = c.Get("/encounters/" + enc)
	if !strings.Contains(body, "91 %") || !strings.Contains(body, "from device") {
		t.Fatal("visit does not show the device reading")
	}
}

func TestInbox(t *testing.T) {
	n := MustStartNode(t)
	hw, tech := n.Client(), n.Client()
	hw.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))
	tech.LoginAs(n, n.MustCreateUser("tara", edge.RoleTechnician))
	p := n.MustCreatePatient(&edge.Patient{Name: "Gopal", Gender: "M", StatedAge: 50})
	dev := &edge.Device{Name: "Scale 1", Kind: "scale", Transport: "serial"}
	if err := n.Store.CreateDevice(system(), dev); err != nil {
		t.Fatal(err)
	}
	var rs []*edge.Reading
	for i, v := range []float64{61.2, 0.4} {
		r := &edge.Reading{DeviceID: dev.ID, LOINC: "29463-7", Value: v, Unit: "kg", EffectiveAt: time.Now(), MessageID: fmt.Sprint(i)}
		if err := n.Store.SaveReading(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	resp, body := tech.Get("/inbox")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "61.2") || strings.Contains(body, "/inbox/"+rs[0].ID+"/assign") {
		t.Fatal("technician's inbox: readings missing, or an assign action shown")
	}
	resp, body = tech.Post("/inbox/"+rs[1].ID+"/discard", url.Values{"reason": {"test"}})
	wantStatus(t, resp, body, http.StatusSeeOther)

	resp, body = hw.Get("/inbox/" + rs[0].ID + "/assign?q=gopal")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, p.LocalID) {
		t.Fatal("patient not offered")
	}
	resp, body = hw.Post("/inbox/"+rs[0].ID+"/assign", url.Values{"patient_id": {p.ID}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if location(resp) != "/inbox?done=assigned" {
		t.Fatalf("Location=%q", location(resp))
	}
	if got := n.count(`SELECT count(*) FROM observations WHERE patient_id = ? AND value = 61.2`, p.ID); got != 1 {
		t.Fatal("assigned reading is no observation")
	}
	resp, body = hw.Get("/inbox")
	if !strings.Contains(body, `id="inbox-empty"`) {
		t.Fatal("inbox not empty")
	}
	// Assigning again is harmless.
	resp, _ = hw.Post("/inbox/"+rs[0].ID+"/assign", url.Values{"patient_id": {p.ID}})
	if location(resp) != "/inbox?done=reading_gone" {
		t.Fatalf("second assign: %q", location(resp))
	}
}

// TestEncounter_IdleLockSavesDraft proves a visit form left alone is saved
// as a draft as the tablet locks (the page's script sends it with lock=1).
func TestEncounter_IdleLockSavesDraft(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))
	p := n.MustCreatePatient(&edge.Patient{Name: "Sita", Gender: "F", StatedAge: 25})
	f := url.Values{"type": {"opd"}, "action": {"save"}, "lock": {"1"}, "complaint": {"headache"}}
	resp, body := c.Post("/patients/"+p.ID+"/encounters", f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if !strings.HasPrefix(location(resp), "/lock?next=%2Fencounters%2F") {
		t.Fatalf("Location=%q", location(resp))
	}
	if got := n.count(`SELECT count(*) FROM encounters WHERE complaint = 'headache' AND status = 'draft'`); got != 1 {
		t.Fatal("draft not saved")
	}
	if resp, _ := c.Get("/patients"); !strings.HasPrefix(location(resp), "/lock") {
		t.Fatal("tablet not locked")
	}
}

// TestEncounter_Amend proves a finalized visit is corrected by an
// amendment: the form opens filled from the visit, a reason is required and
// what was typed survives a refusal, the saved amendment is version 2 with
// its outbox rows, and the visit page, the earlier version and the slip say
// what was amended, when, by whom and why.
func TestEncounter_Amend(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("meera", edge.RoleDoctor))
	p := n.MustCreatePatient(&edge.Patient{Name: "Ram Lal", Gender: "M", StatedAge: 60, Village: "Rampur"})
	resp, body := c.Post("/patients/"+p.ID+"/encounters", visitForm("finalize"))
	wantStatus(t, resp, body, http.StatusSeeOther)
	enc := strings.TrimPrefix(strings.Split(location(resp), "?")[0], "/encounters/")

	// The finalized visit offers "Amend" and shows version 1.
	resp, body = c.Get("/encounters/" + enc)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `href="/encounters/`+enc+`/amend"`) || !strings.Contains(body, "Version 1") {
		t.Fatal("finalized visit lacks the amend action or its version")
	}

	// The amendment form is the visit form, filled, with a reason and no draft or device actions.
	resp, body = c.Get("/encounters/" + enc + "/amend")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`action="/encounters/` + enc + `/amend"`, `value="128"`, `value="Paracetamol 500 mg tablet"`,
		"J06.9 Acute upper respiratory infection", `name="reason"`, "Amending version 1", `id="save-amendment"`} {
		if !strings.Contains(body, want) {
			t.Errorf("amendment form lacks %q", want)
		}
	}
	for _, unwanted := range []string{`id="save-draft"`, `id="finalize"`, `id="take"`} {
		if strings.Contains(body, unwanted) {
			t.Errorf("amendment form shows %s", unwanted)
		}
	}

	outbox := n.count(`SELECT count(*) FROM outbox WHERE entity_id = ?`, enc)
	amended := func(reason string) url.Values {
		f := visitForm("amend")
		f.Set("complaint", "Cough, fever and <b>rash</b>")
		f.Set("dx_0", "B05.9 Measles without complication")
		f.Del("rx_drug_0")
		f.Del("rx_dose_0")
		f.Del("rx_freq_0")
		f.Del("rx_days_0")
		f.Del("rx_instr_0")
		f.Set("reason", reason)
		return f
	}
	// Ensure a missing reason is refused with everything typed kept, and nothing saved.
	resp, body = c.Post("/encounters/"+enc+"/amend", amended("  "))
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	for _, want := range []string{"Write why the visit is being amended", "Cough, fever and &lt;b&gt;rash&lt;/b&gt;", "B05.9 Measles", `value="128"`} {
		if !strings.Contains(body, want) {
			t.Errorf("refused amendment lacks %q", want)
		}
	}
	// A mistake elsewhere keeps the reason typed.
	f := amended("rash seen on review")
	f.Set("v_temp", "48")
	resp, body = c.Post("/encounters/"+enc+"/amend", f)
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, ">rash seen on review</textarea>") || !strings.Contains(body, "not possible for a living patient") {
		t.Fatal("the reason or the vital's error was lost")
	}
	// "Another medicine" adds a row and keeps the reason.
	f = amended("rash seen on review")
	f.Set("action", "add_rx")
	resp, body = c.Post("/encounters/"+enc+"/amend", f)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `id="rx_drug_1"`) || !strings.Contains(body, ">rash seen on review</textarea>") {
		t.Fatal("row not added or reason lost")
	}
	// The idle lock never saves half an amendment.
	f = amended("rash seen on review")
	f.Set("action", "save")
	f.Set("lock", "1")
	resp, body = c.Post("/encounters/"+enc+"/amend", f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if !strings.HasPrefix(location(resp), "/lock?next=%2Fencounters%2F"+enc+"%2Famend") {
		t.Fatalf("Location=%q", location(resp))
	}
	if got := n.count(`SELECT count(*) FROM encounters WHERE id = ? AND version = 1 AND status = 'final'`, enc); got != 1 {
		t.Fatal("a refused amendment changed the visit")
	}
	if got := n.count(`SELECT count(*) FROM outbox WHERE entity_id = ?`, enc); got != outbox {
		t.Fatalf("outbox rows=%d after refused amendments, want %d", got, outbox)
	}
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker)) // the tablet is locked; a health worker takes it

	// Ensure a health worker's amendment with a reason is saved as version 2.
	resp, body = c.Post("/encounters/"+enc+"/amend", amended("Rash seen on review: <measles>"))
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got, want := location(resp), "/encounters/"+enc+"?done=amended"; got != want {
		t.Fatalf("Location=%q, want %q", got, want)
	}
	if got := n.count(`SELECT count(*) FROM encounters WHERE id = ? AND version = 2 AND status = 'amended'`, enc); got != 1 {
		t.Fatal("visit is not version 2")
	}
	if got := n.count(`SELECT count(*) FROM outbox WHERE entity_id = ? AND entity_version = 2`, enc); got != 3 {
		t.Fatalf("version 2 outbox rows=%d, want 3 (the removed prescription is superseded too)", got)
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'encounter.amend' AND entity_id = ? AND actor LIKE 'user:%'`, enc); got != 1 {
		t.Fatal("amendment not audited with the user")
	}

	resp, body = c.Get("/encounters/" + enc + "?done=amended")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"Amendment saved", "Amended (version 2) on", "by Asha: Rash seen on review: &lt;measles&gt;",
		"Measles", `href="/encounters/` + enc + `/versions/1"`, "Version history"} {
		if !strings.Contains(body, want) {
			t.Errorf("amended visit page lacks %q", want)
		}
	}
	if strings.Contains(body, "Paracetamol") {
		t.Error("amended visit still shows the removed prescription")
	}

	// Ensure version 1 stays readable as it was, and says it is not the current one.
	resp, body = c.Get("/encounters/" + enc + "/versions/1")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"This is version 1 of this visit", "The current version is 2", "Paracetamol", "Cough &lt;b&gt;and&lt;/b&gt; fever"} {
		if !strings.Contains(body, want) {
			t.Errorf("version 1 page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="amend"`) || strings.Contains(body, `id="print-slip"`) {
		t.Error("an earlier version offers amend or print")
	}
	resp, _ = c.Get("/encounters/" + enc + "/versions/2")
	if resp.StatusCode != http.StatusSeeOther || location(resp) != "/encounters/"+enc {
		t.Fatalf("current version: %d %q, want a redirect to the visit", resp.StatusCode, location(resp))
	}
	for _, v := range []string{"3", "0", "x"} {
		if resp, body := c.Get("/encounters/" + enc + "/versions/" + v); resp.StatusCode != http.StatusNotFound {
			t.Errorf("version %s: %d, want 404\n%.300s", v, resp.StatusCode, body)
		}
	}

	// Ensure the slip shows the amendment, with the label in both languages.
	resp, body = c.Get("/encounters/" + enc + "/print?doc=slip&paper=a5")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `id="amended-row"`) || !strings.Contains(body, "Rash seen on review: &lt;measles&gt;") || !strings.Contains(body, "संशोधन") {
		t.Fatal("slip does not show the amendment")
	}

	// Ensure a draft cannot be amended: it is still edited as a draft.
	resp, body = c.Post("/patients/"+p.ID+"/encounters", visitForm("save"))
	wantStatus(t, resp, body, http.StatusSeeOther)
	draft := strings.TrimPrefix(strings.Split(location(resp), "?")[0], "/encounters/")
	resp, body = c.Get("/encounters/" + draft + "/amend")
	wantStatus(t, resp, body, http.StatusConflict)
	if !strings.Contains(body, "Only a finalized visit can be amended") {
		t.Fatal("no plain message for amending a draft")
	}
	resp, body = c.Post("/encounters/"+draft+"/amend", amended("x"))
	wantStatus(t, resp, body, http.StatusConflict)
	if got := n.count(`SELECT count(*) FROM encounters WHERE id = ? AND status = 'draft' AND version = 1`, draft); got != 1 {
		t.Fatal("the draft was changed")
	}
}

// TestEncounter_AmendFinalizedBeforeVersions proves a visit finalized by a
// node that kept no versions (before schema 8) shows as version 1 and can
// be amended, its row kept as version 1.
func TestEncounter_AmendFinalizedBeforeVersions(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("meera", edge.RoleDoctor))
	p := n.MustCreatePatient(&edge.Patient{Name: "Ram Lal", Gender: "M", StatedAge: 60})
	db, err := sql.Open("sqlite", "file:"+n.Path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO encounters (id, patient_id, type, started_at, complaint, status, created_at, updated_at, node_seq)
		VALUES ('old-visit', ?, 'opd', 1700000000000, 'old cough', 'final', 1700000000000, 1700000000000, 1)`, p.ID); err != nil {
		t.Fatal(err)
	}
	resp, body := c.Get("/encounters/old-visit")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Version 1</span>Finalized 15 Nov 2023") {
		t.Fatal("old visit does not show as version 1 with its time")
	}
	resp, body = c.Post("/encounters/old-visit/amend", url.Values{"type": {"opd"}, "action": {"amend"},
		"complaint": {"old cough, better"}, "reason": {"complaint completed"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = c.Get("/encounters/old-visit/versions/1")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "old cough") || strings.Contains(body, "old cough, better") {
		t.Fatal("version 1 is not the row as it was")
	}
}
