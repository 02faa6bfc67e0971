package edgetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// Population is a made-up health centre's records, for benchmarks and load
// tests: patients with the names, phones and ABHA numbers of a north Indian
// block (a tenth written in Devanagari), their visits with vitals, diagnoses
// and prescriptions over the last three years, and a few device readings.
// The visits are final and, like visits finalized before the node kept
// versions, have no encounter_versions rows: the node reads them as version
// 1. The same Population always gives the same people and visits (the
// random source is seeded); only the IDs differ between builds.
type Population struct {
	Patients int
	// Observations are the vitals; four to an encounter, so there are
	// Observations/4 encounters, spread unevenly (a few patients with a
	// chronic illness come every month, a quarter never came back).
	Observations int
}

// LargePopulation is a busy primary health centre after some years: the
// size the node's benchmarks promise to handle.
var LargePopulation = Population{Patients: 100_000, Observations: 1_000_000}

// populationVersion names what Build writes. Change it whenever Build
// changes, so that cached copies are built again.
const populationVersion = 1

// PopulationCacheDirEnv names the directory where built populations are
// kept between runs; the default is the system's temporary directory.
const PopulationCacheDirEnv = "HEALTHPOST_TEST_POPULATION_CACHE"

// MustCopy puts the population's database at path, a file that must not
// exist yet. The database is built once per population, generator version
// and schema, kept in the cache directory (PopulationCacheDirEnv) and copied
// from there, so repeated benchmark runs start in seconds.
func (p Population) MustCopy(tb testing.TB, path string) {
	tb.Helper()
	name := fmt.Sprintf("v%d-%dp-%do", populationVersion, p.Patients, p.Observations)
	MustCopyCached(tb, PopulationCacheDirEnv, "healthpost-population", name, path, func(path string) error {
		start := time.Now()
		if err := p.Build(path); err != nil {
			return err
		}
		tb.Logf("built %d patients and %d observations in %v", p.Patients, p.Observations, time.Since(start).Round(time.Second))
		return nil
	})
}

