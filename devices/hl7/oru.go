package hl7

import (
	"fmt"
	"strconv"
	"strings"
)

// ORU is a decoded ORU^R01 (unsolicited observation result) message.
//
// Patient results are kept in the groups the message sent them in, because an
// ORU^R01 may carry several PID groups and an observation belongs to the
// patient of its group, never to "the" patient of the message.
type ORU struct {
	Header  Header
	Results []PatientResult

	// Message is the tokenized message, for fields this package does not
	// decode. Observation.Segment and Order.Segment index into it (1-based).
	Message *Message
}

// Header is what the MSH segment says about a message.
type Header struct {
	Delimiters Delimiters

	// Who sent it and to whom (MSH-3 to MSH-6). A monitor often puts its
	// EUI-64 in MSH-3 (AcmeInc^ACDE48234567ABCD^EUI-64).
	SendingApplication   HD
	SendingFacility      HD
	ReceivingApplication HD
	ReceivingFacility    HD

	// What it is: MSH-7 (time of message), MSH-9 components, MSH-10,
	// MSH-11 first component (P, T, D), MSH-12 first component (2.3.1, 2.6).
	Time             Timestamp
	MessageType      string // "ORU"
	TriggerEvent     string // "R01"
	MessageStructure string // "ORU_R01", often empty before v2.5
	ControlID        string
	ProcessingID     string
	Version          string

	// Acknowledgement types asked for (MSH-15, MSH-16: AL, NE, ER, SU) and
	// the declared character set (MSH-18, first repetition).
	AcceptAckType      string
	ApplicationAckType string
	CharacterSet       string

	// Latin1 is true when the bytes were not valid UTF-8 and were read as
	// ISO-8859-1.
	Latin1 bool
}

// PatientResult is one PID and the orders that follow it. Patient is nil when
// the message has OBR groups but no PID before them, as many monitors send.
type PatientResult struct {
	Patient *Patient
	Orders  []Order
}

// Patient holds what this package reads from PID. It is protected health
// information: never log it.
type Patient struct {
	// Identifiers are the repetitions of PID-3 that carry an ID.
	Identifiers []CX

	// RawName is PID-5 exactly as received, all repetitions and components,
	// escape sequences not decoded. The package does not interpret names.
	RawName string
}

// Order is one OBR and the observations after it.
type Order struct {
	Segment      int    // position of the OBR in the message, 1-based
	SetID        string // OBR-1
	PlacerOrder  EI     // OBR-2
	FillerOrder  EI     // OBR-3
	Service      CWE    // OBR-4, universal service identifier
	ObservedAt   Timestamp
	Observations []Observation // OBX rows with a value, in message order
}

// Observation is one OBX row that carries a value. Codes, units and the value
// are exactly what the device sent; mapping them to LOINC and UCUM is for the
// caller.
type Observation struct {
	Segment   int    // position of the OBX in the message, 1-based
	SetID     string // OBX-1, may be empty (some monitors leave it so)
	ValueType string // OBX-2: NM, SN, ST, CWE, NA, ...
	Code      CWE    // OBX-3, e.g. 150456^MDC_PULS_OXIM_SAT_O2^MDC or 6690-2^WBC^LN
	SubID     string // OBX-4; IHE PCD containment MDS.VMD.CHAN.METRIC, e.g. 1.0.1.1

	// Value is OBX-5 exactly as received: all repetitions and components,
	// escape sequences not decoded. ValueText is the same with escape
	// sequences decoded, which for ST, TX, FT and NM is the human-readable
	// text; for composite types (CWE, SN, NA) split Value with
	// Header.Delimiters instead.
	Value     string
	ValueText string

	// Number is the value as a number when ValueType is NM, or SN with no
	// comparator and no second number, and the value is a plain decimal
	// ([+-]digits[.digits], no exponent). HasNumber says whether it was.
	// A value that is not a number ("---", "NaN") is not an error.
	Number    float64
	HasNumber bool

	Units          CWE      // OBX-6: 266016^MDC_DIM_MMHG^MDC, mm[Hg]^mm[Hg]^UCUM or plain "mg/dl"
	ReferenceRange string   // OBX-7, decoded, e.g. "4.00-10.00"
	AbnormalFlags  []string // OBX-8, one entry per repetition (H~A)
	Status         string   // OBX-11: R, F, C, X, ...

	// ObservedAt is OBX-14. Effective is the time the reading applies to:
	// OBX-14, else the OBR-7 of its order, else MSH-7.
	ObservedAt Timestamp
	Effective  Timestamp

	// Equipment is the first repetition of OBX-18, the device to key on
	// (0123456789ABCDEF^EUI-64). IHE PCD monitors often send it only on the
	// MDS container row, which has no value; such a row's OBX-18 is then given
	// to the rows whose OBX-4 it contains (sub-ID "1" contains "1.0.1.1"), and
	// EquipmentInherited says so.
	Equipment          EI
	EquipmentInherited bool
}

