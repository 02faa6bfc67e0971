package astm

import (
	"strings"
	"time"
)

// Message is one E1394 message, H record through L record, grouped the way
// the standard nests them: patients, each with orders, each with results.
// Comment (C) and manufacturer (M) records attach to the record before them.
//
// Field values follow one rule. A field that is not meant to have parts is
// given as its first component, unescaped (Record.Text). Fields that carry
// parts on purpose are given as slices: sender name, test IDs, flags,
// comment text. Nothing is trimmed, mapped or converted; the exact text of
// every field is in Records.
type Message struct {
	Header       Header
	Comments     []Comment // C records between H and the first P
	Manufacturer []Record  // M records between H and the first P
	Patients     []Patient
	Queries      []Query
	Other        []Record // S records, and unknown record types in lenient mode
	Terminator   Terminator

	// Records holds every record in the order received, fields as sent.
	Records []Record
	// Deviations lists what lenient mode tolerated in the records (and, for
	// a Delivery, in the frames that carried them).
	Deviations Deviation
}

// Header is the H (message header) record.
type Header struct {
	Delimiters    Delimiters // H-2, as declared by the sender
	ControlID     string     // H-3 message control ID
	Sender        []string   // H-5 sender name or ID, all components
	SenderName    string     // H-5 first component
	SenderVersion string     // H-5 second component (software version on most analyzers)
	ReceiverID    string     // H-10
	ProcessingID  string     // H-12: P production, T training, D debugging, Q quality control
	Version       string     // H-13, e.g. "LIS2-A2" or "E 1394-97"
	Timestamp     time.Time  // H-14 date and time of message
	Record        Record
}

// Patient is a P (patient information) record and what follows it.
type Patient struct {
	Seq        int       // P-2 sequence number (some analyzers use a sample counter)
	PracticeID string    // P-3 practice-assigned patient ID
	LabID      string    // P-4 laboratory-assigned patient ID
	ID3        string    // P-5 patient ID No. 3
	Name       string    // P-6 exactly as sent: components ("last^first^...") and escapes intact
	BirthDate  time.Time // P-8
	Sex        string    // P-9: M, F, U

	Comments     []Comment
	Manufacturer []Record
	Orders       []Order
	Record       Record // Num 0 if lenient mode created this patient for an orphan O
}

// Order is an O (test order) record and what follows it.
type Order struct {
	Seq                  int       // O-2
	SpecimenID           string    // O-3 specimen ID (the sample barcode)
	InstrumentSpecimenID string    // O-4
	Tests                []TestID  // O-5 universal test IDs, one per repeat
	Priority             string    // O-6: S stat, A ASAP, R routine
	RequestedAt          time.Time // O-7 requested or ordered date and time
	CollectedAt          time.Time // O-8 specimen collection date and time
	ActionCode           string    // O-12: C cancel, A add, N new, P pending, L reserved, X in process, Q QC
	SpecimenType         string    // O-16 specimen descriptor
	ReportType           string    // O-26: O order, F final, P preliminary, Q response to query, ...

	Comments     []Comment
	Manufacturer []Record
	Results      []Result
	Record       Record // Num 0 if lenient mode created this order for an orphan R
}

// Result is an R (result) record and the records attached to it.
type Result struct {
	Seq  int
	Test TestID // R-3 universal test ID
	// Value is R-4, the measurement value: the first component, unescaped
	// and untrimmed ("5.6", "7,41", ">1000", "POS").
	Value string
	// ValueComponents holds every component of R-4 when there is more than
	// one (Mindray pads values as "2.837141^^^^"); nil otherwise.
	ValueComponents []string
	Units           string
	ReferenceRange  string    // R-6, the whole field unescaped ("70 to 110", "3.5-5.0")
	Flags           []string  // R-7 abnormal flags, one per repeat: L, H, LL, HH, <, >, N, A, ...
	Nature          string    // R-8 nature of abnormality testing
	Status          string    // F final, C correction, P preliminary, R previously transmitted, X cannot be done, ...
	Operator        string    // R-11 operator identification
	StartedAt       time.Time
	CompletedAt     time.Time
	Instrument      string    // R-14 instrument identification

	Comments     []Comment
	Manufacturer []Record
	Record       Record
}

