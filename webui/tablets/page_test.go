package tablets

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

const visitPage = `<!doctype html><html><head>
<link rel="stylesheet" href="/static/abc/app.css"><link rel="icon" href="/static/def/icon.svg">
<script src="/static/123/app.js" defer></script></head><body>
<form method="post" action="/lock"><input type="hidden" name="csrf" value="T0"><button>Lock</button></form>
<form method="post" action="/patients/p1/encounters" id="encounter-form">
<input type="hidden" name="csrf" value="T1">
<input type="hidden" name="type" value="opd">
<textarea name="complaint">  Fever
 since Monday </textarea>
<input name="v_sys" value="">
<input type="checkbox" name="attach" value="o1" checked><input type="checkbox" name="attach" value="o2">
<select name="rx_freq_0"><option value="">Frequency</option><option value="OD">Once</option><option value="BD" selected>Twice</option></select>
<select name="device"><option value="">Choose</option><option value="d1">BP 1</option></select>
<select name="plain"><option>First</option><option>Second</option></select>
<input type="submit" name="go" value="x"><button name="action" value="save">Save</button>
<p class="ferr">Choose a medicine from the list</p>
</form>
<datalist id="formulary"><option value="Paracetamol 500 mg tablet"><option value="Multivitamin  tablet"></datalist>
<ul id="results"><li><a href="/patients/p1">Sunita</a></li><li><a href="http://elsewhere.example/patients/p9">x</a></li></ul>
<a href="/patients/p2">outside</a>
</body></html>`

