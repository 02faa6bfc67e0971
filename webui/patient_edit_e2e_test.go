package webui_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/healthpost/healthpost/edge"
)

// TestBrowser_PatientEdit is a health worker correcting a misspelt name in
// real Chromium at 360 px, then finding the patient by the new name.
func TestBrowser_PatientEdit(t *testing.T) {
	n := MustStartNode(t)
	n.MustCreateUser("asha", edge.RoleHealthWorker)
	p := n.MustCreatePatient(&edge.Patient{Name: "Sunita Devi", Gender: "F", StatedAge: 34, Village: "Rampur"})
	ctx := MustBrowser(t)
	run(t, ctx, "sign in",
		chromedp.Navigate(n.URL+"/login?next=/patients/"+p.ID),
		chromedp.SendKeys(chromedp.ID("username"), "asha"),
		chromedp.SendKeys(chromedp.ID("password"), Password("asha")),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("edit-patient")),
	)
	run(t, ctx, "open the correction form",
		chromedp.Click(chromedp.ID("edit-patient")),
		chromedp.WaitVisible(chromedp.ID("save-patient")),
	)
	shot(t, ctx, "15-patient-edit")
	run(t, ctx, "correct the name",
		chromedp.SetValue(chromedp.ID("name"), "Sunita Kumari"),
		chromedp.Click(chromedp.ID("save-patient")),
		chromedp.WaitVisible(chromedp.CSS(`p[data-flash="flash.patient_saved"]`)),
	)
	if name := get(t, ctx, "name", chromedp.Text(chromedp.ID("patient-name"))); name != "Sunita Kumari" {
		t.Fatalf("name after correction=%q", name)
	}
	run(t, ctx, "search by the new name",
		chromedp.Navigate(n.URL+"/patients"),
		chromedp.SendKeys(chromedp.ID("q"), "kumari\n"),
		chromedp.WaitVisible(chromedp.ID("results")),
	)
	if results := get(t, ctx, "results", chromedp.Text(chromedp.ID("results"))); !strings.Contains(results, "Sunita Kumari") {
		t.Fatalf("results=%q", results)
	}
}
