package synctest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
)

// Backlog is the outbox of a primary health centre that has been offline
// for weeks: patients with ABHA numbers, practitioners with HPR IDs,
// finalized visits (OPD with vitals, a diagnosis and two or three drug
// lines, some with a malaria test or a referral; antenatal check-ups with
// their lab tests and Td doses; immunization sessions with the UIP doses
// given; follow-ups of hypertension), lab results entered after the visit,
// a few amendments, and device readings taken outside any visit. Everything is written through edge, as the node writes it, so
// every visit has its versions, outbox rows and audit entries. The same
// Backlog always gives the same people and visits (the random source is
// seeded); only the IDs and times differ between builds.
type Backlog struct {
	Patients   int
	Encounters int
}

// BacklogFacility is the facility of every backlog: the identity the real
// mapper (syncq.FHIRMapper) needs.
var BacklogFacility = edge.FacilityConfig{Name: "PHC Rampur", HFRID: "IN0910034387", District: "Sitapur", State: "Uttar Pradesh"}

// BacklogStats counts what a backlog holds.
type BacklogStats struct {
	Encounters int // finalized visits
	Amended    int // of them, amended once after finalizing
	Readings   int // device readings outside any visit
	LabReports int // outbox rows of lab results (DiagnosticReportRecord)
	Documents  int // outbox rows: each a document (version) to deliver
}

// backlogVersion names what Build writes. Change it whenever Build
// changes, so that cached copies are built again.
const backlogVersion = 3

// BacklogCacheDirEnv names the directory where built backlogs are kept
// between runs; the default is a directory in the system's temporary one.
const BacklogCacheDirEnv = "HEALTHPOST_TEST_BACKLOG_CACHE"

// MustCopy puts the backlog's database at path, a file that must not exist
// yet, and returns what it holds. The database is built once per backlog,
// generator version and schema, kept in the cache directory
// (BacklogCacheDirEnv) and copied from there, so repeated runs start in
// seconds.
func (b Backlog) MustCopy(tb testing.TB, path string) BacklogStats {
	tb.Helper()
	name := fmt.Sprintf("v%d-%dp-%de", backlogVersion, b.Patients, b.Encounters)
	edgetest.MustCopyCached(tb, BacklogCacheDirEnv, "healthpost-backlog", name, path, func(path string) error {
		start := time.Now()
		st, err := b.Build(path)
		if err != nil {
			return err
		}
		tb.Logf("built a backlog of %d patients, %+v in %v", b.Patients, st, time.Since(start).Round(time.Second))
		return nil
	})
	st, err := CountBacklog(path)
	if err != nil {
		tb.Fatalf("count backlog: %v", err)
	}
	return st
}

// CountBacklog reads what the node database at path holds.
func CountBacklog(path string) (BacklogStats, error) {
	var st BacklogStats
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return st, err
	}
	defer db.Close()
	err = db.QueryRow(`SELECT
		(SELECT count(*) FROM encounters WHERE status IN ('final', 'amended')),
		(SELECT count(*) FROM encounters WHERE status = 'amended'),
		(SELECT count(*) FROM observations WHERE encounter_id IS NULL),
		(SELECT count(*) FROM outbox WHERE entity = 'lab_order'),
		(SELECT count(*) FROM outbox)`).Scan(&st.Encounters, &st.Amended, &st.Readings, &st.LabReports, &st.Documents)
	return st, err
}

// Build writes the backlog into a new database at path.
func (b Backlog) Build(path string) (BacklogStats, error) {
	if _, err := os.Stat(path); err == nil {
		return BacklogStats{}, fmt.Errorf("backlog: %s exists", path)
	}
	ctx := context.Background()
	s := edgetest.NewTestStore(path)
	if err := s.Open(ctx); err != nil {
		return BacklogStats{}, err
	}
	g := &backlogGen{b: b, s: s, rng: rand.New(rand.NewPCG(uint64(b.Patients), uint64(b.Encounters))), start: time.Now()}
	err := g.build(ctx)
	if cerr := s.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return BacklogStats{}, err
	}
	return CountBacklog(path)
}

