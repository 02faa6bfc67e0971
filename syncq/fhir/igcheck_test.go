package fhir_test

// An independent checker of a document Bundle against the IG package
// ndhm.in 6.5.0 as published (StructureDefinitions, ValueSets, CodeSystems
// under ../../../shared/fhir/ndhm.in-6.5.0). It shares no code and no
// constant with the mapper: every code, URL, cardinality and slice it checks
// is read from the IG files, so when the mapper and the IG disagree, this
// fails. It is checked itself against the IG's own example bundles and
// against broken copies of ours (igcheck_self_test below).
//
// What it checks, for the Bundle and each entry resource, for every profile
// the resource claims in meta.profile and the IG profiles those derive from:
//
//   - every element of the profile's differential: min and max cardinality,
//     fixed[x] values (exact) and pattern[x] values (contained), allowed
//     types of choice elements, Reference targets (the target must be in the
//     bundle, of an allowed type, and claim the target profile or one
//     derived from it), required and extensible bindings to value sets the
//     package enumerates (code in the set, display as the IG writes it);
//   - slices: each slice selected by its discriminator (value or pattern at
//     the discriminator path, read from the slice's own fixed value), its
//     cardinality and children checked on the matched instances only;
//     closed slicing admits no unmatched instance, openAtEnd admits them
//     only after the last matched one;
//   - that every meta.profile is a profile of the package (or a core one);
//   - FHIR R4 document rules the JSON schema cannot express: bdl-7 (unique
//     fullUrl), bdl-9 (identifier with system and value), bdl-10
//     (timestamp), bdl-11 (Composition first), and every urn:uuid
//     reference resolves inside the bundle.
//
// What it does not check: FHIRPath invariants (none of the profiles used
// adds one), snapshot-only constraints from the core resources (the JSON
// schema test covers structure), terminology outside the package (LOINC,
// SNOMED CT, v2-0203 codes themselves).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"
)

func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

type igPackage struct {
	profiles    map[string]*profileDef       // by canonical URL
	byFile      map[string]*profileDef       // by file name, e.g. StructureDefinition-OPConsultRecord.json
	valueSets   map[string]*valueSetDef      // by canonical URL
	codeSystems map[string]map[string]string // URL -> code -> display
}

type profileDef struct {
	URL, Type, Base string
	Elements        []*elementDef
	byID            map[string]*elementDef
}

type elementDef struct {
	ID        string `json:"id"`
	Path      string `json:"path"`
	SliceName string `json:"sliceName"`
	Min       *int   `json:"min"`
	Max       string `json:"max"`
	Slicing   *struct {
		Discriminator []struct{ Type, Path string } `json:"discriminator"`
		Rules         string                        `json:"rules"`
	} `json:"slicing"`
	Type    []typeRef `json:"type"`
	Binding *struct {
		Strength string `json:"strength"`
		ValueSet string `json:"valueSet"`
	} `json:"binding"`

	fixed, pattern any // fixed[x] / pattern[x] value, whatever its type
}

type typeRef struct {
	Code          string   `json:"code"`
	TargetProfile []string `json:"targetProfile"`
}

type valueSetDef struct {
	concepts     map[string]string // system|code -> display
	wholeSystems map[string]bool   // systems included whole, not in the package
}

var (
	igOnce sync.Once
	igPkg  *igPackage
	igErr  error
)

// MustIG loads the IG package once per test binary.
func MustIG(tb testing.TB) *igPackage {
	tb.Helper()
	igOnce.Do(func() { igPkg, igErr = loadIG(igDir) })
	if igErr != nil {
		tb.Fatalf("load IG package from %s: %v", igDir, igErr)
	}
	return igPkg
}

func readJSONFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := decodeJSON(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func loadIG(dir string) (*igPackage, error) {
	ig := &igPackage{profiles: map[string]*profileDef{}, byFile: map[string]*profileDef{},
		valueSets: map[string]*valueSetDef{}, codeSystems: map[string]map[string]string{}}

	files, err := filepath.Glob(filepath.Join(dir, "StructureDefinition-*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no StructureDefinitions in %s (err %v)", dir, err)
	}
	for _, f := range files {
		var raw struct {
			URL, Type, BaseDefinition string
			Differential              struct {
				Element []json.RawMessage `json:"element"`
			} `json:"differential"`
		}
		if err := readJSONFile(f, &raw); err != nil {
			return nil, err
		}
		p := &profileDef{URL: raw.URL, Type: raw.Type, Base: raw.BaseDefinition, byID: map[string]*elementDef{}}
		for _, r := range raw.Differential.Element {
			e := &elementDef{}
			if err := decodeJSON(r, e); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			var all map[string]any
			if err := decodeJSON(r, &all); err != nil {
				return nil, err
			}
			for k, v := range all {
				switch {
				case strings.HasPrefix(k, "fixed"):
					e.fixed = v
				case strings.HasPrefix(k, "pattern"):
					e.pattern = v
				}
			}
			p.Elements = append(p.Elements, e)
			p.byID[e.ID] = e
		}
		ig.profiles[p.URL] = p
		ig.byFile[filepath.Base(f)] = p
	}

	files, _ = filepath.Glob(filepath.Join(dir, "CodeSystem-*.json"))
	for _, f := range files {
		var cs struct {
			URL     string
			Concept []struct{ Code, Display string }
		}
		if err := readJSONFile(f, &cs); err != nil {
			return nil, err
		}
		m := map[string]string{}
		for _, c := range cs.Concept {
			m[c.Code] = c.Display
		}
		ig.codeSystems[cs.URL] = m
	}

	files, _ = filepath.Glob(filepath.Join(dir, "ValueSet-*.json"))
	for _, f := range files {
		var vs struct {
			URL     string
			Compose struct {
				Include []struct {
					System  string
					Concept []struct{ Code, Display string }
					Filter  []any
				}
			}
		}
		if err := readJSONFile(f, &vs); err != nil {
			return nil, err
		}
		d := &valueSetDef{concepts: map[string]string{}, wholeSystems: map[string]bool{}}
		for _, inc := range vs.Compose.Include {
			switch {
			case len(inc.Concept) > 0:
				for _, c := range inc.Concept {
					d.concepts[inc.System+"|"+c.Code] = c.Display
				}
			case len(inc.Filter) > 0:
				d = nil // a filtered set cannot be expanded offline; not checked
			case ig.codeSystems[inc.System] != nil:
				for code, display := range ig.codeSystems[inc.System] {
					d.concepts[inc.System+"|"+code] = display
				}
			default:
				d.wholeSystems[inc.System] = true
			}
			if d == nil {
				break
			}
		}
		if d != nil {
			ig.valueSets[vs.URL] = d
		}
	}
	return ig, nil
}

// profileChain is the profile and the IG profiles it derives from.
func (ig *igPackage) profileChain(url string) []*profileDef {
	var out []*profileDef
	for p := ig.profiles[url]; p != nil; p = ig.profiles[p.Base] {
		out = append(out, p)
	}
	return out
}

// derivesFrom reports whether profile url is target or derives from it.
func (ig *igPackage) derivesFrom(url, target string) bool {
	for _, p := range ig.profileChain(url) {
		if p.URL == target {
			return true
		}
	}
	return url == target
}

// typeOf is the resource type a profile constrains.
func (ig *igPackage) typeOf(profileURL string) string {
	if p := ig.profiles[profileURL]; p != nil {
		return p.Type
	}
	return profileURL[strings.LastIndex(profileURL, "/")+1:]
}

// igCheck is one run of the checker over one bundle.
type igCheck struct {
	ig       *igPackage
	byURL    map[string]map[string]any
	problems []string
	// extensibleOK lists codes accepted outside an extensible binding, each
	// with the reason the bound value set does not cover its concept.
	extensibleOK map[string]string
}

func (c *igCheck) fail(res map[string]any, where, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("%v/%v %s: %s", res["resourceType"], res["id"], where, fmt.Sprintf(format, args...)))
}

