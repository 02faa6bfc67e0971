// Package serial reads medical devices on RS-232 and USB-serial ports. A
// [Conn] wraps an open port with read deadlines and watches the port itself:
// tarm/serial, behind the small [Opener] interface, does not report an
// unplugged USB adapter from Read (tarm/serial#100), so a Conn also checks
// the device node (a vanished or replaced node is [ErrUnplugged]), notices a
// line that hung up (reads that end at once with nothing, [ErrHungUp]) and a
// port that stayed silent too long ([ErrSilent]). [Ports] is the node's
// subsystem: one runner per enabled serial device, which opens the port,
// speaks the device's codec (HL7 over MLLP framing, ASTM E1381/E1394,
// line-oriented ASCII, or auto-detection of the three from the first bytes),
// and reopens the port with capped exponential backoff when it goes away.
//
// What this package must never do:
//
//   - acknowledge before commit: an HL7 AA and the ASTM ACK of the frame
//     that completes a message are written only after devices.Ingestor.Ingest
//     returned nil; on shutdown a message being stored is finished and
//     acknowledged, and nothing more is read;
//   - stop the node because of a device: a missing port, a wrong setting, an
//     unplugged cable or a stream of garbage becomes a status sentence naming
//     the device, the port and the fix, a counter and a raw frame kept for
//     inspection, never an error from Open or a panic;
//   - guess: the codec is the device's setting, and auto-detection picks one
//     only from an unambiguous first byte (0x0B MLLP, ENQ/STX ASTM, printable
//     text for lines);
//   - log PHI: logs carry device names, ports, counts and protocol
//     positions, never values, names or identifiers from the messages.
package serial
