package edge

import (
	"strings"
	"unicode"
)

// Names are typed in Latin or Devanagari letters and spelled many ways
// (Lakshmi, Laxmi, लक्ष्मी; Mohammad, Muhammed, मोहम्मद). Search compares
// phonetic keys: the name is transliterated to Latin, spelling variants that
// sound alike are folded together, and the vowels after the first letter are
// dropped, because they are what spellings of Indian names disagree on most.

// devanagari maps Devanagari letters to Latin. Consonants carry no vowel
// here; the inherent "a" is added by Transliterate.
var devConsonants = map[rune]string{
	'क': "k", 'ख': "kh", 'ग': "g", 'घ': "gh", 'ङ': "n",
	'च': "ch", 'छ': "chh", 'ज': "j", 'झ': "jh", 'ञ': "n",
	'ट': "t", 'ठ': "th", 'ड': "d", 'ढ': "dh", 'ण': "n",
	'त': "t", 'थ': "th", 'द': "d", 'ध': "dh", 'न': "n",
	'प': "p", 'फ': "ph", 'ब': "b", 'भ': "bh", 'म': "m",
	'य': "y", 'र': "r", 'ल': "l", 'व': "v", 'श': "sh", 'ष': "sh", 'स': "s", 'ह': "h", 'ळ': "l",
	// Precomposed nukta letters (U+0958..U+095F).
	'\u0958': "q", '\u0959': "kh", '\u095A': "g", '\u095B': "z", '\u095C': "r", '\u095D': "rh", '\u095E': "f", '\u095F': "y",
}

// devNukta is what a consonant followed by the nukta sign becomes.
var devNukta = map[rune]string{'क': "q", 'ख': "kh", 'ग': "g", 'ज': "z", 'ड': "r", 'ढ': "rh", 'फ': "f"}

var devVowels = map[rune]string{
	'अ': "a", 'आ': "aa", 'इ': "i", 'ई': "ii", 'उ': "u", 'ऊ': "uu", 'ऋ': "ri", 'ए': "e", 'ऐ': "ai",
	'ओ': "o", 'औ': "au", 'ऑ': "o", 'ऍ': "e",
}

var devMatras = map[rune]string{
	'ा': "aa", 'ि': "i", 'ी': "ii", 'ु': "u", 'ू': "uu", 'ृ': "ri", 'े': "e", 'ै': "ai", 'ो': "o", 'ौ': "au",
	'ॉ': "o", 'ॅ': "e",
}

const (
	devVirama     = '्'
	devNuktaSign  = '़'
	devAnusvara   = 'ं'
	devChandrabin = 'ँ'
	devVisarga    = 'ः'
)

// latinFold removes the diacritics of the romanized letters people type
// (IAST, ISO 15919): ā → a, ś → s, ṇ → n.
var latinFold = strings.NewReplacer(
	"ā", "aa", "ī", "ii", "ū", "uu", "ṛ", "ri", "ṝ", "ri", "ē", "e", "ō", "o",
	"ś", "sh", "ṣ", "sh", "ṭ", "t", "ḍ", "d", "ṇ", "n", "ñ", "n", "ṅ", "n", "ṃ", "n", "ṁ", "n", "ḥ", "h",
	"é", "e", "è", "e", "ç", "s",
)

