package webui

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
)

// Catalogues are webui/locales/<lang>.json: flat objects of dotted keys
// ("error.abha_checksum") to text, with fmt verbs for arguments. Adding a
// language is adding one file; a test fails when a key is missing in any.

//go:embed locales/*.json
var localeFS embed.FS

// defaultLang is the language of last resort, and must have every key.
const defaultLang = "en"

// catalog is one language's messages.
type catalog struct {
	lang string
	msgs map[string]string
	base *catalog // the default language, for keys this one lacks
}

// T translates key, formatting args into it. A key missing everywhere is
// shown as itself, so a gap is visible and never breaks a page.
func (c *catalog) T(key string, args ...any) string {
	msg, ok := c.msgs[key]
	if !ok && c.base != nil {
		msg, ok = c.base.msgs[key]
	}
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...)
	}
	return msg
}

// Has reports whether key exists in this catalogue or the default.
func (c *catalog) Has(key string) bool {
	if _, ok := c.msgs[key]; ok {
		return true
	}
	return c.base != nil && c.base.Has(key)
}

// Name is the language's own name ("हिन्दी").
func (c *catalog) Name() string { return c.T("lang.name") }

// catalogs are all languages, the default first.
type catalogs struct {
	langs []string
	byLan map[string]*catalog
}

func loadCatalogs() (*catalogs, error) {
	files, err := fs.Glob(localeFS, "locales/*.json")
	if err != nil {
		return nil, err
	}
	cs := &catalogs{byLan: map[string]*catalog{}}
	for _, f := range files {
		b, err := localeFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		c := &catalog{lang: strings.TrimSuffix(path.Base(f), ".json")}
		if err := json.Unmarshal(b, &c.msgs); err != nil {
			return nil, fmt.Errorf("catalogue %s: %w", f, err)
		}
		cs.byLan[c.lang] = c
		cs.langs = append(cs.langs, c.lang)
	}
	base, ok := cs.byLan[defaultLang]
	if !ok {
		return nil, fmt.Errorf("catalogue %s.json is missing", defaultLang)
	}
	for _, c := range cs.byLan {
		if c != base {
			c.base = base
		}
	}
	slices.SortFunc(cs.langs, func(a, b string) int {
		switch {
		case a == defaultLang:
			return -1
		case b == defaultLang:
			return 1
		}
		return strings.Compare(a, b)
	})
	return cs, nil
}

// get returns the catalogue of lang, or the default.
func (cs *catalogs) get(lang string) *catalog {
	if c, ok := cs.byLan[lang]; ok {
		return c
	}
	return cs.byLan[defaultLang]
}

// pick chooses the language of a request: the user's, else the sign-in
// page's choice (cookie), else the browser's first known language.
func (cs *catalogs) pick(r *http.Request, userLang string) string {
	if _, ok := cs.byLan[userLang]; ok {
		return userLang
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if _, ok := cs.byLan[c.Value]; ok {
			return c.Value
		}
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag, _, _ = strings.Cut(strings.ToLower(tag), "-")
		if _, ok := cs.byLan[tag]; ok {
			return tag
		}
	}
	return defaultLang
}
