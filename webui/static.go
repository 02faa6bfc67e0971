package webui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// Assets are embedded (the LAN has no internet) and served at URLs that
// carry a hash of their content, /static/<hash>/<name>, so browsers may
// keep them for a year: a changed file has a new URL.

//go:embed static
var staticFS embed.FS

type asset struct {
	name  string
	hash  string
	ctype string
	body  []byte
	gz    []byte // nil when compressing does not pay
}

type assets struct {
	byName map[string]*asset
}

func loadAssets() (*assets, error) {
	a := &assets{byName: map[string]*asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "static/")
		as := &asset{name: name, hash: hex.EncodeToString(sum[:])[:12], body: body, ctype: mime.TypeByExtension(path.Ext(name))}
		if as.ctype == "" {
			as.ctype = "application/octet-stream"
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		if buf.Len() < len(body)*9/10 {
			as.gz = buf.Bytes()
		}
		a.byName[name] = as
		return nil
	})
	return a, err
}

// URL is the checksummed address of an asset. An unknown name is a bug in
// a template, caught by the render tests.
func (a *assets) URL(name string) string {
	as, ok := a.byName[name]
	if !ok {
		return "/static/missing/" + name
	}
	return "/static/" + as.hash + "/" + as.name
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	as, ok := s.static.byName[r.PathValue("name")]
	if !ok || as.hash != r.PathValue("hash") {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", as.ctype)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", `"`+as.hash+`"`)
	h.Set("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == `"`+as.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := as.body
	if as.gz != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = as.gz
	}
	w.Write(body)
}
