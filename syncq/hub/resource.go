package hub

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Token is a FHIR token search value: system|value, |value (no system) or
// value (any system).
type Token struct {
	System, Value string
	HasSystem     bool
}

// ParseToken reads a token search value.
func ParseToken(s string) Token {
	if sys, val, ok := strings.Cut(s, "|"); ok {
		return Token{System: sys, Value: val, HasSystem: true}
	}
	return Token{Value: s}
}

// Issue is one problem found in a request, as an OperationOutcome issue.
type Issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

func issue(code, expr, format string, args ...any) Issue {
	is := Issue{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...)}
	if expr != "" {
		is.Expression = []string{expr}
	}
	return is
}

// Resource is a Bundle that passed the structural checks, in canonical form.
type Resource struct {
	ID         string
	Identifier struct{ System, Value string }
	// Hash is the SHA-256 of the canonical JSON without meta: the same
	// document sent again hashes the same, however it was formatted.
	Hash []byte
	// PatientKeys are what a search by patient matches: the subject's
	// reference, its id and its identifiers.
	PatientKeys []string

	canon map[string]any
}

var (
	idRe           = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	resourceTypeRe = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	dateTimeRe     = regexp.MustCompile(`^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$`)
	compStatus     = map[string]bool{"preliminary": true, "final": true, "amended": true, "entered-in-error": true}
)

// ParseBundle checks that body is a FHIR R4 document Bundle as the hub
// stores it and returns it in canonical form, or every problem found. The
// checks are structural (FHIR R4 Bundle invariants bdl-3, 4, 7, 9, 10, 11
// and the required elements of Composition), not profile conformance.
func ParseBundle(body []byte) (*Resource, []Issue) {
	if !utf8.Valid(body) {
		return nil, []Issue{issue("structure", "", "the body is not UTF-8")}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, []Issue{issue("structure", "", "the body is not JSON: %v", err)}
	}
	if dec.More() {
		return nil, []Issue{issue("structure", "", "the body holds more than one JSON value")}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, []Issue{issue("structure", "", "the body is not a JSON object")}
	}
	if rt, _ := m["resourceType"].(string); rt != "Bundle" {
		return nil, []Issue{issue("structure", "resourceType", "resourceType is %q; this server stores Bundle resources", rt)}
	}
	var issues []Issue
	r := &Resource{canon: m}
	if idv, present := m["id"]; present {
		id, _ := idv.(string)
		if !idRe.MatchString(id) {
			issues = append(issues, issue("value", "Bundle.id", "Bundle.id is not a FHIR id (1-64 letters, digits, '-' and '.')"))
		}
		r.ID = id
	}
	if mv, present := m["meta"]; present {
		if _, ok := mv.(map[string]any); !ok {
			issues = append(issues, issue("structure", "Bundle.meta", "Bundle.meta is not an object"))
		}
	}
	if t, _ := m["type"].(string); t != "document" {
		issues = append(issues, issue("value", "Bundle.type", "Bundle.type is %q; this server stores document bundles", t))
	}
	ident, _ := m["identifier"].(map[string]any)
	sys, _ := ident["system"].(string)
	val, _ := ident["value"].(string)
	if sys == "" || val == "" {
		issues = append(issues, issue("invariant", "Bundle.identifier", "bdl-9: a document must have an identifier with a system and a value"))
	}
	r.Identifier.System, r.Identifier.Value = sys, val
	ts, _ := m["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		issues = append(issues, issue("invariant", "Bundle.timestamp", "bdl-10: a document must have a timestamp (an instant with a time zone)"))
	}
	if _, present := m["total"]; present {
		issues = append(issues, issue("invariant", "Bundle.total", "bdl-1: total only when a search or history"))
	}
	entries, _ := m["entry"].([]any)
	if len(entries) == 0 {
		issues = append(issues, issue("invariant", "Bundle.entry", "bdl-11: a document must have a Composition as the first resource"))
	}
	fullURLs := map[string]bool{}
	var comp map[string]any
	for i, ev := range entries {
		at := fmt.Sprintf("Bundle.entry[%d]", i)
		e, ok := ev.(map[string]any)
		if !ok {
			issues = append(issues, issue("structure", at, "the entry is not an object"))
			continue
		}
		fu, _ := e["fullUrl"].(string)
		switch {
		case fu == "":
			issues = append(issues, issue("required", at+".fullUrl", "every entry of a document needs a fullUrl"))
		case fullURLs[fu]:
			issues = append(issues, issue("invariant", at+".fullUrl", "bdl-7: fullUrl %q appears twice", fu))
		}
		fullURLs[fu] = true
		if _, present := e["request"]; present {
			issues = append(issues, issue("invariant", at+".request", "bdl-3: entry.request only in a batch or transaction"))
		}
		if _, present := e["response"]; present {
			issues = append(issues, issue("invariant", at+".response", "bdl-4: entry.response only in a batch-response or transaction-response"))
		}
		res, ok := e["resource"].(map[string]any)
		if !ok {
			issues = append(issues, issue("required", at+".resource", "every entry of a document needs a resource"))
			continue
		}
		rt, _ := res["resourceType"].(string)
		if !resourceTypeRe.MatchString(rt) {
			issues = append(issues, issue("structure", at+".resource.resourceType", "the resource has no valid resourceType"))
		}
		if idv, present := res["id"]; present {
			if id, _ := idv.(string); !idRe.MatchString(id) {
				issues = append(issues, issue("value", at+".resource.id", "the resource id is not a FHIR id"))
			}
		}
		if i == 0 {
			if rt != "Composition" {
				issues = append(issues, issue("invariant", at+".resource", "bdl-11: the first resource of a document must be a Composition, not %q", rt))
			} else {
				comp = res
			}
		}
	}
	if comp != nil {
		issues = append(issues, checkComposition(comp)...)
		r.PatientKeys = patientKeys(comp, entries)
	}
	if len(issues) > 0 {
		return nil, issues
	}
	delete(m, "meta")
	canon, err := json.Marshal(m)
	if err != nil {
		return nil, []Issue{issue("structure", "", "the body cannot be re-encoded: %v", err)}
	}
	h := sha256.Sum256(canon)
	r.Hash = h[:]
	return r, nil
}