// TestID is a universal test ID (O-5, R-3, Q-5): four components by the
// standard, of which analyzers mostly fill only the fourth ("^^^GLU"), and
// some fill others ("P^Phosphorus^^F"). Which one is the code to map is a
// per-device decision and is left to the caller.
type TestID struct {
	Universal string   // component 1, universal test ID
	Name      string   // component 2, test name
	Type      string   // component 3, test ID type
	Local     string   // component 4, manufacturer's or local code
	Extra     []string // components 5 and on (dilution, replicate, ...), nil if none
}

// Comment is a C (comment) record.
type Comment struct {
	Seq    int      // C-2
	Source string   // C-3: P practice, L information system, I instrument
	Text   []string // C-4 comment text, all components
	Type   string   // C-5: G generic, T test name, P positive, N negative, I instrument flag
	Record Record
}

// Query is a Q (request information) record, parsed minimally: a LIS uses
// it to answer host queries with orders, which this package does not do.
type Query struct {
	Seq        int
	StartRange []string // Q-3 starting range ID, all components
	EndRange   []string // Q-4 ending range ID, all components
	Tests      []TestID
	Status     string   // Q-13 request information status code
	Record     Record
}

// Terminator is the L (message terminator) record.
type Terminator struct {
	Seq    int    // L-2 (Mindray sends a running counter)
	Code   string // L-3: N normal, T sender aborted, R receiver aborted, E unknown error, Q, I, F
	Record Record // Num 0 if lenient mode accepted a message without L
}

// Parser decodes E1394 record text into a Message. The zero value is a
// strict parser that reads times as UTC with DefaultLimits.
type Parser struct {
	// Lenient accepts the record-level deviations listed on Deviation
	// instead of failing.
	Lenient bool
	// Location is the zone of the analyzer's clock; E1394 times carry none.
	// Nil means UTC.
	Location *time.Location
	// Limits caps record length, field count and record count; zero fields
	// take DefaultLimits.
	Limits Limits
}

// ParseMessage parses one message with a strict Parser.
func ParseMessage(text []byte) (*Message, error) {
	var p Parser
	return p.Parse(text)
}

// Parse decodes text holding one message, H record through L record, records
// separated by CR (lenient mode also takes LF and CR LF). Errors are
// *RecordError values wrapping one of the ErrX sentinels.
func (p *Parser) Parse(text []byte) (*Message, error) {
	lim := p.Limits.orDefault()
	if len(text) > lim.MaxMessageBytes {
		return nil, &RecordError{Record: 1, Err: ErrTooManyRecords}
	}
	lines, dev, err := splitLines(string(text), p.Lenient, lim)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, &RecordError{Record: 1, Err: ErrEmpty}
	}
	m := &Message{Deviations: dev, Records: make([]Record, 0, len(lines))}
	d := DefaultDelimiters
	if typeOf(lines[0]) == 'H' {
		var hdev Deviation
		d, hdev, err = headerDelimiters(lines[0], p.Lenient)
		if err != nil {
			return nil, err
		}
		m.Deviations |= hdev
	} else if !p.Lenient {
		return nil, &RecordError{Record: 1, Type: typeOf(lines[0]), Err: ErrNoHeader}
	} else {
		m.Deviations |= DevNoHeader
	}
	for i, line := range lines {
		r, err := parseRecord(line, i+1, d, lim)
		if err != nil {
			return nil, err
		}
		m.Records = append(m.Records, r)
	}
	b := builder{p: p, m: m}
	for i := range m.Records {
		if err := b.add(m.Records[i]); err != nil {
			return nil, err
		}
	}
	if m.Terminator.Record.Num == 0 {
		if !p.Lenient {
			return nil, &RecordError{Record: len(m.Records) + 1, Err: ErrNoTerminator}
		}
		m.Deviations |= DevNoTerminator
	}
	return m, nil
}