// HD is an HL7 hierarchic designator (namespace ID^universal ID^universal ID type).
type HD struct {
	NamespaceID     string
	UniversalID     string
	UniversalIDType string
}

// IsZero reports whether every component is empty.
func (h HD) IsZero() bool { return h == HD{} }

// EI is an HL7 entity identifier (entity ID^namespace ID^universal ID^universal ID type).
type EI struct {
	EntityID        string
	NamespaceID     string
	UniversalID     string
	UniversalIDType string
}

// IsZero reports whether every component is empty.
func (e EI) IsZero() bool { return e == EI{} }

// CWE is an HL7 coded element (CE before v2.5, CWE after): a code, its text
// and its coding system, then an alternate triplet. A plain-text value with no
// components ("mg/dl") lands in Identifier.
type CWE struct {
	Identifier      string // 150021, 6690-2, 266016
	Text            string // MDC_PRESS_BLD_NONINV_SYS, WBC, MDC_DIM_MMHG
	CodingSystem    string // MDC, LN, UCUM, 99MNDRY
	AltIdentifier   string
	AltText         string
	AltCodingSystem string
}

// IsZero reports whether every component is empty.
func (c CWE) IsZero() bool { return c == CWE{} }

// CX is one patient identifier from PID-3.
type CX struct {
	ID                 string // CX-1
	AssigningAuthority HD     // CX-4
	TypeCode           string // CX-5: MR, PI, NI, ...
}

// ParseORU decodes an ORU^R01 message. Rows without a value (IHE PCD MDS, VMD
// and channel rows) are skipped; PV1, NTE, ORC and any segment this package
// does not read are ignored. Errors are *ParseError, with Op "decode ORU^R01".
// When it fails, ParseHeader still gives what an ACK needs.
func ParseORU(data []byte) (*ORU, error) {
	m, err := parse(data, opORU)
	if err != nil {
		return nil, err
	}
	return decodeORU(m)
}

// ParseHeader reads only the MSH of a message, as leniently as it can, so
// that an ACK can be addressed even when the rest of the message (or the MSH's
// own timestamp) is broken. It fails only when there is no MSH or its
// delimiters cannot be read; then the ACK must be built from nothing.
func ParseHeader(data []byte) (*Header, error) {
	s, latin1 := decodeText(data)
	var line string
	for rest := s; rest != "" && line == ""; {
		line = nextLine(&rest)
	}
	if line == "" {
		return nil, &ParseError{Op: opHeader, Err: ErrNoMSH}
	}
	// Parse the MSH line alone: later segments cannot stop it.
	m, err := parseText(line, latin1, opHeader)
	if err != nil {
		return nil, err
	}
	h, _ := decodeHeader(m, false)
	return &h, nil
}

