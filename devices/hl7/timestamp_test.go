package hl7_test

import (
	"errors"
	"testing"
	"time"

	"github.com/healthpost/healthpost/devices/hl7"
)

func TestParseTimestamp(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    string // RFC 3339; without a zone the wall clock is written as UTC
		hasZone bool
	}{
		{"", "0001-01-01T00:00:00Z", false},
		{`""`, "0001-01-01T00:00:00Z", false},
		{"2026", "2026-01-01T00:00:00Z", false},
		{"202603", "2026-03-01T00:00:00Z", false},
		{"20260314", "2026-03-14T00:00:00Z", false},
		{"2026031410", "2026-03-14T10:00:00Z", false},
		{"202603141015", "2026-03-14T10:15:00Z", false},
		{"20260314101502", "2026-03-14T10:15:02Z", false},
		{"20260314101502.1", "2026-03-14T10:15:02.1Z", false},
		{"20260314101502.1234", "2026-03-14T10:15:02.1234Z", false},
		{"20260314101502.123456789", "2026-03-14T10:15:02.123456789Z", false},
		{"20260314101502+0530", "2026-03-14T10:15:02+05:30", true},
		{"20260912120000.0000+0530", "2026-09-12T12:00:00+05:30", true},
		{"20260314101502-0500", "2026-03-14T10:15:02-05:00", true},
		{"20260314101502+0000", "2026-03-14T10:15:02Z", true},
		{"20260314+0530", "2026-03-14T00:00:00+05:30", true},
		{"20240229", "2024-02-29T00:00:00Z", false},
		{"19700101000000", "1970-01-01T00:00:00Z", false}, // a device with no clock: valid, the caller judges
	} {
		ts, err := hl7.ParseTimestamp(tt.in)
		if err != nil {
			t.Errorf("ParseTimestamp(%q): %v", tt.in, err)
			continue
		}
		if got, want := ts.Time, MustTime(t, tt.want); !got.Equal(want) {
			t.Errorf("ParseTimestamp(%q)=%v, want %v", tt.in, got, want)
		}
		if got, want := ts.HasZone, tt.hasZone; got != want {
			t.Errorf("ParseTimestamp(%q).HasZone=%v, want %v", tt.in, got, want)
		}
	}
}

func TestParseTimestamp_Invalid(t *testing.T) {
	for _, in := range []string{
		"20", "202", "20263", "2026031", "2026031410151", "202603141015023", // digit counts
		"2026-03-14", "2026031410:15", "2026031410150X", "20260314T101502",
		"20261314", "20260014", "20260230", "20250229", "20260132", "20260100",
		"2026031424", "202603141060", "20260314101560",
		"20260314101502.", "20260314101502.1234567890", "20260314101502.12a", "202603141015.5",
		"20260314101502+053", "20260314101502+05:30", "20260314101502+1500", "20260314101502+0560", "20260314101502Z",
		"20260314101502+0530+0530", "+0530", "-",
	} {
		if ts, err := hl7.ParseTimestamp(in); !errors.Is(err, hl7.ErrBadTimestamp) {
			t.Errorf("ParseTimestamp(%q)=%v, %v; want ErrBadTimestamp", in, ts, err)
		}
	}
}

func TestTimestamp_Resolve(t *testing.T) {
	ist := time.FixedZone("IST", 19800)

	// Ensure a zone-less value is placed in the caller's location.
	ts, err := hl7.ParseTimestamp("20260314101502.25")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ts.Resolve(ist), MustTime(t, "2026-03-14T10:15:02.25+05:30"); !got.Equal(want) {
		t.Fatalf("Resolve(IST)=%v, want %v", got, want)
	}
	if got, want := ts.Resolve(nil), MustTime(t, "2026-03-14T10:15:02.25Z"); !got.Equal(want) {
		t.Fatalf("Resolve(nil)=%v, want %v", got, want)
	}

	// Ensure a value with a zone ignores the caller's location.
	ts, err = hl7.ParseTimestamp("20260314101502-0500")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ts.Resolve(ist), MustTime(t, "2026-03-14T15:15:02Z"); !got.Equal(want) {
		t.Fatalf("Resolve(IST)=%v, want %v", got, want)
	}

	// Ensure an empty value stays empty.
	if got := (hl7.Timestamp{}).Resolve(ist); !got.IsZero() {
		t.Fatalf("zero Resolve=%v, want zero", got)
	}
}

func TestFormatTimestamp(t *testing.T) {
	if got, want := hl7.FormatTimestamp(MustTime(t, "2026-03-14T10:15:02.9+05:30")), "20260314101502+0530"; got != want {
		t.Fatalf("FormatTimestamp=%q, want %q", got, want)
	}
}
