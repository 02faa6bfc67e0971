package line_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/line"
)

// seedCorpus adds every file of testdata/line to f.
func seedCorpus(f *testing.F, add func(b []byte)) {
	files, err := filepath.Glob(filepath.Join(caseDir, "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in %s: %v", caseDir, err)
	}
	for _, name := range files {
		if filepath.Ext(name) == ".md" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzReader checks that whatever the bytes, lines have no terminator, are
// never empty and never pass the cap, and every byte that is not a line end
// is returned or skipped as part of a too-long line.
func FuzzReader(f *testing.F) {
	seedCorpus(f, func(b []byte) { f.Add(b, uint8(64)) })
	f.Fuzz(func(t *testing.T, data []byte, max uint8) {
		r := line.NewReader(bytes.NewReader(data))
		r.MaxLine = int(max%128) + 1
		var kept int
		for range len(data) + 2 {
			l, err := r.ReadLine()
			if err == io.EOF {
				break
			}
			if len(l) == 0 {
				t.Fatalf("empty line with err %v", err)
			}
			if len(l) > r.MaxLine {
				t.Fatalf("line of %d bytes past the cap %d", len(l), r.MaxLine)
			}
			if bytes.ContainsAny(l, "\r\n") {
				t.Fatalf("line %q holds a terminator", l)
			}
			kept += len(l)
			if err != nil && !errors.Is(err, line.ErrLineTooLong) && err != io.ErrUnexpectedEOF {
				t.Fatalf("unexpected error %v", err)
			}
		}
		if text := len(data) - bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\n")); kept > text {
			t.Fatalf("returned %d bytes of %d that are not line ends", kept, text)
		}
	})
}

// FuzzDecode checks that the decoders of the catalogue never panic, and a
// measurement always has a value, a code and valid UTF-8 text.
func FuzzDecode(f *testing.F) {
	seedCorpus(f, func(b []byte) {
		r := line.NewReader(bytes.NewReader(b))
		for {
			l, err := r.ReadLine()
			if err == io.EOF || l == nil {
				return
			}
			f.Add(l)
		}
	})
	var decoders []*line.Decoder
	for _, tc := range decodeCases {
		d, err := line.NewDecoder(tc.settings)
		if err != nil {
			f.Fatal(err)
		}
		decoders = append(decoders, d)
	}
	catchAll, err := line.NewDecoder(devices.Settings{Pattern: `(?P<code>\S*)\s*(?P<value>.*?)\s*(?P<unit>\S*)$`, Code: "29463-7"})
	if err != nil {
		f.Fatal(err)
	}
	decoders = append(decoders, catchAll)
	f.Fuzz(func(t *testing.T, l []byte) {
		for _, d := range decoders {
			m, err := d.Decode(l, time.Time{})
			if err != nil {
				continue
			}
			if m.Value == "" || m.Code == "" {
				t.Fatalf("measurement without value or code: %+v", m)
			}
			if !utf8.ValidString(m.Value + m.Unit + m.Code + m.PatientRef) {
				t.Fatalf("measurement with invalid UTF-8: %+v", m)
			}
		}
	})
}
