package senml

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/vitals"
)

// absoluteTime is RFC 8428 §4.5.3's threshold: a resolved time of 2**28 or
// more is seconds since the Unix epoch; anything smaller is relative to now.
const absoluteTime = 1 << 28

// maxUnixTime is 9999-12-31T23:59:59Z; later absolute times are refused.
const maxUnixTime = 253402300799

// DecodeSenML decodes a SenML JSON pack (RFC 8428) into measurements.
//
// The base fields bn, bt, bu, bv and bver apply to their record and every
// later record until changed. A record's name is bn+n, its unit u (else bu),
// its time bt+t: 2**28 or more is absolute Unix seconds, smaller is relative
// to now. Each record must have exactly one of v, vs, vb, vd, or a sum s.
// Records with v become measurements, their value bv+v; records with vs pass
// the string on (the vitals package decides if it is a number). Records with
// vb or vd, or with only a sum, are not measurements and are skipped.
// Labels ending in "_" must be understood, so they are refused; other
// unknown labels are ignored, as §4.2 requires.
//
// The code comes from the name's last component (after the last ':' or '/'),
// see the package documentation. When every record has an absolute time the
// measurements get message IDs derived from the pack's bytes, so a replay of
// the same pack is stored once; with relative times they get none.
func DecodeSenML(payload []byte, now time.Time) ([]devices.Measurement, error) {
	if err := checkPayload("SenML", payload); err != nil {
		return nil, err
	}
	fail := func(rec int, field, problem string, err error) ([]devices.Measurement, error) {
		return nil, &Error{Format: "SenML", Record: rec, Field: field, Problem: problem, Err: err}
	}
	if firstByte(payload) != '[' {
		return fail(0, "", "a SenML pack is a JSON array of records", ErrNotSenML)
	}
	var pack []json.RawMessage
	if err := json.Unmarshal(payload, &pack); err != nil {
		return fail(0, "", jsonProblem(err), ErrNotJSON)
	}
	if len(pack) == 0 {
		return fail(0, "", "the pack has no records", ErrNotSenML)
	}
	if len(pack) > MaxRecords {
		return fail(0, "", fmt.Sprintf("%d records, more than the %d allowed", len(pack), MaxRecords), ErrTooManyRecords)
	}

	var base struct {
		name, unit string
		time, val  float64
		version    float64
		versionSet bool
	}
	ms := make([]devices.Measurement, 0, len(pack))
	indexes := make([]int, 0, len(pack))
	allAbsolute := true
	for i, raw := range pack {
		rec := i + 1
		r, field, problem := parseRecord(raw)
		if problem != "" {
			return fail(rec, field, problem, ErrNotSenML)
		}
		if r.bver != nil {
			if *r.bver != math.Trunc(*r.bver) || *r.bver < 1 || *r.bver > SupportedVersion {
				return fail(rec, "bver", fmt.Sprintf("version must be a whole number from 1 to %d", SupportedVersion), ErrNotSenML)
			}
			if base.versionSet && *r.bver != base.version {
				return fail(rec, "bver", "all records of a pack must have the same version", ErrNotSenML)
			}
			base.version, base.versionSet = *r.bver, true
		}
		if r.bn != nil {
			base.name = *r.bn
		}
		if r.bu != nil {
			base.unit = *r.bu
		}
		if r.bt != nil {
			base.time = *r.bt
		}
		if r.bv != nil {
			base.val = *r.bv
		}

		name := base.name
		if r.n != nil {
			name += *r.n
		}
		if p := checkName(name); p != "" {
			return fail(rec, "n", p, ErrNotSenML)
		}
		values := 0
		for _, present := range []bool{r.v != nil, r.vs != nil, r.vb != nil, r.vd != nil} {
			if present {
				values++
			}
		}
		if values > 1 {
			return fail(rec, "", "a record has at most one of v, vs, vb and vd", ErrNotSenML)
		}
		if values == 0 && r.s == nil {
			return fail(rec, "", "the record has no value (v, vs, vb or vd) and no sum (s)", ErrNotSenML)
		}

		t := base.time
		if r.t != nil {
			t += *r.t
		}
		var at time.Time
		switch {
		case math.IsInf(t, 0) || math.IsNaN(t):
			return fail(rec, "t", "time out of range", ErrNotSenML)
		case t >= absoluteTime:
			if t > maxUnixTime {
				return fail(rec, "t", "time is after the year 9999", ErrNotSenML)
			}
			sec, frac := math.Modf(t)
			at = time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
		case t <= -absoluteTime:
			return fail(rec, "t", "a relative time must be within 2^28 seconds of now", ErrNotSenML)
		default:
			allAbsolute = false
			at = now.Add(time.Duration(t * float64(time.Second)))
		}

		var value string
		switch {
		case r.v != nil:
			if r.bv == nil && base.val == 0 {
				value = *r.v
			} else {
				f, _ := strconv.ParseFloat(*r.v, 64) // checked by parseRecord
				sum := base.val + f
				if math.IsInf(sum, 0) {
					return fail(rec, "v", "value out of range", ErrNotSenML)
				}
				value = strconv.FormatFloat(sum, 'f', -1, 64)
			}
		case r.vs != nil:
			if strings.TrimSpace(*r.vs) == "" {
				return fail(rec, "vs", "empty string value", ErrNotSenML)
			}
			value = *r.vs
		default:
			continue // vb, vd or a sum: not a measurement
		}
		unit := base.unit
		if r.u != nil {
			unit = *r.u
		}
		system, code := nameCode(name)
		ms = append(ms, devices.Measurement{System: system, Code: code, Value: value, Unit: unit, At: at})
		indexes = append(indexes, rec)
	}
	if len(ms) == 0 {
		return fail(0, "", "no record has a number (v) or string (vs) value", ErrNoMeasurement)
	}
	if allAbsolute {
		sum := sha256.Sum256(payload)
		id := "senml:" + hex.EncodeToString(sum[:12])
		for i := range ms {
			ms[i].MessageID = id + "/" + strconv.Itoa(indexes[i])
		}
	}
	return ms, nil
}

