package webui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

var revisionRe = regexp.MustCompile(`name="revision" value="(\d+)"`)

// editForm is the correction form as the page filled it: every field's
// value, read back from the page so a test changes only what it means to.
func editForm(t *testing.T, body string) url.Values {
	t.Helper()
	f := url.Values{}
	for _, m := range regexp.MustCompile(`<input id="([a-z_]+)" name="[a-z_]+"[^>]* value="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		f.Set(m[1], htmlUnescape(m[2]))
	}
	if m := regexp.MustCompile(`<textarea id="address"[^>]*>([^<]*)</textarea>`).FindStringSubmatch(body); m != nil {
		f.Set("address", htmlUnescape(m[1]))
	}
	for _, name := range []string{"gender", "consent"} {
		if m := regexp.MustCompile(`name="` + name + `" value="([^"]+)" checked`).FindStringSubmatch(body); m != nil {
			f.Set(name, m[1])
		}
	}
	m := revisionRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no revision in the form:\n%.2000s", body)
	}
	f.Set("revision", m[1])
	return f
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&amp;", "&").Replace(s)
}

func TestPatient_Edit(t *testing.T) {
	n := MustStartNode(t)
	asha := n.MustCreateUser("asha", edge.RoleHealthWorker)
	c := n.Client()
	c.LoginAs(n, asha)
	resp, body := c.Post("/patients", registrationForm())
	wantStatus(t, resp, body, http.StatusSeeOther)
	id := strings.TrimPrefix(strings.Split(location(resp), "?")[0], "/patients/")
	edit := "/patients/" + id + "/edit"

	// Ensure the form comes filled with what is saved, and reading it is audited.
	resp, body = c.Get("/patients/" + id)
	if !strings.Contains(body, `href="`+edit+`"`) {
		t.Fatal("the patient page has no link to correct the details")
	}
	reads := n.count(`SELECT count(*) FROM audit_log WHERE action = 'patient.read' AND actor = ? AND patient_id = ?`, "user:"+asha.ID, id)
	resp, body = c.Get(edit)
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`value="Sunita Devi"`, `value="91-2666-2007-2857"`, `value="sunita@abdm"`, `value="9876543210"`,
		`value="1990-04-12"`, `value="F" checked`, `value="yes" checked`, `action="` + edit + `"`, "P-000001"} {
		if !strings.Contains(body, want) {
			t.Errorf("correction form lacks %s", want)
		}
	}
	if strings.Contains(body, `name="allergies"`) || strings.Contains(body, `action="/patients/new/scan"`) {
		t.Error("the correction form offers what it does not save (allergies, a new scan)")
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'patient.read' AND actor = ? AND patient_id = ?`, "user:"+asha.ID, id); got != reads+1 {
		t.Fatalf("reads audited=%d, want %d", got, reads+1)
	}

	// Ensure a correction is saved, shown escaped, found by the new name at
	// once, and audited with the user and the fields.
	f := editForm(t, body)
	f.Set("name", "Sunita Kumari")
	f.Set("village", "सीतापुर")
	f.Set("address", `<script>alert("x")</script> & O'Brien Lane`)
	resp, body = c.Post(edit, f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got, want := location(resp), "/patients/"+id+"?done=patient_saved"; got != want {
		t.Fatalf("Location=%q, want %q", got, want)
	}
	resp, body = c.Get(location(resp))
	for _, want := range []string{"Sunita Kumari", "सीतापुर", "Patient details saved.", "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; O&#39;Brien Lane"} {
		if !strings.Contains(body, want) {
			t.Errorf("patient page lacks %q", want)
		}
	}
	if strings.Contains(body, `<script>alert`) {
		t.Fatal("a hostile address was rendered as markup")
	}
	for q, found := range map[string]bool{"kumari": true, "कुमारी": true, "sunita devi": false} {
		_, body := c.Get("/patients?q=" + url.QueryEscape(q))
		if got := strings.Contains(body, "P-000001"); got != found {
			t.Errorf("search %q found P-000001=%v, want %v", q, got, found)
		}
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'patient.update' AND actor = ? AND patient_id = ?
		AND detail = 'fields=name,address,village'`, "user:"+asha.ID, id); got != 1 {
		t.Fatalf("correction audited %d times with the user and fields, want 1", got)
	}

	// Ensure a form filled before someone else saved does not overwrite
	// their change: it comes back with a plain message, what was typed, and
	// what is saved now; saved again on purpose, it goes through.
	ravi := n.Client()
	ravi.LoginAs(n, n.MustCreateUser("ravi", edge.RoleDoctor))
	_, body = c.Get(edit)
	mine := editForm(t, body)
	_, body = ravi.Get(edit)
	theirs := editForm(t, body)
	theirs.Set("phone", "9123456780")
	resp, body = ravi.Post(edit, theirs)
	wantStatus(t, resp, body, http.StatusSeeOther)
	mine.Set("name", "Sunita K. Sharma")
	resp, body = c.Post(edit, mine)
	wantStatus(t, resp, body, http.StatusConflict)
	for _, want := range []string{`id="stale"`, "nothing was saved", `value="Sunita K. Sharma"`, "Saved now: 9123456780", "Saved now: Sunita Kumari"} {
		if !strings.Contains(body, want) {
			t.Errorf("stale form lacks %q", want)
		}
	}
	if strings.Contains(body, "Saved now: सीतापुर") {
		t.Error("a field that did not differ is flagged")
	}
	if got := n.count(`SELECT count(*) FROM patients WHERE id = ? AND name = 'Sunita Kumari' AND phone = '9123456780'`, id); got != 1 {
		t.Fatal("the stale form changed the patient")
	}
	again := editForm(t, body)
	again.Set("phone", "9123456780")
	resp, body = c.Post(edit, again)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := n.count(`SELECT count(*) FROM patients WHERE id = ? AND name = 'Sunita K. Sharma' AND phone = '9123456780'`, id); got != 1 {
		t.Fatal("the correction made from the saved details was not saved")
	}

	// Ensure a change of ABHA identity and of consent show in the audit
	// log (without the numbers) and on the page.
	_, body = c.Get(edit)
	f = editForm(t, body)
	f.Set("abha_number", "43-4221-5105-6749")
	f.Set("consent", "no")
	resp, body = c.Post(edit, f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'patient.abha_change' AND actor = ? AND patient_id = ?
		AND detail = 'abha_number=changed'`, "user:"+asha.ID, id); got != 1 {
		t.Fatal("change of ABHA number not audited")
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'patient.consent' AND detail = 'consent=withdrawn' AND patient_id = ?`, id); got != 1 {
		t.Fatal("withdrawal of consent not audited")
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE detail LIKE '%4221%' OR detail LIKE '%2666%'`); got != 0 {
		t.Fatal("an ABHA number is in the audit log")
	}
	if _, body = c.Get("/patients/" + id); !strings.Contains(body, "43-4221-5105-6749") || !strings.Contains(body, "Withdrawn on") {
		t.Fatal("the patient page does not show the new ABHA number and the withdrawn consent")
	}
}

func TestPatient_EditRefusals(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))
	p := n.MustCreatePatient(&edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 34, Village: "Rampur"})
	n.MustCreatePatient(&edge.Patient{Name: "Laxmi Bai", Gender: "F", StatedAge: 45, ABHANumber: "91-2666-2007-2857", ABHAAddress: "laxmi@abdm", ConsentLink: true})
	edit := "/patients/" + p.ID + "/edit"
	_, body := c.Get(edit)
	if !strings.Contains(body, `name="stated_age" type="number" inputmode="numeric" min="0" max="130" value="34"`) {
		t.Fatal("the stated age is not in the form")
	}
	base := editForm(t, body)
	rev := n.count(`SELECT node_seq FROM patients WHERE id = ?`, p.ID)

	for _, tc := range []struct {
		name   string
		change func(f url.Values)
		status int
		want   string
	}{
		{"ABHANumberTaken", func(f url.Values) { f.Set("abha_number", "91266620072857"); f.Set("consent", "yes") }, http.StatusUnprocessableEntity, "Another patient has this ABHA number"},
		{"ABHAAddressTaken", func(f url.Values) { f.Set("abha_address", "Laxmi@abdm"); f.Set("consent", "yes") }, http.StatusUnprocessableEntity, "Another patient has this ABHA address"},
		{"ABHAChecksum", func(f url.Values) { f.Set("abha_number", "91-2666-2007-2858"); f.Set("consent", "yes") }, http.StatusUnprocessableEntity, "typing mistake"},
		{"ConsentNotAsked", func(f url.Values) { f.Set("abha_address", "sunita@abdm"); f.Del("consent") }, http.StatusUnprocessableEntity, "Ask the patient and choose Yes or No"},
		{"ScriptName", func(f url.Values) { f.Set("name", `<script>alert(1)</script>`) }, http.StatusUnprocessableEntity, `value="&lt;script&gt;alert(1)&lt;/script&gt;"`},
		{"NULName", func(f url.Values) { f.Set("name", "Sun\x00ita") }, http.StatusUnprocessableEntity, "characters that cannot be saved"},
		{"InvalidUTF8", func(f url.Values) { f.Set("village", "Ram\xffpur") }, http.StatusUnprocessableEntity, "characters that cannot be saved"},
		{"Phone", func(f url.Values) { f.Set("phone", "12345") }, http.StatusUnprocessableEntity, "10 digits"},
		{"Age", func(f url.Values) { f.Set("stated_age", "-4") }, http.StatusUnprocessableEntity, "whole years"},
		{"NoRevision", func(f url.Values) { f.Del("revision"); f.Set("name", "Sunita Kumari") }, http.StatusConflict, `id="stale"`},
		{"ForgedRevision", func(f url.Values) { f.Set("revision", "9999"); f.Set("name", "Sunita Kumari") }, http.StatusConflict, `id="stale"`},
		{"GarbageRevision", func(f url.Values) { f.Set("revision", "1; DROP TABLE patients"); f.Set("name", "Sunita Kumari") }, http.StatusConflict, `id="stale"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range base {
				f[k] = append([]string(nil), v...)
			}
			tc.change(f)
			resp, body := c.Post(edit, f)
			wantStatus(t, resp, body, tc.status)
			if !strings.Contains(body, tc.want) {
				t.Fatalf("answer lacks %q:\n%.3000s", tc.want, body)
			}
			if strings.Contains(body, "<script>alert") {
				t.Fatal("hostile input rendered as markup")
			}
			if got := n.count(`SELECT count(*) FROM patients WHERE id = ? AND node_seq = ? AND name = 'Sunita Devi'
				AND abha_number IS NULL AND abha_address IS NULL AND village = 'Rampur'`, p.ID, rev); got != 1 {
				t.Fatal("a refused correction changed the patient")
			}
		})
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE action = 'patient.update'`); got != 0 {
		t.Fatalf("refused corrections audited as writes: %d", got)
	}
	// Unknown patients are not found; other roles may not correct.
	resp, body := c.Get("/patients/" + edge.NewID() + "/edit")
	wantStatus(t, resp, body, http.StatusNotFound)
	resp, body = c.Post("/patients/"+edge.NewID()+"/edit", base)
	wantStatus(t, resp, body, http.StatusNotFound)
	admin := n.Client()
	admin.LoginAs(n, n.MustCreateUser("root", edge.RoleAdmin))
	resp, body = admin.Post(edit, base)
	wantStatus(t, resp, body, http.StatusForbidden)
}
