package webui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/healthpost/healthpost/edge"
)

// chromiumPath is Debian's chromium, installed by .ci/run.
const chromiumPath = "/usr/bin/chromium"

// MustBrowser starts headless Chromium with a new profile, sized like a
// small Android phone (360 px wide), and accepts confirm() dialogs; extra
// options add command-line flags.
func MustBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is needed for the browser tests (apt-get install chromium; .ci/run does it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(360, 780),
	}
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 780, chromedp.EmulateScale(2))); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// Accept confirm() ("Finalize this visit?") as a person taps OK.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// screenshotDir keeps screenshots when WEBUI_SCREENSHOTS names a directory
// (for a person to look at); failures always keep one in the test's
// artifacts directory, named in the failure message.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("WEBUI_SCREENSHOTS"); d != "" {
		os.MkdirAll(d, 0o755)
		return d
	}
	d := filepath.Join(os.TempDir(), "healthpost-webui-artifacts")
	os.MkdirAll(d, 0o755)
	return d
}

// stepTimeout bounds one step, so a stuck step fails with a screenshot
// while the browser still answers.
const stepTimeout = 20 * time.Second

// run runs browser actions, and on failure saves a screenshot of the page.
func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		failed(t, ctx, step, err)
	}
}

// get runs one browser action that returns a value.
func get[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		failed(t, ctx, step, err)
	}
	return v
}

func failed(t *testing.T, ctx context.Context, step string, err error) {
	t.Helper()
	path := filepath.Join(screenshotDir(t), "failure-"+strings.ReplaceAll(t.Name()+"-"+step, " ", "_")+".png")
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(sctx, chromedp.FullScreenshot(100)); serr == nil {
		os.WriteFile(path, png, 0o644)
	}
	t.Fatalf("%s: %v (screenshot %s)", step, err, path)
}

