package astm_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices/astm"
)

// catalogueCase is what replaying one sample transmission must give.
type catalogueCase struct {
	name    string
	lenient bool
	replies string // ACK as A, NAK as N, in order; "" to skip (garbage)
	msgs    int    // deliveries
	stats   func(t *testing.T, s astm.Stats)
	check   func(t *testing.T, d []*astm.Delivery)
}

var catalogueCases = []catalogueCase{
	{name: "chemistry-clean", replies: "AAAAAAAAAAA", msgs: 1, check: checkChemistry},
	{name: "chemistry-clean", lenient: true, replies: "AAAAAAAAAAA", msgs: 1, check: checkChemistry},
	{name: "haematology-etb", replies: "AAAAAAAAAA", msgs: 1, check: checkHaematology},
	{name: "haematology-etb", lenient: true, replies: "AAAAAAAAAA", msgs: 1, check: checkHaematology},
	{name: "multi-patient", replies: strings.Repeat("A", 16), msgs: 1, check: checkMultiPatient},
	{name: "two-messages", replies: strings.Repeat("A", 11), msgs: 2, check: checkTwoMessages},

	{name: "oversized-frame", replies: "AN", stats: wantStat("OversizedFrames", 1)},
	{name: "oversized-frame", lenient: true, replies: "AA", msgs: 1, check: checkOversized},
	{name: "no-checksum", replies: "ANNNNN", stats: wantStat("MalformedFrames", 5)},
	{name: "no-checksum", lenient: true, replies: "AAAAAA", msgs: 1, check: checkSmall(astm.DevNoChecksum)},
	{name: "lowercase-checksum", replies: "ANNNNN"},
	{name: "lowercase-checksum", lenient: true, replies: "AAAAAA", msgs: 1, check: checkSmall(astm.DevLowercaseChecksum),
		stats: wantDeviation(astm.DevLowercaseChecksum, 5)},
	{name: "lf-only", replies: "ANNNNN"},
	{name: "lf-only", lenient: true, replies: "AAAAAA", msgs: 1, check: checkSmall(astm.DevFrameTerminator),
		stats: wantDeviation(astm.DevFrameTerminator, 5)},
	{name: "cr-only", replies: "ANNNNN"},
	{name: "cr-only", lenient: true, replies: "AAAAAA", msgs: 1, check: checkSmall(astm.DevFrameTerminator)},
	{name: "no-frame-number", replies: "ANNNNN"},
	{name: "no-frame-number", lenient: true, replies: "AAAAAA", msgs: 1, check: checkSmall(astm.DevNoFrameNumber)},
	// Strict NAKs frame 0; this recording ignores the NAK and goes on with
	// frame 1, which a strict receiver takes as the first frame. The message
	// then lacks its H record, and the Handler is told why.
	{name: "frames-from-zero", replies: "ANAAAA", msgs: 1, check: checkParseErr(astm.ErrNoHeader)},
	{name: "frames-from-zero", lenient: true, replies: "AAAAAA", msgs: 1, check: checkSmall(astm.DevFrameNumberStart)},
	{name: "missing-etx", replies: "ANNNNN"},
	{name: "missing-etx", lenient: true, replies: "AAAAAA", msgs: 1, check: checkSmall(astm.DevMissingETX)},
	{name: "bare-frame", replies: "AN", stats: wantStat("Aborted", 1)},
	{name: "bare-frame", lenient: true, replies: "AA", msgs: 1,
		check: checkSmall(astm.DevNoFrameNumber | astm.DevNoChecksum | astm.DevFrameTerminator)},
	{name: "lf-records", replies: "AN"},
	{name: "lf-records", lenient: true, replies: "AA", msgs: 1, check: checkSmall(astm.DevLFInText)},
	{name: "doubled-delimiter", replies: "AAAAAA", msgs: 1, check: checkParseErr(astm.ErrDelimiters)},
	{name: "doubled-delimiter", lenient: true, replies: "AAAAAA", msgs: 1, check: checkDoubledDelimiter},

	{name: "bad-checksum", replies: "AANAAAA", msgs: 1, check: checkSmall(0), stats: wantStat("ChecksumErrors", 1)},
	{name: "bad-checksum", lenient: true, replies: "AANAAAA", msgs: 1, check: checkSmall(0)},
	{name: "bad-checksum-abort", replies: "AANNNNNN", stats: wantStats(map[string]uint64{"ChecksumErrors": 6, "Aborted": 1, "Discarded": 1})},
	{name: "bad-checksum-abort", lenient: true, replies: "AANNNNNN", stats: wantStat("Aborted", 1)},
	{name: "wrong-frame-number", replies: "AAANNNNNN", stats: wantStats(map[string]uint64{"FrameNumberErrors": 6, "Aborted": 1})},
	{name: "wrong-frame-number", lenient: true, replies: "AAANNNNNN", stats: wantStat("FrameNumberErrors", 6)},
	{name: "duplicate-frame", replies: "AAAAAAA", msgs: 1, check: checkSmall(0), stats: wantStat("Duplicates", 1)},
	{name: "duplicate-frame", lenient: true, replies: "AAAAAAA", msgs: 1, check: checkSmall(0)},
	{name: "missing-terminator", replies: strings.Repeat("A", 10), msgs: 1, check: checkMissingTerminator,
		stats: wantStats(map[string]uint64{"Discarded": 1, "Delivered": 1})},
	{name: "missing-terminator", lenient: true, replies: strings.Repeat("A", 10), msgs: 1, check: checkMissingTerminator},
	{name: "eot-mid-message", replies: "AAAA", stats: wantStats(map[string]uint64{"Discarded": 1, "Delivered": 0})},
	{name: "truncated", replies: "AAA", stats: wantStat("Discarded", 1)},
	{name: "truncated", lenient: true, replies: "AAA", stats: wantStat("Discarded", 1)},
	{name: "garbage"},
	{name: "garbage", lenient: true},
}

