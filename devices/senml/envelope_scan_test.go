package senml

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// jsonEnvelope decodes p as DecodeEnvelope does when scanEnvelope declines.
func jsonEnvelope(p []byte) (Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return env, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return env, errTrailing
	}
	return env, nil
}

var errTrailing = io.ErrUnexpectedEOF // any error: data after the object

// checkScan fails if scanEnvelope read p and encoding/json reads it otherwise.
func checkScan(t *testing.T, p []byte) (scanned bool) {
	t.Helper()
	got, ok := scanEnvelope(p)
	if !ok {
		return false
	}
	want, err := jsonEnvelope(p)
	if err != nil {
		t.Fatalf("scanEnvelope read %q, which encoding/json refuses: %v", p, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scanEnvelope read %q as\n%#v\nencoding/json as\n%#v", p, got, want)
	}
	return true
}

func TestScanEnvelope(t *testing.T) {
	for _, c := range []struct {
		name    string
		payload string
		scanned bool // read by the scanner, else left to encoding/json
	}{
		// Ensure the forms devices send are read by the scanner.
		{"BP", `{"message_id":"bp-1","patient":"P-000001","time":"2026-03-14T10:16:00+05:30","readings":[{"loinc":"8480-6","value":120,"unit":"mm[Hg]"},{"loinc":"8462-4","value":80,"unit":"mm[Hg]"}]}`, true},
		{"Spaced", " {\n\t\"message_id\" : \"x\" ,\r\n \"readings\" : [ { \"mdc\" : \"150021\" , \"value\" : \"36.6\" } ] } \n", true},
		{"Numbers", `{"message_id":"n","readings":[{"code":"GLU","value":-0.5e+3},{"code":"A","value":0},{"code":"B","value":1E2}]}`, true},
		{"NoReadings", `{"message_id":"m"}`, true},
		{"EmptyReadings", `{"message_id":"m","readings":[]}`, true},
		{"EmptyObjects", `{"readings":[{}]}`, true},
		{"Empty", `{}`, true},
		{"NonASCII", `{"message_id":"m","device":"रक्तचाप 1","readings":[{"loinc":"8310-5","value":"37","unit":"°C"}]}`, true},
		// Ensure everything else is left to encoding/json, which reads or refuses it.
		{"Escape", `{"message_id":"a\"b","readings":[]}`, false},
		{"UnicodeEscape", `{"message_id":"\u0041","readings":[]}`, false},
		{"OtherSpelling", `{"Message_ID":"m","readings":[]}`, false},
		{"Repeated", `{"message_id":"a","message_id":"b"}`, false},
		{"RepeatedReadings", `{"readings":[{"loinc":"8480-6","unit":"mm[Hg]"}],"readings":[{"value":1}]}`, false},
		{"RepeatedInReading", `{"readings":[{"value":1,"value":2}]}`, false},
		{"Unknown", `{"message_id":"m","extra":1}`, false},
		{"UnknownInReading", `{"readings":[{"flag":"H"}]}`, false},
		{"Null", `{"message_id":null}`, false},
		{"NullValue", `{"readings":[{"value":null}]}`, false},
		{"BoolValue", `{"readings":[{"value":true}]}`, false},
		{"ObjectValue", `{"readings":[{"value":{}}]}`, false},
		{"NumberID", `{"message_id":12}`, false},
		{"LeadingZero", `{"readings":[{"value":012}]}`, false},
		{"BareMinus", `{"readings":[{"value":-}]}`, false},
		{"BadFraction", `{"readings":[{"value":1.}]}`, false},
		{"BadExponent", `{"readings":[{"value":1e}]}`, false},
		{"Trailing", `{"message_id":"m"} {}`, false},
		{"TrailingComma", `{"message_id":"m",}`, false},
		{"ReadingsNotArray", `{"readings":{}}`, false},
		{"Array", `[]`, false},
		{"Unterminated", `{"message_id":"m`, false},
		{"ControlChar", "{\"message_id\":\"a\tb\"}", false},
		{"InvalidUTF8", "{\"message_id\":\"\xff\"}", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := checkScan(t, []byte(c.payload)); got != c.scanned {
				t.Fatalf("scanned=%v, want %v", got, c.scanned)
			}
		})
	}
}

// FuzzScanEnvelope checks that whatever the scanner reads, encoding/json
// reads the same way.
func FuzzScanEnvelope(f *testing.F) {
	files, err := filepath.Glob("../../testdata/senml/envelope-*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no envelope cases: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkScan(t, p) })
}
