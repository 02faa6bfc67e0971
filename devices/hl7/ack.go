package hl7

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AckCode is MSA-1, the acknowledgment code (original acknowledgment mode).
type AckCode string

// Acknowledgment codes. Send AA only after the readings are committed.
const (
	AckAccept AckCode = "AA" // accepted and stored
	AckError  AckCode = "AE" // content error: the sender should correct and resend
	AckReject AckCode = "AR" // rejected as a whole: unreadable MSH, wrong message type or version
)

// DefaultACKVersion is the MSH-12 an ACK declares when the original's
// version could not be read: the oldest version this package reads, as the
// oldest senders are the least forgiving.
const DefaultACKVersion = "2.3.1"

// ackTextMax is the length of MSA-3 (ST, 80 characters).
const ackTextMax = 80

// ACK says how to acknowledge one received message.
type ACK struct {
	Code AckCode // MSA-1; empty means AckCodeFor(Err)

	// MSH-10 and MSH-7 of the ACK itself. An empty ControlID becomes "A"
	// followed by the original's control ID; a zero Time becomes time.Now().
	ControlID string
	Time      time.Time

	// Text goes into MSA-3 (cut to 80 characters) and, for AE and AR, into
	// ERR as diagnostic information. It is sent to the device, so it must not
	// carry PHI. When empty and Err is a *ParseError, the error's text is used
	// (it names segments and fields, never their contents); for any other
	// error only the HL7 error-code text is sent.
	Text string

	// Err is the error behind an AE or AR. A *ParseError gives the ERR
	// segment its location and the HL7 table 0357 code.
	Err error

	// Application and Facility name this node. They become the ACK's sender
	// (MSH-3, MSH-4) when the original left its receiver (MSH-5, MSH-6) empty
	// or could not be read.
	Application HD
	Facility    HD
}

// BuildACK builds the acknowledgment for a message whose header is orig. The
// ACK's MSH swaps the original's sender and receiver and keeps its delimiters,
// processing ID and version; MSA-2 is the original MSH-10. For AE and AR it
// adds an ERR segment, in the v2.5+ layout (ERR-2 location, ERR-3 code,
// ERR-4 severity) or the older ERR-1 layout, following the version.
//
// orig may be nil when the message was too broken for ParseHeader: the ACK
// then uses the default delimiters, DefaultACKVersion and an empty MSA-2.
// Segments end in CR; frame the result with WriteFrame.
func BuildACK(orig *Header, a ACK) []byte {
	var h Header
	if orig != nil {
		h = *orig
	}
	d := h.Delimiters
	if _, ok := parseDelimiters(d.FieldSep, d.encodingCharacters()); !ok || d.FieldSep == 0 {
		d = DefaultDelimiters
	}
	if a.Code == "" {
		a.Code = AckCodeFor(a.Err)
	}
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	if a.ControlID == "" {
		if h.ControlID != "" {
			a.ControlID = "A" + h.ControlID
		} else {
			a.ControlID = "A" + a.Time.UTC().Format("20060102150405.000000")
		}
	}
	version := h.Version
	if version == "" {
		version = DefaultACKVersion
	}
	processing := h.ProcessingID
	if processing == "" {
		processing = "P"
	}
	sender, facility := h.ReceivingApplication, h.ReceivingFacility
	if sender.IsZero() {
		sender = a.Application
	}
	if facility.IsZero() {
		facility = a.Facility
	}
	msgType := "ACK"
	if h.TriggerEvent != "" {
		msgType += string(d.ComponentSep) + d.Escape(h.TriggerEvent)
		if h.MessageStructure != "" || versionAtLeast(version, 2, 5) {
			msgType += string(d.ComponentSep) + "ACK"
		}
	}

	code, codeText := errorCode(a.Err)
	if a.Err == nil && a.Code != AckAccept {
		code, codeText = "207", "Application internal error"
	}
	var pe *ParseError
	errors.As(a.Err, &pe)
	text := a.Text
	if text == "" && a.Code != AckAccept {
		if pe != nil {
			text = pe.Error()
		} else {
			text = codeText
		}
	}

	var b strings.Builder
	f := func(s string) { b.WriteByte(d.FieldSep); b.WriteString(s) }
	b.WriteString("MSH")
	f(d.encodingCharacters())
	f(d.hdString(sender))
	f(d.hdString(facility))
	f(d.hdString(h.SendingApplication))
	f(d.hdString(h.SendingFacility))
	f(FormatTimestamp(a.Time))
	f("")
	f(msgType)
	f(d.Escape(a.ControlID))
	f(d.Escape(processing))
	f(d.Escape(version))
	b.WriteByte('\r')

	b.WriteString("MSA")
	f(d.Escape(string(a.Code)))
	f(d.Escape(h.ControlID))
	if text != "" {
		f(d.Escape(truncate(text, ackTextMax)))
	}
	b.WriteByte('\r')

	if a.Code != AckAccept {
		var loc [3]string
		if pe != nil && pe.Segment > 0 && pe.SegmentID != "" {
			loc[0] = pe.SegmentID
			loc[1] = strconv.Itoa(max(pe.Occurrence, 1))
			if pe.Field > 0 {
				loc[2] = strconv.Itoa(pe.Field)
			}
		}
		b.WriteString("ERR")
		if versionAtLeast(version, 2, 5) {
			// ERR-2 location, ERR-3 code, ERR-4 severity, ERR-7 diagnostics.
			f("")
			f(d.join(d.ComponentSep, loc[:]...))
			f(d.join(d.ComponentSep, code, codeText, "HL70357"))
			f("E")
			f("")
			f("")
			f(d.Escape(text))
		} else {
			// ERR-1: segment^sequence^field^code&text&system.
			errCode := d.Escape(code)
			if d.SubcomponentSep != 0 {
				errCode = d.join(d.SubcomponentSep, code, codeText, "HL70357")
			}
			c := string(d.ComponentSep)
			f(d.Escape(loc[0]) + c + d.Escape(loc[1]) + c + d.Escape(loc[2]) + c + errCode)
		}
		b.WriteByte('\r')
	}
	return []byte(b.String())
}

// join escapes each part and joins them with sep, dropping empty trailing parts.
func (d Delimiters) join(sep byte, parts ...string) string {
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(sep)
		}
		b.WriteString(d.Escape(p))
	}
	return b.String()
}

func (d Delimiters) hdString(h HD) string {
	return d.join(d.ComponentSep, h.NamespaceID, h.UniversalID, h.UniversalIDType)
}

// versionAtLeast reports whether an HL7 version string ("2.3.1", "2.6") is
// at least major.minor. Unreadable versions count as old.
func versionAtLeast(v string, major, minor int) bool {
	ma, rest, _ := strings.Cut(v, ".")
	mi, _, _ := strings.Cut(rest, ".")
	x, err1 := strconv.Atoi(ma)
	y, err2 := strconv.Atoi(mi)
	if err1 != nil || err2 != nil {
		return false
	}
	return x > major || x == major && y >= minor
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
