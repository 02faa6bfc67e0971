package webui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

// Ensure the visit form orders tests, takes a result in the visit, refers
// and records vaccines; keeps what was typed on errors; and that a pending
// test's result recorded later from the patient page is saved, audited and
// queued as a DiagnosticReportRecord, with hostile text shown escaped.
func TestEncounter_LabsReferralVaccines(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("anm.kavita", edge.RoleHealthWorker))
	p := n.MustCreatePatient(&edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 24, Village: "Rampur"})

	resp, body := c.Get("/patients/" + p.ID + "/encounters/new?type=anc")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`id="lab_test_0"`, `value="malaria_rdt"`, `id="ref_facility"`, `value="TD-1"`, `name="vax_date"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("antenatal form lacks %q", want)
		}
	}

	f := visitForm("finalize")
	f.Set("type", "anc")
	f.Set("lab_rows", "3")
	f.Set("lab_test_0", "hb")
	f.Set("lab_test_1", "upt")
	f.Set("lab_answer_1", "pos")
	f.Set("lab_test_2", "hb")
	f.Set("lab_value_2", "45") // g/dL: impossible
	f.Set("ref_facility", `<script>alert("x")</script> CHC`)
	f.Set("ref_urgency", "urgent")
	f.Set("ref_reason", "BP 150/100")
	f.Add("vaccine", "TD-1")

	// Ensure a mistake comes back with what was typed, saving nothing.
	resp, body = c.Post("/patients/"+p.ID+"/encounters", f)
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	for _, want := range []string{`value="45"`, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; CHC`, "BP 150/100", `value="TD-1" checked`, "not possible for a living patient"} {
		if !strings.Contains(body, want) {
			t.Errorf("re-rendered form lacks %q", want)
		}
	}
	if strings.Contains(body, `<script>alert`) {
		t.Fatal("hostile facility rendered unescaped")
	}
	if got := n.count(`SELECT count(*) FROM encounters`); got != 0 {
		t.Fatalf("encounters=%d after a refused form", got)
	}

	// Ensure "another test" adds a row and keeps the others.
	f.Set("action", "add_lab")
	resp, body = c.Post("/patients/"+p.ID+"/encounters", f)
	if !strings.Contains(body, `id="lab_test_3"`) || !strings.Contains(body, `<option value="pos" selected>`) {
		t.Fatal("lab row not added or the answer lost")
	}

	// Finalize with the mistake fixed.
	f.Set("action", "finalize")
	f.Set("lab_rows", "2")
	f.Del("lab_test_2")
	f.Del("lab_value_2")
	resp, body = c.Post("/patients/"+p.ID+"/encounters", f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	enc := strings.TrimPrefix(strings.Split(location(resp), "?")[0], "/encounters/")
	if got := n.count(`SELECT count(*) FROM lab_orders WHERE encounter_id = ?`, enc); got != 2 {
		t.Fatalf("lab orders=%d", got)
	}
	if got := n.count(`SELECT count(*) FROM outbox WHERE document = 'DiagnosticReportRecord'`); got != 1 {
		t.Fatalf("DiagnosticReportRecords=%d, want the UPT's", got)
	}
	if got := n.count(`SELECT count(*) FROM immunizations WHERE vaccine = 'TD' AND dose = 1`); got != 1 {
		t.Fatalf("Td 1 rows=%d", got)
	}
	resp, body = c.Get("/encounters/" + enc)
	for _, want := range []string{"Haemoglobin (Hb)", "Waiting for result", "Positive", "&lt;script&gt;", "Urgent (today)", "Td (tetanus-diphtheria) 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("visit page lacks %q", want)
		}
	}
	resp, body = c.Get("/encounters/" + enc + "/print?doc=summary&paper=a4")
	for _, want := range []string{"Haemoglobin (Hb)", "Positive", "&lt;script&gt;", "रेफ़रल"} {
		if !strings.Contains(body, want) {
			t.Errorf("printed summary lacks %q", want)
		}
	}

	// Ensure the patient page lists the pending haemoglobin with its action.
	resp, body = c.Get("/patients/" + p.ID)
	order := strings.TrimSpace(firstMatch(body, `href="/lab-orders/`, `/result"`))
	if order == "" || !strings.Contains(body, "Lab tests waiting for results") {
		t.Fatal("no pending test with a record-result link on the patient page")
	}

	// Ensure a bad result re-renders with what was typed, and a good one is
	// saved, audited and queued.
	resp, body = c.Post("/lab-orders/"+order+"/result", map[string][]string{"value": {"abc"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, `value="abc"`) || !strings.Contains(body, "Type a number") {
		t.Fatal("result form lost the value or its error")
	}
	resp, body = c.Post("/lab-orders/"+order+"/result", map[string][]string{"value": {"9,8"}, "interp": {"L"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := n.count(`SELECT count(*) FROM lab_orders WHERE id = ? AND status = 'resulted' AND value = 9.8 AND interpretation = 'L'`, order); got != 1 {
		t.Fatal("result not saved")
	}
	if got := n.count(`SELECT count(*) FROM outbox WHERE key = ?`, "DiagnosticReportRecord/lab_order/"+order+"/v1"); got != 1 {
		t.Fatal("result not queued")
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'lab.result' AND entity_id = ? AND actor LIKE 'user:%'`, order); got != 1 {
		t.Fatal("result not audited as the user")
	}
	// A second result is refused, and the page no longer lists the test.
	resp, body = c.Post("/lab-orders/"+order+"/result", map[string][]string{"value": {"10"}})
	wantStatus(t, resp, body, http.StatusConflict)
	resp, body = c.Get("/patients/" + p.ID)
	if strings.Contains(body, "/lab-orders/"+order) {
		t.Fatal("a resulted test is still listed as pending")
	}
	// An unknown order is not found.
	resp, body = c.Get("/lab-orders/01940000-0000-7000-8000-000000000000/result")
	wantStatus(t, resp, body, http.StatusNotFound)
}

// firstMatch returns the text between the first start and the end after it.
func firstMatch(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}