type backlogGen struct {
	b     Backlog
	s     *edge.Store
	rng   *rand.Rand
	start time.Time

	admin     context.Context
	staff     []edge.User // doctors and nurses, with HPR IDs
	devices   []edge.Device
	patients  []backlogPatient
	encounter []*edge.Encounter
	amended   int
	pending   []string // lab orders waiting for their result, oldest first
}

type backlogPatient struct {
	id     string
	gender string
	age    int
}

// The people, places and practice of the backlog.
var (
	backlogFirst = []struct{ name, gender string }{
		{"Sunita", "F"}, {"Anita", "F"}, {"Ram", "M"}, {"Shyam", "M"}, {"Lakshmi", "F"}, {"Mohammad", "M"},
		{"Pooja", "F"}, {"Vijay", "M"}, {"Jyoti", "F"}, {"Krishna", "M"}, {"Geeta", "F"}, {"Ramesh", "M"},
		{"Suresh", "M"}, {"Priya", "F"}, {"Rekha", "F"}, {"Mahesh", "M"}, {"Kavita", "F"}, {"Ajay", "M"},
		{"Savitri", "F"}, {"Gopal", "M"}, {"Imran", "M"}, {"Meena", "F"}, {"Raju", "M"}, {"Sita", "F"},
		{"सुनीता", "F"}, {"राम", "M"}, {"गीता", "F"}, {"मोहन", "M"},
	}
	backlogLast = []string{"Devi", "Kumari", "Prasad", "Singh", "Yadav", "Sharma", "Verma", "Khan", "Patel", "Gupta",
		"Mishra", "Lal", "Das", "Nishad", "Ansari", "Kushwaha", "Maurya", "Pandey", "Tiwari", "देवी"}
	backlogVillages = []string{"Rampur", "Bhagwanpur", "Chandpur", "Kishanganj", "Madhopur", "Lalganj", "Shivpuri",
		"Devgarh", "Sonpur", "Gopalpur", "Rasulpur", "Salempur", "Hasanpur", "Anandpur", "Fatehpur"}
	backlogComplaints = []string{"Fever for 3 days", "Cough and cold for a week", "Headache since morning",
		"Loose motions since yesterday", "Pain in abdomen", "Body ache and weakness", "Skin itching at night",
		"Joint pain in both knees", "Burning while passing urine", "Dizziness on standing", "बुखार और खाँसी"}
	backlogDiagnoses = []struct{ code, display string }{
		{"J06.9", "Acute upper respiratory infection, unspecified"}, {"A09", "Diarrhoea and gastroenteritis of presumed infectious origin"},
		{"R50.9", "Fever, unspecified"}, {"D64.9", "Anaemia, unspecified"}, {"B54", "Unspecified malaria"},
		{"K30", "Functional dyspepsia"}, {"M54.5", "Low back pain"}, {"L30.9", "Dermatitis, unspecified"},
		{"N39.0", "Urinary tract infection, site not specified"}, {"B86", "Scabies"}, {"E11.9", "Type 2 diabetes mellitus without complications"},
	}
	backlogDrugs = []edge.Prescription{
		{Drug: "Paracetamol", Strength: "500 mg tablet", Dose: "1 tablet", Frequency: "TDS", DurationDays: 3, Instructions: "after food"},
		{Drug: "Amoxicillin", Strength: "500 mg capsule", Dose: "1 capsule", Frequency: "TDS", DurationDays: 5},
		{Drug: "Cetirizine", Strength: "10 mg tablet", Dose: "1 tablet", Frequency: "HS", DurationDays: 5},
		{Drug: "Pantoprazole", Strength: "40 mg tablet", Dose: "1 tablet", Frequency: "OD", DurationDays: 7, Instructions: "before breakfast"},
		{Drug: "Oral rehydration salts (ORS)", Strength: "20.5 g/l sachet", Dose: "1 sachet in 1 litre water", Frequency: "SOS", DurationDays: 3},
		{Drug: "Zinc sulphate", Strength: "20 mg dispersible tablet", Dose: "1 tablet", Frequency: "OD", DurationDays: 14},
		{Drug: "Albendazole", Strength: "400 mg tablet", Dose: "1 tablet", Frequency: "STAT", DurationDays: 1},
		{Drug: "Permethrin", Strength: "5% cream", Dose: "apply from neck down", Frequency: "HS", DurationDays: 1},
		{Drug: "Ibuprofen", Strength: "400 mg tablet", Dose: "1 tablet", Frequency: "BD", DurationDays: 3, Instructions: "after food"},
		{Drug: "Metformin", Strength: "500 mg tablet", Dose: "1 tablet", Frequency: "BD", DurationDays: 30},
	}
	backlogNotes = []string{"Advised rest, plenty of fluids. Review after 3 days if fever persists.",
		"Explained danger signs. Come back at once if breathing is fast.", "Referred for malaria slide at the CHC lab.",
		"आराम और पानी अधिक पीने की सलाह दी।", ""}
	// backlogSessions are the UIP doses of one immunization session, by
	// the child's age: vaccine code, dose number (-1: none, a booster).
	backlogSessions = [][]struct {
		vaccine string
		dose    int
	}{
		{{"BCG", -1}, {"OPV", 0}, {"HEPB", 0}},
		{{"OPV", 1}, {"PENTA", 1}, {"ROTA", 1}, {"FIPV", 1}, {"PCV", 1}},
		{{"OPV", 2}, {"PENTA", 2}, {"ROTA", 2}},
		{{"OPV", 3}, {"PENTA", 3}, {"ROTA", 3}, {"FIPV", 2}, {"PCV", 2}},
		{{"MR", 1}, {"JE", 1}, {"PCV", -1}, {"VITA", 1}},
		{{"MR", 2}, {"JE", 2}, {"DPT", -1}, {"OPV", -1}},
	}
)