// check checks a bundle and returns its problems, sorted.
func (ig *igPackage) check(data []byte, extensibleOK map[string]string) []string {
	var bundle map[string]any
	if err := decodeJSON(data, &bundle); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	c := &igCheck{ig: ig, byURL: map[string]map[string]any{}, extensibleOK: extensibleOK}

	// FHIR R4 document rules.
	entries := asList(bundle["entry"])
	if bundle["type"] != "document" {
		c.fail(bundle, "type", "want document")
	}
	if str(bundle, "identifier", "system") == "" || str(bundle, "identifier", "value") == "" {
		c.fail(bundle, "identifier", "bdl-9: a document needs identifier.system and identifier.value")
	}
	if str(bundle, "timestamp") == "" {
		c.fail(bundle, "timestamp", "bdl-10: a document needs a timestamp")
	}
	if len(entries) == 0 || str(entries[0], "resource", "resourceType") != "Composition" {
		c.fail(bundle, "entry[0]", "bdl-11: a document starts with its Composition")
	}
	for i, e := range entries {
		url, res := str(e, "fullUrl"), asMap(asMap(e)["resource"])
		switch {
		case res == nil:
			c.fail(bundle, fmt.Sprintf("entry[%d]", i), "no resource")
			continue
		case !strings.HasPrefix(url, "urn:uuid:"):
			c.fail(res, "fullUrl", "%q is not a urn:uuid", url)
		case c.byURL[url] != nil:
			c.fail(res, "fullUrl", "bdl-7: %q used twice", url)
		}
		c.byURL[url] = res
	}
	walkReferences(bundle, func(ref string) {
		if c.byURL[ref] == nil {
			c.fail(bundle, "reference", "%q does not resolve inside the bundle", ref)
		}
	})

	c.checkResource(bundle)
	for _, e := range entries {
		if res := asMap(asMap(e)["resource"]); res != nil {
			c.checkResource(res)
		}
	}
	sort.Strings(c.problems)
	return c.problems
}

func walkReferences(v any, fn func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "reference" {
				fn(s)
				continue
			}
			walkReferences(x, fn)
		}
	case []any:
		for _, x := range v {
			walkReferences(x, fn)
		}
	}
}

func (c *igCheck) checkResource(res map[string]any) {
	seen := map[string]bool{}
	for _, url := range asList(asMap(res["meta"])["profile"]) {
		u, _ := url.(string)
		chain := c.ig.profileChain(u)
		if len(chain) == 0 {
			if !strings.HasPrefix(u, "http://hl7.org/fhir/StructureDefinition/") {
				c.fail(res, "meta.profile", "%q is not a profile of the IG package", u)
			}
			continue
		}
		for _, p := range chain {
			if seen[p.URL] {
				continue
			}
			seen[p.URL] = true
			if p.Type != res["resourceType"] {
				c.fail(res, "meta.profile", "%s constrains %s", p.URL, p.Type)
				continue
			}
			for _, e := range p.Elements {
				c.checkElement(res, p, e)
			}
		}
	}
}

type segment struct{ name, slice string }

// segments splits an element id after its resource type:
// "Composition.section:ChiefComplaints.code" -> section:ChiefComplaints, code.
func segments(id string) []segment {
	parts := strings.Split(id, ".")[1:]
	out := make([]segment, len(parts))
	for i, p := range parts {
		name, slice, _ := strings.Cut(p, ":")
		out[i] = segment{name, slice}
	}
	return out
}

// idOf rebuilds an element id from the type and segments.
func idOf(typ string, segs []segment) string {
	id := typ
	for _, s := range segs {
		id += "." + s.name
		if s.slice != "" {
			id += ":" + s.slice
		}
	}
	return id
}

// children returns the values of an element in a node; for a choice
// element (value[x]) also the JSON keys they came from.
func children(node any, name string) (vals []any, keys []string) {
	m := asMap(node)
	if m == nil {
		return nil, nil
	}
	if base, ok := strings.CutSuffix(name, "[x]"); ok {
		ks := make([]string, 0, len(m))
		for k := range m {
			if strings.HasPrefix(k, base) && len(k) > len(base) && unicode.IsUpper(rune(k[len(base)])) {
				ks = append(ks, k)
			}
		}
		sort.Strings(ks)
		for _, k := range ks {
			for _, v := range asList(m[k]) {
				vals, keys = append(vals, v), append(keys, k)
			}
		}
		return vals, keys
	}
	for _, v := range asList(m[name]) {
		vals, keys = append(vals, v), append(keys, name)
	}
	return vals, keys
}

// collect follows a dotted path through a value, flattening arrays.
func collect(v any, path string) []any {
	cur := []any{v}
	for _, k := range strings.Split(path, ".") {
		var next []any
		for _, x := range cur {
			vs, _ := children(x, k)
			next = append(next, vs...)
		}
		cur = next
	}
	return cur
}