// decodeHeader reads the MSH. When strict, it checks what an ORU^R01 needs.
func decodeHeader(m *Message, strict bool) (Header, *ParseError) {
	d := m.Delimiters
	msh := m.Segments[0]
	h := Header{
		Delimiters:           d,
		SendingApplication:   d.hd(msh.Field(3)),
		SendingFacility:      d.hd(msh.Field(4)),
		ReceivingApplication: d.hd(msh.Field(5)),
		ReceivingFacility:    d.hd(msh.Field(6)),
		MessageType:          d.comp(msh.Field(9), 1),
		TriggerEvent:         d.comp(msh.Field(9), 2),
		MessageStructure:     d.comp(msh.Field(9), 3),
		ControlID:            d.Unescape(msh.Field(10)),
		ProcessingID:         d.comp(msh.Field(11), 1),
		Version:              d.comp(msh.Field(12), 1),
		AcceptAckType:        d.comp(msh.Field(15), 1),
		ApplicationAckType:   d.comp(msh.Field(16), 1),
		CharacterSet:         d.Unescape(d.Repetition(msh.Field(18), 1)),
		Latin1:               m.Latin1,
	}
	fieldErr := func(field int, err error) *ParseError {
		return &ParseError{Op: opORU, Segment: 1, SegmentID: "MSH", Occurrence: 1, Field: field, Err: err}
	}
	ts, err := ParseTimestamp(d.comp(msh.Field(7), 1))
	if err != nil && strict {
		return h, fieldErr(7, err)
	}
	h.Time = ts
	if !strict {
		return h, nil
	}
	if h.MessageType == "" {
		return h, fieldErr(9, ErrMissingField)
	}
	if h.MessageType != "ORU" || h.TriggerEvent != "R01" {
		return h, fieldErr(9, fmt.Errorf("%w: %s^%s", ErrUnsupportedMessage, safeToken(h.MessageType), safeToken(h.TriggerEvent)))
	}
	if h.ControlID == "" {
		return h, fieldErr(10, ErrMissingField)
	}
	if h.Version != "" && !strings.HasPrefix(h.Version, "2.") {
		return h, fieldErr(12, fmt.Errorf("%w: %s", ErrUnsupportedVersion, safeToken(h.Version)))
	}
	return h, nil
}

func decodeORU(m *Message) (*ORU, error) {
	h, perr := decodeHeader(m, true)
	if perr != nil {
		return nil, perr
	}
	oru := &ORU{Header: h, Message: m}
	d := m.Delimiters
	var (
		order      *Order // the order OBX rows attach to, nil before the first OBR
		containers []container
	)
	for i, seg := range m.Segments[1:] {
		pos := i + 2
		fail := func(field int, err error) error {
			occ := 0
			for _, s := range m.Segments[:pos] {
				if s.ID == seg.ID {
					occ++
				}
			}
			return &ParseError{Op: opORU, Segment: pos, SegmentID: seg.ID, Occurrence: occ, Field: field, Err: err}
		}
		switch seg.ID {
		case "MSH":
			return nil, fail(0, fmt.Errorf("%w: second MSH in one message", ErrUnexpectedSegment))
		case "PID":
			p, field, err := d.patient(seg)
			if err != nil {
				return nil, fail(field, err)
			}
			oru.Results = append(oru.Results, PatientResult{Patient: p})
			order = nil
		case "OBR":
			ts, err := ParseTimestamp(d.comp(seg.Field(7), 1))
			if err != nil {
				return nil, fail(7, err)
			}
			if len(oru.Results) == 0 {
				oru.Results = append(oru.Results, PatientResult{})
			}
			r := &oru.Results[len(oru.Results)-1]
			r.Orders = append(r.Orders, Order{
				Segment:      pos,
				SetID:        d.Unescape(seg.Field(1)),
				PlacerOrder:  d.ei(seg.Field(2)),
				FillerOrder:  d.ei(seg.Field(3)),
				Service:      d.cwe(seg.Field(4)),
				ObservedAt:   ts,
				Observations: make([]Observation, 0, countOBX(m.Segments[pos:])),
			})
			order = &r.Orders[len(r.Orders)-1]
			containers = containers[:0]
		case "OBX":
			if order == nil {
				return nil, fail(0, fmt.Errorf("%w: OBX before any OBR", ErrUnexpectedSegment))
			}
			v := seg.Field(5)
			if v == "" || v == `""` {
				// A container row (MDS, VMD, channel): no reading, but its
				// OBX-18 names the device for the rows it contains.
				if eq := d.ei(d.Repetition(seg.Field(18), 1)); !eq.IsZero() && len(containers) < maxContainers {
					containers = append(containers, container{subID: d.Unescape(seg.Field(4)), eq: eq})
				}
				continue
			}
			o, field, err := d.observation(seg, pos)
			if err != nil {
				return nil, fail(field, err)
			}
			if o.Equipment.IsZero() {
				o.Equipment, o.EquipmentInherited = inheritEquipment(containers, o.SubID)
			}
			switch {
			case !o.ObservedAt.IsZero():
				o.Effective = o.ObservedAt
			case !order.ObservedAt.IsZero():
				o.Effective = order.ObservedAt
			default:
				o.Effective = h.Time
			}
			order.Observations = append(order.Observations, o)
		}
	}
	return oru, nil
}

