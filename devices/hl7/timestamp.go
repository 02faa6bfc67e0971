package hl7

import (
	"fmt"
	"strings"
	"time"
)

// Timestamp is an HL7 TS or DTM value.
//
// Devices often send local wall-clock time with no zone (a Pi-side gateway or
// an analyzer set to IST), and guessing the zone here would hide that. So when
// the value had no +/-ZZZZ suffix, HasZone is false and Time holds the
// wall-clock reading labelled UTC; the caller places it with Resolve and the
// location it configured for the device.
type Timestamp struct {
	Time    time.Time // at the sent offset when HasZone; wall clock labelled UTC otherwise
	HasZone bool      // the value carried a +/-ZZZZ offset
}

// IsZero reports whether the field was empty.
func (t Timestamp) IsZero() bool { return t.Time.IsZero() }

// Resolve returns the instant the timestamp names: Time itself when the value
// carried a zone, otherwise its wall-clock reading taken in loc. A zero
// Timestamp resolves to the zero time.Time.
func (t Timestamp) Resolve(loc *time.Location) time.Time {
	if t.HasZone || t.Time.IsZero() {
		return t.Time
	}
	if loc == nil {
		loc = time.UTC
	}
	tt := t.Time
	return time.Date(tt.Year(), tt.Month(), tt.Day(), tt.Hour(), tt.Minute(), tt.Second(), tt.Nanosecond(), loc)
}

// ParseTimestamp parses the first component of an HL7 TS/DTM value,
// YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]. Missing parts default to the
// start of the period (a date alone is midnight). Up to nine fraction digits
// are accepted; the standard allows four but some gateways send more. An empty
// value, or the HL7 null "", gives a zero Timestamp and no error. Errors wrap
// ErrBadTimestamp and do not quote the value.
func ParseTimestamp(s string) (Timestamp, error) {
	if s == "" || s == `""` {
		return Timestamp{}, nil
	}
	digits, frac, zone := s, "", ""
	if i := strings.IndexAny(digits, "+-"); i >= 0 {
		digits, zone = digits[:i], digits[i:]
	}
	if i := strings.IndexByte(digits, '.'); i >= 0 {
		digits, frac = digits[:i], digits[i+1:]
		if len(digits) != 14 {
			return Timestamp{}, badTimestamp("fraction without seconds")
		}
		if frac == "" || len(frac) > 9 || !allDigits(frac) {
			return Timestamp{}, badTimestamp("invalid fraction of a second")
		}
	}
	switch len(digits) {
	case 4, 6, 8, 10, 12, 14:
	default:
		return Timestamp{}, badTimestamp("wrong number of digits")
	}
	if !allDigits(digits) {
		return Timestamp{}, badTimestamp("not a number")
	}
	num := func(i, n, def int) int {
		if len(digits) < i+n {
			return def
		}
		v := 0
		for _, c := range digits[i : i+n] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4, 0), num(4, 2, 1), num(6, 2, 1)
	hour, minute, sec := num(8, 2, 0), num(10, 2, 0), num(12, 2, 0)
	nsec := 0
	for i := 0; i < 9; i++ {
		nsec *= 10
		if i < len(frac) {
			nsec += int(frac[i] - '0')
		}
	}
	switch {
	case month < 1 || month > 12:
		return Timestamp{}, badTimestamp("month out of range")
	case day < 1 || day > 31:
		return Timestamp{}, badTimestamp("day out of range")
	case hour > 23:
		return Timestamp{}, badTimestamp("hour out of range")
	case minute > 59:
		return Timestamp{}, badTimestamp("minute out of range")
	case sec > 59:
		return Timestamp{}, badTimestamp("second out of range")
	}
	loc, hasZone := time.UTC, false
	if zone != "" {
		if len(zone) != 5 || !allDigits(zone[1:]) {
			return Timestamp{}, badTimestamp("invalid zone offset")
		}
		zh := int(zone[1]-'0')*10 + int(zone[2]-'0')
		zm := int(zone[3]-'0')*10 + int(zone[4]-'0')
		if zh > 14 || zm > 59 {
			return Timestamp{}, badTimestamp("zone offset out of range")
		}
		off := (zh*60 + zm) * 60
		if zone[0] == '-' {
			off = -off
		}
		loc, hasZone = time.FixedZone("", off), true
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day {
		return Timestamp{}, badTimestamp("day out of range")
	}
	return Timestamp{Time: t, HasZone: hasZone}, nil
}

// FormatTimestamp writes t as an HL7 DTM with seconds and the zone offset,
// YYYYMMDDHHMMSS+ZZZZ.
func FormatTimestamp(t time.Time) string { return t.Format("20060102150405-0700") }

func badTimestamp(why string) error { return fmt.Errorf("%w: %s", ErrBadTimestamp, why) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