// inSlice reports whether v belongs to slice of the element slicedID.
func (c *igCheck) inSlice(p *profileDef, slicedID, slice string, v any) (bool, error) {
	base := p.byID[slicedID]
	if base == nil || base.Slicing == nil {
		return false, fmt.Errorf("%s has no slicing for slice %s", slicedID, slice)
	}
	for _, d := range base.Slicing.Discriminator {
		if d.Type != "value" && d.Type != "pattern" {
			return false, fmt.Errorf("%s: discriminator type %s not supported", slicedID, d.Type)
		}
		var want any
		if d.Path == "$this" {
			want = fixedOrPattern(p.byID[slicedID+":"+slice])
		} else {
			want = fixedOrPattern(p.byID[slicedID+":"+slice+"."+d.Path])
		}
		if want == nil {
			return false, fmt.Errorf("%s:%s has no fixed value at %s", slicedID, slice, d.Path)
		}
		got := []any{v}
		if d.Path != "$this" {
			got = collect(v, d.Path)
		}
		if !slices.ContainsFunc(got, func(g any) bool { return contains(g, want) }) {
			return false, nil
		}
	}
	return true, nil
}

func fixedOrPattern(e *elementDef) any {
	if e == nil {
		return nil
	}
	if e.fixed != nil {
		return e.fixed
	}
	return e.pattern
}

// contains reports whether got has everything in want (pattern semantics;
// for primitives, equality).
func contains(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g := asMap(got)
		for k, wv := range w {
			if !slices.ContainsFunc(asList(g[k]), func(x any) bool { return contains(x, wv) }) {
				return false
			}
		}
		return g != nil
	case []any:
		for _, wv := range w {
			if !slices.ContainsFunc(asList(got), func(x any) bool { return contains(x, wv) }) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(got, want)
	}
}

// resolve returns the nodes an element path (its segments) selects.
func (c *igCheck) resolve(res map[string]any, p *profileDef, segs []segment) []any {
	cur := []any{res}
	done := []segment{}
	for _, s := range segs {
		var next []any
		for _, n := range cur {
			vs, _ := children(n, s.name)
			next = append(next, vs...)
		}
		done = append(done, segment{s.name, ""})
		if s.slice != "" {
			next = c.filter(res, p, idOf(p.Type, done), s.slice, next)
			done[len(done)-1].slice = s.slice
		}
		cur = next
	}
	return cur
}

func (c *igCheck) filter(res map[string]any, p *profileDef, slicedID, slice string, vals []any) []any {
	var out []any
	for _, v := range vals {
		ok, err := c.inSlice(p, slicedID, slice, v)
		if err != nil {
			c.fail(res, slicedID, "%v", err)
			return nil
		}
		if ok {
			out = append(out, v)
		}
	}
	return out
}

func (c *igCheck) checkElement(res map[string]any, p *profileDef, e *elementDef) {
	segs := segments(e.ID)
	if len(segs) == 0 {
		return
	}
	last := segs[len(segs)-1]
	parents := c.resolve(res, p, segs[:len(segs)-1])
	for _, parent := range parents {
		if asMap(parent) == nil {
			continue
		}
		vals, keys := children(parent, last.name)
		if last.slice != "" {
			slicedID := idOf(p.Type, append(slices.Clone(segs[:len(segs)-1]), segment{last.name, ""}))
			vals = c.filter(res, p, slicedID, last.slice, vals)
			keys = nil
		}
		if e.Min != nil && len(vals) < *e.Min {
			c.fail(res, e.ID, "min %d, found %d", *e.Min, len(vals))
		}
		if e.Max != "" && e.Max != "*" {
			if n, err := strconv.Atoi(e.Max); err == nil && len(vals) > n {
				c.fail(res, e.ID, "max %d, found %d", n, len(vals))
			}
		}
		for _, v := range vals {
			if e.fixed != nil && !reflect.DeepEqual(v, e.fixed) {
				c.fail(res, e.ID, "fixed %v, found %v", e.fixed, v)
			}
			if e.pattern != nil && !contains(v, e.pattern) {
				c.fail(res, e.ID, "pattern %v, found %v", e.pattern, v)
			}
		}
		if strings.HasSuffix(last.name, "[x]") && len(e.Type) > 0 {
			base := strings.TrimSuffix(last.name, "[x]")
			for _, k := range keys {
				if !slices.ContainsFunc(e.Type, func(t typeRef) bool {
					return k == base+strings.ToUpper(t.Code[:1])+t.Code[1:]
				}) {
					c.fail(res, e.ID, "%s is not an allowed type", k)
				}
			}
		}
		for _, t := range e.Type {
			if t.Code == "Reference" && len(t.TargetProfile) > 0 {
				for _, v := range vals {
					c.checkTarget(res, e.ID, str(v, "reference"), t.TargetProfile)
				}
			}
		}
		if e.Binding != nil && (e.Binding.Strength == "required" || e.Binding.Strength == "extensible") {
			for _, v := range vals {
				c.checkBinding(res, e, v)
			}
		}
		if e.Slicing != nil && last.slice == "" {
			c.checkSlicing(res, p, e, vals)
		}
	}
}

