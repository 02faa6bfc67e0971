package hl7_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/healthpost/healthpost/devices/hl7"
)

// caseDir holds the shared sample catalogue (see its README.md).
const caseDir = "../../testdata/hl7"

var ist = time.FixedZone("IST", 5*3600+30*60)

// MustReadCase returns the bytes of testdata/hl7/<name>.hl7.
func MustReadCase(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(caseDir, name+".hl7"))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// MustParseORU decodes testdata/hl7/<name>.hl7 and fails the test on error.
func MustParseORU(tb testing.TB, name string) *hl7.ORU {
	tb.Helper()
	oru, err := hl7.ParseORU(MustReadCase(tb, name))
	if err != nil {
		tb.Fatalf("ParseORU(%s): %v", name, err)
	}
	return oru
}

// MustTime parses an RFC 3339 time.
func MustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// observations flattens an ORU's observations in message order.
func observations(oru *hl7.ORU) []hl7.Observation {
	var obs []hl7.Observation
	for _, r := range oru.Results {
		for _, o := range r.Orders {
			obs = append(obs, o.Observations...)
		}
	}
	return obs
}

// wantObs is the part of an Observation the catalogue tests check.
type wantObs struct {
	code, text, system string
	subID              string
	value              string
	number             float64 // checked when hasNumber
	hasNumber          bool
	unit, unitText     string
	effective          string // RFC 3339; a value without a zone is written in UTC and must have HasZone false
	hasZone            bool
	equipment          string // EntityID
	inherited          bool
}

