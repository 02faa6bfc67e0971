package hl7_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/devices/hl7"
)

// MustParseACK parses an ACK built by BuildACK and checks its shape: MSH then
// MSA, then ERR exactly when the code is not AA.
func MustParseACK(tb testing.TB, ack []byte) *hl7.Message {
	tb.Helper()
	if !bytes.HasSuffix(ack, []byte("\r")) || bytes.ContainsAny(ack, "\n") {
		tb.Fatalf("ACK %q: segments must end in CR", ack)
	}
	m, err := hl7.Parse(ack)
	if err != nil {
		tb.Fatalf("Parse(ACK): %v\n%q", err, ack)
	}
	ids := make([]string, len(m.Segments))
	for i, s := range m.Segments {
		ids[i] = s.ID
	}
	want := "MSH MSA"
	if m.Segments[1].Field(1) != "AA" {
		want += " ERR"
	}
	if got := strings.Join(ids, " "); got != want {
		tb.Fatalf("ACK segments=%q, want %q", got, want)
	}
	return m
}

func TestBuildACK(t *testing.T) {
	at := MustTime(t, "2026-03-14T10:16:00+05:30")

	// Ensure an AA for a PCD-01 message swaps sender and receiver, keeps the
	// version and answers the original control ID.
	t.Run("AA", func(t *testing.T) {
		oru := MustParseORU(t, "pcd01_monitor")
		m := MustParseACK(t, hl7.BuildACK(&oru.Header, hl7.ACK{Code: hl7.AckAccept, ControlID: "ACK-1", Time: at}))
		msh, msa := m.Segments[0], m.Segments[1]
		for _, tt := range []struct {
			n    int
			want string
		}{
			{3, "HEALTHPOST"}, {4, "PHC-DEMO"}, {5, "PHCMON^0012FFFE00A1B2C3^EUI-64"}, {6, "OPD1"},
			{7, "20260314101600+0530"}, {9, "ACK^R01^ACK"}, {10, "ACK-1"}, {11, "P"}, {12, "2.6"},
		} {
			if got := msh.Field(tt.n); got != tt.want {
				t.Errorf("MSH-%d=%q, want %q", tt.n, got, tt.want)
			}
		}
		if got, want := msa.Field(1)+"|"+msa.Field(2)+"|"+msa.Field(3), "AA|MON-000123|"; got != want {
			t.Fatalf("MSA=%q, want %q", got, want)
		}

		// The ACK reads back as a header like any other message.
		h, err := hl7.ParseHeader(hl7.BuildACK(&oru.Header, hl7.ACK{Code: hl7.AckAccept, Time: at}))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := h.ControlID, "AMON-000123"; got != want {
			t.Fatalf("default ControlID=%q, want %q", got, want)
		}
		if got, want := h.ReceivingApplication.UniversalID, "0012FFFE00A1B2C3"; got != want {
			t.Fatalf("ReceivingApplication.UniversalID=%q, want %q", got, want)
		}
	})

	// Ensure a v2.3.1 message gets "ACK^R01" and its version back.
	t.Run("AA_v231", func(t *testing.T) {
		oru := MustParseORU(t, "lab_v231_cbc")
		m := MustParseACK(t, hl7.BuildACK(&oru.Header, hl7.ACK{Time: at}))
		if got, want := m.Segments[0].Field(9)+" "+m.Segments[0].Field(12), "ACK^R01 2.3.1"; got != want {
			t.Fatalf("MSH-9 MSH-12=%q, want %q", got, want)
		}
		if got, want := m.Segments[1].Field(1), "AA"; got != want {
			t.Fatalf("MSA-1=%q, want %q (AckCodeFor(nil))", got, want)
		}
	})

	// Ensure an AE in v2.5 carries the location in ERR-2, the HL7 code in
	// ERR-3, severity E, and the error text in MSA-3 and ERR-7.
	t.Run("AE_v25", func(t *testing.T) {
		data := MustReadCase(t, "bad_timestamp")
		_, perr := hl7.ParseORU(data)
		h, err := hl7.ParseHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		m := MustParseACK(t, hl7.BuildACK(h, hl7.ACK{Err: perr, Time: at}))
		d := m.Delimiters
		msa, errSeg := m.Segments[1], m.Segments[2]
		if got, want := msa.Field(1)+"|"+msa.Field(2), "AE|BT-1"; got != want {
			t.Fatalf("MSA=%q, want %q", got, want)
		}
		if got, want := d.Unescape(msa.Field(3)), perr.Error(); got != want {
			t.Fatalf("MSA-3=%q, want %q", got, want)
		}
		if got, want := errSeg.Field(2), "OBX^1^14"; got != want {
			t.Fatalf("ERR-2=%q, want %q", got, want)
		}
		if got, want := errSeg.Field(3), "102^Data type error^HL70357"; got != want {
			t.Fatalf("ERR-3=%q, want %q", got, want)
		}
		if got, want := errSeg.Field(4), "E"; got != want {
			t.Fatalf("ERR-4=%q, want %q", got, want)
		}
		if got, want := d.Unescape(errSeg.Field(7)), perr.Error(); got != want {
			t.Fatalf("ERR-7=%q, want %q", got, want)
		}
	})

	// Ensure an AE in v2.3.1 uses ERR-1 (segment^sequence^field^code).
	t.Run("AE_v231", func(t *testing.T) {
		oru := MustParseORU(t, "lab_v231_cbc")
		perr := &hl7.ParseError{Op: "decode ORU^R01", Segment: 6, SegmentID: "OBX", Occurrence: 2, Field: 14, Err: hl7.ErrBadTimestamp}
		m := MustParseACK(t, hl7.BuildACK(&oru.Header, hl7.ACK{Err: perr, Time: at}))
		if got, want := m.Segments[2].Field(1), "OBX^2^14^102&Data type error&HL70357"; got != want {
			t.Fatalf("ERR-1=%q, want %q", got, want)
		}
		if got, want := len(m.Segments[2].Fields), 2; got != want {
			t.Fatalf("ERR has %d fields, want 1", got-1)
		}
	})

	// Ensure an unreadable message still gets an AR, from nothing.
	t.Run("AR_NoHeader", func(t *testing.T) {
		data := MustReadCase(t, "garbage")
		_, perr := hl7.ParseORU(data)
		h, herr := hl7.ParseHeader(data)
		if herr == nil {
			t.Fatalf("ParseHeader=%+v, want error", h)
		}
		ack := hl7.BuildACK(h, hl7.ACK{Err: perr, Time: at, Application: hl7.HD{NamespaceID: "HEALTHPOST"}, Facility: hl7.HD{NamespaceID: "PHC-DEMO"}})
		m := MustParseACK(t, ack)
		msh, msa, errSeg := m.Segments[0], m.Segments[1], m.Segments[2]
		if got, want := m.Delimiters, hl7.DefaultDelimiters; got != want {
			t.Fatalf("Delimiters=%+v, want %+v", got, want)
		}
		if got, want := msh.Field(3)+" "+msh.Field(4)+" "+msh.Field(9)+" "+msh.Field(12), "HEALTHPOST PHC-DEMO ACK "+hl7.DefaultACKVersion; got != want {
			t.Fatalf("MSH=%q, want %q", got, want)
		}
		if got, want := msh.Field(10), "A20260314044600.000000"; got != want {
			t.Fatalf("MSH-10=%q, want %q", got, want)
		}
		if got, want := msa.Field(1)+"|"+msa.Field(2), "AR|"; got != want {
			t.Fatalf("MSA=%q, want %q", got, want)
		}
		if got, want := errSeg.Field(1), "^^^100&Segment sequence error&HL70357"; got != want {
			t.Fatalf("ERR-1=%q, want %q", got, want)
		}
	})

	// Ensure an unsupported message type is rejected with the right code.
	t.Run("AR_MessageType", func(t *testing.T) {
		data := MustReadCase(t, "wrong_message_type")
		_, perr := hl7.ParseORU(data)
		h, err := hl7.ParseHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		m := MustParseACK(t, hl7.BuildACK(h, hl7.ACK{Err: perr, Time: at}))
		if got, want := m.Segments[0].Field(9), "ACK^A01^ACK"; got != want {
			t.Fatalf("MSH-9=%q, want %q", got, want)
		}
		if got, want := m.Segments[1].Field(1)+"|"+m.Segments[1].Field(2), "AR|WT-1"; got != want {
			t.Fatalf("MSA=%q, want %q", got, want)
		}
		if got, want := m.Segments[2].Field(3), "200^Unsupported message type^HL70357"; got != want {
			t.Fatalf("ERR-3=%q, want %q", got, want)
		}
	})

	// Ensure an ACK keeps a device's own delimiters.
	t.Run("CustomDelimiters", func(t *testing.T) {
		oru := MustParseORU(t, "custom_delims")
		ack := hl7.BuildACK(&oru.Header, hl7.ACK{Code: hl7.AckError, Text: "probe|disconnected", Time: at})
		if !bytes.HasPrefix(ack, []byte("MSH!@#$%!")) {
			t.Fatalf("ACK=%q, want it to start MSH!@#$%%!", ack)
		}
		m := MustParseACK(t, ack)
		msa := m.Segments[1]
		if got, want := msa.Field(2), "CD-1"; got != want {
			t.Fatalf("MSA-2=%q, want %q", got, want)
		}
		if got, want := m.Delimiters.Unescape(msa.Field(3)), "probe|disconnected"; got != want {
			t.Fatalf("MSA-3=%q, want %q", got, want)
		}
		if got, want := m.Segments[2].Field(1), "@@@207%Application internal error%HL70357"; got != want {
			t.Fatalf("ERR-1=%q, want %q (v2.4 layout)", got, want)
		}
	})

	// Ensure a control ID holding delimiters goes back escaped and intact.
	t.Run("EscapedControlID", func(t *testing.T) {
		h := &hl7.Header{Delimiters: hl7.DefaultDelimiters, ControlID: "A|B^C\\D\r", Version: "2.6", TriggerEvent: "R01"}
		m := MustParseACK(t, hl7.BuildACK(h, hl7.ACK{Time: at, ControlID: "X"}))
		if got, want := m.Segments[1].Field(2), `A\F\B\S\C\E\D\X0D\`; got != want {
			t.Fatalf("raw MSA-2=%q, want %q", got, want)
		}
		if got, want := m.Delimiters.Unescape(m.Segments[1].Field(2)), h.ControlID; got != want {
			t.Fatalf("MSA-2=%q, want %q", got, want)
		}
	})

	// Ensure an error that is not a ParseError is not echoed to the device:
	// it may name a patient.
	t.Run("NoPHI", func(t *testing.T) {
		oru := MustParseORU(t, "pcd01_monitor")
		ack := hl7.BuildACK(&oru.Header, hl7.ACK{Code: hl7.AckError, Err: errors.New("store reading for Sunita Devi: disk full"), Time: at})
		if bytes.Contains(ack, []byte("Sunita")) {
			t.Fatalf("ACK=%q echoes the error text", ack)
		}
		m := MustParseACK(t, ack)
		if got, want := m.Segments[1].Field(3), "Application internal error"; got != want {
			t.Fatalf("MSA-3=%q, want %q", got, want)
		}
	})

	// Ensure MSA-3 is cut to 80 characters without splitting a character,
	// and ERR keeps the whole text.
	t.Run("LongText", func(t *testing.T) {
		oru := MustParseORU(t, "pcd01_monitor")
		text := strings.Repeat("é", 100)
		m := MustParseACK(t, hl7.BuildACK(&oru.Header, hl7.ACK{Code: hl7.AckError, Text: text, Time: at}))
		if got, want := m.Segments[1].Field(3), strings.Repeat("é", 40); got != want {
			t.Fatalf("MSA-3=%q, want %q", got, want)
		}
		if got, want := m.Segments[2].Field(7), text; got != want {
			t.Fatalf("ERR-7=%q, want %q", got, want)
		}
	})

	// Ensure the sender's identity fills an empty receiver.
	t.Run("NodeIdentity", func(t *testing.T) {
		oru := MustParseORU(t, "lf_endings") // MSH-5 and MSH-6 are empty
		m := MustParseACK(t, hl7.BuildACK(&oru.Header, hl7.ACK{Time: at, Application: hl7.HD{NamespaceID: "HEALTHPOST", UniversalID: "IN0000000001", UniversalIDType: "HFR"}}))
		if got, want := m.Segments[0].Field(3), "HEALTHPOST^IN0000000001^HFR"; got != want {
			t.Fatalf("MSH-3=%q, want %q", got, want)
		}
		if got, want := m.Segments[0].Field(5), "PULSEOX^0012FFFE0000ABCD^EUI-64"; got != want {
			t.Fatalf("MSH-5=%q, want %q", got, want)
		}
	})
}

func TestAckCodeFor(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want hl7.AckCode
	}{
		{nil, hl7.AckAccept},
		{hl7.ErrNoMSH, hl7.AckReject},
		{&hl7.ParseError{Err: hl7.ErrBadDelimiters}, hl7.AckReject},
		{hl7.ErrUnsupportedMessage, hl7.AckReject},
		{hl7.ErrUnsupportedVersion, hl7.AckReject},
		{&hl7.ParseError{Err: hl7.ErrBadTimestamp}, hl7.AckError},
		{errors.New("disk full"), hl7.AckError},
	} {
		if got := hl7.AckCodeFor(tt.err); got != tt.want {
			t.Errorf("AckCodeFor(%v)=%s, want %s", tt.err, got, tt.want)
		}
	}
}
