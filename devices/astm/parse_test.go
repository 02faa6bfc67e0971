package astm_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices/astm"
)

func TestAppendFrame(t *testing.T) {
	// Ensure the checksum is the mod-256 sum of FN through ETX, in uppercase
	// hex: the worked example "1A|B|C|D CR ETX" sums to 0xBF.
	t.Run("Checksum", func(t *testing.T) {
		got := astm.AppendFrame(nil, 1, []byte("A|B|C|D\r"), true)
		if want := "\x021A|B|C|D\r\x03BF\r\n"; string(got) != want {
			t.Fatalf("frame=%q, want %q", got, want)
		}
	})
	// Ensure intermediate frames end with ETB and frame numbers wrap mod 8.
	t.Run("ETBAndWrap", func(t *testing.T) {
		got := astm.AppendFrame([]byte("x"), 8, []byte("R|1"), false)
		var sum byte
		for _, c := range []byte("0R|1\x17") {
			sum += c
		}
		want := fmt.Sprintf("x\x020R|1\x17%02X\r\n", sum)
		if string(got) != want {
			t.Fatalf("frame=%q, want %q", got, want)
		}
	})
	// Ensure a maximal frame is exactly MaxFrameSize bytes.
	t.Run("MaxSize", func(t *testing.T) {
		got := astm.AppendFrame(nil, 3, []byte(strings.Repeat("x", astm.MaxFrameText)), true)
		if len(got) != astm.MaxFrameSize {
			t.Fatalf("len=%d, want %d", len(got), astm.MaxFrameSize)
		}
	})
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in      string
		lenient bool // through a lenient Parser; ParseTime itself is strict
		want    time.Time
		err     bool
	}{
		{in: "20250314", want: time.Date(2025, 3, 14, 0, 0, 0, 0, ist)},
		{in: "202503140930", want: time.Date(2025, 3, 14, 9, 30, 0, 0, ist)},
		{in: "20250314093015", want: time.Date(2025, 3, 14, 9, 30, 15, 0, ist)},
		{in: "20240229235959", want: time.Date(2024, 2, 29, 23, 59, 59, 0, ist)},
		{in: ""},
		{in: "2025031409", err: true},
		{in: "20250230", err: true},
		{in: "20250431", err: true},
		{in: "20251301", err: true},
		{in: "20250314246000", err: true},
		{in: "20250314096000", err: true},
		{in: "2025-03-14", err: true},
		{in: "2025031409301", err: true},
		{in: "202503140930150", err: true},
		{in: " 20250314", err: true},
		{in: "2025031a", err: true},
	} {
		got, err := astm.ParseTime(tc.in, ist)
		if tc.err {
			if !errors.Is(err, astm.ErrTimestamp) {
				t.Errorf("ParseTime(%q) err=%v, want ErrTimestamp", tc.in, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q)=%v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	// Ensure nil means UTC.
	if got, _ := astm.ParseTime("20250314", nil); got.Location() != time.UTC {
		t.Fatalf("Location=%v, want UTC", got.Location())
	}
}

func TestDelimiters_Unescape(t *testing.T) {
	d := astm.DefaultDelimiters
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a&F&b", "a|b"},
		{"a&S&b&R&c&E&d", "a^b\\c&d"},
		{"&F&&F&", "||"},
		{"&X0D&", "&X0D&"}, // vendor or hex sequences stay as sent
		{"&.br&", "&.br&"},
		{"a&b", "a&b"},
		{"&", "&"},
		{"a&F", "a&F"},
		{"&&F&", "&|"},
	} {
		if got := d.Unescape(tc.in); got != tc.want {
			t.Errorf("Unescape(%q)=%q, want %q", tc.in, got, tc.want)
		}
	}
	// Ensure EscapeValue round-trips through Unescape, with other delimiters too.
	for _, d := range []astm.Delimiters{astm.DefaultDelimiters, {Field: '!', Repeat: '~', Component: '`', Escape: '$'}} {
		for _, s := range []string{"", "plain", "a|b^c\\d&e", "!~`$", "&F&"} {
			if got := d.Unescape(d.EscapeValue(s)); got != s {
				t.Errorf("%+v: Unescape(EscapeValue(%q))=%q", d, s, got)
			}
		}
	}
}

func TestRecord_Accessors(t *testing.T) {
	p := astm.Parser{Lenient: true}
	m, err := p.Parse([]byte("H|\\^&\rR|1|^^^GLU^x\\^^^B|5&S&2^a^b|mg/dL\rL|1\r"))
	if err != nil {
		t.Fatal(err)
	}
	r := m.Records[1]
	if got, want := r.Field(3), `^^^GLU^x\^^^B`; got != want {
		t.Fatalf("Field(3)=%q, want %q", got, want)
	}
	if got, want := r.Repeats(3), []string{"^^^GLU^x", "^^^B"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Repeats(3)=%q, want %q", got, want)
	}
	if got, want := r.Components(4), []string{"5^2", "a", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Components(4)=%q, want %q", got, want)
	}
	if got, want := r.Text(4), "5^2"; got != want {
		t.Fatalf("Text(4)=%q, want %q", got, want)
	}
	for _, n := range []int{-1, 0, 6, 100} {
		if r.Field(n) != "" || r.Components(n) != nil || r.Repeats(n) != nil || r.Text(n) != "" {
			t.Fatalf("field %d not empty", n)
		}
	}
	// Ensure H-2 is never split: it holds the delimiters themselves.
	h := m.Records[0]
	if got, want := h.Components(2), []string{`\^&`}; !reflect.DeepEqual(got, want) {
		t.Fatalf("H Components(2)=%q, want %q", got, want)
	}
	if got, want := h.Text(2), `\^&`; got != want {
		t.Fatalf("H Text(2)=%q, want %q", got, want)
	}
}

func TestParser_Parse(t *testing.T) {
	// Ensure declared delimiters are used, not hard-coded ones.
	t.Run("OtherDelimiters", func(t *testing.T) {
		text := "H!~`$!!!Lab`3!!!!!!!P!LIS2-A2!20250101\rP!1!!ID$F$1\rO!1!S1!!```A~```B\rR!1!```A!7`1!u!!H~A\rL!1!N\r"
		m, err := astm.ParseMessage([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Header.Delimiters, (astm.Delimiters{Field: '!', Repeat: '~', Component: '`', Escape: '$'}); got != want {
			t.Fatalf("Delimiters=%+v, want %+v", got, want)
		}
		if got, want := m.Patients[0].LabID, "ID!1"; got != want {
			t.Fatalf("LabID=%q, want %q", got, want)
		}
		o := m.Patients[0].Orders[0]
		if len(o.Tests) != 2 || o.Tests[1].Local != "B" {
			t.Fatalf("Tests=%+v", o.Tests)
		}
		r := o.Results[0]
		if r.Value != "7" || !reflect.DeepEqual(r.ValueComponents, []string{"7", "1"}) || !reflect.DeepEqual(r.Flags, []string{"H", "A"}) {
			t.Fatalf("Result=%+v", r)
		}
	})

	// Ensure a query message parses, minimally.
	t.Run("Query", func(t *testing.T) {
		m, err := astm.ParseMessage([]byte("H|\\^&\rQ|1|^S250314-017||^^^ALL||||||||O\rL|1|N\r"))
		if err != nil {
			t.Fatal(err)
		}
		q := m.Queries[0]
		if q.Seq != 1 || !reflect.DeepEqual(q.StartRange, []string{"", "S250314-017"}) || q.Tests[0].Local != "ALL" || q.Status != "O" {
			t.Fatalf("Query=%+v", q)
		}
	})

	// Ensure S records and C/M records at message level are kept.
	t.Run("MessageLevel", func(t *testing.T) {
		m, err := astm.ParseMessage([]byte("H|\\^&\rC|1|I|hello|G\rM|1|X|y\rS|1|z\rL|1|N"))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Comments) != 1 || len(m.Manufacturer) != 1 || len(m.Other) != 1 || m.Terminator.Code != "N" {
			t.Fatalf("Message=%+v", m)
		}
	})

	// Ensure strict mode rejects with a typed error naming record and field,
	// and lenient mode accepts and records the deviation.
	for _, tc := range []struct {
		name   string
		text   string
		err    error
		record int
		field  int
		dev    astm.Deviation // lenient; 0 means lenient fails too
	}{
		{name: "Empty", text: "\r\r", err: astm.ErrEmpty, record: 1},
		{name: "NoHeader", text: "P|1\rL|1|N\r", err: astm.ErrNoHeader, record: 1, dev: astm.DevNoHeader},
		{name: "BadDelimiters", text: "H|\\^\rL|1|N\r", err: astm.ErrDelimiters, record: 1, field: 2, dev: astm.DevDelimiters},
		{name: "RepeatedDelimiters", text: "H|^^&\rL|1|N\r", err: astm.ErrDelimiters, record: 1, field: 2, dev: astm.DevDelimiters},
		{name: "AlnumDelimiter", text: "H|\\^A\rL|1|N\r", err: astm.ErrDelimiters, record: 1, field: 2, dev: astm.DevDelimiters},
		{name: "BareH", text: "H\rL|1|N\r", err: astm.ErrDelimiters, record: 1, field: 2, dev: astm.DevDelimiters},
		{name: "OrderBeforePatient", text: "H|\\^&\rO|1|S\rL|1|N\r", err: astm.ErrUnexpectedRecord, record: 2, dev: astm.DevImplicitParent},
		{name: "ResultBeforeOrder", text: "H|\\^&\rP|1\rR|1|^^^A|1\rL|1|N\r", err: astm.ErrUnexpectedRecord, record: 3, dev: astm.DevImplicitParent},
		{name: "ResultFirst", text: "H|\\^&\rR|1|^^^A|1\rL|1|N\r", err: astm.ErrUnexpectedRecord, record: 2, dev: astm.DevImplicitParent},
		{name: "SecondHeader", text: "H|\\^&\rH|\\^&\rL|1|N\r", err: astm.ErrUnexpectedRecord, record: 2},
		{name: "AfterTerminator", text: "H|\\^&\rL|1|N\rP|1\r", err: astm.ErrUnexpectedRecord, record: 3},
		{name: "UnknownRecord", text: "H|\\^&\rX|1\rL|1|N\r", err: astm.ErrUnknownRecord, record: 2, dev: astm.DevUnknownRecord},
		{name: "LongType", text: "H|\\^&\rPX|1\rL|1|N\r", err: astm.ErrUnknownRecord, record: 2, dev: astm.DevUnknownRecord},
		{name: "BadSequence", text: "H|\\^&\rP|one\rL|1|N\r", err: astm.ErrSequence, record: 2, field: 2, dev: astm.DevBadSequence},
		{name: "EmptySequence", text: "H|\\^&\rP\rL||N\r", err: astm.ErrSequence, record: 2, field: 2, dev: astm.DevBadSequence},
		{name: "BadHeaderTime", text: "H|\\^&" + strings.Repeat("|", 12) + "20251301\rL|1|N\r", err: astm.ErrTimestamp, record: 1, field: 14, dev: astm.DevBadTimestamp},
		{name: "BadResultTime", text: "H|\\^&\rP|1\rO|1\rR|1|^^^A|1|||||||||2025-03-14\rL|1|N\r", err: astm.ErrTimestamp, record: 4, field: 13, dev: astm.DevBadTimestamp},
		{name: "HourOnlyTime", text: "H|\\^&\rP|1\rO|1||||||2025031408\rL|1|N\r", err: astm.ErrTimestamp, record: 3, field: 8, dev: 0xffffffff},
		{name: "NoTerminator", text: "H|\\^&\rP|1\r", err: astm.ErrNoTerminator, record: 3, dev: astm.DevNoTerminator},
		{name: "LineFeeds", text: "H|\\^&\nP|1\nL|1|N\n", err: astm.ErrInvalidByte, record: 1, dev: astm.DevLFInText},
		{name: "ControlByte", text: "H|\\^&\rP|1|\x11\rL|1|N\r", err: astm.ErrInvalidByte, record: 2, dev: astm.DevControlInText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := astm.ParseMessage([]byte(tc.text))
			var re *astm.RecordError
			if !errors.Is(err, tc.err) || !errors.As(err, &re) {
				t.Fatalf("err=%v, want %v", err, tc.err)
			}
			if re.Record != tc.record || re.Field != tc.field {
				t.Fatalf("RecordError record=%d field=%d, want %d, %d", re.Record, re.Field, tc.record, tc.field)
			}
			p := astm.Parser{Lenient: true, Location: ist}
			m, err := p.Parse([]byte(tc.text))
			switch {
			case tc.dev == 0 && err == nil:
				t.Fatalf("lenient: no error, want %v", tc.err)
			case tc.dev == 0:
			case err != nil:
				t.Fatalf("lenient: %v", err)
			case tc.dev == 0xffffffff: // accepted with no deviation
			case m.Deviations&tc.dev == 0:
				t.Fatalf("lenient Deviations=%v, want %v", m.Deviations, tc.dev)
			}
		})
	}

	// Ensure lenient mode tolerates Yumizen's doubled repeat delimiter and
	// attaches orphan records to empty parents.
	t.Run("LenientRepairs", func(t *testing.T) {
		p := astm.Parser{Lenient: true}
		m, err := p.Parse([]byte("H|\\\\^&|||X\nR|1|^^^A|5\r\nL|1|N"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Deviations, astm.DevDelimiters|astm.DevLFInText|astm.DevImplicitParent; got != want {
			t.Fatalf("Deviations=%v, want %v", got, want)
		}
		if got, want := m.Header.Delimiters, astm.DefaultDelimiters; got != want {
			t.Fatalf("Delimiters=%+v", got)
		}
		pt := m.Patients[0]
		if pt.Record.Num != 0 || pt.Orders[0].Record.Num != 0 || pt.Orders[0].Results[0].Value != "5" {
			t.Fatalf("Patient=%+v", pt)
		}
	})
}

// TestParser_Limits ensures hostile input is refused before it costs memory.
func TestParser_Limits(t *testing.T) {
	lim := astm.Limits{MaxRecordBytes: 100, MaxFields: 10, MaxRecords: 4, MaxMessageBytes: 1000}
	for _, tc := range []struct {
		name   string
		text   string
		err    error
		record int
		field  int
	}{
		{"RecordTooLong", "H|\\^&\rP|1|" + strings.Repeat("x", 100) + "\rL|1\r", astm.ErrRecordTooLong, 2, 0},
		{"TooManyFields", "H|\\^&\rP|1" + strings.Repeat("|", 10) + "\rL|1\r", astm.ErrTooManyFields, 2, 11},
		{"TooManyComponents", "H|\\^&\rO|1|S|" + strings.Repeat("^", 10) + "\rL|1\r", astm.ErrTooManyFields, 2, 4},
		{"TooManyRepeats", "H|\\^&\rO|1|S|" + strings.Repeat("\\", 10) + "\rL|1\r", astm.ErrTooManyFields, 2, 4},
		{"TooManyRecords", "H|\\^&\rP|1\rC|1\rC|2\rL|1\r", astm.ErrTooManyRecords, 5, 0},
		{"MessageTooLong", strings.Repeat("H|\\^&\r", 200), astm.ErrTooManyRecords, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, lenient := range []bool{false, true} {
				p := astm.Parser{Lenient: lenient, Limits: lim}
				_, err := p.Parse([]byte(tc.text))
				var re *astm.RecordError
				if !errors.Is(err, tc.err) || !errors.As(err, &re) || re.Record != tc.record || re.Field != tc.field {
					t.Fatalf("lenient=%v: err=%v, want %v record %d field %d", lenient, err, tc.err, tc.record, tc.field)
				}
			}
		})
	}
}

// TestRecordError ensures errors name record and field, never content.
func TestRecordError(t *testing.T) {
	for _, tc := range []struct {
		err  astm.RecordError
		want string
	}{
		{astm.RecordError{Record: 4, Type: 'R', Field: 13, Err: astm.ErrTimestamp}, "parse record 4 field R-13: invalid timestamp"},
		{astm.RecordError{Record: 2, Type: 'O', Err: astm.ErrUnexpectedRecord}, "parse record 2 (O): unexpected record"},
		{astm.RecordError{Record: 3, Field: 2, Err: astm.ErrSequence}, "parse record 3 field 2: invalid sequence number"},
		{astm.RecordError{Record: 1, Type: 0x02, Err: astm.ErrNoHeader}, "parse record 1: no header record"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error()=%q, want %q", got, tc.want)
		}
	}
	_, err := astm.ParseMessage([]byte("H|\\^&\rP|1||SECRET-NAME||||19801332\rL|1\r"))
	if err == nil || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "19801332") {
		t.Fatalf("err=%v, want an error without field content", err)
	}
}

func TestDeviation_String(t *testing.T) {
	if got, want := (astm.DevNoChecksum | astm.DevLFInText).String(), "no-checksum|lf-in-text"; got != want {
		t.Fatalf("String()=%q, want %q", got, want)
	}
	if got, want := astm.Deviation(0).String(), "none"; got != want {
		t.Fatalf("String()=%q, want %q", got, want)
	}
}