// countOBX counts the OBX segments before the next OBR, PID or MSH: an upper
// bound on the observations of the order that starts just before segs.
func countOBX(segs []Segment) int {
	n := 0
	for _, s := range segs {
		switch s.ID {
		case "OBX":
			n++
		case "OBR", "PID", "MSH":
			return n
		}
	}
	return n
}

// maxContainers caps the container rows per order that equipment is
// inherited from, so a hostile message cannot make inheritance quadratic. An
// IHE PCD monitor names its device on one MDS row, a gateway on a few more.
const maxContainers = 64

// container is an OBX row without a value that names a device.
type container struct {
	subID string
	eq    EI
}

// inheritEquipment returns the equipment of the container whose sub-ID is the
// longest dotted prefix of subID.
func inheritEquipment(cs []container, subID string) (EI, bool) {
	best := -1
	for i, c := range cs {
		if c.subID == "" || !containsSubID(c.subID, subID) {
			continue
		}
		if best < 0 || len(c.subID) > len(cs[best].subID) {
			best = i
		}
	}
	if best < 0 {
		return EI{}, false
	}
	return cs[best].eq, true
}

// containsSubID reports whether IHE PCD sub-ID parent contains child: equal,
// or a prefix ending at a dot ("1.0" contains "1.0.1.1", not "1.01").
func containsSubID(parent, child string) bool {
	return child == parent || strings.HasPrefix(child, parent) && child[len(parent)] == '.'
}

// patient decodes a PID. On error it returns the field at fault.
func (d Delimiters) patient(seg Segment) (*Patient, int, error) {
	f := seg.Field(3)
	if reps := countParts(f, d.RepetitionSep); reps > MaxRepetitions {
		return nil, 3, fmt.Errorf("%w: more than %d repetitions", ErrTooMany, MaxRepetitions)
	}
	p := &Patient{RawName: seg.Field(5)}
	for f != "" {
		rep := cutPart(&f, d.RepetitionSep)
		cx := CX{
			ID:                 d.comp(rep, 1),
			AssigningAuthority: d.hdSub(d.Component(rep, 4)),
			TypeCode:           d.comp(rep, 5),
		}
		if cx.ID != "" {
			p.Identifiers = append(p.Identifiers, cx)
		}
	}
	return p, 0, nil
}