// luhnDigit is the check digit that makes digits+d pass the mod-10 check
// ABHA numbers pass.
func luhnDigit(digits string) byte {
	sum := 0
	double := true
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

func (g *backlogGen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.rng.IntN(10))
	}
	return string(b)
}

func (g *backlogGen) build(ctx context.Context) error {
	g.admin = edge.WithActor(ctx, edge.Actor{Kind: edge.ActorSystem, ID: "cli"})
	for i, u := range []edge.User{
		{Username: "mo.sharma", DisplayName: "Dr. Meena Sharma", Role: edge.RoleDoctor},
		{Username: "mo.khan", DisplayName: "Dr. Imran Khan", Role: edge.RoleDoctor},
		{Username: "cho.yadav", DisplayName: "Rekha Yadav (CHO)", Role: edge.RoleHealthWorker},
		{Username: "anm.kumari", DisplayName: "Sunita Kumari (ANM)", Role: edge.RoleHealthWorker},
		{Username: "lt.verma", DisplayName: "Ajay Verma (lab technician)", Role: edge.RoleHealthWorker},
	} {
		u.HPRID = fmt.Sprintf("71-%04d-%04d-%04d", 2665+i, g.rng.IntN(10000), g.rng.IntN(10000))
		if err := g.s.CreateUser(g.admin, &u, "backlog-password"); err != nil {
			return fmt.Errorf("create practitioner: %w", err)
		}
		g.staff = append(g.staff, u)
	}
	for _, d := range []edge.Device{
		{Name: "BP monitor OPD", Kind: "bp-monitor", Transport: "serial", Codec: "hl7"},
		{Name: "Pulse oximeter OPD", Kind: "pulse-oximeter", Transport: "mqtt", Codec: "senml"},
		{Name: "Glucometer outreach", Kind: "glucometer", Transport: "mqtt", Codec: "json"},
	} {
		if err := g.s.CreateDevice(g.admin, &d); err != nil {
			return fmt.Errorf("create device: %w", err)
		}
		g.devices = append(g.devices, d)
	}
	for range g.b.Patients {
		if err := g.patient(); err != nil {
			return err
		}
	}
	for i := range g.b.Encounters {
		if err := g.visit(i); err != nil {
			return err
		}
		if i%25 == 24 {
			if err := g.readings(); err != nil {
				return err
			}
		}
		if i%100 == 50 {
			if err := g.amend(); err != nil {
				return err
			}
		}
		if i%7 == 6 {
			if err := g.labResult(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *backlogGen) patient() error {
	first := backlogFirst[g.rng.IntN(len(backlogFirst))]
	p := &edge.Patient{
		Name:    first.name + " " + backlogLast[g.rng.IntN(len(backlogLast))],
		Gender:  first.gender,
		Village: backlogVillages[g.rng.IntN(len(backlogVillages))],
		Address: fmt.Sprintf("House %d, Ward %d", 1+g.rng.IntN(300), 1+g.rng.IntN(12)),
	}
	// A fifth are children under five (the immunization sessions), the
	// rest adults.
	age := 18 + g.rng.IntN(60)
	if g.rng.IntN(5) == 0 {
		age = g.rng.IntN(5)
	}
	if g.rng.IntN(4) == 0 {
		p.StatedAge, p.StatedAgeAt = max(age, 1), g.start
	} else {
		p.BirthDate = g.start.AddDate(-age, -g.rng.IntN(12), -g.rng.IntN(28)).Format(time.DateOnly)
	}
	if g.rng.IntN(10) < 9 {
		d := "91" + g.digits(11)
		p.ABHANumber = d + string(luhnDigit(d))
		if g.rng.IntN(2) == 0 {
			p.ABHAAddress = fmt.Sprintf("%s%d@abdm", []string{"sunita", "ram", "geeta", "vijay", "priya", "mohan"}[g.rng.IntN(6)], g.rng.IntN(100000))
		}
	}
	if age >= 18 && g.rng.IntN(3) > 0 {
		p.Phone = strconv.Itoa(6+g.rng.IntN(4)) + g.digits(9)
	}
	if p.ABHANumber != "" {
		p.ConsentLink, p.ConsentAt, p.ConsentBy = true, g.start, "clerk"
	}
	if err := g.s.CreatePatient(g.admin, p); err != nil {
		return fmt.Errorf("create patient: %w", err)
	}
	g.patients = append(g.patients, backlogPatient{id: p.ID, gender: p.Gender, age: age})
	return nil
}

// at is a moment in the weeks the centre was offline: visit i of n, in
// order, during opening hours.
func (g *backlogGen) at(i int) time.Time {
	days := 42
	day := g.start.AddDate(0, 0, -days+i*days/max(g.b.Encounters, 1))
	y, m, d := day.Date()
	return time.Date(y, m, d, 9, 0, 0, 0, time.Local).Add(time.Duration(g.rng.IntN(6*3600)) * time.Second)
}

func (g *backlogGen) obs(loinc string, v float64, unit string, at time.Time, device int) edge.Observation {
	o := edge.Observation{LOINC: loinc, Value: v, Unit: unit, EffectiveAt: at, Source: "manual"}
	if device >= 0 {
		o.Source, o.DeviceID = "device", g.devices[device].ID
	}
	return o
}

// vitals is what the nurse measures at the door: blood pressure and pulse
// (by the monitor half the time), temperature, SpO2 by the oximeter, weight.
func (g *backlogGen) vitals(at time.Time) []edge.Observation {
	bp := -1
	if g.rng.IntN(2) == 0 {
		bp = 0
	}
	sys := 100 + g.rng.IntN(60)
	return []edge.Observation{
		g.obs("8480-6", float64(sys), "mm[Hg]", at, bp),
		g.obs("8462-4", float64(sys*2/3+g.rng.IntN(10)), "mm[Hg]", at, bp),
		g.obs("8867-4", float64(64+g.rng.IntN(40)), "/min", at, bp),
		g.obs("8310-5", 36.5+float64(g.rng.IntN(30))/10, "Cel", at, -1),
		g.obs("59408-5", float64(93+g.rng.IntN(7)), "%", at.Add(time.Minute), 1),
		g.obs("29463-7", 40+float64(g.rng.IntN(400))/10, "kg", at, -1),
	}
}

func (g *backlogGen) drugs(n int) []edge.Prescription {
	out := make([]edge.Prescription, 0, n)
	for _, k := range g.rng.Perm(len(backlogDrugs))[:n] {
		out = append(out, backlogDrugs[k])
	}
	return out
}

// visit writes visit i: an immunization session for a young child, an
// antenatal check-up for one in four women of child-bearing age, a
// hypertension follow-up for one in ten older adults, else an OPD
// consultation.
func (g *backlogGen) visit(i int) error {
	p := g.patients[g.rng.IntN(len(g.patients))]
	at := g.at(i)
	doc := g.staff[g.rng.IntN(2)]
	e := &edge.Encounter{PatientID: p.id, Status: edge.EncounterFinal, StartedAt: at, EndedAt: at.Add(time.Duration(8+g.rng.IntN(15)) * time.Minute)}
	switch {
	case p.age < 5:
		nurse := g.staff[3]
		e.Type, e.PractitionerID = edge.EncounterImmunization, nurse.ID
		session := backlogSessions[min(p.age*2+g.rng.IntN(2), len(backlogSessions)-1)]
		for _, d := range session {
			im := edge.Immunization{Vaccine: d.vaccine, GivenOn: at.Format(time.DateOnly), Booster: d.dose < 0}
			if d.dose >= 0 {
				im.Dose = &d.dose
			}
			e.Immunizations = append(e.Immunizations, im)
		}
		e.Notes = "Next due in 4 weeks; mother counselled on fever after the injection."
		e.Observations = []edge.Observation{g.obs("29463-7", 3+float64(g.rng.IntN(120))/10, "kg", at, -1)}
		doc = nurse
	case p.gender == "F" && p.age < 40 && g.rng.IntN(4) == 0:
		e.Type, e.PractitionerID = edge.EncounterANC, g.staff[3].ID
		e.Complaint = "Antenatal check-up"
		e.Observations = append(g.vitals(at)[:3], g.obs("29463-7", 45+float64(g.rng.IntN(250))/10, "kg", at, -1))
		e.Diagnoses = []edge.Diagnosis{{Code: "Z34.9", Display: "Supervision of normal pregnancy, unspecified"}}
		e.Prescriptions = []edge.Prescription{
			{Drug: "Ferrous sulphate + Folic acid (IFA)", Strength: "100 mg + 0.5 mg tablet", Dose: "1 tablet", Frequency: "OD", DurationDays: 30},
			{Drug: "Calcium carbonate", Strength: "500 mg tablet", Dose: "1 tablet", Frequency: "BD", DurationDays: 30, Instructions: "not with the IFA tablet"},
		}
		hb := 8 + float64(g.rng.IntN(45))/10
		e.LabOrders = []edge.LabOrder{
			{Test: "hb", Status: edge.LabResulted, Result: &edge.LabResult{Value: hb, ValueText: strconv.FormatFloat(hb, 'f', 1, 64), Unit: "g/dL"}},
			{Test: "urine_albumin", Status: edge.LabResulted, Result: &edge.LabResult{Answer: []string{"nil", "nil", "trace", "1+"}[g.rng.IntN(4)]}},
		}
		if g.rng.IntN(3) == 0 {
			dose := 1 + g.rng.IntN(2)
			e.Immunizations = []edge.Immunization{{Vaccine: "TD", Dose: &dose, GivenOn: at.Format(time.DateOnly)}}
		}
		doc = g.staff[3]
	case p.age >= 45 && g.rng.IntN(10) == 0:
		e.Type, e.PractitionerID = edge.EncounterFollowUp, doc.ID
		e.Complaint = "Follow-up of blood pressure"
		e.Observations = g.vitals(at)[:3]
		e.Diagnoses = []edge.Diagnosis{{Code: "I10", Display: "Essential (primary) hypertension"}}
		e.Prescriptions = []edge.Prescription{{Drug: "Amlodipine", Strength: "5 mg tablet", Dose: "1 tablet", Frequency: "OD", DurationDays: 30}}
	default:
		e.Type, e.PractitionerID = edge.EncounterOPD, doc.ID
		if g.rng.IntN(3) == 0 {
			doc = g.staff[2]
			e.PractitionerID = doc.ID
		}
		e.Complaint = backlogComplaints[g.rng.IntN(len(backlogComplaints))]
		e.Notes = backlogNotes[g.rng.IntN(len(backlogNotes))]
		e.Observations = g.vitals(at)
		if g.rng.IntN(5) == 0 {
			e.Observations = append(e.Observations, g.obs("2339-0", float64(80+g.rng.IntN(200)), "mg/dL", at.Add(3*time.Minute), 2))
		}
		d := backlogDiagnoses[g.rng.IntN(len(backlogDiagnoses))]
		e.Diagnoses = []edge.Diagnosis{{Code: d.code, Display: d.display}}
		e.Prescriptions = g.drugs(2 + g.rng.IntN(2))
		if g.rng.IntN(6) == 0 { // fever: a malaria test, resulted later
			e.LabOrders = []edge.LabOrder{{Test: "malaria_rdt", Status: edge.LabOrdered}}
		}
		if g.rng.IntN(40) == 0 {
			e.Referral = &edge.Referral{Facility: "CHC Sitapur", Reason: "Needs a physician's review and X-ray", Urgency: edge.UrgencyRoutine}
		}
	}
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: doc.ID})
	if err := g.s.CreateEncounter(ctx, e); err != nil {
		return fmt.Errorf("create encounter %d: %w", i, err)
	}
	g.encounter = append(g.encounter, e)
	for _, o := range e.LabOrders {
		if o.Status == edge.LabOrdered {
			g.pending = append(g.pending, o.ID)
		}
	}
	return nil
}

// labResult enters the result of the oldest pending lab order, as the lab
// technician does when the test is read: a DiagnosticReportRecord of its
// own.
func (g *backlogGen) labResult() error {
	if len(g.pending) == 0 {
		return nil
	}
	id := g.pending[0]
	g.pending = g.pending[1:]
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: g.staff[4].ID})
	r := &edge.LabResult{Answer: []string{"neg", "neg", "neg", "pv", "pf"}[g.rng.IntN(5)]}
	if err := g.s.RecordLabResult(ctx, id, r); err != nil {
		return fmt.Errorf("record lab result: %w", err)
	}
	return nil
}

