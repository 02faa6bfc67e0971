package webui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

func registrationForm() url.Values {
	return url.Values{"name": {"Sunita Devi"}, "gender": {"F"}, "birth_date": {"1990-04-12"}, "phone": {"98765 43210"},
		"village": {"Rampur"}, "address": {"Ward 4"}, "abha_number": {"91-2666-2007-2857"}, "abha_address": {"sunita@abdm"},
		"consent": {"yes"}, "allergies": {"Penicillin, sulpha"}}
}

func TestPatient_Register(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))

	// Ensure a form with mistakes comes back with what was typed and plain
	// messages, and saves nothing.
	f := registrationForm()
	f.Set("abha_number", "91-2666-2007-2858") // one digit wrong
	f.Set("phone", "12345")
	f.Del("consent")
	resp, body := c.Post("/patients", f)
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	for _, want := range []string{`value="Sunita Devi"`, `value="91-2666-2007-2858"`, `value="Penicillin, sulpha"`,
		"typing mistake", "10 digits", "Ask the patient and choose Yes or No"} {
		if !strings.Contains(body, want) {
			t.Errorf("re-rendered form lacks %q", want)
		}
	}
	if got := n.count(`SELECT count(*) FROM patients`); got != 0 {
		t.Fatalf("patients=%d after a refused form", got)
	}

	// Ensure a good form registers the patient with allergies and consent.
	resp, body = c.Post("/patients", registrationForm())
	wantStatus(t, resp, body, http.StatusSeeOther)
	page := location(resp)
	if !strings.HasPrefix(page, "/patients/") {
		t.Fatalf("Location=%q", page)
	}
	resp, body = c.Get(page)
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"Sunita Devi", "P-000001", "91-2666-2007-2857", "Penicillin", "Given on", "Patient registered."} {
		if !strings.Contains(body, want) {
			t.Errorf("patient page lacks %q", want)
		}
	}
	id := strings.TrimPrefix(strings.Split(page, "?")[0], "/patients/")
	if got := n.count(`SELECT count(*) FROM patients WHERE id = ? AND consent_link = 1 AND abha_number = '91266620072857'`, id); got != 1 {
		t.Fatal("patient not saved with ABHA and consent")
	}
	if got := n.count(`SELECT count(*) FROM audit_log WHERE patient_id = ? AND actor LIKE 'user:%' AND action IN
		('patient.create', 'allergy.create', 'patient.read')`, id); got != 4 {
		t.Fatalf("audit entries for the patient=%d, want create, 2 allergies, read", got)
	}

	// Ensure the same ABHA number cannot be registered twice.
	f = registrationForm()
	f.Set("name", "Someone Else")
	f.Set("confirm", "1")
	resp, body = c.Post("/patients", f)
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "Another patient has this ABHA number") {
		t.Fatalf("no ABHA taken message")
	}

	// Ensure the likely duplicate is shown before creating, then created on confirm.
	f = url.Values{"name": {"सुनीता देवी"}, "gender": {"F"}, "stated_age": {"36"}, "village": {"रामपुर"}}
	resp, body = c.Post("/patients", f)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `id="duplicates"`) || !strings.Contains(body, "P-000001") || !strings.Contains(body, `name="confirm" value="1"`) {
		t.Fatalf("duplicates not shown:\n%.2000s", body)
	}
	f.Set("confirm", "1")
	resp, body = c.Post("/patients", f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if got := n.count(`SELECT count(*) FROM patients`); got != 2 {
		t.Fatalf("patients=%d", got)
	}

	// Ensure search finds by misspelled name, Devanagari, phone, ABHA and ID.
	for _, q := range []string{"suneeta", "सुनीता", "9876543210", "91-2666-2007-2857", "sunita@abdm", "P-000001", "1"} {
		resp, body := c.Get("/patients?q=" + url.QueryEscape(q))
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "P-000001") {
			t.Errorf("search %q did not find P-000001", q)
		}
	}
	resp, body = c.Get("/patients?q=" + url.QueryEscape("Mohammad"))
	if !strings.Contains(body, `id="no-results"`) {
		t.Errorf("search for a stranger found someone")
	}
}

