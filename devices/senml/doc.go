// Package senml decodes the JSON payloads that devices publish over MQTT
// into devices.Measurement values: SenML JSON packs (RFC 8428), for devices
// that already speak it, and the healthpost JSON envelope, which carries
// LOINC codes, UCUM units, an optional patient identifier and a message ID.
// README.md in this directory specifies both for device makers, with
// examples; the files in testdata/senml are the shared catalogue of valid
// and hostile payloads used by the tests and as fuzz seeds.
//
// Codes. An envelope reading names its code in "loinc" (System "LN"),
// "mdc" (System "MDC", number or reference id) or "code" (System "", a
// vendor code mapped by the device's code table). A SenML record's code is
// the last component of its resolved name, after the last ':' or '/':
//
//	urn:dev:mac:0024befffe804ff1:8480-6      LOINC 8480-6 (a valid LOINC code, check digit included)
//	urn:dev:mac:0024befffe804ff1:MDC_TEMP_BODY  MDC reference id
//	urn:dev:mac:0024befffe804ff1:mdc:150456  MDC code after an "mdc" component
//	urn:dev:mac:0024befffe804ff1:sys         vendor code "sys", for the device's code table
//
// The base name identifies the device to itself only; the node knows the
// device from its MQTT login, never from the payload.
//
// What this package must never do:
//
//   - guess: a payload that is not exactly SenML or the envelope is refused
//     with an *Error naming the record and field; a code is passed on as
//     sent, and mapping it to LOINC is package vitals' job, which refuses
//     what it does not know;
//   - accept without bound: payloads over MaxPayload, more than MaxRecords
//     records and strings over MaxString are refused whole, never cut;
//     invalid UTF-8 is refused, never replaced;
//   - quote values, patient identifiers or times in an error: errors name
//     fields and records only, so they can be logged and shown (no PHI);
//   - panic, whatever the bytes: both decoders are fuzzed;
//   - log, store or acknowledge anything: it only decodes.
package senml