// record is one SenML record's labels as sent; nil means absent.
type record struct {
	bn, bu, n, u, vs, vd *string
	bt, bv, bs, bver     *float64
	t, s, ut             *float64
	v                    *string // the number as decimal text
	vb                   *bool
}

// parseRecord reads one record, checking each known label's JSON type and
// caps. It returns the offending label and a problem on failure.
func parseRecord(raw json.RawMessage) (r record, field, problem string) {
	if firstByte(raw) != '{' {
		return r, "", "a record is a JSON object"
	}
	var labels map[string]json.RawMessage
	if err := json.Unmarshal(raw, &labels); err != nil {
		return r, "", jsonProblem(err)
	}
	str := func(key string, dst **string) string {
		var s string
		if err := json.Unmarshal(labels[key], &s); err != nil {
			return "must be a string"
		}
		if p := checkString(s, MaxString); p != "" {
			return p
		}
		*dst = &s
		return ""
	}
	num := func(key string, dst **float64) string {
		lit := strings.TrimSpace(string(labels[key]))
		if lit == "" || !(lit[0] == '-' || lit[0] >= '0' && lit[0] <= '9') {
			return "must be a number"
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil || math.IsInf(f, 0) {
			return "number out of range"
		}
		*dst = &f
		return ""
	}
	for _, key := range slices.Sorted(maps.Keys(labels)) { // sorted, so the error named is always the same
		var p string
		switch key {
		case "bn":
			p = str(key, &r.bn)
		case "bu":
			p = str(key, &r.bu)
		case "n":
			p = str(key, &r.n)
		case "u":
			p = str(key, &r.u)
		case "vs":
			p = str(key, &r.vs)
		case "vd":
			p = str(key, &r.vd)
		case "bt":
			p = num(key, &r.bt)
		case "bv":
			p = num(key, &r.bv)
		case "bs":
			p = num(key, &r.bs)
		case "bver":
			p = num(key, &r.bver)
		case "t":
			p = num(key, &r.t)
		case "s":
			p = num(key, &r.s)
		case "ut":
			p = num(key, &r.ut)
		case "v":
			var f *float64
			if p = num(key, &f); p == "" {
				text, ok := numberText(strings.TrimSpace(string(labels[key])))
				if !ok {
					p = "number out of range"
				}
				r.v = &text
			}
		case "vb":
			var b bool
			if err := json.Unmarshal(labels[key], &b); err != nil {
				p = "must be true or false"
			}
			r.vb = &b
		default:
			if strings.HasSuffix(key, "_") {
				return r, clip(key, 32), "a label ending in _ must be understood, and this one is not supported"
			}
			// RFC 8428 §4.2: other unknown labels are ignored.
		}
		if p != "" {
			return r, key, p
		}
	}
	return r, "", ""
}

// checkName applies RFC 8428 §4.5.1 to a resolved name.
func checkName(name string) string {
	if name == "" {
		return "the record has no name (bn + n is empty)"
	}
	if len(name) > MaxString {
		return fmt.Sprintf("the name is longer than %d bytes", MaxString)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if i == 0 && !alnum {
			return "a name must start with a letter or digit"
		}
		if !alnum && c != '-' && c != ':' && c != '.' && c != '/' && c != '_' {
			return "a name may hold only letters, digits and - : . / _"
		}
	}
	return ""
}

// nameCode reads the code from a resolved name's last component (after the
// last ':' or '/'): a LOINC code ("...:8480-6"), an MDC reference id
// ("...:MDC_PULS_OXIM_SAT_O2"), an MDC number after an "mdc" component
// ("...:mdc:150456"), or else a vendor code for the device's code table.
func nameCode(name string) (system, code string) {
	cut := strings.LastIndexAny(name, ":/")
	last, prev := name[cut+1:], ""
	if cut >= 0 {
		head := name[:cut]
		prev = head[strings.LastIndexAny(head, ":/")+1:]
	}
	switch {
	case vitals.ValidLOINC(last):
		return "LN", last
	case len(last) > 4 && strings.EqualFold(last[:4], "MDC_"):
		return "MDC", last
	case strings.EqualFold(prev, "mdc") && allDigits(last):
		return "MDC", last
	}
	return "", last
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// jsonProblem describes a JSON syntax or type error without quoting the
// payload.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q has the wrong JSON type (%s)", clip(te.Field, 32), te.Value)
		}
		return fmt.Sprintf("wrong JSON type (%s)", te.Value)
	}
	return "invalid JSON"
}
