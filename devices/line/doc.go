// Package line reads devices that print one reading per line of ASCII text:
// weighing scales ("ST,GS,+  62.40kg"), some blood-pressure monitors,
// thermometers and pulse oximeters. A [Reader] cuts a byte stream into lines
// ending in CR, LF or CR LF, with a cap on line length; a [Decoder] applies
// the device's configured pattern (a regular expression with named groups
// value, and optionally unit, code and patient) and turns a matching line
// into a devices.Measurement.
//
// The package knows no device by name: what a line means is entirely the
// device's settings (devices.Settings Pattern, Code, Unit, Codes). Lines that
// do not match are errors for the caller to count and keep raw.
//
// What this package must never do:
//
//   - guess: a line that does not match the pattern, is not valid UTF-8,
//     or matches without a value is an error, never a best-effort reading;
//     the value is passed on as printed (only a sign separated from its
//     digits by padding is joined) for devices/vitals to judge;
//   - allocate without bound: a line longer than Reader.MaxLine is cut and
//     reported with ErrLineTooLong, and the rest of it is skipped;
//   - panic on any input (the reader and the decoder are fuzzed);
//   - log or store anything: it has no logger and no store; the caller
//     decides what is kept and what is counted.
package line
