package edge_test

import (
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

func TestTransliterate(t *testing.T) {
	cases := []struct{ in, want string }{
		{"राम", "raam"},
		{"सुनीता देवी", "suniitaa devii"},
		{"लक्ष्मी", "lakshmii"},
		{"विजय", "vijay"},
		{"संजय", "sanjay"},
		{"कृष्ण", "krishn"},
		{"ज़रीना", "zariinaa"},
		{"ज\u093cरीना", "zariinaa"}, // decomposed nukta
		{"Sunita  DEVI", "sunita devi"},
		{"O'Brien", "o brien"},
		{"Śrī Rāma", "shrii raama"},
		{"१२३", "123"},
	}
	for _, tc := range cases {
		if got := edge.Transliterate(tc.in); got != tc.want {
			t.Errorf("Transliterate(%q)=%q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNameKeys(t *testing.T) {
	// Ensure the spellings of one name, in Latin and Devanagari, share a key.
	same := [][]string{
		{"Lakshmi", "Laxmi", "Lakshmee", "लक्ष्मी"},
		{"Mohammad", "Mohammed", "Muhammad", "मोहम्मद"},
		{"Sunita", "Suneeta", "सुनीता"},
		{"Pooja", "Puja", "पूजा"},
		{"Vijay", "Vijai", "Wijay", "विजय"},
		{"Jyoti", "Jyothi", "ज्योति"},
		{"Krishna", "Krushna", "कृष्ण"},
		{"Shyam", "Syam", "श्याम"},
		{"Indira", "इंदिरा"},
		{"Ambika", "अंबिका"}, {"Rampur", "रामपुर"},
		{"Ramesh", "रमेश"},
		{"Farukh", "Pharukh", "फ़ारुख"},
		{"Singh", "Sinh", "सिंह"},
		{"Maurya", "Mourya", "मौर्य"},
		{"Mohammad Salim", "Mohd Salim", "Md. Salim", "मोहम्मद सलीम"},
		{"Priya", "Preeya", "प्रिया"},
		{"Shah", "Sha", "शाह"},
		{"Aditya", "आदित्य"},
	}
	for _, group := range same {
		want := edge.NameKeys(group[0])
		for _, n := range group[1:] {
			if got := edge.NameKeys(n); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("NameKeys(%q)=%v, want %v as for %q", n, got, want, group[0])
			}
		}
	}
	// Ensure different names keep different keys.
	for _, pair := range [][2]string{{"Ram", "Shyam"}, {"Sunita", "Anita"}, {"Mohan", "Sohan"}} {
		if a, b := edge.NameKeys(pair[0]), edge.NameKeys(pair[1]); strings.Join(a, " ") == strings.Join(b, " ") {
			t.Errorf("NameKeys(%q) = NameKeys(%q) = %v", pair[0], pair[1], a)
		}
	}
	if got := edge.NameKeys("  <>  "); len(got) != 0 {
		t.Errorf("NameKeys of punctuation = %v, want none", got)
	}
}

func TestClassifyQuery(t *testing.T) {
	cases := []struct {
		in   string
		kind edge.SearchKind
		v    string
	}{
		{"P-000123", edge.SearchByLocalID, "P-000123"},
		{"p123", edge.SearchByLocalID, "P-000123"},
		{"123", edge.SearchByLocalID, "P-000123"},
		{"91-2666-2007-2857", edge.SearchByABHANumber, "91266620072857"},
		{"98765 43210", edge.SearchByPhone, "9876543210"},
		{"+91 98765 43210", edge.SearchByPhone, "9876543210"},
		{"९८७६५४३२१०", edge.SearchByPhone, "9876543210"},
		{"Sunita@ABDM", edge.SearchByABHAAddress, "sunita@abdm"},
		{"sunita devi", edge.SearchByName, "sunita devi"},
	}
	for _, tc := range cases {
		if k, v := edge.ClassifyQuery(tc.in); k != tc.kind || v != tc.v {
			t.Errorf("ClassifyQuery(%q)=%s %q, want %s %q", tc.in, k, v, tc.kind, tc.v)
		}
	}
}