func mustPage(t *testing.T, body string) *page {
	t.Helper()
	u, _ := url.Parse("http://127.0.0.1:8080/patients/p1/encounters/new?type=opd")
	p, err := parsePage(u, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPage_Form(t *testing.T) {
	p := mustPage(t, visitPage)
	f, ok := p.form("/patients/p1/encounters")
	if !ok {
		t.Fatal("visit form not found")
	}
	// Ensure the form holds what a browser would send untouched: hidden
	// fields, text, ticked boxes, each select's chosen or first option, and
	// no buttons.
	want := url.Values{
		"csrf": {"T1"}, "type": {"opd"}, "complaint": {"Fever since Monday"}, "v_sys": {""}, "attach": {"o1"},
		"rx_freq_0": {"BD"}, "device": {""}, "plain": {"First"},
	}
	if got := f.values.Encode(); got != want.Encode() {
		t.Fatalf("form values\n got %s\nwant %s", got, want.Encode())
	}
	if f.method != "POST" || f.action != "/patients/p1/encounters" {
		t.Fatalf("form %s %s", f.method, f.action)
	}
	if _, ok := p.form("/admin"); ok {
		t.Fatal("found a form that is not there")
	}
	if lock, _ := p.form("/lock"); lock.values.Get("csrf") != "T0" {
		t.Fatalf("lock form %v", lock.values)
	}
}

func TestPage_LinksListsErrors(t *testing.T) {
	p := mustPage(t, visitPage)
	// Ensure links are read inside the element asked for, on this node only.
	if got := p.links("results", "/patients/"); !slices.Equal(got, []string{"/patients/p1"}) {
		t.Errorf("result links %v", got)
	}
	if got := p.links("", "/patients/"); !slices.Equal(got, []string{"/patients/p1", "/patients/p2"}) {
		t.Errorf("all patient links %v", got)
	}
	if got := p.links("nowhere", "/"); got != nil {
		t.Errorf("links under a missing element %v", got)
	}
	if got := p.assets(); !slices.Equal(got, []string{"/static/abc/app.css", "/static/def/icon.svg", "/static/123/app.js"}) {
		t.Errorf("assets %v", got)
	}
	if got := p.datalist("formulary"); len(got) != 2 || got[1] != "Multivitamin  tablet" {
		t.Errorf("datalist %q", got)
	}
	if got := p.options("rx_freq_0"); !slices.Equal(got, []string{"OD", "BD"}) {
		t.Errorf("options %v", got)
	}
	if got := p.fieldErrors(); len(got) != 1 || !strings.Contains(got[0], "medicine") {
		t.Errorf("field errors %v", got)
	}
}

func TestFillVisit(t *testing.T) {
	p := mustPage(t, strings.Replace(visitPage, `</p>
</form>`, `</p><input name="dx_0"><input name="rx_drug_0"><input name="rx_dose_0"><input name="rx_days_0"><input name="v_dia"></form>
<datalist id="icd10"><option value="J06.9 Acute upper respiratory infection"></datalist>`, 1))
	f, _ := p.form("/patients/p1/encounters")
	if err := fillVisit(newRand(1), p, f); err != nil {
		t.Fatal(err)
	}
	// Ensure the visit has vitals that pass the node's checks, a diagnosis
	// and a medicine from the page's lists, and leaves fields it was not
	// offered alone.
	v := f.values
	sys, dia := atoiOr(v.Get("v_sys")), atoiOr(v.Get("v_dia"))
	if sys < 100 || sys >= 160 || dia >= sys || dia < 50 {
		t.Errorf("blood pressure %d/%d", sys, dia)
	}
	if v.Get("dx_0") != "J06.9 Acute upper respiratory infection" || v.Get("rx_drug_0") != "Paracetamol 500 mg tablet" {
		t.Errorf("diagnosis %q, medicine %q", v.Get("dx_0"), v.Get("rx_drug_0"))
	}
	if v.Get("rx_freq_0") == "" || v.Get("complaint") == "" || v.Has("v_pulse") {
		t.Errorf("form %v", v)
	}

	// Ensure a form without the lists to pick from is refused, not guessed.
	bare := mustPage(t, `<form method="post" action="/patients/p1/encounters"><input name="dx_0"></form>`)
	f, _ = bare.form("/patients/p1/encounters")
	if err := fillVisit(newRand(1), bare, f); err == nil {
		t.Fatal("filled a visit form that offers no diagnoses or medicines")
	}
}

func TestCards_Query(t *testing.T) {
	var c cards
	c.remember("Sunita Devi P-000001 · F · 34 y · Rampur · 9876543210 · ABHA 91-0000-0000-0070")
	c.remember("Ram Prasad P-000002 · M · 50 y")
	if len(c.phones) != 1 || c.phones[0] != "9876543210" || len(c.abhas) != 1 || c.abhas[0] != "91-0000-0000-0070" {
		t.Fatalf("remembered %+v", c)
	}
	// Ensure every kind of search comes up, numbers from the cards seen.
	rng := newRand(7)
	kinds := map[string]int{}
	for range 1000 {
		q, kind := c.query(rng)
		kinds[kind]++
		if q == "" {
			t.Fatal("empty query")
		}
		if kind == searchPhone && strings.ReplaceAll(q, " ", "") != "9876543210" {
			t.Fatalf("phone query %q", q)
		}
	}
	for _, k := range []string{searchName, searchMisspelled, searchDevanagari, searchPhone, searchABHA} {
		if kinds[k] < 50 {
			t.Errorf("%d %s searches in 1000: %v", kinds[k], k, kinds)
		}
	}
}

func atoiOr(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// FuzzParsePage feeds the page reader hostile HTML: it must never panic,
// and a form it finds must post to what was asked for.
func FuzzParsePage(f *testing.F) {
	f.Add(visitPage)
	f.Add(`<form action="/patients/x/encounters"><select name=s><option selected></select><textarea name=t>`)
	f.Add(`<a href="//evil.example/patients/1">x</a><form action="javascript:alert(1)"><input name=a>`)
	f.Add("<datalist id=formulary><option value=\x00></datalist><ul id=results><li><a href=/patients/\xff>")
	f.Fuzz(func(t *testing.T, body string) {
		p := mustPage(t, body)
		p.links("results", "/patients/")
		p.assets()
		p.datalist("formulary")
		p.options("rx_freq_0")
		p.fieldErrors()
		if f, ok := p.form("/patients/"); ok && !strings.HasPrefix(f.action, "/patients/") {
			t.Fatalf("form posts to %q", f.action)
		}
		for _, l := range p.links("", "/") {
			if !strings.HasPrefix(l, "/") || strings.HasPrefix(l, "//") {
				t.Fatalf("link %q leaves the node", l)
			}
		}
	})
}
