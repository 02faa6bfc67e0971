package webui

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

// TestMissingTranslations fails when a key is in one catalogue and not in
// another, and when a key the code or templates use is in none.
func TestMissingTranslations(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	if len(cats.langs) < 2 || cats.langs[0] != "en" || !slices.Contains(cats.langs, "hi") {
		t.Fatalf("languages=%v, want en first and hi", cats.langs)
	}
	for _, a := range cats.langs {
		for _, b := range cats.langs {
			for key := range cats.byLan[a].msgs {
				if _, ok := cats.byLan[b].msgs[key]; !ok {
					t.Errorf("%s.json lacks %q (in %s.json)", b, key, a)
				}
			}
		}
		for key, msg := range cats.byLan[a].msgs {
			if strings.TrimSpace(msg) == "" {
				t.Errorf("%s.json: %q is empty", a, key)
			}
			if want, got := strings.Count(cats.byLan["en"].msgs[key], "%"), strings.Count(msg, "%"); got != want {
				t.Errorf("%s.json: %q has %d format verbs, en.json %d", a, key, got, want)
			}
		}
	}
	en := cats.byLan["en"]
	need := map[string]string{}
	// Keys written out in templates and Go code.
	literal := regexp.MustCompile(`"((?:error|flash|page|nav|rx|freq|inbox|clock|admin|patient|enc|search|login|lock|home|settings|print|users|device|facility|chart|vital|dx|role|gender|dup|storage|outbox|month|time|age|forbidden|not_found|too_large|lang|sync)\.[A-Za-z0-9_.\-]+)"`)
	for _, dir := range []string{"templates", "."} {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") || !(strings.HasSuffix(f, ".go") || strings.HasSuffix(f, ".html")) {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
				if !strings.HasSuffix(m[1], ".") && path.Ext(m[1]) != ".css" && path.Ext(m[1]) != ".js" {
					need[m[1]] = f
				}
			}
		}
	}
	// Keys edge returns in field errors and domain errors.
	edgeFiles, _ := fs.Glob(os.DirFS("../edge"), "*.go")
	errKey := regexp.MustCompile(`"(error\.[a-z_]+)"`)
	for _, f := range edgeFiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("../edge", f))
		for _, m := range errKey.FindAllStringSubmatch(string(b), -1) {
			need[m[1]] = "edge/" + f
		}
	}
	for _, f := range []string{"abha_number", "abha_address"} { // "error." + field + "_taken"
		need["error."+f+"_taken"] = "edge/patient.go"
	}
	// Keys made from lists.
	for _, c := range icd10Codes {
		need["dx."+c] = "icd10.go"
	}
	add := func(prefix string, items []string) {
		for _, it := range items {
			need[prefix+it] = "a list"
		}
	}
	add("freq.", frequencies)
	add("role.", edge.Roles)
	add("enc.type.", encounterTypes)
	add("enc.status.", []string{edge.EncounterDraft, edge.EncounterFinal, edge.EncounterAmended, edge.EncounterCancelled})
	add("device.kind.", edge.DeviceKinds)
	add("gender.", []string{"F", "M", "O", "U"})
	add("inbox.reason.", discardReasons)
	add("dup.", []string{"abha_number", "abha_address", "phone", "local_id", "name", "birth_year", "village"})
	add("storage.", []string{edge.StorageOK, edge.StorageLow, edge.StorageCritical})
	add("outbox.", []string{edge.OutboxPending, edge.OutboxExported, edge.OutboxDelivered, edge.OutboxQuarantined, edge.OutboxDiscarded})
	add("print.", []string{"slip", "summary"})
	add("sync.state.", syncStates)
	add("sync.lane.", syncLanes)
	add("sync.trigger.", syncTriggers)
	add("", instructionKeys)
	for i := 1; i <= 12; i++ {
		need["month."+strconv.Itoa(i)] = "format.go"
	}
	for _, d := range chartDefs {
		need[d.Title] = "charts.go"
		for _, s := range d.Series {
			need[s.Label] = "charts.go"
		}
	}
	for _, vf := range vitalFields {
		if vitalName(en, vf.LOINC) == vf.LOINC {
			t.Errorf("vital %s (%s) has no name", vf.Key, vf.LOINC)
		}
	}
	for key, where := range need {
		if _, ok := en.msgs[key]; !ok {
			t.Errorf("en.json lacks %q, used in %s", key, where)
		}
	}
}
