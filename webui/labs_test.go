package webui_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
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

var (
	formRe     = regexp.MustCompile(`(?s)<form[^>]*id="encounter-form"[^>]*>(.*?)</form>`)
	inputRe    = regexp.MustCompile(`<input\b([^>]*)>`)
	selectRe   = regexp.MustCompile(`(?s)<select\b([^>]*)>(.*?)</select>`)
	optionRe   = regexp.MustCompile(`<option\b([^>]*)>`)
	textareaRe = regexp.MustCompile(`(?s)<textarea\b([^>]*)>(.*?)</textarea>`)
	attrRe     = regexp.MustCompile(`([a-z][a-z-]*)(?:="([^"]*)")?`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(s, -1) {
		m[a[1]] = html.UnescapeString(a[2])
	}
	return m
}

// visitFormValues is what a browser submits of the visit form on page as
// it stands (inputs, ticked boxes, chosen options, text areas), without
// any button's action.
func visitFormValues(tb testing.TB, page string) url.Values {
	tb.Helper()
	m := formRe.FindStringSubmatch(page)
	if m == nil {
		tb.Fatal("no visit form on the page")
	}
	form := m[1]
	v := url.Values{}
	for _, in := range inputRe.FindAllStringSubmatch(form, -1) {
		a := attrs(in[1])
		_, checked := a["checked"]
		if a["name"] == "" || ((a["type"] == "checkbox" || a["type"] == "radio") && !checked) {
			continue
		}
		v.Add(a["name"], a["value"])
	}
	for _, sel := range selectRe.FindAllStringSubmatch(form, -1) {
		opts := optionRe.FindAllStringSubmatch(sel[2], -1)
		if len(opts) == 0 {
			continue
		}
		chosen := attrs(opts[0][1])["value"]
		for _, o := range opts {
			if a := attrs(o[1]); strings.Contains(o[1], " selected") {
				chosen = a["value"]
			}
		}
		v.Add(attrs(sel[1])["name"], chosen)
	}
	for _, ta := range textareaRe.FindAllStringSubmatch(form, -1) {
		v.Add(attrs(ta[1])["name"], html.UnescapeString(strings.TrimPrefix(ta[2], "\n")))
	}
	return v
}

// Ensure the amendment form of a visit with lab tests, a referral and a
// vaccine is filled with them: pending tests as rows, tests with a result
// listed as kept, the referral, the dose and its date; that saving it as
// the browser sends it keeps every one of them, results and all; and that
// a test resulted from the patient's page while the form was open is kept,
// not lost or doubled.
func TestEncounter_AmendLabsReferralVaccines(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("anm.kavita", edge.RoleHealthWorker))
	p := n.MustCreatePatient(&edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 24, Village: "Rampur"})

	f := visitForm("finalize")
	f.Set("type", "anc")
	f.Set("lab_rows", "3")
	f.Set("lab_test_0", "hb")
	f.Set("lab_test_1", "upt")
	f.Set("lab_answer_1", "pos")
	f.Set("lab_test_2", "malaria_rdt")
	f.Set("ref_facility", "CHC <Sitapur>")
	f.Set("ref_urgency", "urgent")
	f.Set("ref_reason", "BP 150/100")
	f.Add("vaccine", "TD-1")
	f.Set("vax_date", "2026-11-20")
	resp, body := c.Post("/patients/"+p.ID+"/encounters", f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	enc := strings.TrimPrefix(strings.Split(location(resp), "?")[0], "/encounters/")
	e, err := n.Store.Encounter(system(), enc)
	if err != nil {
		t.Fatal(err)
	}
	hb, upt, rdt := e.LabOrders[0], e.LabOrders[1], e.LabOrders[2]
	resp, body = c.Post("/lab-orders/"+hb.ID+"/result", url.Values{"value": {"9,8"}, "interp": {"L"}})
	wantStatus(t, resp, body, http.StatusSeeOther)

	resp, body = c.Get("/encounters/" + enc + "/amend")
	wantStatus(t, resp, body, http.StatusOK)
	kept := firstMatch(body, `id="kept-labs"`, `</ul>`)
	for _, want := range []string{"Haemoglobin (Hb): <strong>9.8 g/dL</strong> (Low)", "Positive"} {
		if !strings.Contains(kept, want) {
			t.Errorf("kept tests %q lack %q", kept, want)
		}
	}
	for _, want := range []string{`name="lab_id_0" value="` + rdt.ID + `"`, `<option value="malaria_rdt" selected>`,
		`value="CHC &lt;Sitapur&gt;"`, `<option value="urgent" selected>`, ">BP 150/100</textarea>",
		`value="TD-1" checked`, `name="vax_date" value="2026-11-20"`} {
		if !strings.Contains(body, want) {
			t.Errorf("amendment form lacks %q", want)
		}
	}
	if strings.Contains(body, `name="lab_id_1"`) || strings.Contains(body, `value="`+hb.ID+`"`) {
		t.Error("a test with a result is an editable row of the amendment")
	}

	// "Another test" adds a row and keeps the reason.
	form := visitFormValues(t, body)
	form.Set("reason", "complaint completed")
	form.Set("action", "add_lab")
	resp, body = c.Post("/encounters/"+enc+"/amend", form)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `id="lab_test_1"`) || !strings.Contains(body, ">complaint completed</textarea>") || !strings.Contains(body, `id="kept-labs"`) {
		t.Fatal("lab row not added, or the reason or the kept tests lost")
	}

	// Ensure the form saved as it came, with only the complaint changed,
	// keeps every test, result, the referral and the dose.
	form = visitFormValues(t, body)
	form.Set("complaint", "first antenatal visit, 14 weeks")
	form.Set("reason", "complaint completed")
	form.Set("action", "amend")
	resp, body = c.Post("/encounters/"+enc+"/amend", form)
	wantStatus(t, resp, body, http.StatusSeeOther)
	a, err := n.Store.Encounter(system(), enc)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != 2 || a.Complaint != "first antenatal visit, 14 weeks" {
		t.Fatalf("amended visit version %d complaint %q", a.Version, a.Complaint)
	}
	if len(a.LabOrders) != 3 || a.LabOrders[0].ID != hb.ID || a.LabOrders[0].Result == nil || a.LabOrders[0].Result.Value != 9.8 ||
		a.LabOrders[1].ID != upt.ID || a.LabOrders[1].Result == nil || a.LabOrders[1].Result.Answer != "pos" ||
		a.LabOrders[2].ID != rdt.ID || a.LabOrders[2].Status != edge.LabOrdered {
		t.Fatalf("amended orders=%+v", a.LabOrders)
	}
	if r := a.Referral; r == nil || r.Facility != "CHC <Sitapur>" || r.Urgency != "urgent" || r.Reason != "BP 150/100" {
		t.Fatalf("amended referral=%+v", a.Referral)
	}
	if len(a.Immunizations) != 1 || a.Immunizations[0].Vaccine != "TD" || *a.Immunizations[0].Dose != 1 || a.Immunizations[0].GivenOn != "2026-11-20" {
		t.Fatalf("amended vaccines=%+v", a.Immunizations)
	}
	if got := n.count(`SELECT count(*) FROM outbox WHERE entity_id = ? AND entity_version = 2 AND document IN
		('OPConsultRecord', 'ImmunizationRecord', 'PrescriptionRecord', 'WellnessRecord')`, enc); got != 4 {
		t.Fatalf("version 2 rows=%d, want the consultation, the immunization record, the prescription and the vitals", got)
	}
	if got := n.count(`SELECT count(*) FROM outbox WHERE document = 'DiagnosticReportRecord'`); got != 2 {
		t.Fatalf("reports=%d, want the UPT's and the Hb's, once each", got)
	}
	resp, body = c.Get("/encounters/" + enc)
	for _, want := range []string{"Haemoglobin (Hb)", "Malaria rapid test (RDT)", "CHC &lt;Sitapur&gt;", "Td (tetanus-diphtheria) 1", "Amended (version 2)"} {
		if !strings.Contains(body, want) {
			t.Errorf("amended visit page lacks %q", want)
		}
	}

	// Ensure a test resulted from the patient's page while an amendment
	// was open is kept with its result when the amendment is saved, and a
	// vaccine unticked and a referral cleared are removed.
	resp, body = c.Get("/encounters/" + enc + "/amend")
	wantStatus(t, resp, body, http.StatusOK)
	form = visitFormValues(t, body)
	resp, body = c.Post("/lab-orders/"+rdt.ID+"/result", url.Values{"answer": {"pf"}, "interp": {"A"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	form.Del("vaccine")
	form.Set("ref_facility", "")
	form.Set("ref_reason", "")
	form.Set("reason", "Td not given: no stock; referral not needed")
	form.Set("action", "amend")
	resp, body = c.Post("/encounters/"+enc+"/amend", form)
	wantStatus(t, resp, body, http.StatusSeeOther)
	a, err = n.Store.Encounter(system(), enc)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != 3 || len(a.LabOrders) != 3 || a.LabOrders[2].Result == nil || a.LabOrders[2].Result.Answer != "pf" ||
		a.Referral != nil || len(a.Immunizations) != 0 {
		t.Fatalf("version 3=%+v %+v", a, a.LabOrders)
	}
	if got := n.count(`SELECT count(*) FROM outbox WHERE entity_id = ? AND entity_version = 3 AND document IN ('OPConsultRecord', 'ImmunizationRecord')`, enc); got != 2 {
		t.Fatalf("version 3 rows=%d, want the consultation and the withdrawn immunization record", got)
	}
	if got := n.count(`SELECT count(*) FROM outbox WHERE key = ?`, "DiagnosticReportRecord/lab_order/"+rdt.ID+"/v1"); got != 1 {
		t.Fatalf("RDT reports=%d, want 1", got)
	}

	// Ensure a result typed into a test that was resulted meanwhile is not
	// dropped unseen: the form comes back with the row's error.
	resp, body = c.Post("/patients/"+p.ID+"/encounters", f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	enc2 := strings.TrimPrefix(strings.Split(location(resp), "?")[0], "/encounters/")
	resp, body = c.Get("/encounters/" + enc2 + "/amend")
	wantStatus(t, resp, body, http.StatusOK)
	form = visitFormValues(t, body)
	e2, err := n.Store.Encounter(system(), enc2)
	if err != nil {
		t.Fatal(err)
	}
	resp, body = c.Post("/lab-orders/"+e2.LabOrders[0].ID+"/result", url.Values{"value": {"11"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if form.Get("lab_id_0") != e2.LabOrders[0].ID {
		t.Fatalf("row 0 is %q, want the Hb order", form.Get("lab_id_0"))
	}
	form.Set("lab_value_0", "12.5")
	form.Set("reason", "Hb typed")
	form.Set("action", "amend")
	resp, body = c.Post("/encounters/"+enc2+"/amend", form)
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "This test already has a result or was cancelled") || !strings.Contains(body, `value="12.5"`) {
		t.Fatal("the typed result was dropped without a word")
	}
	if got := n.count(`SELECT count(*) FROM encounters WHERE id = ? AND version = 1`, enc2); got != 1 {
		t.Fatal("the refused amendment was saved")
	}
}
