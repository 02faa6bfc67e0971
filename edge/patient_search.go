package edge

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ActionPatientSearch is the audit action of a search: its results are
// patient data shown to someone. The query itself is not logged (it is PHI).
const ActionPatientSearch = "patient.search"

// PatientMatch is one search result: the patient and why they matched.
type PatientMatch struct {
	Patient Patient `json:"patient"`
	// Reasons name the fields that matched: abha_number, abha_address,
	// phone, local_id, name, birth_year, village.
	Reasons []string `json:"reasons"`
	Score   float64  `json:"score"`
}

// SearchKind is how a query was understood.
type SearchKind string

const (
	SearchByName        SearchKind = "name"
	SearchByPhone       SearchKind = "phone"
	SearchByABHANumber  SearchKind = "abha_number"
	SearchByABHAAddress SearchKind = "abha_address"
	SearchByLocalID     SearchKind = "local_id"
)

// Limits of a search.
const (
	DefaultSearchLimit  = 20
	searchCandidates    = 300 // name candidates ranked in Go
	minNameQueryLetters = 2
)

var localIDRe = regexp.MustCompile(`^[Pp]-?0*(\d{1,9})$`)

// ClassifyQuery says what a search box's text is: a local ID (P-000123 or a
// short number), an ABHA number (14 digits), a phone number (10 digits,
// optionally +91), an ABHA address (has @), or else a name. It returns the
// normalized value to look up.
func ClassifyQuery(q string) (SearchKind, string) {
	q = strings.TrimSpace(q)
	if m := localIDRe.FindStringSubmatch(q); m != nil {
		return SearchByLocalID, "P-" + fmt.Sprintf("%06s", m[1])
	}
	if strings.Contains(q, "@") {
		return SearchByABHAAddress, strings.ToLower(q)
	}
	digits := strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return r
		case r >= '०' && r <= '९':
			return '0' + (r - '०')
		case r == ' ' || r == '-' || r == '+':
			return -1
		}
		return 'x'
	}, q)
	if digits != "" && !strings.Contains(digits, "x") {
		switch {
		case len(digits) == 14:
			return SearchByABHANumber, digits
		case len(digits) == 10:
			return SearchByPhone, digits
		case len(digits) == 12 && strings.HasPrefix(digits, "91"):
			return SearchByPhone, digits[2:]
		case len(digits) <= 6:
			return SearchByLocalID, fmt.Sprintf("P-%06s", strings.TrimLeft(digits, "0"))
		}
	}
	return SearchByName, q
}

// SearchPatients finds patients by what a health worker typed: name (any
// spelling, Latin or Devanagari), phone, ABHA number or address, or local
// ID. Name results are ranked by how alike the names are. The search is
// audited with the number of results, not the query.
func (s *Store) SearchPatients(ctx context.Context, query string, limit int) ([]PatientMatch, SearchKind, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	kind, v := ClassifyQuery(query)
	var out []PatientMatch
	var err error
	switch kind {
	case SearchByLocalID:
		out, err = s.patientsWhere(ctx, "local_id", `local_id = ?`, v)
	case SearchByABHAAddress:
		out, err = s.patientsWhere(ctx, "abha_address", `abha_address = ?`, v)
	case SearchByABHANumber:
		out, err = s.patientsWhere(ctx, "abha_number", `abha_number = ?`, v)
	case SearchByPhone:
		out, err = s.patientsWhere(ctx, "phone", `phone IN (?, ?)`, v, "+91"+v)
	default:
		out, err = s.searchByName(ctx, v, limit)
	}
	if err != nil {
		return nil, kind, err
	}
	if len(out) > limit {
		out = out[:limit]
	}
	if err := s.auditRead(ctx, auditItem{ActionPatientSearch, "patient", "", "", fmt.Sprintf("by=%s results=%d", kind, len(out))}); err != nil {
		return nil, kind, err
	}
	return out, kind, nil
}

