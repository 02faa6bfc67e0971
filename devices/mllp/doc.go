// Package mllp receives HL7 v2 ORU^R01 results framed with MLLP from
// patient monitors and analyzers: a [Session] speaks the protocol with one
// device on one byte stream (a TCP connection, or a serial port that
// package devices/serial hands it), and a [Server] is the node's subsystem
// that listens on TCP for the monitors on the LAN. A [Client] plays the
// device's side, for the simulator and the tests.
//
// One device per listen address. Each mllp device in the registry has its
// own Settings.Listen, and whatever connects there is that device. Telling
// devices apart by MSH-3/MSH-4 on a shared port was considered and refused:
// those fields are free text a device sets (two monitors of one model send
// the same), are only readable once a message parsed, and a match on them
// would be a guess about which device measured a patient.
//
// What this package must never do:
//
//   - acknowledge a message before its readings committed: AA is written
//     only after devices.Ingestor.Ingest returned nil; a message that could
//     not be read, or held nothing storable, gets AE and is kept raw; a
//     store failure gets AR so the device sends it again;
//   - stop a message half way on shutdown: Close stops reading, lets a
//     message being stored finish and acknowledges it, then closes;
//   - trust a connection: frames are capped (MaxFrameSize), connections per
//     device are capped (MaxConns), a silent connection is closed
//     (IdleTimeout), bytes outside frames are counted and kept raw;
//   - log PHI: logs and device problems name devices, counts and HL7
//     segment and field numbers, never field contents.
package mllp
