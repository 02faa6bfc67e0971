package webui

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// IST is India Standard Time. India keeps no daylight saving, so a fixed
// zone is exact and needs no tz database on the node.
var IST = time.FixedZone("IST", 5*3600+30*60)

// groupIndian writes the digits of a non-negative integer with Indian
// grouping: the last three digits, then pairs (12,34,567 for 1234567).
func groupIndian(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	head, tail := digits[:len(digits)-3], digits[len(digits)-3:]
	var parts []string
	for len(head) > 2 {
		parts = append([]string{head[len(head)-2:]}, parts...)
		head = head[:len(head)-2]
	}
	if head != "" {
		parts = append([]string{head}, parts...)
	}
	return strings.Join(parts, ",") + "," + tail
}

// FormatNumber formats v with the given decimals and Indian digit grouping
// (1,23,456.7). Trailing zero decimals are kept: 38.0 °C is a measurement.
func FormatNumber(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', decimals, 64)
	whole, frac, _ := strings.Cut(s, ".")
	out := groupIndian(whole)
	if frac != "" {
		out += "." + frac
	}
	if v < 0 && strings.Trim(s, "0.") != "" {
		out = "-" + out
	}
	return out
}

// FormatInt formats an integer with Indian grouping.
func FormatInt(n int64) string {
	if n < 0 {
		return "-" + groupIndian(strconv.FormatInt(-n, 10))
	}
	return groupIndian(strconv.FormatInt(n, 10))
}

// formatDate is "21 Nov 2026" in IST with the catalogue's month names.
func formatDate(c *catalog, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(IST)
	return strconv.Itoa(t.Day()) + " " + c.T("month."+strconv.Itoa(int(t.Month()))) + " " + strconv.Itoa(t.Year())
}

// formatTime is "3:05 pm" in IST.
func formatTime(c *catalog, t time.Time) string {
	t = t.In(IST)
	h := t.Hour() % 12
	if h == 0 {
		h = 12
	}
	ampm := c.T("time.am")
	if t.Hour() >= 12 {
		ampm = c.T("time.pm")
	}
	return strconv.Itoa(h) + ":" + t.Format("04") + " " + ampm
}

// formatDateTime is "21 Nov 2026, 3:05 pm".
func formatDateTime(c *catalog, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatDate(c, t) + ", " + formatTime(c, t)
}

// formatISODate turns YYYY-MM-DD into "21 Nov 2026".
func formatISODate(c *catalog, d string) string {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return d
	}
	return strconv.Itoa(t.Day()) + " " + c.T("month."+strconv.Itoa(int(t.Month()))) + " " + strconv.Itoa(t.Year())
}

// formatAge is the patient's age now: years, or months and days for
// infants born on a known date. A stated age is aged by the time passed.
func formatAge(c *catalog, p edge.Patient, now time.Time) string {
	now = now.In(IST)
	if b, err := time.ParseInLocation(time.DateOnly, p.BirthDate, IST); err == nil {
		y := now.Year() - b.Year()
		if now.YearDay() < b.YearDay() && (now.Month() < b.Month() || (now.Month() == b.Month() && now.Day() < b.Day())) {
			y--
		}
		if y >= 2 {
			return c.T("age.years", y)
		}
		months := (now.Year()-b.Year())*12 + int(now.Month()) - int(b.Month())
		if now.Day() < b.Day() {
			months--
		}
		if months >= 1 {
			return c.T("age.months", months)
		}
		return c.T("age.days", max(0, int(now.Sub(b).Hours()/24)))
	}
	if p.StatedAge > 0 || !p.StatedAgeAt.IsZero() {
		return c.T("age.years_about", p.StatedAgeNow(now))
	}
	return ""
}