// readings saves a glucometer reading from an outreach camp, bound to a
// patient outside any visit: a WellnessRecord of its own, in the bulk lane.
func (g *backlogGen) readings() error {
	p := g.patients[g.rng.IntN(len(g.patients))]
	r := &edge.Reading{DeviceID: g.devices[2].ID, PatientID: p.id, LOINC: "2339-0", Unit: "mg/dL",
		Value: float64(70 + g.rng.IntN(250)), EffectiveAt: time.Now().Add(-time.Duration(g.rng.IntN(72)) * time.Hour)}
	r.ValueText = strconv.FormatFloat(r.Value, 'f', -1, 64)
	if err := g.s.SaveReading(context.Background(), r); err != nil {
		return fmt.Errorf("save reading: %w", err)
	}
	return nil
}

// amend corrects a recent visit, as a doctor does on review: the first and
// every third amendment withdraws the prescription (it was written in the
// wrong patient's visit), the rest correct the diagnosis, the complaint and
// the drugs.
func (g *backlogGen) amend() error {
	var e *edge.Encounter
	for range 10 {
		c := g.encounter[len(g.encounter)-1-g.rng.IntN(min(len(g.encounter), 40))]
		if c.Type == edge.EncounterOPD && c.Version == 1 {
			e = c
			break
		}
	}
	if e == nil {
		return nil
	}
	a := &edge.Encounter{ID: e.ID, PatientID: e.PatientID, Type: e.Type, Complaint: e.Complaint + "; vomiting since last night",
		Notes: e.Notes, Diagnoses: []edge.Diagnosis{{Code: "A09", Display: "Diarrhoea and gastroenteritis of presumed infectious origin"}},
		Referral: e.Referral}
	// A pending test stays ordered; a resulted one stays whether listed or not.
	for _, o := range e.LabOrders {
		if slices.Contains(g.pending, o.ID) {
			a.LabOrders = append(a.LabOrders, edge.LabOrder{ID: o.ID, Test: o.Test, Status: edge.LabOrdered})
		}
	}
	reason := "diagnosis corrected after review"
	for _, o := range e.Observations {
		if o.Source == "manual" {
			a.Observations = append(a.Observations, edge.Observation{LOINC: o.LOINC, Value: o.Value, Unit: o.Unit, EffectiveAt: o.EffectiveAt})
		}
	}
	if g.amended%3 != 0 {
		a.Prescriptions = append(g.drugs(1), backlogDrugs[4])
	} else {
		reason = "prescription was written in the wrong patient's visit"
	}
	ctx := edge.WithActor(context.Background(), edge.Actor{Kind: edge.ActorUser, ID: g.staff[0].ID})
	if err := g.s.AmendEncounter(ctx, a, reason, nil); err != nil {
		return fmt.Errorf("amend encounter: %w", err)
	}
	*e = *a
	g.amended++
	return nil
}