func TestPatient_ScanABHAQR(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))
	for _, tc := range []struct {
		name, qr string
		want     []string
	}{
		// The SIMPLE app's sample, and the ABHA card form with spaces in keys (reference/abdm.md §2).
		{"ABHACard", `{"hidn":"28-3222-2283-6682","hid":"mogithduraisamy@ndhm","name":"Mogith","gender":"M","statelgd":"34","distlgd":"600","dob":"25/6/2012","address":"No.42 eswaran kovil street"}`,
			[]string{`value="Mogith"`, `value="2012-06-25"`, `value="28-3222-2283-6682"`, `value="mogithduraisamy@ndhm"`, `value="M" checked`, "No.42 eswaran kovil street"}},
		{"HiddenDay", `{"hidn":"15-3638-0684-6247","hid":"kiranma@abdm","name":"Kiran","gender":"F","dob":"xx/9/1985","state name":"Karnataka","district_name":"Bengaluru","mobile":"984x1x2x6x","address":"-"}`,
			[]string{`value="Kiran"`, `name="stated_age" type="number" inputmode="numeric" min="0" max="130" value="`, "Bengaluru, Karnataka", `value="F" checked`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.Post("/patients/new/scan", url.Values{"qr": {tc.qr}})
			wantStatus(t, resp, body, http.StatusOK)
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("form lacks %q", w)
				}
			}
			if strings.Contains(body, "984x1x2x6x") {
				t.Error("a masked mobile number was filled in")
			}
		})
	}
	resp, body := c.Post("/patients/new/scan", url.Values{"qr": {"<script>alert(1)</script>"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "not an ABHA QR code") || strings.Contains(body, "<script>alert") {
		t.Fatal("bad QR not refused safely")
	}
}

// TestHostileInput proves hostile input is refused with a field error or
// shown as text, and that refused input changes nothing.
func TestHostileInput(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))

	t.Run("ScriptInName", func(t *testing.T) {
		f := url.Values{"name": {`<script>alert("x")</script>`}, "gender": {"F"}, "stated_age": {"30"}, "confirm": {"1"}}
		resp, body := c.Post("/patients", f)
		wantStatus(t, resp, body, http.StatusUnprocessableEntity)
		if strings.Contains(body, `<script>alert`) || !strings.Contains(body, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`) {
			t.Fatalf("name not escaped:\n%.1500s", body)
		}
		if !strings.Contains(body, "without &lt; or &gt;") {
			t.Fatal("no field error")
		}
	})
	t.Run("InvalidUTF8", func(t *testing.T) {
		f := url.Values{"name": {"Sun\xffita"}, "gender": {"F"}, "stated_age": {"30"}, "village": {"Ram\xc3pur"}, "confirm": {"1"}}
		resp, body := c.Post("/patients", f)
		wantStatus(t, resp, body, http.StatusUnprocessableEntity)
		if !strings.Contains(body, "characters that cannot be saved") {
			t.Fatal("no field error for invalid UTF-8")
		}
	})
	t.Run("OversizedBody", func(t *testing.T) {
		f := url.Values{"name": {"Ram"}, "gender": {"M"}, "stated_age": {"30"}, "address": {strings.Repeat("x", 300<<10)}, "confirm": {"1"}}
		resp, body := c.Post("/patients", f)
		wantStatus(t, resp, body, http.StatusRequestEntityTooLarge)
	})
	if got := n.count(`SELECT count(*) FROM patients`); got != 0 {
		t.Fatalf("patients=%d after refused forms", got)
	}
	t.Run("QuotesAndAmpersands", func(t *testing.T) {
		f := url.Values{"name": {`O'Brien "Joe" & Sons`}, "gender": {"M"}, "stated_age": {"30"}, "village": {`<b>Rampur</b>`}, "confirm": {"1"}}
		resp, body := c.Post("/patients", f)
		wantStatus(t, resp, body, http.StatusSeeOther)
		resp, body = c.Get(location(resp))
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, `O&#39;Brien &#34;Joe&#34; &amp; Sons`) || !strings.Contains(body, `&lt;b&gt;Rampur&lt;/b&gt;`) || strings.Contains(body, "<b>Rampur") {
			t.Fatal("name or village not escaped")
		}
		// A search with markup is shown as text.
		resp, body = c.Get("/patients?q=" + url.QueryEscape(`"><script>alert(1)</script>`))
		wantStatus(t, resp, body, http.StatusOK)
		if strings.Contains(body, "<script>alert(1)") {
			t.Fatal("search query not escaped")
		}
	})
	// Every page carries a Content-Security-Policy with no inline script.
	resp, _ := c.Get("/patients")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP=%q", csp)
	}
}
