package line_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/line"
)

// caseDir holds the shared sample catalogue (see its README.md).
const caseDir = "../../testdata/line"

// MustReadCase returns the bytes of testdata/line/<name>.
func MustReadCase(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(caseDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// result is one ReadLine outcome.
type result struct {
	Line string
	Err  error
}

// readAll reads lines until io.EOF or an error that ends the stream.
func readAll(r *line.Reader) []result {
	var out []result
	for {
		l, err := r.ReadLine()
		if err == io.EOF {
			return out
		}
		out = append(out, result{string(l), err})
		if err != nil && !errors.Is(err, line.ErrLineTooLong) {
			return out
		}
	}
}

func TestReader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		maxLine int
		want    []result
	}{
		// Ensure CR, LF and CR LF each end one line, blank lines are
		// skipped and a last line without terminator is reported.
		{"MixedEndings", MustReadCase(t, "mixed-endings.txt"), 0, []result{
			{"WT: 50.1 kg", nil}, {"WT: 50.2 kg", nil}, {"WT: 50.3 kg", nil}, {"WT: 50.4 kg", nil},
			{"WT: 50.5 kg", io.ErrUnexpectedEOF},
		}},
		// Ensure a line past the cap is cut, its rest skipped, and the next
		// line read whole.
		{"Oversized", MustReadCase(t, "oversized.txt"), 100, []result{
			{"WT: " + string(bytes.Repeat([]byte("9"), 96)), line.ErrLineTooLong}, {"WT: 62.4 kg", nil},
		}},
		// Ensure a line of exactly the cap is whole and one byte more is cut
		// even when its terminator is in the same read.
		{"AtCap", []byte("12345\r\n123456\r\nok\r\n"), 5, []result{
			{"12345", nil}, {"12345", line.ErrLineTooLong}, {"ok", nil},
		}},
		// Ensure bytes that are not text pass through as bytes: judging them
		// is the decoder's job.
		{"InvalidUTF8", MustReadCase(t, "invalid-utf8.txt"), 0, []result{
			{"WT: 6\xff2.4 kg", nil}, {"T= 37.0 \xb0C", nil}, {"WT: 62.4 kg", nil},
		}},
		// Ensure an empty stream is just EOF.
		{"Empty", nil, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunked := range []bool{false, true} {
				var src io.Reader = bytes.NewReader(tc.in)
				if chunked {
					src = iotest.OneByteReader(src) // CR in one read, LF in the next
				}
				r := line.NewReader(src)
				if tc.maxLine > 0 {
					r.MaxLine = tc.maxLine
				}
				if got := readAll(r); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("chunked=%v:\n got %q\nwant %q", chunked, got, tc.want)
				}
			}
		})
	}

	// Ensure a read error such as a deadline keeps the partial line, so the
	// next ReadLine carries on with it.
	t.Run("ErrorKeepsPartialLine", func(t *testing.T) {
		timeout := errors.New("i/o timeout")
		src := &script{steps: []step{{"WT: 6", nil}, {"", timeout}, {"2.4 kg\r", nil}, {"\nWT: 1 kg\n", io.EOF}}}
		r := line.NewReader(src)
		if _, err := r.ReadLine(); err != timeout {
			t.Fatalf("err=%v, want the reader's error", err)
		}
		got := readAll(r)
		if want := []result{{"WT: 62.4 kg", nil}, {"WT: 1 kg", nil}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})

	// Ensure a reader that returns nothing for ever is reported, not spun on.
	t.Run("NoProgress", func(t *testing.T) {
		r := line.NewReader(&script{})
		if _, err := r.ReadLine(); err != io.ErrNoProgress {
			t.Fatalf("err=%v, want io.ErrNoProgress", err)
		}
	})

	// Ensure returned lines belong to the caller: later reads do not
	// overwrite them.
	t.Run("CallerOwnsLine", func(t *testing.T) {
		r := line.NewReader(iotest.OneByteReader(bytes.NewReader([]byte("first\nsecond\n"))))
		a, _ := r.ReadLine()
		b, _ := r.ReadLine()
		if string(a) != "first" || string(b) != "second" {
			t.Fatalf("lines %q %q", a, b)
		}
	})
}

// step is one scripted Read.
type step struct {
	data string
	err  error
}

// script returns its steps in order, then (0, nil) for ever.
type script struct{ steps []step }

func (s *script) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, nil
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	return copy(p, st.data), st.err
}

// decodeCase is a device shape from testdata/line and its settings.
type decodeCase struct {
	file     string
	settings devices.Settings
	want     []devices.Measurement // in line order, At left zero
	failures []error               // the errors of the lines that gave none, in order
}

