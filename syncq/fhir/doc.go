// Package fhir turns one outbox row of the node into one FHIR R4 document
// Bundle that follows the NRCeS "FHIR Implementation Guide for ABDM" (IG
// package ndhm.in 6.5.0): OPConsultRecord, PrescriptionRecord,
// WellnessRecord, ImmunizationRecord and DiagnosticReportRecord. The
// delivery engine in syncq calls BuildDocument with the outbox row and the
// records it names, and sends the bytes it gets back; nothing else in the
// node speaks FHIR.
//
// # What this package must never do
//
//   - Never read the database, the clock, the network or the file system.
//     BuildDocument is a pure function of its input: the same input gives
//     byte-identical JSON on every call, on every machine and in every time
//     zone. Every time in a bundle comes from the input (the outbox row's
//     commit time, the encounter's and observations' times), never from
//     time.Now; every id is a UUIDv5 of node ids, never a random one.
//   - Never invent data that is not in the record. Where the IG wants an
//     element the node does not hold (a SNOMED code for a free-text
//     complaint, a dose for a drug line written without one, a SNOMED code
//     for a lab order or for Vitamin A),
//     the element carries the text the record has, or FHIR's
//     data-absent-reason, or the document is refused with an error; it is
//     never filled with a plausible guess. The one translation made is of
//     codes, and each is documented where it is made (59408-5 also coded as
//     the IG's 2708-6; systolic and diastolic taken at the same moment as
//     one 85354-9 panel).
//   - Never put PHI in an error. Errors name the field and the rule broken
//     (patient.name: invalid text; observation 2: unit does not match its
//     code), never a name, number, ABHA, note, code or value, so the engine
//     may log them and show them to a district admin as they are. This
//     package does not log at all.
//   - Never panic on input: any string (empty, huge, invalid UTF-8) gives a
//     bundle or an error.
//
// # Where the codes come from
//
// Profile URLs, fixed codes and identifier types are constants in codes.go,
// each with the IG file it was read from. LOINC displays and canonical UCUM
// units of measurements come from devices/vitals, and those of lab tests,
// their answers and the vaccines' SNOMED CT codes from edge/catalogue, so
// there is one list of each in the node; the tests check them against the
// IG's value sets and examples.
//
// # Identity and versions
//
// A document's identity is its outbox key without the version suffix
// (OPConsultRecord/encounter/<id>). Bundle.id, Bundle.identifier and
// Composition.identifier are UUIDv5 names of that identity, so a retry of the
// same row, and a later amendment of the same encounter, carry the same
// identifiers; an amendment bumps meta.versionId and sets Composition.status
// to "amended". When an amendment removes everything a document held (the
// last drug line, the last measurement, the last vaccine of a visit that is
// not an immunization visit, the last lab order and the referral of one
// that is), the document is withdrawn rather
// than dropped: it goes out once more at the new version with the content it
// last had, Composition.status "entered-in-error" and every entry marked so
// (DocumentInput.Retracted). Every other resource's id is a UUIDv5 of the node id of the
// record it comes from, so the same patient, practitioner or observation has
// the same id in every document.
package fhir