// Names of the population. Each has its Devanagari spelling; the search
// finds either from the other.
var (
	populationFirstNames = []struct{ latin, deva, gender string }{
		{"Sunita", "सुनीता", "F"}, {"Anita", "अनीता", "F"}, {"Ram", "राम", "M"}, {"Shyam", "श्याम", "M"},
		{"Lakshmi", "लक्ष्मी", "F"}, {"Mohammad", "मोहम्मद", "M"}, {"Pooja", "पूजा", "F"}, {"Vijay", "विजय", "M"},
		{"Jyoti", "ज्योति", "F"}, {"Krishna", "कृष्णा", "M"}, {"Geeta", "गीता", "F"}, {"Ramesh", "रमेश", "M"},
		{"Suresh", "सुरेश", "M"}, {"Priya", "प्रिया", "F"}, {"Rekha", "रेखा", "F"}, {"Mahesh", "महेश", "M"},
		{"Kavita", "कविता", "F"}, {"Ajay", "अजय", "M"}, {"Savitri", "सावित्री", "F"}, {"Gopal", "गोपाल", "M"},
		{"Farukh", "फ़ारुख़", "M"}, {"Imran", "इमरान", "M"}, {"Meena", "मीना", "F"}, {"Raju", "राजू", "M"},
		{"Sita", "सीता", "F"}, {"Deepak", "दीपक", "M"}, {"Neha", "नेहा", "F"}, {"Arjun", "अर्जुन", "M"},
		{"Radha", "राधा", "F"}, {"Manoj", "मनोज", "M"},
	}
	populationLastNames = []struct{ latin, deva, gender string }{
		{"Devi", "देवी", "F"}, {"Kumari", "कुमारी", "F"}, {"Bai", "बाई", "F"},
		{"Prasad", "प्रसाद", ""}, {"Singh", "सिंह", ""}, {"Yadav", "यादव", ""}, {"Sharma", "शर्मा", ""},
		{"Verma", "वर्मा", ""}, {"Khan", "ख़ान", ""}, {"Patel", "पटेल", ""}, {"Gupta", "गुप्ता", ""},
		{"Mishra", "मिश्रा", ""}, {"Lal", "लाल", ""}, {"Das", "दास", ""}, {"Nishad", "निषाद", ""},
		{"Ansari", "अंसारी", ""}, {"Kushwaha", "कुशवाहा", ""}, {"Maurya", "मौर्य", ""}, {"Pandey", "पांडे", ""},
		{"Tiwari", "तिवारी", ""},
	}
	populationVillages = []string{"Rampur", "Sitapur", "Bhagwanpur", "Chandpur", "Kishanganj", "Madhopur", "Lalganj",
		"Shivpuri", "Devgarh", "Sonpur", "Bharatpur", "Gopalpur", "Rasulpur", "Salempur", "Hasanpur", "Jagdishpur",
		"Anandpur", "Fatehpur", "Bairia", "Majhauli", "Karanpur", "Naugaon", "Pipra", "Barhaj", "Tamkuhi"}
	populationComplaints = []string{"Fever for 3 days", "Cough and cold", "Headache", "Loose motions since yesterday",
		"Pain in abdomen", "Follow-up of BP", "Sugar check", "Body ache", "Weakness", "Skin itching", "Joint pain",
		"Burning urine", "Antenatal check-up", "Dizziness", ""}
	populationDiagnoses = []struct{ code, display string }{
		{"J06.9", "Acute upper respiratory infection"}, {"A09", "Diarrhoea and gastroenteritis, presumed infectious"},
		{"I10", "Essential (primary) hypertension"}, {"E11.9", "Type 2 diabetes mellitus"},
		{"R50.9", "Fever, unspecified"}, {"D64.9", "Anaemia, unspecified"}, {"B54", "Malaria, unspecified"},
		{"K30", "Functional dyspepsia"}, {"M54.5", "Low back pain"}, {"L30.9", "Dermatitis, unspecified"},
		{"N39.0", "Urinary tract infection"}, {"Z34.9", "Supervision of normal pregnancy"}, {"B86", "Scabies"},
	}
	populationDrugs = []struct{ drug, strength, dose, freq string }{
		{"Paracetamol", "500 mg tablet", "1 tablet", "TDS"}, {"Amoxicillin", "500 mg capsule", "1 capsule", "TDS"},
		{"Amlodipine", "5 mg tablet", "1 tablet", "OD"}, {"Metformin", "500 mg tablet", "1 tablet", "BD"},
		{"Oral rehydration salts (ORS)", "20.5 g/l sachet", "1 sachet in 1 litre water", "SOS"},
		{"Ferrous sulphate + Folic acid (IFA)", "100 mg + 0.5 mg tablet", "1 tablet", "OD"},
		{"Cetirizine", "10 mg tablet", "1 tablet", "HS"}, {"Pantoprazole", "40 mg tablet", "1 tablet", "OD"},
		{"Albendazole", "400 mg tablet", "1 tablet", "STAT"}, {"Permethrin", "5% cream", "apply", "HS"},
	}
)

// Build writes the population into a new database at path: the node's
// schema first (through edge, as the node migrates), then plain batched
// INSERTs (the node's API would audit and queue every row, which is right
// in use and needlessly slow for a fixture), then the search index, as a
// node that has run a while has it.
func (p Population) Build(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("population: %s exists", path)
	}
	ctx := context.Background()
	s := NewTestStore(path)
	if err := s.Open(ctx); err != nil {
		return err
	}
	if err := s.Close(ctx); err != nil {
		return err
	}
	if err := p.insert(path); err != nil {
		return err
	}
	s = NewTestStore(path)
	if err := s.Open(ctx); err != nil {
		return err
	}
	if err := s.IndexPatients(ctx); err != nil {
		s.Close(ctx)
		return err
	}
	return s.Close(ctx)
}