func (s *Store) patientsWhere(ctx context.Context, reason, where string, args ...any) ([]PatientMatch, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT `+patientColumns+` FROM patients WHERE `+where+` ORDER BY local_id LIMIT 50`, args...)
	if err != nil {
		return nil, fmt.Errorf("search patients: %w", err)
	}
	defer rows.Close()
	var out []PatientMatch
	for rows.Next() {
		p, err := scanPatient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, PatientMatch{Patient: p, Reasons: []string{reason}, Score: 1})
	}
	return out, rows.Err()
}

// searchByName intersects the prefix ranges of each word's key, ranks the
// candidates on the small search rows, and reads only the best patients.
func (s *Store) searchByName(ctx context.Context, q string, limit int) ([]PatientMatch, error) {
	keys := NameKeys(q)
	if len([]rune(strings.ReplaceAll(Transliterate(q), " ", ""))) < minNameQueryLetters || len(keys) == 0 {
		return nil, nil
	}
	if err := s.IndexPatients(ctx); err != nil {
		return nil, err
	}
	var parts []string
	var args []any
	for _, k := range keys {
		parts = append(parts, `SELECT patient_id FROM patient_search_tokens WHERE token >= ? AND token < ?`)
		args = append(args, k, k+"\x7f")
	}
	args = append(args, searchCandidates)
	// Tokens are read in key order, so exact keys ("rm" for Ram) come before
	// longer ones ("rmsh" for Ramesh) when a common name fills the window.
	rows, err := s.readers.QueryContext(ctx, `SELECT patient_id, name_keys, name_latin FROM patient_search
		WHERE patient_id IN (`+strings.Join(parts, " INTERSECT ")+` LIMIT ?)`, args...)
	if err != nil {
		return nil, fmt.Errorf("search patients by name: %w", err)
	}
	type candidate struct {
		id    string
		score float64
	}
	qLatin := Transliterate(q)
	var cands []candidate
	for rows.Next() {
		var c candidate
		var nameKeys, nameLatin string
		if err := rows.Scan(&c.id, &nameKeys, &nameLatin); err != nil {
			rows.Close()
			return nil, err
		}
		c.score = nameScore(keys, strings.Fields(nameKeys), qLatin, nameLatin)
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	if len(cands) > limit {
		cands = cands[:limit]
	}
	if len(cands) == 0 {
		return nil, nil
	}
	ids := make([]any, len(cands))
	rank := map[string]int{}
	for i, c := range cands {
		ids[i], rank[c.id] = c.id, i
	}
	prows, err := s.readers.QueryContext(ctx, `SELECT `+patientColumns+` FROM patients WHERE id IN (?`+
		strings.Repeat(", ?", len(ids)-1)+`)`, ids...)
	if err != nil {
		return nil, fmt.Errorf("read found patients: %w", err)
	}
	defer prows.Close()
	out := make([]PatientMatch, len(cands))
	for prows.Next() {
		p, err := scanPatient(prows)
		if err != nil {
			return nil, err
		}
		i := rank[p.ID]
		out[i] = PatientMatch{Patient: p, Reasons: []string{"name"}, Score: cands[i].score}
	}
	if err := prows.Err(); err != nil {
		return nil, err
	}
	// A patient deleted between the two reads leaves a hole; close it.
	return slices.DeleteFunc(out, func(m PatientMatch) bool { return m.Patient.ID == "" }), nil
}

// nameScore is 0..1: how many query words' keys equal (rather than prefix) a
// word of the name, blended with how alike the spellings are.
func nameScore(qKeys, nKeys []string, qLatin, nLatin string) float64 {
	exact := 0
	for _, k := range qKeys {
		if slices.Contains(nKeys, k) {
			exact++
		}
	}
	words := float64(exact) / float64(len(qKeys))
	// Compare the query with the same number of the name's words, so
	// "sunita" is as close to "sunita devi" as to "sunita".
	nw := strings.Fields(nLatin)
	qw := len(strings.Fields(qLatin))
	best := similarity(qLatin, nLatin)
	for i := 0; i+qw <= len(nw); i++ {
		best = max(best, similarity(qLatin, strings.Join(nw[i:i+qw], " ")))
	}
	return 0.6*words + 0.4*best
}

// scanPatientWith scans patientColumns and then extra columns.
func scanPatientWith(rows *sql.Rows, extra ...any) (Patient, error) {
	var p Patient
	var statedAt, consentAt, created, updated int64
	dest := []any{&p.ID, &p.LocalID, &p.ABHANumber, &p.ABHAAddress, &p.Name, &p.Gender, &p.BirthDate, &p.StatedAge,
		&statedAt, &p.Phone, &p.Address, &p.Village, &p.ConsentLink, &consentAt, &p.ConsentBy, &created, &updated, &p.ClockSuspect,
		&p.Revision}
	err := rows.Scan(append(dest, extra...)...)
	if statedAt != 0 {
		p.StatedAgeAt = time.UnixMilli(statedAt)
	}
	if consentAt != 0 {
		p.ConsentAt = time.UnixMilli(consentAt)
	}
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return p, err
}

// BirthYear is the patient's year of birth, from the date of birth or the
// stated age; 0 when neither is known.
func (p *Patient) BirthYear() int {
	if len(p.BirthDate) >= 4 {
		var y int
		fmt.Sscanf(p.BirthDate[:4], "%d", &y)
		return y
	}
	if p.StatedAge > 0 || !p.StatedAgeAt.IsZero() {
		at := p.StatedAgeAt
		if at.IsZero() {
			at = time.Now()
		}
		return at.Year() - p.StatedAge
	}
	return 0
}

// LikelyDuplicates lists registered patients who may be the person about to
// be registered: the same ABHA number or address, the same phone, or a name
// that sounds the same with a birth year within one year and the same
// village. It is audited as a search.
func (s *Store) LikelyDuplicates(ctx context.Context, p *Patient) ([]PatientMatch, error) {
	if _, err := ActorFrom(ctx); err != nil {
		return nil, err
	}
	byID := map[string]*PatientMatch{}
	var order []string
	add := func(ms []PatientMatch) {
		for _, m := range ms {
			if have, ok := byID[m.Patient.ID]; ok {
				have.Reasons = append(have.Reasons, m.Reasons...)
				have.Score += m.Score
				continue
			}
			byID[m.Patient.ID] = &m
			order = append(order, m.Patient.ID)
		}
	}
	if n, err := NormalizeABHANumber(p.ABHANumber); err == nil {
		ms, err := s.patientsWhere(ctx, "abha_number", `abha_number = ?`, n)
		if err != nil {
			return nil, err
		}
		add(ms)
	}
	if a := strings.ToLower(strings.TrimSpace(p.ABHAAddress)); a != "" {
		ms, err := s.patientsWhere(ctx, "abha_address", `abha_address = ?`, a)
		if err != nil {
			return nil, err
		}
		add(ms)
	}
	if ph := strings.NewReplacer(" ", "", "-", "").Replace(p.Phone); ph != "" {
		ph = strings.TrimPrefix(ph, "+91")
		ms, err := s.patientsWhere(ctx, "phone", `phone IN (?, ?)`, ph, "+91"+ph)
		if err != nil {
			return nil, err
		}
		add(ms)
	}
	if keys := NameKeys(p.Name); len(keys) > 0 {
		if err := s.IndexPatients(ctx); err != nil {
			return nil, err
		}
		var parts []string
		var args []any
		for _, k := range keys {
			parts = append(parts, `SELECT patient_id FROM patient_search_tokens WHERE token = ?`)
			args = append(args, k)
		}
		rows, err := s.readers.QueryContext(ctx, `SELECT `+patientColumns+`, birth_year, village_key
			FROM patients JOIN patient_search ON patient_search.patient_id = patients.id
			WHERE id IN (`+strings.Join(parts, " INTERSECT ")+` LIMIT 200)`, args...)
		if err != nil {
			return nil, fmt.Errorf("find duplicates by name: %w", err)
		}
		year, village := p.BirthYear(), strings.Join(NameKeys(p.Village), " ")
		var ms []PatientMatch
		for rows.Next() {
			var by int
			var vk string
			c, err := scanPatientWith(rows, &by, &vk)
			if err != nil {
				rows.Close()
				return nil, err
			}
			if year == 0 || by == 0 || by < year-1 || by > year+1 {
				continue
			}
			if village != "" && vk != "" && village != vk {
				continue
			}
			ms = append(ms, PatientMatch{Patient: c, Reasons: []string{"name", "birth_year"}, Score: 0.5})
			if village != "" && vk == village {
				ms[len(ms)-1].Reasons = append(ms[len(ms)-1].Reasons, "village")
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		add(ms)
	}
	out := make([]PatientMatch, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	slices.SortStableFunc(out, func(a, b PatientMatch) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	if err := s.auditRead(ctx, auditItem{ActionPatientSearch, "patient", "", "", fmt.Sprintf("by=duplicates results=%d", len(out))}); err != nil {
		return nil, err
	}
	return out, nil
}

// IndexPatients computes the search keys of patients registered or renamed
// since the last call (triggers queue them, whoever wrote them). Searches
// call it; the web UI also calls it at start so a large import is indexed
// before the first search.
func (s *Store) IndexPatients(ctx context.Context) error {
	var pending bool
	if err := s.readers.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM patient_search_pending)`).Scan(&pending); err != nil {
		return fmt.Errorf("check search index: %w", err)
	}
	for pending {
		var n int
		err := s.write(ctx, func(tx *Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT q.patient_id, coalesce(p.name, ''), coalesce(p.village, ''),
				coalesce(p.birth_date, ''), coalesce(p.stated_age, 0), coalesce(p.stated_age_at, 0), p.id IS NOT NULL
				FROM patient_search_pending q LEFT JOIN patients p ON p.id = q.patient_id LIMIT 2000`)
			if err != nil {
				return err
			}
			type item struct {
				p      Patient
				exists bool
			}
			var items []item
			for rows.Next() {
				var it item
				var at int64
				if err := rows.Scan(&it.p.ID, &it.p.Name, &it.p.Village, &it.p.BirthDate, &it.p.StatedAge, &at, &it.exists); err != nil {
					rows.Close()
					return err
				}
				if at != 0 {
					it.p.StatedAgeAt = time.UnixMilli(at)
				}
				items = append(items, it)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			n = len(items)
			for _, it := range items {
				if err := indexPatient(tx, &it.p, it.exists); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("index patients for search: %w", err)
		}
		pending = n == 2000
	}
	return nil
}

// indexPatient writes the search keys of one patient in tx (or removes
// them, for a patient that no longer exists) and takes the patient off the
// pending list, so a search right after the commit finds them by what was
// just written.
func indexPatient(tx *Tx, p *Patient, exists bool) error {
	if _, err := tx.exec(`DELETE FROM patient_search_tokens WHERE patient_id = ?`, p.ID); err != nil {
		return err
	}
	if exists {
		keys := NameKeys(p.Name)
		for _, k := range keys {
			if _, err := tx.exec(`INSERT OR IGNORE INTO patient_search_tokens (token, patient_id) VALUES (?, ?)`, k, p.ID); err != nil {
				return err
			}
		}
		if _, err := tx.exec(`INSERT INTO patient_search (patient_id, name_keys, name_latin, village_key, birth_year)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (patient_id) DO UPDATE SET name_keys = excluded.name_keys,
			name_latin = excluded.name_latin, village_key = excluded.village_key, birth_year = excluded.birth_year`,
			p.ID, strings.Join(keys, " "), Transliterate(p.Name), strings.Join(NameKeys(p.Village), " "),
			p.BirthYear()); err != nil {
			return err
		}
	}
	_, err := tx.exec(`DELETE FROM patient_search_pending WHERE patient_id = ?`, p.ID)
	return err
}
