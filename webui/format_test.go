package webui

import (
	"strings"
	"testing"
	"time"

	"github.com/healthpost/healthpost/edge"
)

func TestFormatNumber(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		d    int
		want string
	}{
		{0, 0, "0"}, {999, 0, "999"}, {1000, 0, "1,000"}, {123456, 0, "1,23,456"}, {1234567, 0, "12,34,567"},
		{123456789, 0, "12,34,56,789"}, {38.45, 1, "38.5"}, {38, 1, "38.0"}, {-1234.5, 1, "-1,234.5"}, {-0.01, 0, "0"},
	} {
		if got := FormatNumber(tc.v, tc.d); got != tc.want {
			t.Errorf("FormatNumber(%v, %d)=%q, want %q", tc.v, tc.d, got, tc.want)
		}
	}
	if got := FormatInt(-10000000); got != "-1,00,00,000" {
		t.Errorf("FormatInt=%q", got)
	}
}

func TestFormatDates(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	en, hi := cats.get("en"), cats.get("hi")
	at := time.Date(2026, 11, 21, 18, 35, 0, 0, time.UTC) // 00:05 IST on the 22nd
	if got := formatDateTime(en, at); got != "22 Nov 2026, 12:05 am" {
		t.Errorf("en=%q", got)
	}
	if got := formatDateTime(hi, at); got != "22 नव॰ 2026, 12:05 पूर्वाह्न" {
		t.Errorf("hi=%q", got)
	}
	if got := formatISODate(en, "1990-04-12"); got != "12 Apr 1990" {
		t.Errorf("iso=%q", got)
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, IST)
	for _, tc := range []struct {
		p    edge.Patient
		want string
	}{
		{edge.Patient{BirthDate: "1990-11-23"}, "35 y"},
		{edge.Patient{BirthDate: "1990-11-22"}, "36 y"},
		{edge.Patient{BirthDate: "2026-02-10"}, "9 mo"},
		{edge.Patient{BirthDate: "2026-11-15"}, "7 d"},
		{edge.Patient{StatedAge: 60, StatedAgeAt: now.AddDate(-2, 0, -1)}, "about 62 y"},
	} {
		if got := formatAge(en, tc.p, now); got != tc.want {
			t.Errorf("age of %+v=%q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestChartSVG(t *testing.T) {
	cats, _ := loadCatalogs()
	now := time.Now()
	charts := buildCharts(map[string][]edge.VitalPoint{
		"8480-6":  {{At: now.AddDate(0, -1, 0), Value: 150}, {At: now, Value: 132}},
		"8462-4":  {{At: now.AddDate(0, -1, 0), Value: 95}, {At: now, Value: 86}},
		"59408-5": {{At: now, Value: 97}},
		"2708-6":  {{At: now.Add(-time.Hour), Value: 93}},
	})
	if len(charts) != 2 || charts[0].Title != "chart.bp" || len(charts[1].Points[0]) != 2 {
		t.Fatalf("charts=%+v", charts)
	}
	svg := string(charts[0].SVG(cats.get("hi")))
	for _, want := range []string{`<svg class="chart"`, "रक्तचाप", `<path d="M`, "stroke-dasharray", ">132<", ">86<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(svg, "<script") || strings.Contains(svg, "style=") {
		t.Error("SVG has script or inline style (the CSP forbids both)")
	}
	// One point alone is drawn in the middle, not divided by zero.
	one := string(charts[1].SVG(cats.get("en")))
	if strings.Contains(one, "NaN") || strings.Contains(one, "Inf") {
		t.Fatalf("SVG of one point: %s", one)
	}
}

func TestTerminalQR(t *testing.T) {
	out, err := TerminalQR("http://192.168.1.10:8080")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	width := len([]rune(lines[0]))
	// Version 2 (25 modules) for a URL this long, plus 2 quiet modules a side.
	if width != 29 || len(lines) != 15 {
		t.Fatalf("QR %dx%d lines:\n%s", width, len(lines), out)
	}
	for _, l := range lines {
		if len([]rune(l)) != width || strings.Trim(l, "█▀▄ ") != "" {
			t.Fatalf("line %q", l)
		}
	}
	if lines[0] != strings.Repeat("█", width) {
		t.Fatalf("quiet zone missing: %q", lines[0])
	}
	svg, err := qrSVG("http://192.168.1.10:8080", 200)
	if err != nil || !strings.Contains(string(svg), `<path fill="#000" d="M`) {
		t.Fatalf("qrSVG=%s, %v", svg, err)
	}
}
