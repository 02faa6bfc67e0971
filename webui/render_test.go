package webui

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// samplePages returns a view for every page, filled with plausible data.
func samplePages(t testing.TB) map[string]*view {
	now := time.Now()
	p := edge.Patient{ID: "p1", LocalID: "P-000001", Name: `Sunita <Devi> & "O'Brien"`, Gender: "F", BirthDate: "1990-04-12",
		Phone: "9876543210", Village: "Rampur", ABHANumber: "91266620072857", ABHAAddress: "sunita@abdm", ConsentLink: true, ConsentAt: now}
	u := &edge.User{ID: "u1", Username: "meera", DisplayName: "Dr Meera", Role: edge.RoleDoctor, Language: "en"}
	admin := &edge.User{ID: "u2", Username: "boss", DisplayName: "Boss", Role: edge.RoleAdmin}
	e := edge.Encounter{ID: "e1", PatientID: "p1", Type: edge.EncounterOPD, Status: edge.EncounterFinal, StartedAt: now,
		Complaint: "fever <3 days>", Notes: "rest\nfluids",
		Observations:  []edge.Observation{{LOINC: "8480-6", Value: 130, Unit: "mm[Hg]", Source: "device"}, {LOINC: "8310-5", Value: 38.4, Unit: "Cel", Source: "manual"}},
		Diagnoses:     []edge.Diagnosis{{System: edge.ICD10System, Code: "J06.9"}},
		Prescriptions: []edge.Prescription{{Drug: "Paracetamol", Strength: "500 mg tablet", Dose: "1", Frequency: "TDS", DurationDays: 3}},
		LabOrders: []edge.LabOrder{{ID: "l1", Test: "hb", Status: edge.LabResulted, Result: &edge.LabResult{Value: 9.8, Unit: "g/dL", Interpretation: "L", ResultedAt: now}},
			{ID: "l2", Test: "upt", Status: edge.LabOrdered}},
		Referral:      &edge.Referral{Facility: "<CHC> & co", Reason: "<script>", Urgency: edge.UrgencyUrgent},
		Immunizations: []edge.Immunization{{Vaccine: "BCG", GivenOn: "2025-03-14"}}}
	vitals := map[string][]edge.VitalPoint{}
	for i := range 12 {
		at := now.AddDate(0, -i, 0)
		vitals["8480-6"] = append(vitals["8480-6"], edge.VitalPoint{At: at, Value: 120 + float64(i)})
		vitals["8462-4"] = append(vitals["8462-4"], edge.VitalPoint{At: at, Value: 80 + float64(i%3)})
		vitals["29463-7"] = append(vitals["29463-7"], edge.VitalPoint{At: at, Value: 55.5})
	}
	rec := edge.PatientRecord{Patient: p, Allergies: []edge.Allergy{{Substance: "Penicillin"}}, Vitals: vitals,
		Encounters:          []edge.EncounterSummary{{ID: "e1", Type: "opd", Status: "draft", StartedAt: now, Diagnoses: e.Diagnoses[:1]}},
		ActivePrescriptions: []edge.ActivePrescription{{Prescription: e.Prescriptions[0], Until: now}}}
	form := encounterForm{ID: "e1", PatientID: "p1", Type: edge.EncounterANC, Vitals: map[string]string{"sys": "130"}}
	form.pad()
	var dx []dxOption
	for _, c := range icd10Codes {
		dx = append(dx, dxOption{Code: c, Label: c})
	}
	clock := &clockBanner{Suspect: true, Tablets: 3, Offset: time.Hour, Admin: true}
	ev := newEncounterView(&catalog{lang: "en"}, e, p)
	qr, err := qrSVG("http://192.168.1.10:8080", 220)
	if err != nil {
		t.Fatal(err)
	}
	v := func(title string, user *edge.User, data any) *view {
		return &view{Title: title, User: user, CSRF: "tok", Data: data, Now: now, Path: "/", IdleLock: 300, Clock: clock,
			Errors: edge.FieldErrors{"name": "error.required"}, Flash: "flash.registered",
			Langs: []langChoice{{Code: "en", Name: "English", Current: true}, {Code: "hi", Name: "हिन्दी"}}}
	}
	return map[string]*view{
		"login":          v("page.login", nil, loginForm{Username: "<x>", WaitMinutes: 3}),
		"lock":           v("page.lock", u, lockForm{Next: "/", HasPIN: true}),
		"home":           v("page.home", u, homePage{Clinic: true, Inbox: 3}),
		"settings":       v("page.settings", u, true),
		"forbidden":      v("page.forbidden", u, "role"),
		"not_found":      v("page.not_found", u, nil),
		"error":          v("page.error", u, errorPage{Ref: "ABCDE"}),
		"too_large":      v("page.too_large", u, nil),
		"patient_search": v("page.patients", u, searchPage{Query: "<q>", Searched: true, Results: []edge.PatientMatch{{Patient: p, Reasons: []string{"name"}}}}),
		"patient_form":   v("page.patient_new", u, patientForm{Name: "<b>", Duplicates: []edge.PatientMatch{{Patient: p, Reasons: []string{"phone", "name"}}}, Scanned: true}),
		"patient_show": v("page.patient", u, patientPage{PatientRecord: rec, Charts: buildCharts(vitals), Types: encounterTypes,
			PendingLabs: []labRow{{ID: "l2", Name: "<UPT>", Status: edge.LabOrdered, At: now}}}),
		"encounter_form": v("page.encounter", u, encounterPage{Form: form, Patient: p, Fields: vitalFields, Dx: dx, Drugs: formulary,
			Frequencies: frequencies, Instructions: instructionKeys, Vaccines: []doseOption{{Key: "OPV-1", Label: "OPV 1"}},
			LabTests: []labTestOption{{Code: "upt", Name: "UPT", Answers: []labAnswer{{"pos", "Positive"}}}}, Interps: edge.Interpretations, Urgencies: edge.Urgencies, Places: referralPlaces, Devices: []edge.Device{{ID: "d1", Name: "BP"}},
			Bound: []boundDevice{{Name: "BP", Until: now}}, Readings: []liveReading{{ObservationID: "o1", Name: "SpO2", Value: "97", Checked: true}, {Rejected: "no pulse"}}}),
		"encounter_show":  v("page.encounter", u, ev),
		"encounter_print": v("page.print", u, printPage{encounterView: ev, Doc: "summary", Paper: "80mm", Second: "hi"}),
		"inbox":           v("page.inbox", u, inboxPage{Rows: []inboxRow{{ID: "r1", Name: "Weight", Value: "61"}}, Reasons: discardReasons}),
		"inbox_assign":    v("page.inbox_assign", u, inboxPage{Reading: &inboxRow{ID: "r1"}, Search: searchPage{Searched: true, Results: []edge.PatientMatch{{Patient: p}}}}),
		"admin":           v("page.admin", admin, adminPage{URL: "http://192.168.1.10:8080", QR: qr, Consensus: edge.ClockConsensus{Tablets: 2, Offset: time.Hour}, ClockError: &edge.Error{Message: "m", Hint: "h"}}),
		"users":           v("page.users", admin, usersPage{Users: []edge.User{*u, *admin}, Roles: edge.Roles, Password: "abcd-efgh", PasswordFor: "ravi"}),
		"devices":         v("page.devices", admin, []edge.Device{{Name: "BP", Kind: "bp-monitor", Frames: 1234567, LastError: "x"}}),
		"facility":        v("page.facility", admin, facilityPage{Settings: edge.DefaultFacilitySettings()}),
		"sync": v("page.sync", admin, syncPage{On: true, Lanes: syncLanes, Queue: []queueRow{{State: "pending", Counts: [3]int64{1, 2, 3}}},
			Progress:    syncProgress{State: SyncDelivering, StateText: "Sending", Running: true, Done: 3, Total: 9, PendingText: "6", LastError: "HTTP 503: <Devi>"},
			Quarantined: []edge.OutboxItem{{ID: 7, Document: edge.DocOPConsult, Entity: "encounter", EntityID: "e1", LastError: "HTTP 422: error invalid: <Devi> (Composition.title)"}},
			Runs:        []syncRunRow{{SyncRun: edge.SyncRun{ID: 1, Trigger: edge.SyncTriggerWeb, StartedAt: now}, Wire: "12 kB", Error: "<Devi>"}},
			DiscardID:   7, Reason: `"><script>`}),
		"lab_result": v("page.lab_result", u, labResultPage{Order: edge.LabOrder{ID: "l1"}, Patient: p, Name: "<Hb>", Answers: []labAnswer{{"pos", "Positive"}}, Interps: edge.Interpretations}),
	}
}

// TestRenderConcurrency renders every page in every language from many
// goroutines at once; under -race it fails if rendering shares state.
func TestRenderConcurrency(t *testing.T) {
	static, err := loadAssets()
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEngine(static)
	if err != nil {
		t.Fatal(err)
	}
	views := samplePages(t)
	for _, p := range pages {
		if views[p] == nil {
			t.Fatalf("no sample for page %q", p)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				for _, lang := range e.cats.langs {
					for name, v := range views {
						out, err := e.render(lang, name, v)
						if err != nil {
							errs <- err
							return
						}
						html := string(out)
						if strings.Contains(html, "<Devi>") || strings.Contains(html, "<script>") && !strings.Contains(html, `<script src="/static/`) {
							errs <- fmt.Errorf("%s/%s: unescaped data", lang, name)
							return
						}
						if strings.Contains(html, "/static/missing/") {
							errs <- fmt.Errorf("%s/%s: links an asset that does not exist", lang, name)
							return
						}
						if g == 0 && i == 0 && lang == "hi" && strings.Contains(html, `="page.`) {
							errs <- fmt.Errorf("%s/%s: untranslated title", lang, name)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