func (c *igCheck) checkTarget(res map[string]any, where, ref string, targets []string) {
	if ref == "" {
		return // a missing reference is a min-cardinality problem
	}
	target := c.byURL[ref]
	if target == nil {
		return // reported by the reference walk
	}
	claimed := asList(asMap(target["meta"])["profile"])
	for _, tp := range targets {
		if c.ig.typeOf(tp) != target["resourceType"] {
			continue
		}
		if c.ig.profiles[tp] == nil {
			return // a core profile: the type is all it asks
		}
		for _, cl := range claimed {
			if u, _ := cl.(string); c.ig.derivesFrom(u, tp) {
				return
			}
		}
	}
	c.fail(res, where, "reference to %v/%v, which is none of %v", target["resourceType"], target["id"], targets)
}

func (c *igCheck) checkBinding(res map[string]any, e *elementDef, v any) {
	vs := c.ig.valueSets[strings.Split(e.Binding.ValueSet, "|")[0]]
	if vs == nil {
		return // a value set outside the package or defined by filter
	}
	var codings []any
	switch {
	case asMap(v)["coding"] != nil:
		codings = asList(asMap(v)["coding"])
	case asMap(v)["code"] != nil:
		codings = []any{v}
	default:
		if e.Binding.Strength == "required" {
			c.fail(res, e.ID, "no coding for a required binding to %s", e.Binding.ValueSet)
		}
		return
	}
	inSet, allowed := false, false
	for _, cd := range codings {
		system, code, display := str(cd, "system"), str(cd, "code"), str(cd, "display")
		if want, ok := vs.concepts[system+"|"+code]; ok {
			inSet = true
			if display != "" && display != want {
				c.fail(res, e.ID, "%s|%s display %q, the IG says %q", system, code, display, want)
			}
		} else if vs.wholeSystems[system] {
			inSet = true
		}
		if _, ok := c.extensibleOK[system+"|"+code]; ok {
			allowed = true
		}
	}
	switch {
	case inSet:
	case e.Binding.Strength == "extensible" && allowed:
	default:
		c.fail(res, e.ID, "no coding from %s (%s)", e.Binding.ValueSet, e.Binding.Strength)
	}
}

func (c *igCheck) checkSlicing(res map[string]any, p *profileDef, e *elementDef, vals []any) {
	var names []string
	for _, x := range p.Elements {
		if x.Path == e.Path && x.SliceName != "" && x.ID == e.ID+":"+x.SliceName {
			names = append(names, x.SliceName)
		}
	}
	unmatchedSeen := false
	for i, v := range vals {
		matched := false
		for _, n := range names {
			ok, err := c.inSlice(p, e.ID, n, v)
			if err != nil {
				c.fail(res, e.ID, "%v", err)
				return
			}
			matched = matched || ok
		}
		switch {
		case !matched && e.Slicing.Rules == "closed":
			c.fail(res, e.ID, "item %d matches no slice of a closed slicing", i)
		case !matched:
			unmatchedSeen = true
		case matched && unmatchedSeen && e.Slicing.Rules == "openAtEnd":
			c.fail(res, e.ID, "item %d matches a slice after an unmatched item (openAtEnd)", i)
		}
	}
}

// extensibleExceptions are the codes the mapper sends outside an extensible
// binding, each with why the bound value set does not cover its concept.
// The test owns this list, not the mapper.
var extensibleExceptions = map[string]string{
	"http://loinc.org|8310-5": "Body temperature: ndhm-vital-signs has only 61008-9 Body *surface* temperature, a different concept",
}

// MustPassIG fails the test with every problem the checker finds.
func MustPassIG(tb testing.TB, data []byte) {
	tb.Helper()
	if problems := MustIG(tb).check(data, extensibleExceptions); len(problems) > 0 {
		tb.Fatalf("bundle breaks the IG in %d places:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
}