// Transliterate writes s in lower-case Latin letters: Devanagari is
// romanized (without the final inherent vowel, as Hindi is spoken: राम is
// "raam"), Latin is lower-cased with its diacritics folded, and everything
// that is not a letter or a digit becomes a space.
func Transliterate(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if c, ok := devConsonants[r]; ok {
			if i+1 < len(rs) && rs[i+1] == devNuktaSign {
				if n, ok := devNukta[r]; ok {
					c = n
				}
				i++
			}
			b.WriteString(c)
			var next rune
			if i+1 < len(rs) {
				next = rs[i+1]
			}
			switch {
			case next == devVirama:
				i++
			case devMatras[next] != "":
				b.WriteString(devMatras[next])
				i++
			case isDevLetter(next) || next == devAnusvara || next == devChandrabin || next == devVisarga:
				b.WriteByte('a') // the inherent vowel inside a word
			default:
				// Word-final consonant: Hindi drops the inherent vowel.
			}
			continue
		}
		switch {
		case devVowels[r] != "":
			b.WriteString(devVowels[r])
		case devMatras[r] != "":
			b.WriteString(devMatras[r]) // a matra with no consonant: typing slip
		case r == devAnusvara || r == devChandrabin:
			// Before a labial the anusvara sounds, and is spelled, m (अंबिका, Ambika).
			if i+1 < len(rs) && strings.ContainsRune("पफबभम", rs[i+1]) {
				b.WriteByte('m')
			} else {
				b.WriteByte('n')
			}
		case r == devVisarga:
			b.WriteByte('h')
		case r == devVirama || r == devNuktaSign || r == '\u200c' || r == '\u200d':
		case r >= '०' && r <= '९':
			b.WriteRune('0' + (r - '०'))
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteString(latinFold.Replace(string(unicode.ToLower(r))))
		default:
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func isDevLetter(r rune) bool {
	_, c := devConsonants[r]
	_, v := devVowels[r]
	return c || v
}

func isVowel(c byte) bool { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' }

// nameAbbreviations are the short forms registers use for whole names.
var nameAbbreviations = map[string]string{"md": "mohammad", "mohd": "mohammad", "mohmd": "mohammad"}

// NameKeys returns the phonetic key of each word of a name, in order.
func NameKeys(name string) []string {
	var keys []string
	for _, w := range strings.Fields(Transliterate(name)) {
		if full, ok := nameAbbreviations[w]; ok {
			w = full
		}
		if k := wordKey(w); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// wordKey folds one lower-case Latin word to its key.
func wordKey(w string) string {
	// Letters that stand for the same sound in Indian names.
	w = strings.NewReplacer("x", "ks", "q", "k", "z", "j", "w", "v", "f", "p", "ck", "k").Replace(w)
	// "ch" is one sound; any other c is a k (Vicky, Kavita/Cavita).
	w = strings.ReplaceAll(w, "ch", "C")
	w = strings.ReplaceAll(w, "c", "k")
	w = strings.ReplaceAll(w, "C", "c")
	// An h after a consonant marks aspiration (kh, th, bh, sh): drop it.
	// A final y or h after a vowel sounds like that vowel (Vijay/Vijai,
	// Shah/Sha); after a consonant it is a sound of its own, which Hindi
	// ends the word on (मौर्य, "maury", is Maurya).
	var b []byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c < 'a' || c > 'z' {
			if c >= '0' && c <= '9' {
				b = append(b, c)
			}
			continue
		}
		if c == 'h' && len(b) > 0 && !isVowel(b[len(b)-1]) {
			continue
		}
		if (c == 'y' || c == 'h') && i == len(w)-1 && len(b) > 0 && isVowel(b[len(b)-1]) {
			continue
		}
		b = append(b, c)
	}
	// A final ng is the nasal an anusvara writes before h: सिंह, "sinh",
	// is Singh.
	if n := len(b); n > 2 && b[n-2] == 'n' && b[n-1] == 'g' {
		b = b[:n-1]
	}
	// Keep the first letter (a vowel becomes "a"), drop the other vowels,
	// and fold doubled consonants (Mohammad/Mohamad).
	var out []byte
	for i, c := range b {
		switch {
		case i == 0 && isVowel(c):
			out = append(out, 'a')
		case isVowel(c):
		case i > 0 && b[i-1] == c:
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// similarity scores how alike two transliterated names are, from 0 to 1, by
// edit distance.
func similarity(a, b string) float64 {
	if a == b {
		return 1
	}
	ra, rb := []rune(a), []rune(b)
	if len(ra) == 0 || len(rb) == 0 {
		return 0
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return 1 - float64(prev[len(rb)])/float64(max(len(ra), len(rb)))
}