var decodeCases = []decodeCase{
	{"ad-scale.txt", devices.Settings{Pattern: `^ST,GS,(?P<value>[+-]\s*[0-9.]+)\s*(?P<unit>kg|g|lb)$`, Code: "29463-7"},
		[]devices.Measurement{
			{System: "LN", Code: "29463-7", Value: "+62.400", Unit: "kg"},
			{System: "LN", Code: "29463-7", Value: "+62.400", Unit: "kg"},
			{System: "LN", Code: "29463-7", Value: "+4.876", Unit: "kg"},
		}, []error{line.ErrNoMatch, line.ErrNoMatch, line.ErrNoMatch, line.ErrNoMatch}},
	{"wt-scale.txt", devices.Settings{Pattern: `WT:\s*(?P<value>[0-9.]+)\s*(?P<unit>kg|lb)`, Code: "29463-7"},
		[]devices.Measurement{
			{System: "LN", Code: "29463-7", Value: "62.4", Unit: "kg"},
			{System: "LN", Code: "29463-7", Value: "48.0", Unit: "kg"},
			{System: "LN", Code: "29463-7", Value: "137.5", Unit: "lb"},
		}, nil},
	{"thermometer-cr.txt", devices.Settings{Pattern: `T=\s*(?P<value>[0-9.]+)\s*(?P<unit>[FC])`, Code: "8310-5"},
		[]devices.Measurement{
			{System: "LN", Code: "8310-5", Value: "98.6", Unit: "F"},
			{System: "LN", Code: "8310-5", Value: "37.2", Unit: "C"},
			{System: "LN", Code: "8310-5", Value: "101.3", Unit: "F"},
		}, nil},
	{"spo2-status.txt", devices.Settings{Pattern: `SPO2=(?P<value>[0-9]+)%`, Code: "59408-5", Unit: "%"},
		[]devices.Measurement{
			{System: "LN", Code: "59408-5", Value: "097", Unit: "%"},
			{System: "LN", Code: "59408-5", Value: "096", Unit: "%"},
		}, []error{line.ErrNoMatch}},
	{"coded.txt", devices.Settings{Pattern: `^(?P<code>[A-Z]+)\s+(?P<value>[0-9.]+)\s+(?P<unit>\S+)$`,
		Codes: map[string]string{"GLU": "2339-0", "BPS": "8480-6", "BPD": "8462-4"}},
		[]devices.Measurement{
			{Code: "GLU", Value: "104", Unit: "mg/dL"},
			{Code: "BPS", Value: "120", Unit: "mmHg"},
			{Code: "BPD", Value: "80", Unit: "mmHg"},
			{Code: "XYZ", Value: "1", Unit: "U"},
		}, nil},
	{"patient.txt", devices.Settings{Pattern: `ID:(?P<patient>\S*)\s+WT\s+(?P<value>[0-9.]+)\s*(?P<unit>kg)`, Code: "29463-7"},
		[]devices.Measurement{
			{System: "LN", Code: "29463-7", Value: "62.4", Unit: "kg", PatientRef: "P-000001"},
			{System: "LN", Code: "29463-7", Value: "55.0", Unit: "kg"},
		}, nil},
	{"invalid-utf8.txt", devices.Settings{Pattern: `WT:\s*(?P<value>[0-9.]+)\s*(?P<unit>kg|lb)`, Code: "29463-7"},
		[]devices.Measurement{{System: "LN", Code: "29463-7", Value: "62.4", Unit: "kg"}},
		[]error{line.ErrNotText, line.ErrNotText}},
}

func TestDecoder(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.file, func(t *testing.T) {
			d, err := line.NewDecoder(tc.settings)
			if err != nil {
				t.Fatal(err)
			}
			when := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
			var got []devices.Measurement
			var failures []error
			r := line.NewReader(bytes.NewReader(MustReadCase(t, tc.file)))
			for {
				l, err := r.ReadLine()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				m, err := d.Decode(l, when)
				if err != nil {
					failures = append(failures, err)
					continue
				}
				if !m.At.Equal(when) {
					t.Fatalf("At=%v, want the arrival time", m.At)
				}
				m.At = time.Time{}
				got = append(got, m)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("\n got %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(failures, tc.failures) {
				t.Fatalf("failures %v, want %v", failures, tc.failures)
			}
		})
	}
}

func TestDecoder_Errors(t *testing.T) {
	// Ensure bad settings name the fix.
	for _, st := range []devices.Settings{
		{},
		{Pattern: `(`, Code: "29463-7"},
		{Pattern: `WT (?P<v>\d+)`, Code: "29463-7"},
		{Pattern: `WT (?P<value>\d+)`},
	} {
		if _, err := line.NewDecoder(st); err == nil {
			t.Errorf("NewDecoder(%+v) succeeded", st)
		}
	}

	// Ensure a value group that takes part without text, or a code group
	// that is empty with no default, is an error and not a reading.
	d, err := line.NewDecoder(devices.Settings{Pattern: `^(?P<code>[A-Z]*)=(?P<value>[0-9.]*)$`})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]error{"WT=": line.ErrNoValue, "=62": line.ErrNoCode, "WT:62": line.ErrNoMatch} {
		if _, err := d.Decode([]byte(in), time.Now()); err != want {
			t.Errorf("Decode(%q) err=%v, want %v", in, err, want)
		}
	}
}