// splitLines splits message text into record lines, dropping empty ones.
// Strict mode separates records by CR only and rejects LF and the other
// control characters LIS01-A2 forbids in text.
func splitLines(s string, lenient bool, lim Limits) ([]string, Deviation, error) {
	var dev Deviation
	lines := make([]string, 0, strings.Count(s, "\r")+1)
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		line := s
		if i >= 0 {
			if s[i] == '\n' {
				if !lenient {
					return nil, 0, &RecordError{Record: len(lines) + 1, Type: typeOf(s[:i]), Err: ErrInvalidByte}
				}
				dev |= DevLFInText
			}
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		if line == "" {
			continue
		}
		for j := 0; j < len(line); j++ {
			if forbiddenInText(line[j]) {
				if !lenient {
					return nil, 0, &RecordError{Record: len(lines) + 1, Type: typeOf(line), Err: ErrInvalidByte}
				}
				dev |= DevControlInText
				break
			}
		}
		if len(lines) == lim.MaxRecords {
			return nil, 0, &RecordError{Record: len(lines) + 1, Err: ErrTooManyRecords}
		}
		lines = append(lines, line)
	}
	return lines, dev, nil
}

// headerDelimiters reads the delimiters an H record declares in its
// characters 2 to 5.
func headerDelimiters(line string, lenient bool) (Delimiters, Deviation, error) {
	bad := &RecordError{Record: 1, Type: 'H', Field: 2, Err: ErrDelimiters}
	if len(line) < 2 {
		if !lenient {
			return Delimiters{}, 0, bad
		}
		return DefaultDelimiters, DevDelimiters, nil
	}
	fd := line[1]
	def := line[2:]
	if i := strings.IndexByte(def, fd); i >= 0 {
		def = def[:i]
	}
	if len(def) == 3 {
		d := Delimiters{Field: fd, Repeat: def[0], Component: def[1], Escape: def[2]}
		if d.valid() {
			return d, 0, nil
		}
	}
	if !lenient {
		return Delimiters{}, 0, bad
	}
	if len(def) == 4 && def[0] == def[1] { // `H|\\^&`: a doubled repeat delimiter
		d := Delimiters{Field: fd, Repeat: def[1], Component: def[2], Escape: def[3]}
		if d.valid() {
			return d, DevDelimiters, nil
		}
	}
	d := DefaultDelimiters
	d.Field = fd
	if !d.valid() {
		d = DefaultDelimiters
	}
	return d, DevDelimiters, nil
}

// forbiddenInText reports whether LIS01-A2 forbids c in frame text: SOH,
// STX, ETX, EOT, ENQ, ACK, DLE, NAK, SYN, ETB, LF, DC1-DC4.
func forbiddenInText(c byte) bool {
	switch c {
	case 0x01, STX, ETX, EOT, ENQ, ACK, LF, 0x10, 0x11, 0x12, 0x13, 0x14, NAK, 0x16, ETB:
		return true
	}
	return false
}

// level is where the next C or M record attaches.
type level int

const (
	atMessage level = iota
	atPatient
	atOrder
	atResult
)

// builder groups records into a Message.
type builder struct {
	p   *Parser
	m   *Message
	at  level
	end bool // L seen
}