func checkObservations(tb testing.TB, obs []hl7.Observation, want []wantObs) {
	tb.Helper()
	if got, want := len(obs), len(want); got != want {
		tb.Fatalf("len(observations)=%d, want %d", got, want)
	}
	for i, w := range want {
		o := obs[i]
		got := wantObs{
			code: o.Code.Identifier, text: o.Code.Text, system: o.Code.CodingSystem,
			subID: o.SubID, value: o.Value, hasNumber: o.HasNumber,
			unit: o.Units.Identifier, unitText: o.Units.Text,
			hasZone: o.Effective.HasZone, equipment: o.Equipment.EntityID, inherited: o.EquipmentInherited,
		}
		if o.HasNumber {
			got.number = o.Number
		}
		got.effective = w.effective
		if !o.Effective.Time.Equal(MustTime(tb, w.effective)) {
			tb.Errorf("observation %d: Effective=%v, want %s", i, o.Effective.Time, w.effective)
		}
		if got != w {
			tb.Errorf("observation %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
}

func TestParseORU_Catalogue(t *testing.T) {
	// Ensure an IHE PCD-01 monitor message decodes with MDC codes, units,
	// containment, inherited equipment and the three-level time fallback.
	t.Run("pcd01_monitor", func(t *testing.T) {
		oru := MustParseORU(t, "pcd01_monitor")
		h := oru.Header
		if got, want := h.ControlID, "MON-000123"; got != want {
			t.Fatalf("ControlID=%q, want %q", got, want)
		}
		if got, want := h.SendingApplication, (hl7.HD{NamespaceID: "PHCMON", UniversalID: "0012FFFE00A1B2C3", UniversalIDType: "EUI-64"}); got != want {
			t.Fatalf("SendingApplication=%+v, want %+v", got, want)
		}
		if got, want := h.SendingFacility.NamespaceID, "OPD1"; got != want {
			t.Fatalf("SendingFacility=%q, want %q", got, want)
		}
		if got, want := h.ReceivingApplication.NamespaceID+"/"+h.ReceivingFacility.NamespaceID, "HEALTHPOST/PHC-DEMO"; got != want {
			t.Fatalf("receiver=%q, want %q", got, want)
		}
		if got, want := h.MessageType+"^"+h.TriggerEvent+"^"+h.MessageStructure, "ORU^R01^ORU_R01"; got != want {
			t.Fatalf("message type=%q, want %q", got, want)
		}
		if got, want := h.Version, "2.6"; got != want {
			t.Fatalf("Version=%q, want %q", got, want)
		}
		if got, want := h.ProcessingID+" "+h.AcceptAckType+" "+h.ApplicationAckType, "P NE AL"; got != want {
			t.Fatalf("processing/ack types=%q, want %q", got, want)
		}
		if got, want := h.CharacterSet, "UNICODE UTF-8"; got != want {
			t.Fatalf("CharacterSet=%q, want %q", got, want)
		}
		if got, want := h.Time.Time, MustTime(t, "2026-03-14T10:15:02+05:30"); !got.Equal(want) || !h.Time.HasZone {
			t.Fatalf("Time=%v (zone %v), want %v with zone", got, h.Time.HasZone, want)
		}
		if got, want := h.Latin1, false; got != want {
			t.Fatalf("Latin1=%v, want %v", got, want)
		}

		if got, want := len(oru.Results), 1; got != want {
			t.Fatalf("len(Results)=%d, want %d", got, want)
		}
		p := oru.Results[0].Patient
		if p == nil {
			t.Fatal("Patient=nil")
		}
		wantIDs := []hl7.CX{
			{ID: "HP-000417", AssigningAuthority: hl7.HD{NamespaceID: "HEALTHPOST", UniversalID: "1.2.356.999.1", UniversalIDType: "ISO"}, TypeCode: "MR"},
			{ID: "12345678901234", AssigningAuthority: hl7.HD{NamespaceID: "ABHA"}, TypeCode: "NI"},
		}
		if got, want := p.Identifiers, wantIDs; !reflect.DeepEqual(got, want) {
			t.Fatalf("Identifiers=%+v, want %+v", got, want)
		}
		if got, want := p.RawName, "Devi^Sunita^^^^^L"; got != want {
			t.Fatalf("RawName=%q, want %q", got, want)
		}

		orders := oru.Results[0].Orders
		if got, want := len(orders), 1; got != want {
			t.Fatalf("len(Orders)=%d, want %d", got, want)
		}
		o := orders[0]
		if got, want := o.Segment, 4; got != want {
			t.Fatalf("Order.Segment=%d, want %d", got, want)
		}
		if got, want := o.FillerOrder, (hl7.EI{EntityID: "MON-000123", NamespaceID: "PHCMON", UniversalID: "0012FFFE00A1B2C3", UniversalIDType: "EUI-64"}); got != want {
			t.Fatalf("FillerOrder=%+v, want %+v", got, want)
		}
		if got, want := o.Service, (hl7.CWE{Identifier: "182777000", Text: "monitoring of patient", CodingSystem: "SCT"}); got != want {
			t.Fatalf("Service=%+v, want %+v", got, want)
		}
		checkObservations(t, o.Observations, []wantObs{
			{code: "150021", text: "MDC_PRESS_BLD_NONINV_SYS", system: "MDC", subID: "1.0.1.1", value: "118", number: 118, hasNumber: true,
				unit: "266016", unitText: "MDC_DIM_MMHG", effective: "2026-03-14T10:14:55+05:30", hasZone: true, equipment: "0012FFFE00A1B2C3", inherited: true},
			{code: "150022", text: "MDC_PRESS_BLD_NONINV_DIA", system: "MDC", subID: "1.0.1.2", value: "76", number: 76, hasNumber: true,
				unit: "266016", unitText: "MDC_DIM_MMHG", effective: "2026-03-14T10:14:55+05:30", hasZone: true, equipment: "0012FFFE00A1B2C3", inherited: true},
			{code: "150023", text: "MDC_PRESS_BLD_NONINV_MEAN", system: "MDC", subID: "1.0.1.3", value: "90", number: 90, hasNumber: true,
				unit: "266016", unitText: "MDC_DIM_MMHG", effective: "2026-03-14T10:14:55+05:30", hasZone: true, equipment: "0012FFFE00A1B2C3", inherited: true},
			{code: "150456", text: "MDC_PULS_OXIM_SAT_O2", system: "MDC", subID: "1.0.2.1", value: "97", number: 97, hasNumber: true,
				unit: "262688", unitText: "MDC_DIM_PERCENT", effective: "2026-03-14T10:15:00+05:30", hasZone: true, equipment: "0012FFFE00A1B2C3", inherited: true},
			{code: "147842", text: "MDC_ECG_HEART_RATE", system: "MDC", subID: "1.0.3.1", value: "82", number: 82, hasNumber: true,
				unit: "264864", unitText: "MDC_DIM_BEAT_PER_MIN", effective: "2026-03-14T10:15:00+05:30", hasZone: true, equipment: "0012FFFE00A1B2C3", inherited: true},
			{code: "150344", text: "MDC_TEMP", system: "MDC", subID: "1.0.4.1", value: "37.2", number: 37.2, hasNumber: true,
				unit: "268192", unitText: "MDC_DIM_DEGC", effective: "2026-03-14T10:14:30+05:30", hasZone: true, equipment: "A1B2C3D4E5F60718"},
		})
		sys := o.Observations[0]
		if got, want := sys.Segment, 7; got != want {
			t.Fatalf("Segment=%d, want %d", got, want)
		}
		if got, want := sys.SetID+" "+sys.ValueType+" "+sys.Status+" "+sys.ReferenceRange, "3 NM R 90-140"; got != want {
			t.Fatalf("set id/type/status/range=%q, want %q", got, want)
		}
		if got, want := sys.AbnormalFlags, []string{"N"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("AbnormalFlags=%q, want %q", got, want)
		}
		if got, want := sys.Equipment.NamespaceID, "EUI-64"; got != want {
			t.Fatalf("Equipment.NamespaceID=%q, want %q", got, want)
		}
		if got, want := oru.Message.Segments[sys.Segment-1].ID, "OBX"; got != want {
			t.Fatalf("Message.Segments[Segment-1].ID=%q, want %q", got, want)
		}
		temp := o.Observations[5]
		if got, want := oru.Message.Segments[temp.Segment-1].Field(17), "AMEAS^auto-measurement^MDC"; got != want {
			t.Fatalf("raw OBX-17=%q, want %q", got, want)
		}
	})

	// Ensure a v2.3.1 analyzer message with LOINC codes decodes, with flags,
	// ranges and zone-less timestamps the caller places.
	t.Run("lab_v231_cbc", func(t *testing.T) {
		oru := MustParseORU(t, "lab_v231_cbc")
		h := oru.Header
		if got, want := h.Version+" "+h.MessageType+"^"+h.TriggerEvent+" "+h.MessageStructure, "2.3.1 ORU^R01 "; got != want {
			t.Fatalf("version/type=%q, want %q", got, want)
		}
		if got, want := h.ControlID, "LAB-20260314-0042"; got != want {
			t.Fatalf("ControlID=%q, want %q", got, want)
		}
		if got, want := h.Time.Resolve(ist), MustTime(t, "2026-03-14T09:45:12+05:30"); !got.Equal(want) || h.Time.HasZone {
			t.Fatalf("Time.Resolve(IST)=%v (zone %v), want %v without zone", got, h.Time.HasZone, want)
		}
		p := oru.Results[0].Patient
		if got, want := p.Identifiers, []hl7.CX{{ID: "S2603140042"}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Identifiers=%+v, want %+v", got, want)
		}
		obs := observations(oru)
		checkObservations(t, obs, []wantObs{
			{code: "01001", text: "Take Mode", system: "99MRC", value: "O", effective: "2026-03-14T09:38:00Z"},
			{code: "6690-2", text: "WBC", system: "LN", value: "11.8", number: 11.8, hasNumber: true, unit: "10*3/uL", effective: "2026-03-14T09:40:10Z"},
			{code: "789-8", text: "RBC", system: "LN", value: "4.52", number: 4.52, hasNumber: true, unit: "10*6/uL", effective: "2026-03-14T09:40:10Z"},
			{code: "718-7", text: "HGB", system: "LN", value: "13.1", number: 13.1, hasNumber: true, unit: "g/dL", effective: "2026-03-14T09:40:10Z"},
			{code: "4544-3", text: "HCT", system: "LN", value: "39.8", number: 39.8, hasNumber: true, unit: "%", effective: "2026-03-14T09:40:10Z"},
			{code: "777-3", text: "PLT", system: "LN", value: "245", number: 245, hasNumber: true, unit: "10*3/uL", effective: "2026-03-14T09:40:10Z"},
			{code: "787-2", text: "MCV", system: "LN", value: "88.1", number: 88.1, hasNumber: true, unit: "fL", effective: "2026-03-14T09:38:00Z"},
		})
		wbc := obs[1]
		if got, want := wbc.AbnormalFlags, []string{"H", "A"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("AbnormalFlags=%q, want %q", got, want)
		}
		if got, want := wbc.ReferenceRange+" "+wbc.Status, "4.00-10.00 F"; got != want {
			t.Fatalf("range/status=%q, want %q", got, want)
		}
		if got, want := wbc.Effective.Resolve(ist), MustTime(t, "2026-03-14T09:40:10+05:30"); !got.Equal(want) {
			t.Fatalf("Effective.Resolve(IST)=%v, want %v", got, want)
		}
	})

	// Ensure each OBR group keeps its own observations and OBR-7, and SN
	// values give a number only without a comparator.
	t.Run("multi_obr", func(t *testing.T) {
		oru := MustParseORU(t, "multi_obr")
		orders := oru.Results[0].Orders
		if got, want := len(orders), 2; got != want {
			t.Fatalf("len(Orders)=%d, want %d", got, want)
		}
		if got, want := orders[0].PlacerOrder.EntityID+" "+orders[1].PlacerOrder.EntityID, "SPOT-77-1 SPOT-77-2"; got != want {
			t.Fatalf("placer orders=%q, want %q", got, want)
		}
		checkObservations(t, orders[0].Observations, []wantObs{
			{code: "150021", text: "MDC_PRESS_BLD_NONINV_SYS", system: "MDC", subID: "1.0.1.1", value: "132", number: 132, hasNumber: true,
				unit: "266016", unitText: "MDC_DIM_MMHG", effective: "2026-03-14T10:59:00+05:30", hasZone: true},
			{code: "150022", text: "MDC_PRESS_BLD_NONINV_DIA", system: "MDC", subID: "1.0.1.2", value: "84", number: 84, hasNumber: true,
				unit: "266016", unitText: "MDC_DIM_MMHG", effective: "2026-03-14T10:59:00+05:30", hasZone: true},
		})
		checkObservations(t, orders[1].Observations, []wantObs{
			{code: "188736", text: "MDC_MASS_BODY_ACTUAL", system: "MDC", subID: "1.0.1.1", value: "52.4", number: 52.4, hasNumber: true,
				unit: "263875", unitText: "MDC_DIM_KILO_G", effective: "2026-03-14T10:59:30+05:30", hasZone: true},
			{code: "160184", text: "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", system: "MDC", subID: "1.0.2.1", value: "^112", number: 112, hasNumber: true,
				unit: "264274", unitText: "MDC_DIM_MILLI_G_PER_DL", effective: "2026-03-14T10:59:30+05:30", hasZone: true},
			{code: "160184", text: "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", system: "MDC", subID: "1.0.2.2", value: ">^600",
				unit: "264274", unitText: "MDC_DIM_MILLI_G_PER_DL", effective: "2026-03-14T10:59:30+05:30", hasZone: true},
		})
	})

	// Ensure observations stay with the PID group they were sent in.
	t.Run("multi_patient", func(t *testing.T) {
		oru := MustParseORU(t, "multi_patient")
		if got, want := len(oru.Results), 2; got != want {
			t.Fatalf("len(Results)=%d, want %d", got, want)
		}
		for i, want := range []struct {
			id, device string
			value      float64
		}{{"BED1-PT", "0012FFFE00000011", 95}, {"BED2-PT", "0012FFFE00000012", 91}} {
			r := oru.Results[i]
			if got := r.Patient.Identifiers[0].ID; got != want.id {
				t.Fatalf("Results[%d] patient=%q, want %q", i, got, want.id)
			}
			o := r.Orders[0].Observations[0]
			if o.Number != want.value || o.Equipment.EntityID != want.device || o.EquipmentInherited {
				t.Fatalf("Results[%d] observation=%v %q inherited=%v, want %v %q", i, o.Number, o.Equipment.EntityID, o.EquipmentInherited, want.value, want.device)
			}
		}
	})

	// Ensure LF-only input parses, an empty OBX-1 is fine, fractional
	// seconds are kept, and a row with neither OBX-14 nor OBR-7 takes MSH-7.
	t.Run("lf_endings", func(t *testing.T) {
		oru := MustParseORU(t, "lf_endings")
		if got := oru.Results[0].Patient; got != nil {
			t.Fatalf("Patient=%+v, want nil", got)
		}
		obs := observations(oru)
		checkObservations(t, obs, []wantObs{
			{code: "150456", text: "MDC_PULS_OXIM_SAT_O2", system: "MDC", subID: "1.0.1.1", value: "98", number: 98, hasNumber: true,
				unit: "262688", unitText: "MDC_DIM_PERCENT", effective: "2026-09-12T12:00:00+05:30", hasZone: true},
			{code: "149530", text: "MDC_PULS_OXIM_PULS_RATE", system: "MDC", subID: "1.0.1.2", value: "71", number: 71, hasNumber: true,
				unit: "264864", unitText: "MDC_DIM_BEAT_PER_MIN", effective: "2026-09-12T12:00:05Z"},
		})
		if got, want := obs[0].SetID, ""; got != want {
			t.Fatalf("SetID=%q, want %q", got, want)
		}
	})

	// Ensure CRLF input with a blank line parses.
	t.Run("crlf_endings", func(t *testing.T) {
		oru := MustParseORU(t, "crlf_endings")
		if got, want := oru.Header.ControlID, "G-55"; got != want {
			t.Fatalf("ControlID=%q, want %q", got, want)
		}
		checkObservations(t, observations(oru), []wantObs{
			{code: "2339-0", text: "Glucose", system: "LN", value: "104", number: 104, hasNumber: true, unit: "mg/dL", effective: "2026-03-14T07:55:00Z"},
		})
	})

	// Ensure the delimiters declared in MSH-1/MSH-2 are the ones used.
	t.Run("custom_delims", func(t *testing.T) {
		oru := MustParseORU(t, "custom_delims")
		if got, want := oru.Header.Delimiters, (hl7.Delimiters{FieldSep: '!', ComponentSep: '@', RepetitionSep: '#', EscapeChar: '$', SubcomponentSep: '%'}); got != want {
			t.Fatalf("Delimiters=%+v, want %+v", got, want)
		}
		if got, want := oru.Header.SendingApplication, (hl7.HD{NamespaceID: "CUSTOMDEV", UniversalID: "SITE"}); got != want {
			t.Fatalf("SendingApplication=%+v, want %+v", got, want)
		}
		if got, want := oru.Results[0].Patient.Identifiers, []hl7.CX{{ID: "X-1", AssigningAuthority: hl7.HD{NamespaceID: "AUTH", UniversalID: "1.2.3", UniversalIDType: "ISO"}, TypeCode: "MR"}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Identifiers=%+v, want %+v", got, want)
		}
		obs := observations(oru)
		if got, want := obs[0].Units, (hl7.CWE{Identifier: "Cel", Text: "degree Celsius", CodingSystem: "UCUM"}); got != want {
			t.Fatalf("Units=%+v, want %+v", got, want)
		}
		if got, want := obs[0].AbnormalFlags, []string{"N", "A"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("AbnormalFlags=%q, want %q", got, want)
		}
		if got, want := obs[0].Number, 36.9; got != want || !obs[0].HasNumber {
			t.Fatalf("Number=%v (%v), want %v", got, obs[0].HasNumber, want)
		}
		if got, want := obs[1].ValueText, "probe 1!ok@done$"; got != want {
			t.Fatalf("ValueText=%q, want %q", got, want)
		}
	})

	// Ensure escape sequences decode in values and coded fields.
	t.Run("escapes", func(t *testing.T) {
		obs := observations(MustParseORU(t, "escapes"))
		for i, want := range []string{`a|b^c&d~e\f`, "line1\nline2 bold plain end", "café AB 37°C", "37.5", "xyz", "+007.50"} {
			if got := obs[i].ValueText; got != want {
				t.Errorf("obs[%d].ValueText=%q, want %q", i, got, want)
			}
		}
		if got, want := obs[0].Value, `a\F\b\S\c\T\d\R\e\E\f`; got != want {
			t.Fatalf("Value=%q, want %q (as received)", got, want)
		}
		if got, want := obs[3].Units.Text, "degree^Celsius"; got != want {
			t.Fatalf("Units.Text=%q, want %q", got, want)
		}
		if got, want := obs[5].Code, (hl7.CWE{Identifier: "A^B", Text: "Escaped & code", CodingSystem: "99LOCAL"}); got != want {
			t.Fatalf("Code=%+v, want %+v", got, want)
		}
		if got, want := obs[5].Number, 7.5; got != want || !obs[5].HasNumber {
			t.Fatalf("Number=%v (%v), want %v", got, obs[5].HasNumber, want)
		}
	})

	// Ensure MSH-2 "^~&" means no escape character: backslashes are data.
	t.Run("no_escape_char", func(t *testing.T) {
		oru := MustParseORU(t, "no_escape_char")
		if got, want := oru.Header.Delimiters, (hl7.Delimiters{FieldSep: '|', ComponentSep: '^', RepetitionSep: '~', SubcomponentSep: '&'}); got != want {
			t.Fatalf("Delimiters=%+v, want %+v", got, want)
		}
		if got, want := oru.Results[0].Patient.Identifiers[0].AssigningAuthority, (hl7.HD{NamespaceID: "CLINIC", UniversalID: "2.16.356", UniversalIDType: "ISO"}); got != want {
			t.Fatalf("AssigningAuthority=%+v, want %+v", got, want)
		}
		if got, want := observations(oru)[1].ValueText, `D:\export\run7`; got != want {
			t.Fatalf("ValueText=%q, want %q", got, want)
		}
	})

	// Ensure a doubled escape character in MSH-2 is read as one, and bytes
	// that are not UTF-8 are read as ISO-8859-1.
	t.Run("latin1_double_escape", func(t *testing.T) {
		oru := MustParseORU(t, "latin1_double_escape")
		if got, want := oru.Header.Delimiters, hl7.DefaultDelimiters; got != want {
			t.Fatalf("Delimiters=%+v, want %+v", got, want)
		}
		if got, want := oru.Header.Latin1, true; got != want {
			t.Fatalf("Latin1=%v, want %v", got, want)
		}
		if got, want := oru.Header.CharacterSet, "8859/1"; got != want {
			t.Fatalf("CharacterSet=%q, want %q", got, want)
		}
		obs := observations(oru)
		if got, want := obs[0].Units.Identifier, "°C"; got != want {
			t.Fatalf("Units=%q, want %q", got, want)
		}
		if got, want := obs[1].ValueText, "fièvre légère"; got != want {
			t.Fatalf("ValueText=%q, want %q", got, want)
		}
	})

	// Ensure bytes that are not UTF-8 come out as valid UTF-8 strings.
	t.Run("invalid_utf8", func(t *testing.T) {
		oru := MustParseORU(t, "invalid_utf8")
		if got, want := oru.Header.SendingApplication.NamespaceID, "DEV\u00c3("; got != want {
			t.Fatalf("SendingApplication=%q, want %q", got, want)
		}
		v := observations(oru)[0].ValueText
		if got, want := v, "\u00e2\u0082\u00ff\u00c0\u00af"; got != want {
			t.Fatalf("ValueText=%q, want %q", got, want)
		}
		if !utf8.ValidString(v) {
			t.Fatalf("ValueText %q is not valid UTF-8", v)
		}
	})

	// Ensure escape sequences with no end are kept as text, not errors, and
	// a broken number is just not a number.
	t.Run("unterminated_escape", func(t *testing.T) {
		obs := observations(MustParseORU(t, "unterminated_escape"))
		if got, want := obs[0].ValueText, `97\`; got != want || obs[0].HasNumber {
			t.Fatalf("ValueText=%q HasNumber=%v, want %q and no number", got, obs[0].HasNumber, want)
		}
		if got, want := obs[0].Units.Text, `MDC_DIM_PERCENT\X4`; got != want {
			t.Fatalf("Units.Text=%q, want %q", got, want)
		}
		if got, want := obs[1].ValueText, `ok^thenand\S`; got != want {
			t.Fatalf("ValueText=%q, want %q", got, want)
		}
	})
}

func TestParseORU_Hostile(t *testing.T) {
	for _, tt := range []struct {
		name      string
		err       error
		segment   int
		segmentID string
		field     int
		msg       string // the whole error text, when set
		header    bool   // whether ParseHeader still reads the MSH
		ack       hl7.AckCode
	}{
		{name: "truncated_msh", err: hl7.ErrMissingField, segment: 1, segmentID: "MSH", field: 9,
			msg: "decode ORU^R01 segment 1 (MSH) field 9: required field missing", header: true, ack: hl7.AckError},
		{name: "truncated_delimiters", err: hl7.ErrBadDelimiters, segment: 1, segmentID: "MSH", field: 2, ack: hl7.AckReject},
		{name: "no_msh", err: hl7.ErrNoMSH, segment: 1, ack: hl7.AckReject},
		{name: "garbage", err: hl7.ErrNoMSH, segment: 1, ack: hl7.AckReject},
		{name: "empty", err: hl7.ErrNoMSH, msg: "decode ORU^R01: message does not start with an MSH segment", ack: hl7.AckReject},
		{name: "huge_fields", err: hl7.ErrTooMany, segment: 3, segmentID: "OBX", header: true, ack: hl7.AckError},
		{name: "huge_repetitions", err: hl7.ErrTooMany, segment: 2, segmentID: "PID", field: 3, header: true, ack: hl7.AckError},
		{name: "bad_timestamp", err: hl7.ErrBadTimestamp, segment: 4, segmentID: "OBX", field: 14,
			msg: "decode ORU^R01 segment 4 (OBX) field 14: invalid timestamp: month out of range", header: true, ack: hl7.AckError},
		{name: "obx_before_obr", err: hl7.ErrUnexpectedSegment, segment: 3, segmentID: "OBX", header: true, ack: hl7.AckError},
		{name: "wrong_message_type", err: hl7.ErrUnsupportedMessage, segment: 1, segmentID: "MSH", field: 9,
			msg: "decode ORU^R01 segment 1 (MSH) field 9: unsupported message type: ADT^A01", header: true, ack: hl7.AckReject},
		{name: "bad_version", err: hl7.ErrUnsupportedVersion, segment: 1, segmentID: "MSH", field: 12, header: true, ack: hl7.AckReject},
		{name: "bad_segment_id", err: hl7.ErrBadSegmentID, segment: 4, header: true, ack: hl7.AckError},
		{name: "missing_control_id", err: hl7.ErrMissingField, segment: 1, segmentID: "MSH", field: 10, header: true, ack: hl7.AckError},
	} {
		// Ensure each hostile sample fails with a located, typed error, and
		// still gets an ACK.
		t.Run(tt.name, func(t *testing.T) {
			data := MustReadCase(t, tt.name)
			oru, err := hl7.ParseORU(data)
			if err == nil {
				t.Fatalf("ParseORU=%+v, want error", oru)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err=%v, want %v", err, tt.err)
			}
			var pe *hl7.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err=%T, want *hl7.ParseError", err)
			}
			if got, want := pe.Segment, tt.segment; got != want {
				t.Fatalf("Segment=%d, want %d (%v)", got, want, err)
			}
			if got, want := pe.SegmentID, tt.segmentID; got != want {
				t.Fatalf("SegmentID=%q, want %q (%v)", got, want, err)
			}
			if got, want := pe.Field, tt.field; got != want {
				t.Fatalf("Field=%d, want %d (%v)", got, want, err)
			}
			if tt.msg != "" {
				if got, want := err.Error(), tt.msg; got != want {
					t.Fatalf("Error()=%q, want %q", got, want)
				}
			}
			for _, phi := range []string{"HP-1", "ID1", "comment", "MDC_"} {
				if strings.Contains(err.Error(), phi) {
					t.Fatalf("Error()=%q quotes message content %q", err.Error(), phi)
				}
			}
			if got, want := hl7.AckCodeFor(err), tt.ack; got != want {
				t.Fatalf("AckCodeFor=%s, want %s", got, want)
			}

			h, herr := hl7.ParseHeader(data)
			if got, want := herr == nil, tt.header; got != want {
				t.Fatalf("ParseHeader err=%v, want header readable=%v", herr, want)
			}
			ack := hl7.BuildACK(h, hl7.ACK{Err: err, Time: MustTime(t, "2026-03-14T17:00:00+05:30")})
			m, err := hl7.Parse(ack)
			if err != nil {
				t.Fatalf("Parse(ACK): %v\n%q", err, ack)
			}
			msa := m.Segments[1]
			if got, want := msa.Field(1), string(tt.ack); got != want {
				t.Fatalf("MSA-1=%q, want %q", got, want)
			}
			wantCtl := ""
			if h != nil {
				wantCtl = h.ControlID
			}
			if got, want := msa.Field(2), wantCtl; got != want {
				t.Fatalf("MSA-2=%q, want %q", got, want)
			}
		})
	}
}

func TestParseORU_Framed(t *testing.T) {
	// Ensure MLLP bytes and a BOM left around a message are ignored.
	data := MustReadCase(t, "crlf_endings")
	framed := append(append([]byte{0x0b, 0xef, 0xbb, 0xbf}, data...), 0x1c, 0x0d)
	oru, err := hl7.ParseORU(framed)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := oru.Header.ControlID, "G-55"; got != want {
		t.Fatalf("ControlID=%q, want %q", got, want)
	}
}

func TestParseORU_Grammar(t *testing.T) {
	const msh = "MSH|^~\\&|DEV||||20260314170000||ORU^R01|GR-1|P|2.5\r"
	for _, tt := range []struct {
		name string
		data string
		err  error // nil: must parse
	}{
		{"SecondMSH", msh + "OBR|1\rMSH|^~\\&|X\r", hl7.ErrUnexpectedSegment},
		{"BadOBR7", msh + "OBR|1||||||20261301\r", hl7.ErrBadTimestamp},
		{"BadMSH7", "MSH|^~\\&|DEV||||2026-03-14||ORU^R01|GR-1|P|2.5\r", hl7.ErrBadTimestamp},
		{"LowercaseID", msh + "obr|1\r", hl7.ErrBadSegmentID},
		{"ShortID", msh + "OB|1\r", hl7.ErrBadSegmentID},
		{"IgnoredSegments", msh + "PV1|1\rORC|NW\rOBR|1\rNTE|1||x\rOBX|1|NM|X||5\rZXT|anything\rDSC|1\r", nil},
		{"OnlyContainers", msh + "OBR|1\rOBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1|||||||X\rOBX|2||X|1.1|\"\"\r", nil},
		{"EmptyVersion", "MSH|^~\\&|DEV||||20260314||ORU^R01|GR-1|P\r", nil},
	} {
		// Ensure the ORU^R01 grammar is enforced where it matters and
		// segments this package does not read are ignored.
		t.Run(tt.name, func(t *testing.T) {
			_, err := hl7.ParseORU([]byte(tt.data))
			if tt.err == nil && err != nil {
				t.Fatalf("err=%v, want nil", err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err=%v, want %v", err, tt.err)
			}
		})
	}
}

func TestParseORU_EquipmentInheritance(t *testing.T) {
	// Ensure a row without OBX-18 takes the device of the innermost
	// container row of its own OBR group whose sub-ID contains its own.
	data := strings.Join([]string{
		`MSH|^~\&|DEV||||20260314||ORU^R01|EQ-1|P|2.6`,
		`OBR|1`,
		`OBX|1||MDS|1|||||||X|||||||MDS-EUI^EUI-64`,
		`OBX|2||VMD|1.1|||||||X|||||||VMD-EUI^EUI-64`,
		`OBX|3|NM|A|1.1.1.1|1`,
		`OBX|4|NM|B|1.2.1.1|2`,
		`OBX|5|NM|C|10.1.1.1|3`,
		`OBX|6|NM|D||4`,
		`OBX|7|NM|E|1.1|5||||||R|||||||OWN-EUI^EUI-64`,
		`OBR|2`,
		`OBX|1|NM|F|1.1.1.1|6`,
	}, "\r")
	oru, err := hl7.ParseORU([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range observations(oru) {
		got = append(got, fmt.Sprintf("%s=%s/%v", o.Code.Identifier, o.Equipment.EntityID, o.EquipmentInherited))
	}
	want := []string{"A=VMD-EUI/true", "B=MDS-EUI/true", "C=/false", "D=/false", "E=OWN-EUI/false", "F=/false"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("equipment=%q, want %q", got, want)
	}
}

func BenchmarkParseORU(b *testing.B) {
	for _, name := range []string{"pcd01_monitor", "lab_v231_cbc"} {
		b.Run(name, func(b *testing.B) {
			data := MustReadCase(b, name)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := hl7.ParseORU(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Ensure the catalogue has what the README lists, so a renamed file is noticed.
func TestCatalogue_Complete(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(caseDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(caseDir, "*.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(files), 25; got != want {
		t.Fatalf("len(files)=%d, want %d", got, want)
	}
	for _, f := range files {
		if !bytes.Contains(readme, []byte("`"+filepath.Base(f)+"`")) {
			t.Errorf("README.md does not describe %s", filepath.Base(f))
		}
	}
}
