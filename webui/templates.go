package webui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// Templates are webui/templates/*.html. Files starting with "_" are shared
// (the layout, form parts); every other file is one page, which defines
// "content" inside the layout or "page" for a document of its own (print).
// All are parsed once at startup, then cloned once per language with "t"
// bound to its catalogue, so rendering shares nothing mutable.

//go:embed templates/*.html
var templateFS embed.FS

// pages lists every page a handler renders. A page missing from the
// templates stops startup instead of failing a request.
var pages = []string{
	"login", "lock", "home", "settings", "forbidden", "not_found", "error", "too_large",
	"patient_search", "patient_form", "patient_show", "encounter_form", "encounter_show", "encounter_print",
	"inbox", "inbox_assign", "admin", "users", "devices", "facility", "sync", "lab_result",
}

type engine struct {
	cats   *catalogs
	byLang map[string]map[string]*template.Template
}

func newEngine(static *assets) (*engine, error) {
	cats, err := loadCatalogs()
	if err != nil {
		return nil, err
	}
	e := &engine{cats: cats, byLang: map[string]map[string]*template.Template{}}
	base, err := template.New("").Funcs(templateFuncs(cats, cats.get(defaultLang), static)).ParseFS(templateFS, "templates/_*.html")
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	parsed := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", f, err)
		}
		parsed[name] = t
	}
	for _, p := range pages {
		if parsed[p] == nil {
			return nil, fmt.Errorf("page %q has no template templates/%s.html", p, p)
		}
	}
	for _, lang := range cats.langs {
		e.byLang[lang] = map[string]*template.Template{}
		for name, t := range parsed {
			lt, err := t.Clone()
			if err != nil {
				return nil, err
			}
			e.byLang[lang][name] = lt.Funcs(templateFuncs(cats, cats.get(lang), static))
		}
	}
	return e, nil
}

// render executes page in lang into a buffer, so a failing template never
// sends half a page.
func (e *engine) render(lang, page string, v any) ([]byte, error) {
	ts, ok := e.byLang[lang]
	if !ok {
		ts = e.byLang[defaultLang]
	}
	t, ok := ts[page]
	if !ok {
		return nil, fmt.Errorf("no page %q", page)
	}
	entry := "layout"
	if t.Lookup("page") != nil {
		entry = "page"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, entry, v); err != nil {
		return nil, fmt.Errorf("render %s: %w", page, err)
	}
	return buf.Bytes(), nil
}

func templateFuncs(cats *catalogs, c *catalog, static *assets) template.FuncMap {
	return template.FuncMap{
		"t": c.T,
		"tl": func(lang, key string, args ...any) string {
			return cats.get(lang).T(key, args...)
		},
		"dxl":      func(lang, code string) string { return diagnosisName(cats.get(lang), code) },
		"langName": func(code string) string { return cats.get(code).Name() },
		"lang":     func() string { return c.lang },
		"static":   static.URL,
		"num":      FormatNumber,
		"int":      func(n int) string { return FormatInt(int64(n)) },
		"int64":    FormatInt,
		"date":     func(t time.Time) string { return formatDate(c, t) },
		"isodate": func(d string) string {
			return formatISODate(c, d)
		},
		"datetime": func(t time.Time) string { return formatDateTime(c, t) },
		"clock":    func(t time.Time) string { return formatTime(c, t) },
		"age":      func(p edge.Patient) string { return formatAge(c, p, time.Now()) },
		"abha":     edge.FormatABHANumber,
		"vital":    func(loinc string) string { return vitalName(c, loinc) },
		"dx":       func(code string) string { return diagnosisName(c, code) },
		"chart":    func(ch vitalChart) template.HTML { return ch.SVG(c) },
		"err": func(errs edge.FieldErrors, field string) string {
			if k, ok := errs[field]; ok {
				return c.T(k)
			}
			return ""
		},
		"seq": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i
			}
			return out
		},
		"add":      func(a, b int) int { return a + b },
		"list":     func(xs ...string) []string { return xs },
		"div":      func(a, b int64) int64 { return a / b },
		"unit":     unitLabel,
		"has":      func(list []string, s string) bool { return contains(list, s) },
		"hasRole":  func(u *edge.User, roles ...string) bool { return u != nil && contains(roles, u.Role) },
		"isoMilli": func(t time.Time) int64 { return t.UnixMilli() },
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