func (b *builder) add(r Record) error {
	m := b.m
	if b.end {
		return &RecordError{Record: r.Num, Type: r.Type, Err: ErrUnexpectedRecord}
	}
	typ := r.Type
	if len(r.Fields[0]) != 1 {
		typ = 0
	}
	switch typ {
	case 'H':
		if r.Num != 1 {
			return &RecordError{Record: r.Num, Type: r.Type, Err: ErrUnexpectedRecord}
		}
		return b.header(r)
	case 'P':
		pt := Patient{Record: r, PracticeID: r.Text(3), LabID: r.Text(4), ID3: r.Text(5), Name: r.Field(6), Sex: r.Text(9)}
		var err error
		if pt.Seq, err = b.seq(r); err != nil {
			return err
		}
		if pt.BirthDate, err = b.time(r, 8); err != nil {
			return err
		}
		m.Patients = append(m.Patients, pt)
		b.at = atPatient
	case 'O':
		if len(m.Patients) == 0 {
			if err := b.implicit(r); err != nil {
				return err
			}
			m.Patients = append(m.Patients, Patient{})
		}
		o := Order{
			Record: r, SpecimenID: r.Text(3), InstrumentSpecimenID: r.Text(4), Tests: testIDs(r, 5),
			Priority: r.Text(6), ActionCode: r.Text(12), SpecimenType: r.Text(16), ReportType: r.Text(26),
		}
		var err error
		if o.Seq, err = b.seq(r); err != nil {
			return err
		}
		if o.RequestedAt, err = b.time(r, 7); err != nil {
			return err
		}
		if o.CollectedAt, err = b.time(r, 8); err != nil {
			return err
		}
		pt := &m.Patients[len(m.Patients)-1]
		pt.Orders = append(pt.Orders, o)
		b.at = atOrder
	case 'R':
		if len(m.Patients) == 0 || len(m.Patients[len(m.Patients)-1].Orders) == 0 {
			if err := b.implicit(r); err != nil {
				return err
			}
			if len(m.Patients) == 0 {
				m.Patients = append(m.Patients, Patient{})
			}
			pt := &m.Patients[len(m.Patients)-1]
			pt.Orders = append(pt.Orders, Order{})
		}
		res := Result{
			Record: r, Units: r.Text(5), ReferenceRange: r.Delimiters.Unescape(r.Field(6)),
			Nature: r.Text(8), Status: r.Text(9), Operator: r.Text(11), Instrument: r.Text(14),
		}
		if reps := r.Repeats(3); len(reps) > 0 {
			res.Test = testID(reps[0], r.Delimiters)
		}
		if v := r.Components(4); len(v) > 1 {
			res.Value, res.ValueComponents = v[0], v
		} else {
			res.Value = r.Text(4)
		}
		for _, f := range r.Repeats(7) {
			res.Flags = append(res.Flags, r.Delimiters.Unescape(f))
		}
		var err error
		if res.Seq, err = b.seq(r); err != nil {
			return err
		}
		if res.StartedAt, err = b.time(r, 12); err != nil {
			return err
		}
		if res.CompletedAt, err = b.time(r, 13); err != nil {
			return err
		}
		o := b.lastOrder()
		o.Results = append(o.Results, res)
		b.at = atResult
	case 'C':
		c := Comment{Record: r, Source: r.Text(3), Text: r.Components(4), Type: r.Text(5)}
		var err error
		if c.Seq, err = b.seq(r); err != nil {
			return err
		}
		switch b.at {
		case atMessage:
			m.Comments = append(m.Comments, c)
		case atPatient:
			pt := &m.Patients[len(m.Patients)-1]
			pt.Comments = append(pt.Comments, c)
		case atOrder:
			o := b.lastOrder()
			o.Comments = append(o.Comments, c)
		case atResult:
			res := b.lastResult()
			res.Comments = append(res.Comments, c)
		}
	case 'M':
		switch b.at {
		case atMessage:
			m.Manufacturer = append(m.Manufacturer, r)
		case atPatient:
			pt := &m.Patients[len(m.Patients)-1]
			pt.Manufacturer = append(pt.Manufacturer, r)
		case atOrder:
			o := b.lastOrder()
			o.Manufacturer = append(o.Manufacturer, r)
		case atResult:
			res := b.lastResult()
			res.Manufacturer = append(res.Manufacturer, r)
		}
	case 'Q':
		q := Query{Record: r, StartRange: r.Components(3), EndRange: r.Components(4), Tests: testIDs(r, 5), Status: r.Text(13)}
		var err error
		if q.Seq, err = b.seq(r); err != nil {
			return err
		}
		m.Queries = append(m.Queries, q)
		b.at = atMessage
	case 'S':
		m.Other = append(m.Other, r)
	case 'L':
		t := Terminator{Record: r, Code: r.Text(3)}
		var err error
		if t.Seq, err = b.seq(r); err != nil {
			return err
		}
		m.Terminator = t
		b.end = true
	default:
		if !b.p.Lenient {
			return &RecordError{Record: r.Num, Type: r.Type, Err: ErrUnknownRecord}
		}
		m.Deviations |= DevUnknownRecord
		m.Other = append(m.Other, r)
	}
	return nil
}