// shot saves screenshots of the page, one per screenful as a person
// scrolls it, when WEBUI_SCREENSHOTS is set.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("WEBUI_SCREENSHOTS") == "" {
		return
	}
	height := get(t, ctx, "page height", chromedp.Evaluate[int](`document.documentElement.scrollHeight`))
	for i := 0; i*700 < height && i < 8; i++ {
		run(t, ctx, "scroll", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.scrollTo(0, %d)`, i*700)))
		png := get(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
		if err := os.WriteFile(filepath.Join(screenshotDir(t), fmt.Sprintf("%s-%d.png", name, i+1)), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, ctx, "scroll", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
}

// TestBrowser_OPDVisit is a health worker's morning in real Chromium at
// 360 px: sign in, register a patient from an ABHA card's QR code, find her
// again by a misspelled name, record an OPD visit with typed vitals, a
// reading taken live from a BP monitor, a diagnosis and a prescription,
// finalize it, print the slip, correct it by an amendment, see it in the
// timeline, switch to Hindi and sign out.
func TestBrowser_OPDVisit(t *testing.T) {
	n := MustStartNode(t)
	n.MustCreateUser("meera", edge.RoleDoctor)
	dev := &edge.Device{Name: "BP monitor 1", Kind: "bp-monitor", Transport: "mqtt"}
	if err := n.Store.CreateDevice(system(), dev); err != nil {
		t.Fatal(err)
	}
	ctx := MustBrowser(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node log:\n%s", n.Log.String())
		}
	})

	run(t, ctx, "sign in",
		chromedp.Navigate(n.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	shot(t, ctx, "01-login")
	run(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.ID("username"), "meera"),
		chromedp.SendKeys(chromedp.ID("password"), Password("meera")),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("q")),
	)
	shot(t, ctx, "02-home")
	start := time.Now()

	// Register from the ABHA card's QR code, as a scanner types it.
	qr := `{"hidn":"91-2666-2007-2857","hid":"sunita.devi@abdm","name":"Sunita Devi","gender":"F","dob":"12/4/1990","mobile":"9876543210","address":"Ward 4, Rampur"}`
	run(t, ctx, "open registration", chromedp.Navigate(n.URL+"/patients/new"))
	run(t, ctx, "open scan", chromedp.Click(chromedp.CSS(`details summary`)))
	run(t, ctx, "scan QR",
		chromedp.SetValue(chromedp.ID("qr"), qr),
		chromedp.Submit(chromedp.ID("qr")),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)),
	)
	name := get(t, ctx, "read filled form", chromedp.Value(chromedp.ID("name")))
	abha := get(t, ctx, "read filled form", chromedp.Value(chromedp.ID("abha_number")))
	if name != "Sunita Devi" || abha != "91-2666-2007-2857" {
		t.Fatalf("form from QR: name=%q abha=%q", name, abha)
	}
	run(t, ctx, "register",
		chromedp.SendKeys(chromedp.ID("village"), "Rampur"),
		chromedp.Click(chromedp.CSS(`input[name=consent][value=yes]`)),
	)
	shot(t, ctx, "03-patient-form")
	run(t, ctx, "register",
		chromedp.Click(chromedp.ID("register")),
		chromedp.WaitVisible(chromedp.ID("patient-name")),
	)

	// Find her again with a misspelled name.
	run(t, ctx, "search misspelled",
		chromedp.Navigate(n.URL+"/patients"),
		chromedp.SendKeys(chromedp.ID("q"), "Suneeta\n"),
		chromedp.WaitVisible(chromedp.ID("results")),
	)
	results := get(t, ctx, "search results", chromedp.Text(chromedp.ID("results")))
	run(t, ctx, "open patient",
		chromedp.Click(chromedp.CSS(`#results a`)),
		chromedp.WaitVisible(chromedp.ID("new-opd")),
	)
	if !strings.Contains(results, "Sunita Devi") {
		t.Fatalf("search results=%q", results)
	}

	// The OPD visit: typed vitals, then a BP reading taken from the device.
	run(t, ctx, "visit form",
		chromedp.Click(chromedp.ID("new-opd")),
		chromedp.WaitVisible(chromedp.ID("complaint")),
		chromedp.SendKeys(chromedp.ID("complaint"), "Fever and sore throat for 3 days"),
		chromedp.SendKeys(chromedp.ID("v_temp"), "38.4"),
		chromedp.SendKeys(chromedp.ID("v_pulse"), "96"),
		chromedp.SendKeys(chromedp.ID("v_spo2"), "97"),
		chromedp.SendKeys(chromedp.ID("v_weight"), "54.5"),
		chromedp.SendKeys(chromedp.ID("dx_0"), "J02.9 Sore throat (acute pharyngitis)"),
		chromedp.SendKeys(chromedp.ID("rx_drug_0"), "Paracetamol 500 mg tablet"),
		chromedp.SendKeys(chromedp.ID("rx_dose_0"), "1 tablet"),
		chromedp.SetValue(chromedp.ID("rx_freq_0"), "TDS"),
		chromedp.SendKeys(chromedp.ID("rx_days_0"), "3"),
		chromedp.SetValue(chromedp.CSS(`select[name=device]`), dev.ID),
		chromedp.Click(chromedp.ID("take")),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-src]`)),
	)
	// The BP monitor measures now; the reading appears on the page by itself.
	for _, r := range []*edge.Reading{
		{DeviceID: dev.ID, LOINC: "8480-6", Value: 132, Unit: "mm[Hg]", EffectiveAt: time.Now(), MessageID: "m1-sys"},
		{DeviceID: dev.ID, LOINC: "8462-4", Value: 86, Unit: "mm[Hg]", EffectiveAt: time.Now(), MessageID: "m1-dia"},
	} {
		if err := n.Store.SaveReading(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	run(t, ctx, "live reading", chromedp.WaitVisible(chromedp.CSS(`#live li[data-live] + li[data-live]`)))
	live := get(t, ctx, "live readings", chromedp.Text(chromedp.ID("live")))
	if !strings.Contains(live, "132") || !strings.Contains(live, "86") {
		t.Fatalf("live readings=%q", live)
	}
	shot(t, ctx, "04-visit-form")
	run(t, ctx, "finalize",
		chromedp.Click(chromedp.ID("finalize")),
		chromedp.WaitVisible(chromedp.ID("dx-list")),
	)
	elapsed := time.Since(start)
	shot(t, ctx, "05-visit")
	vitals := get(t, ctx, "visit record", chromedp.Text(chromedp.ID("vitals-table")))
	for _, want := range []string{"38.4", "132", "86", "54.5"} {
		if !strings.Contains(vitals, want) {
			t.Errorf("vitals table lacks %s: %q", want, vitals)
		}
	}
	t.Logf("registered a patient and recorded a full OPD visit in %s of browser time", elapsed.Round(time.Second))
	if elapsed > 2*time.Minute {
		t.Errorf("registration and visit took %s, want under 2 minutes", elapsed)
	}

	// Finalizing wrote the outbox rows, in the same transaction.
	if got := n.count(`SELECT count(*) FROM outbox WHERE entity = 'encounter' AND document IN
		('OPConsultRecord', 'PrescriptionRecord', 'WellnessRecord')`); got != 3 {
		t.Fatalf("encounter outbox rows=%d, want 3", got)
	}

	// The print slip, then the timeline.
	run(t, ctx, "print slip",
		chromedp.Click(chromedp.ID("print-slip")),
		chromedp.WaitVisible(chromedp.ID("doc")),
	)
	shot(t, ctx, "06-slip")
	// A temperature misread after finalizing: corrected by an amendment, with its reason.
	run(t, ctx, "amend",
		chromedp.Click(chromedp.ID("print-back")),
		chromedp.WaitVisible(chromedp.ID("dx-list")),
		chromedp.Click(chromedp.ID("amend")),
		chromedp.WaitVisible(chromedp.ID("reason")),
	)
	shot(t, ctx, "07-amend-form")
	run(t, ctx, "save amendment",
		chromedp.SetValue(chromedp.ID("v_temp"), "38.9"),
		chromedp.SendKeys(chromedp.ID("reason"), "Temperature misread"),
		chromedp.Click(chromedp.ID("save-amendment")),
		chromedp.WaitVisible(chromedp.ID("amended-note")),
	)
	note := get(t, ctx, "amended note", chromedp.Text(chromedp.ID("amended-note")))
	if !strings.Contains(note, "Amended (version 2)") || !strings.Contains(note, "Temperature misread") {
		t.Fatalf("amended note=%q", note)
	}
	if vitals := get(t, ctx, "amended vitals", chromedp.Text(chromedp.ID("vitals-table"))); !strings.Contains(vitals, "38.9") || !strings.Contains(vitals, "132") {
		t.Fatalf("amended vitals=%q, want the corrected temperature and the device's BP", vitals)
	}
	shot(t, ctx, "07-amended-visit")
	run(t, ctx, "timeline",
		chromedp.Click(chromedp.ID("back-to-patient")),
		chromedp.WaitVisible(chromedp.ID("timeline")),
	)
	timeline := get(t, ctx, "timeline", chromedp.Text(chromedp.ID("timeline")))
	if !strings.Contains(timeline, "OPD consultation") || !strings.Contains(timeline, "Sore throat") {
		t.Fatalf("timeline=%q", timeline)
	}
	shot(t, ctx, "08-patient")

	// Switch to Hindi, then sign out.
	run(t, ctx, "Hindi",
		chromedp.Click(chromedp.CSS(`footer button[lang=hi]`)),
		chromedp.WaitVisible(chromedp.CSS(`html[lang=hi] #timeline`)),
	)
	heading := get(t, ctx, "heading in Hindi", chromedp.Text(chromedp.CSS(`.newvisit h2`)))
	if heading != "विज़िट शुरू करें" {
		t.Fatalf("heading in Hindi=%q", heading)
	}
	shot(t, ctx, "09-patient-hi")
	run(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS(`footer form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if got := n.count(`SELECT count(*) FROM web_sessions`); got != 0 {
		t.Fatalf("sessions after sign-out=%d", got)
	}
}

// TestBrowser_Admin is an admin's first minutes: sign in from a tablet whose
// clock disagrees with the node's, see the LAN address QR code, set the
// node's time with one tap (the page's script sends the tablet's time), add
// a health worker, and check the devices.
func TestBrowser_Admin(t *testing.T) {
	n := MustStartNode(t)
	n.MustCreateUser("boss", edge.RoleAdmin)
	dev := &edge.Device{Name: "Glucometer 1", Kind: "glucometer", Transport: "serial"}
	if err := n.Store.CreateDevice(system(), dev); err != nil {
		t.Fatal(err)
	}
	// The node's clock is an hour behind the tablets.
	n.Clock.Advance(-time.Hour)
	ctx := MustBrowser(t)
	run(t, ctx, "sign in",
		chromedp.Navigate(n.URL+"/login"),
		chromedp.SendKeys(chromedp.ID("username"), "boss"),
		chromedp.SendKeys(chromedp.ID("password"), Password("boss")),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("set-clock")),
	)
	flash := get(t, ctx, "clock message", chromedp.Text(chromedp.CSS(`p.flash`)))
	if !strings.Contains(flash, "differ by more than 5 minutes") {
		t.Fatalf("flash=%q", flash)
	}
	shot(t, ctx, "09-admin")
	before := time.Now()
	run(t, ctx, "set clock",
		chromedp.Click(chromedp.ID("set-clock")),
		chromedp.WaitVisible(chromedp.CSS(`p[data-flash="flash.clock_set"]`)),
	)
	select {
	case got := <-n.ClockSets:
		if got.Before(before.Add(-5*time.Second)) || got.After(time.Now().Add(5*time.Second)) {
			t.Fatalf("clock set to %v, want the tablet's now (%v)", got, before)
		}
	case <-ctx.Done():
		t.Fatal("the clock was not set")
	}
	run(t, ctx, "add user",
		chromedp.Navigate(n.URL+"/admin/users"),
		chromedp.SendKeys(chromedp.ID("username"), "asha"),
		chromedp.SendKeys(chromedp.ID("display_name"), "Asha Kumari"),
		chromedp.SetValue(chromedp.ID("role"), edge.RoleHealthWorker),
		chromedp.Submit(chromedp.ID("username")),
		chromedp.WaitVisible(chromedp.ID("new-password")),
	)
	shot(t, ctx, "10-users")
	run(t, ctx, "devices",
		chromedp.Navigate(n.URL+"/admin/devices"),
		chromedp.WaitVisible(chromedp.ID("devices")),
	)
	shot(t, ctx, "11-devices")
}
