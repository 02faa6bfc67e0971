package devices_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/astm"
	"github.com/healthpost/healthpost/devices/hl7"
)

var ist = time.FixedZone("IST", 5*3600+30*60)

// at returns a wall-clock time in IST.
func at(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, ist)
}

// MustParseORUCase decodes testdata/hl7/<name>.hl7.
func MustParseORUCase(tb testing.TB, name string) *hl7.ORU {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "hl7", name+".hl7"))
	if err != nil {
		tb.Fatal(err)
	}
	oru, err := hl7.ParseORU(b)
	if err != nil {
		tb.Fatalf("ParseORU(%s): %v", name, err)
	}
	return oru
}

// MustParseASTMCase decodes the first message of testdata/astm/<name>.astm,
// taking the frames' text with a decoder of its own (not the Receiver's).
func MustParseASTMCase(tb testing.TB, name string) *astm.Message {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "astm", name+".astm"))
	if err != nil {
		tb.Fatal(err)
	}
	var text []byte
	for {
		i := bytes.IndexByte(b, astm.STX)
		if i < 0 {
			break
		}
		b = b[i+1:]
		if len(b) > 0 && b[0] >= '0' && b[0] <= '7' {
			b = b[1:]
		}
		j := bytes.IndexAny(b, "\x02\x03\x04\x17")
		if j < 0 {
			text = append(text, b...)
			break
		}
		text = append(text, b[:j]...)
		b = b[j:]
	}
	p := astm.Parser{Lenient: true} // UTC: ASTMMeasurements must place the wall clock itself
	m, err := p.Parse(text)
	if err != nil {
		tb.Fatalf("parse %s: %v", name, err)
	}
	return m
}

