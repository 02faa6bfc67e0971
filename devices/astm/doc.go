// Package astm decodes what clinical laboratory analyzers send over ASTM:
// the E1381 (CLSI LIS01-A2) low-level protocol that frames bytes on a serial
// line or TCP connection, and the E1394 (CLSI LIS02-A2) records (H, P, O, R,
// C, Q, M, L) that those frames carry.
//
// The node is the laboratory information system (LIS). A [Receiver] answers
// an analyzer's ENQ, checks and acknowledges each frame, joins frames into
// records and records into messages, and hands every complete message (H
// through L) to a [Handler]. A [Sender] plays the analyzer's side, for the
// device simulator and for tests, and for a LIS that sends orders back.
// [ParseMessage] decodes record text on its own, for example from a file.
//
// Real analyzers break the standard: frames far over 247 bytes, no frame
// numbers, no checksum, lowercase checksums, LF or CR alone after a frame,
// no ETX, records separated by LF. Strict mode (the zero value of the
// Lenient fields) rejects such frames with NAK; lenient mode accepts what it
// can still understand and records each tolerance as a [Deviation], so a
// device profile can switch it per analyzer. [Deviation] lists exactly what
// lenient mode tolerates.
//
// The package exposes values as the analyzer sent them: test codes, units,
// reference ranges and flags are not mapped to LOINC or UCUM here (that is
// devices/vitals), and bytes are not converted between character sets.
//
// What this package must never do:
//
//   - Never acknowledge a message before the Handler has said it is stored.
//     The ACK for the frame that completes a message is written only after
//     the Handler returned nil; on an error that frame is NAKed and the
//     analyzer retransmits it.
//   - Never panic, whatever bytes arrive. Bad input becomes an error value
//     naming the record and field, or a NAK, and every buffer is capped by
//     [Limits] so hostile input cannot grow memory without bound.
//   - Never log. Messages carry patient data (PHI); errors name record
//     numbers and field numbers, never field contents. Counters are in
//     [Stats] and undeliverable text goes to the caller's OnDiscard hook,
//     so the caller decides what to keep and where.
package astm
