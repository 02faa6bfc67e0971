package webui_test

import (
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/healthpost/healthpost/edge"
)

// TestBrowser_ABHACardByCamera proves the camera path of the registration
// form in real Chromium with its fake camera: where the browser has
// BarcodeDetector, the camera button opens the camera, and the code it sees
// fills the form as a scanner would; where it has none (desktop Chrome on
// Linux, or the node's plain-http LAN address, which is no secure context),
// the page says why and offers no button. The detector itself is the
// platform's (Chrome on Android), so the test stands one in that answers only
// once the page has attached a live camera stream to the video.
func TestBrowser_ABHACardByCamera(t *testing.T) {
	n := MustStartNode(t)
	n.MustCreateUser("asha", edge.RoleHealthWorker)
	ctx := MustBrowser(t,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
	)
	const card = `{"hidn":"91-2666-2007-2857","hid":"sunita.devi@abdm","name":"Sunita Devi","gender":"F","dob":"12/4/1990","mobile":"9876543210"}`
	detector := `if (location.hash === "#no-detector") { delete window.BarcodeDetector; } else {
		window.BarcodeDetector = class {
			constructor(o) { if (!o || o.formats[0] !== "qr_code") throw new Error("asked for " + JSON.stringify(o)); }
			detect(v) {
				const live = v.srcObject && v.srcObject.active && v.readyState >= 2 && v.videoWidth > 0;
				return Promise.resolve(live ? [{ format: "qr_code", rawValue: ` + "`" + card + "`" + ` }] : []);
			}
		};
	}`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: detector}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "sign in",
		chromedp.Navigate(n.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "asha"),
		chromedp.SendKeys(chromedp.ID("password"), Password("asha")),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("q")),
	)

	// Without a detector: the reason is shown, and no button that cannot work.
	run(t, ctx, "open registration without a detector",
		chromedp.Navigate(n.URL+"/patients/new#no-detector"),
		chromedp.Click(chromedp.CSS(`details summary`)),
		chromedp.WaitVisible(chromedp.ID("qr-camera-off")),
	)
	if hidden := get(t, ctx, "camera button", chromedp.Evaluate[bool](`document.getElementById("qr-camera").hidden`)); !hidden {
		t.Fatal("the camera button shows in a browser without BarcodeDetector")
	}

	// With one: the camera fills the form from the card.
	run(t, ctx, "open registration with a detector",
		chromedp.Navigate(n.URL+"/patients"),
		chromedp.Navigate(n.URL+"/patients/new"),
		chromedp.Click(chromedp.CSS(`details summary`)),
		chromedp.WaitVisible(chromedp.ID("qr-camera")),
	)
	if off := get(t, ctx, "reason", chromedp.Evaluate[bool](`document.getElementById("qr-camera-off").hidden`)); !off {
		t.Fatal("the no-camera reason shows although the camera works")
	}
	run(t, ctx, "scan by camera",
		chromedp.Click(chromedp.ID("qr-camera")),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)),
	)
	name := get(t, ctx, "read filled form", chromedp.Value(chromedp.ID("name")))
	abha := get(t, ctx, "read filled form", chromedp.Value(chromedp.ID("abha_number")))
	if name != "Sunita Devi" || abha != "91-2666-2007-2857" {
		t.Fatalf("form from the camera: name=%q abha=%q", name, abha)
	}
}
