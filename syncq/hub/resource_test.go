package hub_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/syncq/hub"
)

func TestParseBundle_Catalogue(t *testing.T) {
	// Ensure the valid seed parses and every hostile seed is refused with
	// at least one issue.
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) < 2 {
		t.Fatalf("testdata holds %d bundles", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, issues := hub.ParseBundle(b)
		valid := strings.HasPrefix(filepath.Base(f), "valid-")
		if valid && (r == nil || len(issues) > 0) {
			t.Errorf("%s refused: %+v", f, issues)
		}
		if !valid && (r != nil || len(issues) == 0) {
			t.Errorf("%s accepted", f)
		}
	}
}

func FuzzParseBundle(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, issues := hub.ParseBundle(b)
		if (r == nil) == (len(issues) == 0) {
			t.Fatalf("ParseBundle returned resource=%v with %d issues", r != nil, len(issues))
		}
		for _, is := range issues {
			if is.Severity == "" || is.Code == "" {
				t.Fatalf("issue without severity or code: %+v", is)
			}
		}
		if r != nil {
			if len(r.Hash) != 32 || r.Identifier.Value == "" {
				t.Fatalf("accepted bundle without hash or identifier: %+v", r)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("accepted a body that is not JSON: %v", err)
			}
		}
	})
}
