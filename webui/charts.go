package webui

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// Charts of a patient's vitals are SVG drawn here, on the server: no chart
// library, no script, readable at 360 px, a few kilobytes each.

// chartDef says which observations one chart shows.
type chartDef struct {
	Title    string // translation key
	Unit     string
	Decimals int
	Series   []seriesDef
	// RefLines are values drawn as dashed lines (the usual thresholds).
	RefLines []float64
}

type seriesDef struct {
	Label  string   // translation key
	LOINCs []string // codes merged into the series (SpO2 has two)
	Color  string
}

var chartDefs = []chartDef{
	{Title: "chart.bp", Unit: "mmHg", RefLines: []float64{140, 90}, Series: []seriesDef{
		{Label: "chart.systolic", LOINCs: []string{"8480-6"}, Color: "#b3261e"},
		{Label: "chart.diastolic", LOINCs: []string{"8462-4"}, Color: "#1a5fb4"}}},
	{Title: "chart.weight", Unit: "kg", Decimals: 1, Series: []seriesDef{{Label: "chart.weight", LOINCs: []string{"29463-7"}, Color: "#26734d"}}},
	{Title: "chart.spo2", Unit: "%", RefLines: []float64{94}, Series: []seriesDef{{Label: "chart.spo2", LOINCs: []string{"2708-6", "59408-5"}, Color: "#6a3d9a"}}},
	{Title: "chart.glucose", Unit: "mg/dL", RefLines: []float64{140}, Series: []seriesDef{{Label: "chart.glucose", LOINCs: []string{"2339-0", "41653-7"}, Color: "#a0522d"}}},
	{Title: "chart.temp", Unit: "°C", Decimals: 1, RefLines: []float64{37.5}, Series: []seriesDef{{Label: "chart.temp", LOINCs: []string{"8310-5"}, Color: "#c2410c"}}},
}

// chartLOINCs are every code the charts read.
func chartLOINCs() []string {
	var out []string
	for _, d := range chartDefs {
		for _, s := range d.Series {
			out = append(out, s.LOINCs...)
		}
	}
	return out
}

// vitalChart is one chart with its data.
type vitalChart struct {
	chartDef
	Points [][]edge.VitalPoint // per series, oldest first
}

// buildCharts makes the charts that have data.
func buildCharts(v map[string][]edge.VitalPoint) []vitalChart {
	var out []vitalChart
	for _, d := range chartDefs {
		ch := vitalChart{chartDef: d}
		n := 0
		for _, s := range d.Series {
			var pts []edge.VitalPoint
			for _, code := range s.LOINCs {
				pts = append(pts, v[code]...)
			}
			sortPoints(pts)
			ch.Points = append(ch.Points, pts)
			n += len(pts)
		}
		if n > 0 {
			out = append(out, ch)
		}
	}
	return out
}

func sortPoints(pts []edge.VitalPoint) {
	for i := 1; i < len(pts); i++ {
		for j := i; j > 0 && pts[j].At.Before(pts[j-1].At); j-- {
			pts[j], pts[j-1] = pts[j-1], pts[j]
		}
	}
}

// Chart geometry, in SVG units; the SVG scales to its box.
const (
	chartW, chartH         = 340.0, 150.0
	padL, padR, padT, padB = 34.0, 44.0, 12.0, 22.0
)

// SVG draws the chart with labels in the catalogue's language.
func (ch vitalChart) SVG(c *catalog) template.HTML {
	lo, hi := math.Inf(1), math.Inf(-1)
	var t0, t1 time.Time
	for _, pts := range ch.Points {
		for _, p := range pts {
			lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
			if t0.IsZero() || p.At.Before(t0) {
				t0 = p.At
			}
			if p.At.After(t1) {
				t1 = p.At
			}
		}
	}
	for _, r := range ch.RefLines {
		if r > lo-(hi-lo) && r < hi+(hi-lo)+1 {
			lo, hi = math.Min(lo, r), math.Max(hi, r)
		}
	}
	pad := (hi - lo) * 0.1
	if pad == 0 {
		pad = math.Max(1, math.Abs(hi)*0.05)
	}
	lo, hi = lo-pad, hi+pad
	span := t1.Sub(t0)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return padL + (chartW-padL-padR)/2
		}
		return padL + float64(t.Sub(t0))/float64(span)*(chartW-padL-padR)
	}
	y := func(v float64) float64 { return padT + (hi-v)/(hi-lo)*(chartH-padT-padB) }

	var b strings.Builder
	title := html.EscapeString(c.T(ch.Title))
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, title)
	fmt.Fprintf(&b, `<title>%s (%s)</title>`, title, html.EscapeString(ch.Unit))
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="#fff" stroke="#ccc"/>`, padL, padT, chartW-padL-padR, chartH-padT-padB)
	// Y axis: three values.
	for _, v := range []float64{lo + pad, (lo + hi) / 2, hi - pad} {
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" font-size="10" text-anchor="end" fill="#555">%s</text>`, padL-3, y(v)+3, FormatNumber(v, ch.Decimals))
	}
	for _, r := range ch.RefLines {
		if r >= lo && r <= hi {
			fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>`, padL, chartW-padR, y(r), y(r))
		}
	}
	// X axis: first and last dates.
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="10" fill="#555">%s</text>`, padL, chartH-6, html.EscapeString(formatDate(c, t0)))
	if span > 0 {
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="10" text-anchor="end" fill="#555">%s</text>`, chartW-padR, chartH-6, html.EscapeString(formatDate(c, t1)))
	}
	for i, pts := range ch.Points {
		if len(pts) == 0 {
			continue
		}
		s := ch.Series[i]
		var path strings.Builder
		for j, p := range pts {
			fmt.Fprintf(&path, "%s%.1f %.1f", map[bool]string{true: "M", false: "L"}[j == 0], x(p.At), y(p.Value))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`, path.String(), s.Color)
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s %s</title></circle>`, x(p.At), y(p.Value), s.Color,
				html.EscapeString(formatDate(c, p.At)), FormatNumber(p.Value, ch.Decimals), html.EscapeString(ch.Unit))
		}
		last := pts[len(pts)-1]
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" font-size="12" font-weight="bold" fill="%s">%s</text>`, chartW-padR+4, y(last.Value)+4, s.Color,
			FormatNumber(last.Value, ch.Decimals))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