func checkComposition(c map[string]any) []Issue {
	var issues []Issue
	const at = "Bundle.entry[0].resource"
	if s, _ := c["status"].(string); !compStatus[s] {
		issues = append(issues, issue("value", at+".status", "Composition.status must be preliminary, final, amended or entered-in-error"))
	}
	t, _ := c["type"].(map[string]any)
	coding, _ := t["coding"].([]any)
	text, _ := t["text"].(string)
	if len(coding) == 0 && text == "" {
		issues = append(issues, issue("required", at+".type", "Composition.type is required"))
	}
	subj, _ := c["subject"].(map[string]any)
	if ref, _ := subj["reference"].(string); ref == "" {
		issues = append(issues, issue("required", at+".subject", "the document's Composition must name its subject (the patient) by reference"))
	}
	if d, _ := c["date"].(string); !dateTimeRe.MatchString(d) {
		issues = append(issues, issue("required", at+".date", "Composition.date is required, a FHIR dateTime"))
	}
	if a, _ := c["author"].([]any); len(a) == 0 {
		issues = append(issues, issue("required", at+".author", "Composition.author is required"))
	}
	if t, _ := c["title"].(string); strings.TrimSpace(t) == "" {
		issues = append(issues, issue("required", at+".title", "Composition.title is required"))
	}
	return issues
}

// patientKeys lists what a search by patient finds the document by.
func patientKeys(comp map[string]any, entries []any) []string {
	subj, _ := comp["subject"].(map[string]any)
	ref, _ := subj["reference"].(string)
	if ref == "" {
		return nil
	}
	keys := map[string]bool{ref: true}
	if id, ok := strings.CutPrefix(ref, "Patient/"); ok {
		keys[id] = true
	}
	for _, ev := range entries {
		e, _ := ev.(map[string]any)
		res, _ := e["resource"].(map[string]any)
		if rt, _ := res["resourceType"].(string); rt != "Patient" {
			continue
		}
		fu, _ := e["fullUrl"].(string)
		id, _ := res["id"].(string)
		if fu != ref && "Patient/"+id != ref && !strings.HasSuffix(fu, "/Patient/"+id) {
			continue
		}
		if id != "" {
			keys["Patient/"+id], keys[id] = true, true
		}
		ids, _ := res["identifier"].([]any)
		for _, iv := range ids {
			im, _ := iv.(map[string]any)
			sys, _ := im["system"].(string)
			val, _ := im["value"].(string)
			if val != "" {
				keys[val], keys[sys+"|"+val] = true, true
			}
		}
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	return out
}

// withMeta is the JSON stored and returned for version v: the canonical
// body with the server's id and meta.
func (r *Resource) withMeta(id string, v int, at time.Time) []byte {
	m := make(map[string]any, len(r.canon)+2)
	for k, x := range r.canon {
		m[k] = x
	}
	m["id"] = id
	m["meta"] = map[string]any{"versionId": strconv.Itoa(v), "lastUpdated": at.UTC().Format("2006-01-02T15:04:05.000Z07:00")}
	b, _ := json.Marshal(m)
	return b
}