// TestReceiver_Catalogue replays every sample transmission into a Receiver,
// strict and lenient, and checks the replies, the counters and the decoded
// values.
func TestReceiver_Catalogue(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range catalogueCases {
		covered[tc.name] = true
		mode := "Strict"
		if tc.lenient {
			mode = "Lenient"
		}
		t.Run(tc.name+"/"+mode, func(t *testing.T) {
			conn := newReplayConn(MustReadCase(t, tc.name))
			var c collector
			r := astm.NewReceiver(conn, c.handle)
			r.Lenient = tc.lenient
			r.Location = ist
			defer r.Close()

			// Ensure the Receiver runs until the recording ends, and says so.
			err := r.Run(context.Background())
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Run=%v, want io.EOF", err)
			}
			if tc.replies != "" {
				if got, want := conn.replies(), tc.replies; got != want {
					t.Fatalf("replies=%s, want %s", got, want)
				}
			}
			got := c.deliveries()
			if len(got) != tc.msgs {
				t.Fatalf("deliveries=%d, want %d", len(got), tc.msgs)
			}
			s := r.Stats()
			if got, want := s.Delivered, uint64(tc.msgs); got != want {
				t.Fatalf("Stats.Delivered=%d, want %d", got, want)
			}
			if tc.stats != nil {
				tc.stats(t, s)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
	// Ensure every file in the catalogue is replayed.
	for _, name := range MustCaseNames(t) {
		if !covered[name] {
			t.Errorf("catalogue case %s has no test", name)
		}
	}
}

// TestReceiver_CatalogueTCP replays the valid cases over loopback TCP, where
// the Receiver times reads with deadlines instead of its reader goroutine.
func TestReceiver_CatalogueTCP(t *testing.T) {
	for _, name := range []string{"chemistry-clean", "haematology-etb", "multi-patient", "bare-frame", "cr-only"} {
		t.Run(name, func(t *testing.T) {
			lis, analyzer := MustTCPPair(t)
			var c collector
			r := astm.NewReceiver(lis, c.handle)
			r.Lenient = true
			r.Location = ist
			r.TrailerTimeout = 20 * time.Millisecond // cr-only waits for an LF that never comes
			run := runReceiver(t, r)

			if _, err := analyzer.Write(MustReadCase(t, name)); err != nil {
				t.Fatal(err)
			}
			analyzer.(interface{ CloseWrite() error }).CloseWrite()
			if err := run.wait(t); !errors.Is(err, io.EOF) {
				t.Fatalf("Run=%v, want io.EOF", err)
			}
			lis.Close()
			replies, err := io.ReadAll(analyzer)
			if err != nil {
				t.Fatal(err)
			}
			if got := replyString(replies); strings.Contains(got, "N") {
				t.Fatalf("replies=%s, want only ACKs", got)
			}
			if got, want := len(c.deliveries()), 1; got != want {
				t.Fatalf("deliveries=%d, want %d", got, want)
			}
		})
	}
}

func wantStat(field string, n uint64) func(*testing.T, astm.Stats) {
	return wantStats(map[string]uint64{field: n})
}

func wantStats(want map[string]uint64) func(*testing.T, astm.Stats) {
	return func(t *testing.T, s astm.Stats) {
		t.Helper()
		v := reflect.ValueOf(s)
		for field, n := range want {
			if got := v.FieldByName(field).Uint(); got != n {
				t.Errorf("Stats.%s=%d, want %d", field, got, n)
			}
		}
	}
}

func wantDeviation(d astm.Deviation, n uint64) func(*testing.T, astm.Stats) {
	return func(t *testing.T, s astm.Stats) {
		t.Helper()
		if got := s.Deviations[d]; got != n {
			t.Errorf("Stats.Deviations[%v]=%d, want %d", d, got, n)
		}
	}
}

func at(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, ist)
}

func mustMessage(t *testing.T, d *astm.Delivery) *astm.Message {
	t.Helper()
	if d.Err != nil {
		t.Fatalf("Delivery.Err=%v", d.Err)
	}
	return d.Message
}

func checkChemistry(t *testing.T, ds []*astm.Delivery) {
	m := mustMessage(t, ds[0])
	if got, want := ds[0].Deviations, astm.Deviation(0); got != want {
		t.Fatalf("Deviations=%v, want %v", got, want)
	}
	h := m.Header
	if got, want := h.Delimiters, astm.DefaultDelimiters; got != want {
		t.Fatalf("Delimiters=%+v, want %+v", got, want)
	}
	if got, want := h.Sender, []string{"ChemLab 300", "2.1", "CL3-0042"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Sender=%q, want %q", got, want)
	}
	if h.SenderName != "ChemLab 300" || h.SenderVersion != "2.1" || h.ReceiverID != "HEALTHPOST" ||
		h.ProcessingID != "P" || h.Version != "LIS2-A2" {
		t.Fatalf("Header=%+v", h)
	}
	if got, want := h.Timestamp, at(2025, 3, 14, 9, 30, 15); !got.Equal(want) || got.Location() != ist {
		t.Fatalf("Timestamp=%v, want %v", got, want)
	}
	if got, want := len(m.Patients), 1; got != want {
		t.Fatalf("Patients=%d, want %d", got, want)
	}
	p := m.Patients[0]
	if p.Seq != 1 || p.PracticeID != "" || p.LabID != "PID-000123" || p.ID3 != "LAB-77" ||
		p.Name != "TESTPATIENT^ASHA^K" || p.Sex != "F" || !p.BirthDate.Equal(at(1980, 5, 12, 0, 0, 0)) {
		t.Fatalf("Patient=%+v", p)
	}
	o := p.Orders[0]
	if o.SpecimenID != "S250314-017" || o.InstrumentSpecimenID != "0017" || o.Priority != "R" ||
		o.ActionCode != "N" || o.SpecimenType != "SERUM" || o.ReportType != "F" ||
		!o.RequestedAt.Equal(at(2025, 3, 14, 8, 0, 0)) || !o.CollectedAt.Equal(at(2025, 3, 14, 8, 15, 0)) {
		t.Fatalf("Order=%+v", o)
	}
	var codes []string
	for _, tid := range o.Tests {
		codes = append(codes, tid.Local)
	}
	if got, want := codes, []string{"GLU", "CREA", "UREA", "HB", "ALT"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Tests=%q, want %q", got, want)
	}
	want := []struct{ code, value, units, rng, flag string }{
		{"GLU", "98", "mg/dL", "70 to 110", "N"},
		{"CREA", "1.42", "mg/dL", "0.6 to 1.2", "H"},
		{"UREA", "32", "mg/dL", "15 to 40", "N"},
		{"HB", "11.2", "g/dL", "12.0 to 15.5", "L"},
		{"ALT", "45", "U/L", "7 to 56", "N"},
	}
	if got := len(o.Results); got != len(want) {
		t.Fatalf("Results=%d, want %d", got, len(want))
	}
	for i, w := range want {
		r := o.Results[i]
		if r.Seq != i+1 || !reflect.DeepEqual(r.Test, astm.TestID{Local: w.code}) || r.Value != w.value || r.ValueComponents != nil ||
			r.Units != w.units || r.ReferenceRange != w.rng || !reflect.DeepEqual(r.Flags, []string{w.flag}) ||
			r.Status != "F" || r.Instrument != "ChemLab 300" {
			t.Fatalf("Results[%d]=%+v, want %+v", i, r, w)
		}
	}
	glu := o.Results[0]
	if glu.Operator != "OPR1" || !glu.StartedAt.Equal(at(2025, 3, 14, 9, 10, 0)) || !glu.CompletedAt.Equal(at(2025, 3, 14, 9, 12, 30)) {
		t.Fatalf("Results[0]=%+v", glu)
	}
	// Ensure the C record attaches to the result before it, escapes decoded.
	crea := o.Results[1]
	if got, want := len(crea.Comments), 1; got != want {
		t.Fatalf("CREA comments=%d, want %d", got, want)
	}
	c := crea.Comments[0]
	if got, want := c.Text, []string{"Above range^ check hydration", "RECHECK"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Comment.Text=%q, want %q", got, want)
	}
	if c.Seq != 1 || c.Source != "I" || c.Type != "G" {
		t.Fatalf("Comment=%+v", c)
	}
	if m.Terminator.Seq != 1 || m.Terminator.Code != "N" {
		t.Fatalf("Terminator=%+v", m.Terminator)
	}
	if got, want := len(m.Records), 10; got != want {
		t.Fatalf("Records=%d, want %d", got, want)
	}
	if got, want := m.Records[3].Field(4), "98"; got != want {
		t.Fatalf("Records[3].Field(4)=%q, want %q", got, want)
	}
	if !strings.HasPrefix(string(ds[0].Raw), "H|\\^&|||ChemLab 300") || !strings.HasSuffix(string(ds[0].Raw), "L|1|N\r") {
		t.Fatalf("Raw=%q", ds[0].Raw)
	}
}

func checkHaematology(t *testing.T, ds []*astm.Delivery) {
	m := mustMessage(t, ds[0])
	p := m.Patients[0]
	if p.LabID != "PID-000456" || p.Sex != "M" || !p.BirthDate.Equal(at(2019, 2, 3, 0, 0, 0)) {
		t.Fatalf("Patient=%+v", p)
	}
	o := p.Orders[0]
	if got, want := o.Tests, []astm.TestID{{Local: "CBC", Extra: []string{"Complete blood count"}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Tests=%+v, want %+v", got, want)
	}
	if o.SpecimenType != "WHOLEBLOOD" || !o.RequestedAt.IsZero() || !o.CollectedAt.Equal(at(2025, 3, 14, 9, 45, 0)) {
		t.Fatalf("Order=%+v", o)
	}
	if got, want := len(o.Results), 22; got != want {
		t.Fatalf("Results=%d, want %d", got, want)
	}
	wbc := o.Results[0]
	if wbc.Test.Local != "WBC" || !reflect.DeepEqual(wbc.Test.Extra, []string{"1"}) || wbc.Value != "11.8" ||
		wbc.Units != "10*3/uL" || wbc.ReferenceRange != "4.0-10.0" || !reflect.DeepEqual(wbc.Flags, []string{"H", "A"}) {
		t.Fatalf("WBC=%+v", wbc)
	}
	if got, want := len(wbc.Manufacturer), 1; got != want {
		t.Fatalf("WBC Manufacturer=%d, want %d", got, want)
	}
	hist := wbc.Manufacturer[0]
	if got, want := hist.Components(3), []string{"HIST", "WBC"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("M-3=%q, want %q", got, want)
	}
	if got, want := len(hist.Components(5)), 64; got != want {
		t.Fatalf("M-5 components=%d, want %d", got, want)
	}
	// Records split across ETB frames come out whole.
	for i, want := range []struct{ code, value string }{{"RBC", "4.21"}, {"MCV", "79.8"}, {"PLT", "312"}, {"NEU#", "8.53"}, {"PDW", "16.2"}} {
		var found bool
		for _, r := range o.Results {
			if r.Test.Local == want.code {
				found = true
				if r.Value != want.value || r.Status != "F" || !r.CompletedAt.Equal(at(2025, 3, 14, 10, 14, 55)) {
					t.Fatalf("case %d: %s=%+v", i, want.code, r)
				}
			}
		}
		if !found {
			t.Fatalf("no result %s", want.code)
		}
	}
	last := o.Results[21]
	if last.Test.Local != "PDW" || len(last.Comments) != 1 || last.Comments[0].Type != "I" ||
		!reflect.DeepEqual(last.Comments[0].Text, []string{"Microcytic hypochromic picture", "SMEAR ADVISED"}) {
		t.Fatalf("last result=%+v", last)
	}
}

func checkMultiPatient(t *testing.T, ds []*astm.Delivery) {
	m := mustMessage(t, ds[0])
	if got, want := len(m.Patients), 3; got != want {
		t.Fatalf("Patients=%d, want %d", got, want)
	}
	type res struct{ code, value, flag, status string }
	want := []struct {
		labID, specimen, prio string
		comments              int
		results               []res
	}{
		{"PID-001", "S250315-001", "R", 0, []res{{"GLU", "142", "H", "F"}, {"CREA", "0.9", "N", "F"}}},
		{"PID-002", "S250315-002", "R", 1, []res{{"GLU", "88", "N", "F"}, {"UREA", "51", "H", "F"}}},
		{"PID-003", "S250315-003", "S", 0, []res{{"HB", "8.4", "LL", "F"}, {"GLU", "", "", "X"}}},
	}
	for i, w := range want {
		p := m.Patients[i]
		if p.Seq != i+1 || p.LabID != w.labID || len(p.Comments) != w.comments || len(p.Orders) != 1 {
			t.Fatalf("Patients[%d]=%+v", i, p)
		}
		o := p.Orders[0]
		if o.SpecimenID != w.specimen || o.Priority != w.prio || len(o.Results) != len(w.results) {
			t.Fatalf("Patients[%d].Orders[0]=%+v", i, o)
		}
		for j, wr := range w.results {
			r := o.Results[j]
			var flags []string
			if wr.flag != "" {
				flags = []string{wr.flag}
			}
			if r.Test.Local != wr.code || r.Value != wr.value || !reflect.DeepEqual(r.Flags, flags) || r.Status != wr.status {
				t.Fatalf("Patients[%d] Results[%d]=%+v, want %+v", i, j, r, wr)
			}
		}
	}
	if c := m.Patients[1].Comments[0]; c.Source != "L" || !reflect.DeepEqual(c.Text, []string{"Fasting sample"}) {
		t.Fatalf("patient comment=%+v", c)
	}
	if r := m.Patients[2].Orders[0].Results[1]; !r.CompletedAt.IsZero() || r.Units != "" {
		t.Fatalf("result not done=%+v", r)
	}
}

func checkTwoMessages(t *testing.T, ds []*astm.Delivery) {
	for i, want := range []struct{ labID, value string }{{"PID-010", "101"}, {"PID-011", "77"}} {
		m := mustMessage(t, ds[i])
		p := m.Patients[0]
		if p.LabID != want.labID || p.Orders[0].Results[0].Value != want.value {
			t.Fatalf("message %d: %+v", i, p)
		}
		if !strings.HasPrefix(string(ds[i].Raw), "H|") || !strings.HasSuffix(string(ds[i].Raw), "L|1|N\r") {
			t.Fatalf("message %d Raw=%q", i, ds[i].Raw)
		}
	}
}

func checkMissingTerminator(t *testing.T, ds []*astm.Delivery) {
	m := mustMessage(t, ds[0])
	if got, want := m.Patients[0].LabID, "PID-011"; got != want {
		t.Fatalf("LabID=%q, want %q", got, want)
	}
	if !strings.HasPrefix(string(ds[0].Raw), "H|") {
		t.Fatalf("Raw=%q", ds[0].Raw)
	}
}

func checkOversized(t *testing.T, ds []*astm.Delivery) {
	m := mustMessage(t, ds[0])
	if got, want := ds[0].Deviations, astm.DevOversizedFrame; got != want {
		t.Fatalf("Deviations=%v, want %v", got, want)
	}
	h := m.Header
	if h.SenderName != "BioChem 240" || h.ProcessingID != "PR" || h.Version != "1394-97" {
		t.Fatalf("Header=%+v", h)
	}
	if m.Patients[0].Seq != 475 || m.Terminator.Seq != 474 || m.Terminator.Code != "N" {
		t.Fatalf("Patient.Seq=%d Terminator=%+v", m.Patients[0].Seq, m.Terminator)
	}
	o := m.Patients[0].Orders[0]
	if o.SpecimenID != "1042" || o.SpecimenType != "serum" || len(o.Results) != 10 {
		t.Fatalf("Order=%+v", o)
	}
	glu := o.Results[7]
	if got, want := glu.Test, (astm.TestID{Universal: "GLU", Name: "Glucose", Local: "F"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("Test=%+v, want %+v", got, want)
	}
	if got, want := glu.ValueComponents, []string{"2.837141", "", "", "", ""}; glu.Value != "2.837141" || !reflect.DeepEqual(got, want) {
		t.Fatalf("Value=%q ValueComponents=%q", glu.Value, got)
	}
	if got, want := glu.ReferenceRange, "0.000000-0.000000"; got != want {
		t.Fatalf("ReferenceRange=%q, want %q", got, want)
	}
}

// checkSmall checks the short GlucoStat message the deviating cases carry.
func checkSmall(dev astm.Deviation) func(*testing.T, []*astm.Delivery) {
	return func(t *testing.T, ds []*astm.Delivery) {
		t.Helper()
		m := mustMessage(t, ds[0])
		if got, want := ds[0].Deviations, dev; got != want {
			t.Fatalf("Deviations=%v, want %v", got, want)
		}
		if len(m.Patients) != 1 {
			t.Fatalf("Patients=%d, want 1", len(m.Patients))
		}
		p := m.Patients[0]
		if p.LabID != "PID-020" || len(p.Orders) != 1 || len(p.Orders[0].Results) != 1 {
			t.Fatalf("Patient=%+v", p)
		}
		r := p.Orders[0].Results[0]
		if r.Test.Local != "GLU" || r.Value != "126" || r.Units != "mg/dL" || !reflect.DeepEqual(r.Flags, []string{"H"}) ||
			!r.CompletedAt.Equal(at(2025, 3, 18, 8, 58, 0)) {
			t.Fatalf("Result=%+v", r)
		}
		if m.Terminator.Code != "N" {
			t.Fatalf("Terminator=%+v", m.Terminator)
		}
	}
}

func checkParseErr(want error) func(*testing.T, []*astm.Delivery) {
	return func(t *testing.T, ds []*astm.Delivery) {
		t.Helper()
		d := ds[0]
		var re *astm.RecordError
		if !errors.Is(d.Err, want) || !errors.As(d.Err, &re) || d.Message != nil || len(d.Raw) == 0 {
			t.Fatalf("Delivery Err=%v Message=%v, want %v", d.Err, d.Message, want)
		}
	}
}

func checkDoubledDelimiter(t *testing.T, ds []*astm.Delivery) {
	checkSmall(astm.DevDelimiters)(t, ds)
	if got, want := ds[0].Message.Header.Delimiters, astm.DefaultDelimiters; got != want {
		t.Fatalf("Delimiters=%+v, want %+v", got, want)
	}
	if got, want := ds[0].Message.Header.SenderName, "HemaMini"; got != want {
		t.Fatalf("SenderName=%q, want %q", got, want)
	}
}