// sameMeasurements compares field by field, times by instant.
func sameMeasurements(t *testing.T, got, want []devices.Measurement) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d measurements, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.At.Equal(w.At) {
			t.Errorf("[%d] At=%v, want %v", i, g.At, w.At)
		}
		g.At, w.At = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("[%d]\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestORUMeasurements(t *testing.T) {
	// Ensure an IHE PCD-01 monitor's rows become MDC measurements with
	// OBX-14, else OBR-7 times, the first PID-3 identifier, and IDs made
	// of MSH-10, the OBX position and MSH-7; container rows are skipped.
	t.Run("PCD01Monitor", func(t *testing.T) {
		const id, stamp = "MON-000123/", "@20260314044502"
		ref, nibp, obr, temp := "HP-000417", at(2026, 3, 14, 10, 14, 55), at(2026, 3, 14, 10, 15, 0), at(2026, 3, 14, 10, 14, 30)
		sameMeasurements(t, devices.ORUMeasurements(MustParseORUCase(t, "pcd01_monitor"), nil), []devices.Measurement{
			{System: "MDC", Code: "150021", Value: "118", Unit: "266016", At: nibp, PatientRef: ref, MessageID: id + "7" + stamp},
			{System: "MDC", Code: "150022", Value: "76", Unit: "266016", At: nibp, PatientRef: ref, MessageID: id + "8" + stamp},
			{System: "MDC", Code: "150023", Value: "90", Unit: "266016", At: nibp, PatientRef: ref, MessageID: id + "9" + stamp},
			{System: "MDC", Code: "150456", Value: "97", Unit: "262688", At: obr, PatientRef: ref, MessageID: id + "10" + stamp},
			{System: "MDC", Code: "147842", Value: "82", Unit: "264864", At: obr, PatientRef: ref, MessageID: id + "11" + stamp},
			{System: "MDC", Code: "150344", Value: "37.2", Unit: "268192", At: temp, PatientRef: ref, MessageID: id + "12" + stamp},
		})
	})

	// Ensure a lab analyzer's times without a zone are read as IST, units
	// in plain text pass through, and a vendor row is kept for the lookup
	// to judge.
	t.Run("LabV231NoZone", func(t *testing.T) {
		const id, stamp = "LAB-20260314-0042/", "@20260314041512"
		ref, obr, obx := "S2603140042", at(2026, 3, 14, 9, 38, 0), at(2026, 3, 14, 9, 40, 10)
		sameMeasurements(t, devices.ORUMeasurements(MustParseORUCase(t, "lab_v231_cbc"), nil), []devices.Measurement{
			{System: "99MRC", Code: "01001", Value: "O", At: obr, PatientRef: ref, MessageID: id + "5" + stamp},
			{System: "LN", Code: "6690-2", Value: "11.8", Unit: "10*3/uL", At: obx, PatientRef: ref, MessageID: id + "6" + stamp},
			{System: "LN", Code: "789-8", Value: "4.52", Unit: "10*6/uL", At: obx, PatientRef: ref, MessageID: id + "7" + stamp},
			{System: "LN", Code: "718-7", Value: "13.1", Unit: "g/dL", At: obx, PatientRef: ref, MessageID: id + "8" + stamp},
			{System: "LN", Code: "4544-3", Value: "39.8", Unit: "%", At: obx, PatientRef: ref, MessageID: id + "9" + stamp},
			{System: "LN", Code: "777-3", Value: "245", Unit: "10*3/uL", At: obx, PatientRef: ref, MessageID: id + "10" + stamp},
			{System: "LN", Code: "787-2", Value: "88.1", Unit: "fL", At: obr, PatientRef: ref, MessageID: id + "11" + stamp},
		})
	})

	// Ensure each OBR group keeps its own OBR-7, an SN number loses its
	// empty comparator, and an SN with a comparator is passed on as sent.
	t.Run("MultiOBRAndSN", func(t *testing.T) {
		const id, stamp = "SPOT-77/", "@20260314053000"
		ref, g1, g2 := "HP-000418", at(2026, 3, 14, 10, 59, 0), at(2026, 3, 14, 10, 59, 30)
		sameMeasurements(t, devices.ORUMeasurements(MustParseORUCase(t, "multi_obr"), nil), []devices.Measurement{
			{System: "MDC", Code: "150021", Value: "132", Unit: "266016", At: g1, PatientRef: ref, MessageID: id + "5" + stamp},
			{System: "MDC", Code: "150022", Value: "84", Unit: "266016", At: g1, PatientRef: ref, MessageID: id + "6" + stamp},
			{System: "MDC", Code: "188736", Value: "52.4", Unit: "263875", At: g2, PatientRef: ref, MessageID: id + "8" + stamp},
			{System: "MDC", Code: "160184", Value: "112", Unit: "264274", At: g2, PatientRef: ref, MessageID: id + "9" + stamp},
			{System: "MDC", Code: "160184", Value: ">^600", Unit: "264274", At: g2, PatientRef: ref, MessageID: id + "10" + stamp},
		})
	})

	// Ensure every observation belongs to the patient of its own PID group.
	t.Run("MultiPatient", func(t *testing.T) {
		const id, stamp = "CS-9001/", "@20260314063000"
		sameMeasurements(t, devices.ORUMeasurements(MustParseORUCase(t, "multi_patient"), nil), []devices.Measurement{
			{System: "MDC", Code: "150456", Value: "95", Unit: "262688", At: at(2026, 3, 14, 11, 59, 58), PatientRef: "BED1-PT", MessageID: id + "4" + stamp},
			{System: "MDC", Code: "150456", Value: "91", Unit: "262688", At: at(2026, 3, 14, 11, 59, 59), PatientRef: "BED2-PT", MessageID: id + "7" + stamp},
		})
	})

	// Ensure a message with no PID and LF endings has no PatientRef, OBX-14
	// with a fraction and zone wins, and MSH-7 without a zone is IST.
	t.Run("NoPIDFallbacks", func(t *testing.T) {
		const id, stamp = "OX-1/", "@20260912063005"
		sameMeasurements(t, devices.ORUMeasurements(MustParseORUCase(t, "lf_endings"), nil), []devices.Measurement{
			{System: "MDC", Code: "150456", Value: "98", Unit: "262688", At: at(2026, 9, 12, 12, 0, 0), MessageID: id + "3" + stamp},
			{System: "MDC", Code: "149530", Value: "71", Unit: "264864", At: at(2026, 9, 12, 12, 0, 5), MessageID: id + "4" + stamp},
		})
	})

	// Ensure another location is honoured for timestamps without a zone.
	t.Run("Location", func(t *testing.T) {
		ms := devices.ORUMeasurements(MustParseORUCase(t, "crlf_endings"), time.UTC)
		if len(ms) != 1 {
			t.Fatalf("got %d measurements, want 1", len(ms))
		}
		if got, want := ms[0].At, time.Date(2026, 3, 14, 7, 55, 0, 0, time.UTC); !got.Equal(want) {
			t.Fatalf("At=%v, want %v", got, want)
		}
		if got, want := ms[0].MessageID, "G-55/4@20260314080000"; got != want {
			t.Fatalf("MessageID=%q, want %q", got, want)
		}
	})

	// Ensure a vendor code with a LOINC alternate uses the alternate, and
	// a long control ID is shortened to a prefix and a hash.
	t.Run("AlternateCodeAndLongID", func(t *testing.T) {
		long := strings.Repeat("C", 100)
		msg := "MSH|^~\\&|DEV||||20260314080000+0530||ORU^R01|" + long + "|P|2.5\r" +
			"OBR|1\r" +
			"OBX|1|NM|GLU^Glucose^99LAB^2339-0^Glucose^LN||104|mg/dL\r" +
			"OBX|2|NM|GLU^Glucose^99LAB^^^||105|mg/dL\r" +
			"OBX|3|NM|^MDC_PULS_OXIM_SAT_O2^MDC||98|%\r"
		oru, err := hl7.ParseORU([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		ms := devices.ORUMeasurements(oru, nil)
		if len(ms) != 3 {
			t.Fatalf("got %d measurements, want 3", len(ms))
		}
		if got, want := ms[0].System+" "+ms[0].Code, "LN 2339-0"; got != want {
			t.Errorf("alternate code: %q, want %q", got, want)
		}
		if got, want := ms[1].System+" "+ms[1].Code, "99LAB GLU"; got != want {
			t.Errorf("vendor code: %q, want %q", got, want)
		}
		if got, want := ms[2].System+" "+ms[2].Code, "MDC MDC_PULS_OXIM_SAT_O2"; got != want {
			t.Errorf("reference id: %q, want %q", got, want)
		}
		id, _, _ := strings.Cut(ms[0].MessageID, "/")
		if len(id) > 64 || !strings.HasPrefix(id, strings.Repeat("C", 32)+"~") {
			t.Errorf("long control ID became %q", id)
		}
		if ms[0].MessageID == ms[1].MessageID {
			t.Error("two rows share a MessageID")
		}
	})

	// Ensure nil is safe.
	t.Run("Nil", func(t *testing.T) {
		if ms := devices.ORUMeasurements(nil, nil); ms != nil {
			t.Fatalf("got %v", ms)
		}
	})
}

func TestASTMMeasurements(t *testing.T) {
	// Ensure a clean chemistry message gives one measurement per R record,
	// with the local test code, R-13 as the time in IST, P-4 as the patient
	// when P-3 is empty, and IDs of sample, record position and completion
	// time.
	t.Run("ChemistryClean", func(t *testing.T) {
		const ref, id = "PID-000123", "S250314-017/"
		sameMeasurements(t, devices.ASTMMeasurements(MustParseASTMCase(t, "chemistry-clean"), nil, nil), []devices.Measurement{
			{Code: "GLU", Value: "98", Unit: "mg/dL", At: at(2025, 3, 14, 9, 12, 30), PatientRef: ref, MessageID: id + "4@20250314091230"},
			{Code: "CREA", Value: "1.42", Unit: "mg/dL", At: at(2025, 3, 14, 9, 12, 40), PatientRef: ref, MessageID: id + "5@20250314091240"},
			{Code: "UREA", Value: "32", Unit: "mg/dL", At: at(2025, 3, 14, 9, 12, 50), PatientRef: ref, MessageID: id + "7@20250314091250"},
			{Code: "HB", Value: "11.2", Unit: "g/dL", At: at(2025, 3, 14, 9, 13, 0), PatientRef: ref, MessageID: id + "8@20250314091300"},
			{Code: "ALT", Value: "45", Unit: "U/L", At: at(2025, 3, 14, 9, 13, 10), PatientRef: ref, MessageID: id + "9@20250314091310"},
		})
	})

	// Ensure each result belongs to its own patient and sample, and a
	// result that could not be done (no value) is skipped.
	t.Run("MultiPatient", func(t *testing.T) {
		done := at(2025, 3, 15, 10, 55, 0)
		sameMeasurements(t, devices.ASTMMeasurements(MustParseASTMCase(t, "multi-patient"), nil, nil), []devices.Measurement{
			{Code: "GLU", Value: "142", Unit: "mg/dL", At: done, PatientRef: "PID-001", MessageID: "S250315-001/4@20250315105500"},
			{Code: "CREA", Value: "0.9", Unit: "mg/dL", At: done, PatientRef: "PID-001", MessageID: "S250315-001/5@20250315105500"},
			{Code: "GLU", Value: "88", Unit: "mg/dL", At: done, PatientRef: "PID-002", MessageID: "S250315-002/9@20250315105500"},
			{Code: "UREA", Value: "51", Unit: "mg/dL", At: done, PatientRef: "PID-002", MessageID: "S250315-002/10@20250315105500"},
			{Code: "HB", Value: "8.4", Unit: "g/dL", At: done, PatientRef: "PID-003", MessageID: "S250315-003/13@20250315105500"},
		})
	})

	// Ensure a Mindray-style test ID with the code first is read through
	// the device's table, and padded values lose their empty components.
	t.Run("CodeFirstWithTable", func(t *testing.T) {
		ms := devices.ASTMMeasurements(MustParseASTMCase(t, "oversized-frame"), nil, map[string]string{"GLU": "2339-0"})
		if len(ms) != 10 {
			t.Fatalf("got %d measurements, want 10", len(ms))
		}
		sameMeasurements(t, ms[7:8], []devices.Measurement{
			{Code: "GLU", Value: "2.837141", Unit: "mg/dL", At: at(2025, 3, 17, 14, 29, 12), MessageID: "1042/11@20250317142912"},
		})
		if got, want := ms[0].Code, "F"; got != want {
			t.Errorf("unmapped code-first test ID gave code %q, want the local component %q", got, want)
		}
	})

	// Ensure a LOINC test ID is used as LOINC, O-8 then H-14 serve as the
	// time, and no sample or message ID means no MessageID.
	t.Run("LOINCAndFallbacks", func(t *testing.T) {
		text := "H|\\^&|||SIM|||||||P|LIS2-A2|20260314101500\r" +
			"P|1|P-000001\r" +
			"O|1|||^^^GLU|R||20260314100000\r" +
			"R|1|2339-0^Glucose^LN|104|mg/dL\r" +
			"O|2\r" +
			"R|1|^^^HB|12.1|g/dL\r" +
			"L|1|N\r"
		m, err := (&astm.Parser{Lenient: true}).Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		sameMeasurements(t, devices.ASTMMeasurements(m, nil, nil), []devices.Measurement{
			{System: "LN", Code: "2339-0", Value: "104", Unit: "mg/dL", At: at(2026, 3, 14, 10, 0, 0), PatientRef: "P-000001"},
			{Code: "HB", Value: "12.1", Unit: "g/dL", At: at(2026, 3, 14, 10, 15, 0), PatientRef: "P-000001"},
		})
	})

	// Ensure bytes that are not UTF-8 (an analyzer on Latin-1) never reach
	// the store as such, and two such sample IDs stay apart.
	t.Run("NotUTF8", func(t *testing.T) {
		msg := func(sample string) *astm.Message {
			text := "H|\\^&\rP|1|P\xe9-1\rO|1|" + sample + "\rR|1|^^^GLU|5\xb5|mmol/\xb5L\rL|1|N\r"
			m, err := (&astm.Parser{Lenient: true}).Parse([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		a, b := devices.ASTMMeasurements(msg("S\xff"), nil, nil), devices.ASTMMeasurements(msg("S\xfe"), nil, nil)
		if len(a) != 1 || len(b) != 1 {
			t.Fatalf("got %d and %d measurements, want 1 each", len(a), len(b))
		}
		if got, want := a[0].PatientRef+" "+a[0].Value+" "+a[0].Unit, "P\uFFFD-1 5\uFFFD mmol/\uFFFDL"; got != want {
			t.Errorf("texts %q, want %q", got, want)
		}
		if !utf8.ValidString(a[0].MessageID) || a[0].MessageID == b[0].MessageID {
			t.Errorf("message IDs %q and %q", a[0].MessageID, b[0].MessageID)
		}
	})

	// Ensure nil is safe.
	t.Run("Nil", func(t *testing.T) {
		if ms := devices.ASTMMeasurements(nil, nil, nil); ms != nil {
			t.Fatalf("got %v", ms)
		}
	})
}

// FuzzORUMeasurements checks that whatever an ORU^R01 holds, its
// measurements have bounded IDs and valid text, and nothing panics.
func FuzzORUMeasurements(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "hl7", "*.hl7"))
	if len(files) == 0 {
		f.Fatal("no seeds in testdata/hl7")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		oru, err := hl7.ParseORU(b)
		if err != nil {
			return
		}
		for _, m := range devices.ORUMeasurements(oru, nil) {
			checkMeasurement(t, m)
		}
	})
}

// FuzzASTMMeasurements does the same for E1394 record text, seeded with
// the frames' text of testdata/astm.
func FuzzASTMMeasurements(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "astm", "*.astm"))
	if len(files) == 0 {
		f.Fatal("no seeds in testdata/astm")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Map(func(r rune) rune {
			if r < 0x20 && r != '\r' && r != '\n' {
				return -1
			}
			return r
		}, b))
	}
	codes := map[string]string{"GLU": "2339-0"}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := (&astm.Parser{Lenient: true}).Parse(b)
		if err != nil {
			return
		}
		for _, ms := range devices.ASTMMeasurements(m, nil, codes) {
			checkMeasurement(t, ms)
		}
	})
}

func checkMeasurement(t *testing.T, m devices.Measurement) {
	t.Helper()
	if m.Value == "" {
		t.Fatalf("measurement without a value: %+v", m)
	}
	if len(m.MessageID) > 160 {
		t.Fatalf("MessageID of %d bytes", len(m.MessageID))
	}
	if !utf8.ValidString(m.MessageID + m.PatientRef + m.Value + m.Unit + m.Code + m.System) {
		t.Fatalf("measurement with text that is not UTF-8: %+v", m)
	}
	if !m.At.IsZero() && m.At.Location() == nil {
		t.Fatal("time without a location")
	}
}