func (b *builder) header(r Record) error {
	h := &b.m.Header
	h.Record = r
	h.Delimiters = r.Delimiters
	h.ControlID = r.Text(3)
	h.Sender = r.Components(5)
	if len(h.Sender) > 0 {
		h.SenderName = h.Sender[0]
	}
	if len(h.Sender) > 1 {
		h.SenderVersion = h.Sender[1]
	}
	h.ReceiverID = r.Text(10)
	h.ProcessingID = r.Text(12)
	h.Version = r.Text(13)
	var err error
	h.Timestamp, err = b.time(r, 14)
	return err
}

// implicit accepts (lenient) or rejects (strict) a record without its parent.
func (b *builder) implicit(r Record) error {
	if !b.p.Lenient {
		return &RecordError{Record: r.Num, Type: r.Type, Err: ErrUnexpectedRecord}
	}
	b.m.Deviations |= DevImplicitParent
	return nil
}

func (b *builder) lastOrder() *Order {
	pt := &b.m.Patients[len(b.m.Patients)-1]
	return &pt.Orders[len(pt.Orders)-1]
}

func (b *builder) lastResult() *Result {
	o := b.lastOrder()
	return &o.Results[len(o.Results)-1]
}

// seq parses field 2, the sequence number.
func (b *builder) seq(r Record) (int, error) {
	s := r.Field(2)
	n, ok := 0, s != "" && len(s) <= 9
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= '0' && c <= '9'
		n = n*10 + int(c-'0')
	}
	if ok {
		return n, nil
	}
	if !b.p.Lenient {
		return 0, &RecordError{Record: r.Num, Type: r.Type, Field: 2, Err: ErrSequence}
	}
	b.m.Deviations |= DevBadSequence
	return 0, nil
}

// time parses field n as a timestamp.
func (b *builder) time(r Record, n int) (time.Time, error) {
	t, err := parseTime(r.Text(n), b.p.Location, b.p.Lenient)
	if err == nil {
		return t, nil
	}
	if !b.p.Lenient {
		return time.Time{}, &RecordError{Record: r.Num, Type: r.Type, Field: n, Err: ErrTimestamp}
	}
	b.m.Deviations |= DevBadTimestamp
	return time.Time{}, nil
}

// testIDs reads field n as repeated universal test IDs.
func testIDs(r Record, n int) []TestID {
	reps := r.Repeats(n)
	if len(reps) == 0 {
		return nil
	}
	ids := make([]TestID, 0, len(reps))
	for _, rep := range reps {
		ids = append(ids, testID(rep, r.Delimiters))
	}
	return ids
}

// testID splits one repetition of a universal test ID into its components.
func testID(rep string, d Delimiters) TestID {
	c := splitUnescape(rep, d)
	t := TestID{Universal: c[0]}
	if len(c) > 1 {
		t.Name = c[1]
	}
	if len(c) > 2 {
		t.Type = c[2]
	}
	if len(c) > 3 {
		t.Local = c[3]
	}
	if len(c) > 4 {
		t.Extra = c[4:]
	}
	return t
}
