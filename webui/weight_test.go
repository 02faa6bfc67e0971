package webui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// pageLimit is what one page may weigh on the wire, compressed, with the
// stylesheet and script it loads (a slow tablet on weak Wi-Fi).
const pageLimit = 60 << 10

// TestPageWeight measures each main page as a tablet fetches it: the
// gzipped HTML plus the gzipped assets it links, and fails above 60 KB.
func TestPageWeight(t *testing.T) {
	n := MustStartNode(t)
	doc := n.MustCreateUser("meera", edge.RoleDoctor)
	admin := n.MustCreateUser("boss", edge.RoleAdmin)
	p := n.MustCreatePatient(&edge.Patient{Name: "Sunita Devi", Gender: "F", BirthDate: "1990-04-12", Village: "Rampur",
		Phone: "9876543210", ABHANumber: "91-2666-2007-2857"})
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: doc.ID})
	// A patient with a long history: 40 visits with vitals, diagnoses and medicines.
	var last string
	for i := range 40 {
		e := &edge.Encounter{PatientID: p.ID, Type: edge.EncounterOPD, Status: edge.EncounterFinal,
			StartedAt: time.Now().AddDate(0, 0, -7*i), Complaint: "fever and cough for three days, body ache",
			Observations: []edge.Observation{{LOINC: "8480-6", Value: 120 + float64(i%20), Unit: "mm[Hg]"},
				{LOINC: "8462-4", Value: 80, Unit: "mm[Hg]"}, {LOINC: "29463-7", Value: 55, Unit: "kg"},
				{LOINC: "2708-6", Value: 97, Unit: "%"}, {LOINC: "8310-5", Value: 37, Unit: "Cel"}, {LOINC: "2339-0", Value: 140, Unit: "mg/dL"}},
			Diagnoses:     []edge.Diagnosis{{Code: "J06.9", Display: "Acute upper respiratory infection"}, {Code: "I10", Display: "High blood pressure"}},
			Prescriptions: []edge.Prescription{{Drug: "Paracetamol", Strength: "500 mg tablet", Dose: "1", Frequency: "TDS", DurationDays: 3}}}
		if err := n.Store.CreateEncounter(ctx, e); err != nil {
			t.Fatal(err)
		}
		last = e.ID
	}
	c, a := n.Client(), n.Client()
	c.LoginAs(n, doc)
	a.LoginAs(n, admin)

	assetRe := regexp.MustCompile(`(?:href|src)="(/static/[^"]+\.(?:css|js))"`)
	get := func(c *client, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, n.URL+path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("GET %s: %d, Content-Encoding %q", path, resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		return len(b), ""
	}
	var report []string
	for _, pg := range []struct {
		c    *client
		path string
	}{
		{n.Client(), "/login"}, {c, "/"}, {c, "/patients?q=sunita"}, {c, "/patients/new"}, {c, "/patients/" + p.ID},
		{c, "/patients/" + p.ID + "/encounters/new?type=opd"}, {c, "/patients/" + p.ID + "/encounters/new?type=anc"},
		{c, "/encounters/" + last}, {c, "/encounters/" + last + "/print?doc=summary&paper=a4"}, {c, "/inbox"},
		{a, "/admin"}, {a, "/admin/users"}, {a, "/admin/devices"}, {a, "/admin/facility"},
	} {
		size, _ := get(pg.c, pg.path)
		// The page's own HTML, uncompressed, to find its assets.
		_, html := pg.c.Get(pg.path)
		total := size
		for _, m := range assetRe.FindAllStringSubmatch(html, -1) {
			s, _ := get(pg.c, m[1])
			total += s
		}
		report = append(report, fmt.Sprintf("%-60s html %5.1f KB, with assets %5.1f KB", pg.path, float64(size)/1024, float64(total)/1024))
		if total > pageLimit {
			t.Errorf("%s weighs %d bytes compressed with its assets, over %d", pg.path, total, pageLimit)
		}
	}
	t.Logf("page weights (gzip):\n%s", strings.Join(report, "\n"))
}