func (p Population) insert(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_pragma=synchronous(OFF)&_pragma=foreign_keys(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rng := rand.New(rand.NewPCG(uint64(p.Patients), uint64(p.Observations)))
	now := time.Now()
	nowMS := now.UnixMilli()
	var seq int64
	next := func() int64 { seq++; return seq }

	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer func() { tx.Rollback() }()
	rows := 0
	// commit ends the transaction every 20,000 rows, so none grows huge.
	commit := func() error {
		if rows++; rows%20_000 != 0 {
			return nil
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		tx, err = db.Begin()
		return err
	}
	exec := func(query string, args ...any) error {
		if _, err := tx.Exec(query, args...); err != nil {
			return fmt.Errorf("%.40s: %w", query, err)
		}
		return commit()
	}

	ids := make([]string, p.Patients)
	for i := range p.Patients {
		ids[i] = edge.NewID()
		first := populationFirstNames[rng.IntN(len(populationFirstNames))]
		last := populationLastNames[rng.IntN(len(populationLastNames))]
		for last.gender != "" && last.gender != first.gender {
			last = populationLastNames[rng.IntN(len(populationLastNames))]
		}
		words := []string{first.latin, last.latin}
		if rng.IntN(7) == 0 { // some have a third word: a father's or husband's name
			words = append(words, populationFirstNames[rng.IntN(len(populationFirstNames))].latin)
		}
		if i%10 == 3 { // written in Devanagari
			words[0], words[1] = first.deva, last.deva
			if len(words) == 3 {
				words[2] = devanagariOf(words[2])
			}
		}
		name := strings.Join(words, " ")
		var birthDate, phone, abhaNumber, abhaAddress any
		var statedAge, statedAt any
		age := 1 + rng.IntN(85)
		if rng.IntN(10) < 7 {
			birthDate = fmt.Sprintf("%04d-%02d-%02d", now.Year()-age, 1+rng.IntN(12), 1+rng.IntN(28))
		} else {
			statedAge, statedAt = age, nowMS-rng.Int64N(3*365*24*3600*1000)
		}
		if rng.IntN(10) < 8 {
			phone = fmt.Sprintf("%d%09d", 6+rng.IntN(4), (i*7919+rng.IntN(7919))%1_000_000_000)
		}
		if rng.IntN(10) < 4 {
			abhaNumber = abhaNumberOf(i)
			if rng.IntN(2) == 0 {
				abhaAddress = fmt.Sprintf("%s.%s%d@abdm", strings.ToLower(first.latin), strings.ToLower(last.latin), i)
			}
		}
		consent := 0
		var consentAt any
		if abhaNumber != nil && rng.IntN(4) > 0 {
			consent, consentAt = 1, nowMS
		}
		if err := exec(`INSERT INTO patients (id, local_id, abha_number, abha_address, name, gender, birth_date, stated_age,
			stated_age_at, phone, village, consent_link, consent_at, created_at, updated_at, node_seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ids[i], fmt.Sprintf("P-%06d", i+1), abhaNumber, abhaAddress, name, first.gender, birthDate, statedAge,
			statedAt, phone, populationVillages[rng.IntN(len(populationVillages))], consent, consentAt,
			nowMS, nowMS, next()); err != nil {
			return err
		}
	}

	// Visits per patient: uneven, as at a real centre, then nudged to the
	// exact total.
	encounters := p.Observations / 4
	visits := make([]int, p.Patients)
	total := 0
	for i := range visits {
		switch r := rng.IntN(100); {
		case r < 25:
		case r < 55:
			visits[i] = 1
		case r < 75:
			visits[i] = 2
		case r < 88:
			visits[i] = 3 + rng.IntN(3)
		case r < 97:
			visits[i] = 6 + rng.IntN(7)
		default:
			visits[i] = 13 + rng.IntN(28)
		}
		total += visits[i]
	}
	for p.Patients > 0 && total != encounters {
		i := rng.IntN(p.Patients)
		if total > encounters && visits[i] > 0 {
			visits[i]--
			total--
		} else if total < encounters {
			visits[i]++
			total++
		}
	}
	const threeYears = 3 * 365 * 24 * 3600 * 1000
	for i, n := range visits {
		for range n {
			encID := edge.NewID()
			at := nowMS - rng.Int64N(threeYears)
			typ := "opd"
			if rng.IntN(10) == 0 {
				typ = "follow-up"
			}
			if err := exec(`INSERT INTO encounters (id, patient_id, type, started_at, ended_at, complaint, status,
				created_at, updated_at, node_seq) VALUES (?, ?, ?, ?, ?, ?, 'final', ?, ?, ?)`,
				encID, ids[i], typ, at, at+10*60*1000, populationComplaints[rng.IntN(len(populationComplaints))],
				at, at, next()); err != nil {
				return err
			}
			sys := 100 + rng.IntN(70)
			vitals := []struct {
				loinc, unit string
				value       float64
			}{
				{"8480-6", "mm[Hg]", float64(sys)},
				{"8462-4", "mm[Hg]", float64(sys - 30 - rng.IntN(20))},
				{"8867-4", "/min", float64(60 + rng.IntN(50))},
				[]struct {
					loinc, unit string
					value       float64
				}{
					{"29463-7", "kg", float64(300+rng.IntN(500)) / 10},
					{"8310-5", "Cel", float64(365+rng.IntN(30)) / 10},
					{"2708-6", "%", float64(92 + rng.IntN(8))},
					{"2339-0", "mg/dL", float64(80 + rng.IntN(180))},
				}[rng.IntN(4)],
			}
			for _, v := range vitals {
				if err := exec(`INSERT INTO observations (id, patient_id, encounter_id, loinc, value, value_text, unit,
					effective_at, source, created_at, node_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'manual', ?, ?)`,
					edge.NewID(), ids[i], encID, v.loinc, v.value, strconv.FormatFloat(v.value, 'f', -1, 64), v.unit,
					at, at, next()); err != nil {
					return err
				}
			}
			dx := populationDiagnoses[rng.IntN(len(populationDiagnoses))]
			if err := exec(`INSERT INTO diagnoses (id, encounter_id, system, code, display, created_at, node_seq)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, edge.NewID(), encID, edge.ICD10System, dx.code, dx.display, at, next()); err != nil {
				return err
			}
			for range 1 + rng.IntN(2) {
				d := populationDrugs[rng.IntN(len(populationDrugs))]
				if err := exec(`INSERT INTO prescriptions (id, encounter_id, drug, strength, dose, frequency, duration_days,
					instructions, created_at, node_seq) VALUES (?, ?, ?, ?, ?, ?, ?, 'after food', ?, ?)`,
					edge.NewID(), encID, d.drug, d.strength, d.dose, d.freq, 3+rng.IntN(28), at, next()); err != nil {
					return err
				}
			}
		}
	}
	// What is left over arrived from devices between visits.
	for range p.Observations % 4 {
		if p.Patients == 0 {
			break
		}
		at := nowMS - rng.Int64N(threeYears)
		if err := exec(`INSERT INTO observations (id, patient_id, loinc, value, value_text, unit, effective_at, source,
			created_at, node_seq) VALUES (?, ?, '2708-6', 97, '97', '%', ?, 'manual', ?, ?)`,
			edge.NewID(), ids[rng.IntN(p.Patients)], at, at, next()); err != nil {
			return err
		}
	}
	// The node's counters carry on after the population.
	for key, v := range map[string]int64{"node_seq": seq, "last_local_id": int64(p.Patients)} {
		if err := exec(`INSERT INTO meta (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, strconv.FormatInt(v, 10)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return errors.Join(err, db.Close())
}

func devanagariOf(latin string) string {
	for _, n := range populationFirstNames {
		if n.latin == latin {
			return n.deva
		}
	}
	return latin
}

// abhaNumberOf is a valid ABHA number (14 digits passing the mod-10 check)
// unique to i.
func abhaNumberOf(i int) string {
	body := fmt.Sprintf("91%011d", 10_000_000_000+i*7)
	sum := 0
	for j := len(body) - 1; j >= 0; j-- {
		d := int(body[j] - '0')
		if (len(body)-1-j)%2 == 0 { // doubled: the check digit will sit to its right
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return body + strconv.Itoa((10-sum%10)%10)
}
