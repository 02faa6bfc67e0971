package hl7_test

import (
	"testing"

	"github.com/healthpost/healthpost/devices/hl7"
)

func TestDelimiters_Unescape(t *testing.T) {
	d := hl7.DefaultDelimiters
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{`\F\\S\\T\\R\\E\`, `|^&~\`},
		{`a\.br\b`, "a\nb"},
		{`\X0D0A\`, "\r\n"},
		{`\x41\`, ""}, // lower-case x is not a hex escape
		{`\X4\`, ""},  // odd digit count: dropped
		{`\XZZ\`, ""}, // not hex: dropped
		{`\X\`, ""},
		{`\XE282AC\`, "€"},
		{`\XE2\\X82\\XAC\`, "€"},        // consecutive hex sequences decode together
		{`\XE2\x\X82AC\`, "âx\u0082¬"},  // interrupted: each part falls back to ISO-8859-1
		{`\XFF\`, "ÿ"},                  // not UTF-8: ISO-8859-1
		{`\H\bold\N\`, "bold"},          // highlighting dropped
		{`\.sp2\\.in+4\\.fi\\.nf\`, ""}, // formatting dropped
		{`\C2842\\M2442\\Zlocal\`, ""},  // charset switches and local escapes dropped
		{`\\`, ""},                      // empty sequence
		{`trailing\`, `trailing\`},      // unterminated: literal
		{`\S\x\Sy`, `^x\Sy`},            // unterminated after a good one
		{`\F`, `\F`},
	} {
		if got := d.Unescape(tt.in); got != tt.want {
			t.Errorf("Unescape(%q)=%q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDelimiters_Escape(t *testing.T) {
	for _, tt := range []struct {
		d       hl7.Delimiters
		in, out string
	}{
		{hl7.DefaultDelimiters, "plain text", "plain text"},
		{hl7.DefaultDelimiters, `a|b^c&d~e\f`, `a\F\b\S\c\T\d\R\e\E\f`},
		{hl7.DefaultDelimiters, "line1\r\nline2", `line1\X0D0A\line2`},
		{hl7.DefaultDelimiters, "tab\there\x7f", `tab\X09\here\X7F\`},
		{hl7.DefaultDelimiters, "°C café", "°C café"},
		{hl7.Delimiters{FieldSep: '!', ComponentSep: '@', RepetitionSep: '#', EscapeChar: '$', SubcomponentSep: '%'}, "a!b@c#d$e%f|^", "a$F$b$S$c$R$d$E$e$T$f|^"},
		{hl7.Delimiters{FieldSep: '|', ComponentSep: '^', RepetitionSep: '~', SubcomponentSep: '&'}, "a|b\\c\r", "a b\\c "},
	} {
		got := tt.d.Escape(tt.in)
		if got != tt.out {
			t.Errorf("Escape(%q)=%q, want %q", tt.in, got, tt.out)
		}
		if tt.d.EscapeChar != 0 {
			if back := tt.d.Unescape(got); back != tt.in {
				t.Errorf("Unescape(Escape(%q))=%q", tt.in, back)
			}
		}
	}
}

func TestDelimiters_Parts(t *testing.T) {
	d := hl7.DefaultDelimiters
	f := `A^B&C&D^E~F^G`
	for _, tt := range []struct {
		got, want string
	}{
		{d.Repetition(f, 1), `A^B&C&D^E`},
		{d.Repetition(f, 2), `F^G`},
		{d.Repetition(f, 3), ``},
		{d.Component(f, 1), `A`},
		{d.Component(f, 2), `B&C&D`},
		{d.Component(f, 4), `G`},
		{d.Component(f, 5), ``},
		{d.Component(f, 0), ``},
		{d.Subcomponent(d.Component(f, 2), 3), `D`},
		{d.Subcomponent(d.Component(f, 2), 4), ``},
		{hl7.Delimiters{FieldSep: '|', ComponentSep: '^', RepetitionSep: '~'}.Subcomponent("A&B", 1), `A&B`},
		{hl7.Delimiters{FieldSep: '|', ComponentSep: '^', RepetitionSep: '~'}.Subcomponent("A&B", 2), ``},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
