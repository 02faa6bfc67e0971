package hl7_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/devices/hl7"
)

func TestParseORU_Limits(t *testing.T) {
	msh := "MSH|^~\\&|DEV||||20260314170000||ORU^R01|LIM-1|P|2.5\rOBR|1\r"

	// Ensure a message at the segment limit parses and one past it does not.
	t.Run("Segments", func(t *testing.T) {
		ok := msh + strings.Repeat("NTE|1\r", hl7.MaxSegments-2)
		if _, err := hl7.ParseORU([]byte(ok)); err != nil {
			t.Fatalf("ParseORU at the limit: %v", err)
		}
		_, err := hl7.ParseORU([]byte(ok + "NTE|1\r"))
		if !errors.Is(err, hl7.ErrTooMany) {
			t.Fatalf("err=%v, want ErrTooMany", err)
		}
		var pe *hl7.ParseError
		if errors.As(err, &pe); pe == nil || pe.Segment != hl7.MaxSegments+1 {
			t.Fatalf("err=%#v, want segment %d", pe, hl7.MaxSegments+1)
		}
	})

	// Ensure blank lines do not count as segments.
	t.Run("BlankLines", func(t *testing.T) {
		data := msh + strings.Repeat("\r\n", 3*hl7.MaxSegments) + "OBX|1|NM|X||1\r"
		oru, err := hl7.ParseORU([]byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := observations(oru)[0].Segment, 3; got != want {
			t.Fatalf("Segment=%d, want %d", got, want)
		}
	})

	// Ensure the field limit holds for MSH as well as other segments.
	t.Run("Fields", func(t *testing.T) {
		ok := "MSH|^~\\&" + strings.Repeat("|", hl7.MaxFields-2)
		if _, err := hl7.Parse([]byte(ok)); err != nil {
			t.Fatalf("Parse at the limit: %v", err)
		}
		if _, err := hl7.Parse([]byte(ok + "|")); !errors.Is(err, hl7.ErrTooMany) {
			t.Fatalf("err=%v, want ErrTooMany", err)
		}
		obx := msh + "OBX" + strings.Repeat("|", hl7.MaxFields)
		if _, err := hl7.Parse([]byte(obx)); err != nil {
			t.Fatalf("Parse OBX at the limit: %v", err)
		}
		if _, err := hl7.Parse([]byte(obx + "|")); !errors.Is(err, hl7.ErrTooMany) {
			t.Fatalf("err=%v, want ErrTooMany", err)
		}
	})

	// Ensure a huge OBX-5 (a waveform) is not split, so it is not limited.
	t.Run("LongValue", func(t *testing.T) {
		data := msh + "OBX|1|NA|X||" + strings.Repeat("12^", 50000) + "12\r"
		oru, err := hl7.ParseORU([]byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(observations(oru)[0].Value), 150002; got != want {
			t.Fatalf("len(Value)=%d, want %d", got, want)
		}
	})
}

func TestParseHeader(t *testing.T) {
	// Ensure the header of a message whose body is broken is still read.
	t.Run("BrokenBody", func(t *testing.T) {
		h, err := hl7.ParseHeader(MustReadCase(t, "bad_timestamp"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := h.ControlID, "BT-1"; got != want {
			t.Fatalf("ControlID=%q, want %q", got, want)
		}
	})

	// Ensure a truncated MSH gives what it has.
	t.Run("Truncated", func(t *testing.T) {
		h, err := hl7.ParseHeader(MustReadCase(t, "truncated_msh"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := h.SendingApplication.UniversalID, "0012FFFE00A1B2C3"; got != want {
			t.Fatalf("SendingApplication.UniversalID=%q, want %q", got, want)
		}
		if got, want := h.SendingFacility.NamespaceID, "WARD"; got != want {
			t.Fatalf("SendingFacility=%q, want %q", got, want)
		}
		if h.ControlID != "" || h.Version != "" {
			t.Fatalf("ControlID=%q Version=%q, want both empty", h.ControlID, h.Version)
		}
	})

	// Ensure a bad MSH-7 does not stop ParseHeader.
	t.Run("BadTime", func(t *testing.T) {
		h, err := hl7.ParseHeader([]byte("MSH|^~\\&|DEV||||notatime||ORU^R01|BT-2|P|2.5"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := h.ControlID, "BT-2"; got != want || !h.Time.IsZero() {
			t.Fatalf("ControlID=%q Time=%v, want %q and zero time", got, h.Time, want)
		}
	})

	// Ensure a huge later segment does not stop ParseHeader.
	t.Run("HugeBody", func(t *testing.T) {
		data := "MSH|^~\\&|DEV||||20260314||ORU^R01|HB-1|P|2.5\rOBX" + strings.Repeat("|", 10*hl7.MaxFields)
		h, err := hl7.ParseHeader([]byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := h.ControlID, "HB-1"; got != want {
			t.Fatalf("ControlID=%q, want %q", got, want)
		}
	})
}

func TestParse_Delimiters(t *testing.T) {
	for _, tt := range []struct {
		msh  string
		want hl7.Delimiters
		ok   bool
	}{
		{`MSH|^~\&|`, hl7.DefaultDelimiters, true},
		{`MSH|^~\&#|`, hl7.DefaultDelimiters, true}, // v2.7 truncation character
		{`MSH|^~\\&|`, hl7.DefaultDelimiters, true},
		{`MSH|^~&|`, hl7.Delimiters{FieldSep: '|', ComponentSep: '^', RepetitionSep: '~', SubcomponentSep: '&'}, true},
		{`MSH|^~\|`, hl7.Delimiters{FieldSep: '|', ComponentSep: '^', RepetitionSep: '~', EscapeChar: '\\'}, true},
		{`MSH|^~`, hl7.Delimiters{FieldSep: '|', ComponentSep: '^', RepetitionSep: '~'}, true},
		{`MSH|^|`, hl7.Delimiters{}, false},
		{`MSH||`, hl7.Delimiters{}, false},
		{`MSH|^^\&|`, hl7.Delimiters{}, false},
		{`MSH|^~|&|`, hl7.Delimiters{FieldSep: '|', ComponentSep: '^', RepetitionSep: '~'}, true},
		{`MSH|^~\&\|`, hl7.Delimiters{}, false},
		{`MSH|^~\&!x|`, hl7.Delimiters{}, false},
		{`MSHA^~\&A`, hl7.Delimiters{}, false},
		{"MSH\r^~\\&", hl7.Delimiters{}, false},
		{"MSH|^ \\&|", hl7.Delimiters{}, false},
		{`MSH`, hl7.Delimiters{}, false},
	} {
		m, err := hl7.Parse([]byte(tt.msh))
		if got, want := err == nil, tt.ok; got != want {
			t.Errorf("Parse(%q) err=%v, want ok=%v", tt.msh, err, want)
			continue
		}
		if err != nil {
			if !errors.Is(err, hl7.ErrBadDelimiters) {
				t.Errorf("Parse(%q) err=%v, want ErrBadDelimiters", tt.msh, err)
			}
			continue
		}
		if got, want := m.Delimiters, tt.want; got != want {
			t.Errorf("Parse(%q).Delimiters=%+v, want %+v", tt.msh, got, want)
		}
	}
}

func TestSegment_Field(t *testing.T) {
	m, err := hl7.Parse([]byte("MSH|^~\\&|A\rPID|1"))
	if err != nil {
		t.Fatal(err)
	}
	msh, pid := m.Segments[0], m.Segments[1]
	for _, tt := range []struct {
		seg  hl7.Segment
		n    int
		want string
	}{
		{msh, 0, "MSH"}, {msh, 1, "|"}, {msh, 2, `^~\&`}, {msh, 3, "A"}, {msh, 4, ""}, {msh, -1, ""},
		{pid, 0, "PID"}, {pid, 1, "1"}, {pid, 2, ""}, {pid, 1000, ""},
	} {
		if got := tt.seg.Field(tt.n); got != tt.want {
			t.Errorf("%s.Field(%d)=%q, want %q", tt.seg.ID, tt.n, got, tt.want)
		}
	}
}