// observation decodes an OBX that has a value. On error it returns the field
// at fault.
func (d Delimiters) observation(seg Segment, pos int) (Observation, int, error) {
	o := Observation{
		Segment:        pos,
		SetID:          d.Unescape(seg.Field(1)),
		ValueType:      d.comp(seg.Field(2), 1),
		Code:           d.cwe(seg.Field(3)),
		SubID:          d.Unescape(seg.Field(4)),
		Value:          seg.Field(5),
		Units:          d.cwe(seg.Field(6)),
		ReferenceRange: d.Unescape(seg.Field(7)),
		Status:         d.comp(seg.Field(11), 1),
		Equipment:      d.ei(d.Repetition(seg.Field(18), 1)),
	}
	o.ValueText = d.Unescape(o.Value)
	o.Number, o.HasNumber = d.number(o.ValueType, o.Value)

	flags := seg.Field(8)
	if n := countParts(flags, d.RepetitionSep); n > MaxRepetitions {
		return o, 8, fmt.Errorf("%w: more than %d repetitions", ErrTooMany, MaxRepetitions)
	}
	for flags != "" {
		if f := d.comp(cutPart(&flags, d.RepetitionSep), 1); f != "" {
			o.AbnormalFlags = append(o.AbnormalFlags, f)
		}
	}

	ts, err := ParseTimestamp(d.comp(seg.Field(14), 1))
	if err != nil {
		return o, 14, err
	}
	o.ObservedAt = ts
	return o, 0, nil
}

// number returns the numeric reading of an NM value, or of an SN value with
// no comparator ("^120" or, as some devices send it, "120").
func (d Delimiters) number(valueType, raw string) (float64, bool) {
	if strings.IndexByte(raw, d.RepetitionSep) >= 0 {
		return 0, false
	}
	switch valueType {
	case "NM":
		if strings.IndexByte(raw, d.ComponentSep) >= 0 {
			return 0, false
		}
		return parseNM(d.Unescape(raw))
	case "SN":
		if strings.IndexByte(raw, d.ComponentSep) < 0 {
			return parseNM(d.Unescape(raw))
		}
		if d.Component(raw, 1) != "" || d.Component(raw, 3) != "" || d.Component(raw, 4) != "" {
			return 0, false
		}
		return parseNM(d.comp(raw, 2))
	}
	return 0, false
}

// parseNM parses an HL7 NM: an optional sign, digits and at most one decimal
// point. Exponents, hex, NaN and Inf are not NM.
func parseNM(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

// comp returns component n of a field, unescaped.
func (d Delimiters) comp(field string, n int) string {
	return d.Unescape(d.Component(field, n))
}

// cwe decodes a CE/CWE field (first repetition).
func (d Delimiters) cwe(field string) CWE {
	f := d.Repetition(field, 1)
	return CWE{
		Identifier:      d.comp(f, 1),
		Text:            d.comp(f, 2),
		CodingSystem:    d.comp(f, 3),
		AltIdentifier:   d.comp(f, 4),
		AltText:         d.comp(f, 5),
		AltCodingSystem: d.comp(f, 6),
	}
}

// ei decodes an EI field.
func (d Delimiters) ei(field string) EI {
	return EI{
		EntityID:        d.comp(field, 1),
		NamespaceID:     d.comp(field, 2),
		UniversalID:     d.comp(field, 3),
		UniversalIDType: d.comp(field, 4),
	}
}

// hd decodes an HD field (MSH-3 to MSH-6).
func (d Delimiters) hd(field string) HD {
	return HD{
		NamespaceID:     d.comp(field, 1),
		UniversalID:     d.comp(field, 2),
		UniversalIDType: d.comp(field, 3),
	}
}

// hdSub decodes an HD that sits in one component, its parts subcomponents
// (CX-4).
func (d Delimiters) hdSub(comp string) HD {
	return HD{
		NamespaceID:     d.Unescape(d.Subcomponent(comp, 1)),
		UniversalID:     d.Unescape(d.Subcomponent(comp, 2)),
		UniversalIDType: d.Unescape(d.Subcomponent(comp, 3)),
	}
}

// cutPart cuts the first part of *s split on sep off *s.
func cutPart(s *string, sep byte) string {
	part := *s
	if i := strings.IndexByte(part, sep); i >= 0 && sep != 0 {
		*s = part[i+1:]
		return part[:i]
	}
	*s = ""
	return part
}

// countParts returns how many parts s has when split on sep (0 for "").
func countParts(s string, sep byte) int {
	if s == "" {
		return 0
	}
	if sep == 0 {
		return 1
	}
	return strings.Count(s, string(rune(sep))) + 1
}
