package webui_test

import (
	"database/sql"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

// TestUnexpectedError_Ref proves an unexpected failure shows "Something
// went wrong (ref …)", logs the same ref with the cause, and shows the
// cause to nobody.
func TestUnexpectedError_Ref(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("asha", edge.RoleHealthWorker))
	// Break the search index behind the store's back.
	db, err := sql.Open("sqlite", "file:"+n.Path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TABLE patient_search_tokens`); err != nil {
		t.Fatal(err)
	}
	resp, body := c.Get("/patients?q=sunita")
	wantStatus(t, resp, body, http.StatusInternalServerError)
	m := regexp.MustCompile(`Something went wrong \(ref ([2-9A-Z]{5})\)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no ref:\n%.1500s", body)
	}
	if strings.Contains(body, "no such table") {
		t.Fatal("the page shows the internal error")
	}
	log := n.Log.String()
	if !strings.Contains(log, "ref="+m[1]) || !strings.Contains(log, "no such table") {
		t.Fatalf("log lacks the ref or the cause:\n%s", log)
	}
}

// TestNoPHIInLogs drives the main flows and checks the node's log holds
// IDs only: no name, phone, ABHA number or address, and no measured value.
func TestNoPHIInLogs(t *testing.T) {
	n := MustStartNode(t)
	c := n.Client()
	c.LoginAs(n, n.MustCreateUser("meera", edge.RoleDoctor))
	f := url.Values{"name": {"Zorawar Quixotic"}, "gender": {"M"}, "birth_date": {"1961-02-03"}, "phone": {"9123456789"},
		"village": {"Xanaduvillage"}, "abha_number": {"91-1130-8436-0800"}, "abha_address": {"zorawarq@abdm"}, "consent": {"yes"},
		"allergies": {"Sulphanilamide"}}
	resp, body := c.Post("/patients", f)
	wantStatus(t, resp, body, http.StatusSeeOther)
	pid := strings.TrimPrefix(strings.Split(location(resp), "?")[0], "/patients/")
	c.Get("/patients?q=Zorawar")
	c.Get("/patients?q=9123456789")
	resp, body = c.Post("/patients/"+pid+"/encounters", url.Values{"type": {"opd"}, "action": {"finalize"},
		"complaint": {"Xylophonic headache"}, "v_sys": {"187"}, "v_dia": {"93"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	c.Get(location(resp))
	c.Post("/patients", url.Values{"name": {"Zorawar <b>"}, "phone": {"9123456789"}}) // refused
	log := n.Log.String()
	for _, phi := range []string{"Zorawar", "Quixotic", "9123456789", "91113084360800", "91-1130", "zorawarq", "Xanaduvillage",
		"Sulphanilamide", "Xylophonic", "187", "1961"} {
		if strings.Contains(log, phi) {
			t.Errorf("the log holds %q:\n%s", phi, log)
		}
	}
}
