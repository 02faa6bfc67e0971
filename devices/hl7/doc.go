// Package hl7 decodes HL7 v2.x ORU^R01 result messages sent by patient
// monitors and lab analyzers, frames and unframes them with MLLP, and builds
// the ACK the sender waits for.
//
// It covers v2.3.1 (lab analyzers) to v2.6 (IHE PCD-01 monitors): the
// delimiters declared in MSH-1 and MSH-2 are honoured, HL7 escape sequences
// are decoded, and segments may end in CR, LF or CRLF. ParseORU returns the
// header, the patient identifiers of PID-3 and, per OBR group, every OBX row
// that carries a value, with its codes and units exactly as sent. Mapping
// codes to LOINC and units to UCUM is the job of package devices/vitals, not
// of this package.
//
// What this package must never do:
//
//   - panic, whatever bytes it is given: every parser is fuzzed, and input
//     that is malformed gets a *ParseError naming the segment and field;
//   - allocate without bound: segments, fields and repetitions are capped
//     (MaxSegments, MaxFields, MaxRepetitions) and an MLLP frame is capped by
//     Reader.MaxFrameSize, and going past a cap is an error, not a bigger buffer;
//   - log: it has no logger, so it cannot leak a patient's name or readings
//     into a log. Errors name segments and fields, never their contents;
//   - block on anything but the io.Reader or io.Writer it was handed.
package hl7
