// Package hub is `healthpost hub`, the district server that nodes deliver
// to: a subset of a FHIR R4 server for document Bundles, stored in its own
// SQLite file. It creates and updates Bundles by id (PUT), creates them
// conditionally on their identifier (POST with If-None-Exist, PUT
// Bundle?identifier=), takes batch Bundles of such writes, reads them (also
// by version), and searches them by identifier and by patient. Every
// rejection is an OperationOutcome. Each node authenticates with a bearer
// token (`healthpost hub token add NODE`) or a client certificate.
//
// Writes are idempotent on the Bundle identifier: the same identifier with
// the same content (ignoring meta) is the same id and version, however often
// it is sent, and an older version sent again is answered with that version;
// new content for the same document is a new version. The order in which
// versions arrive is recorded (Arrivals), which is how tests prove
// per-patient order end to end.
//
// Health centres without a link send USB export files (syncq/exportfile),
// by upload (POST [base]/$export-file) or through an inbox directory; the
// hub stores their Bundles exactly as a node's PUTs and signs a receipt.
//
// # What the hub must never do
//
//   - Never answer 2xx before the write is durable (synchronous=FULL commit):
//     a node marks a document delivered on that answer.
//   - Never store a Bundle that fails the structural checks (Validate): the
//     answer is a 4xx OperationOutcome naming each problem, and nothing is
//     written.
//   - Never let one node overwrite another node's documents.
//   - Never store anything of an export file that does not check out whole:
//     signed by a registered node, its payload's length and digest as
//     signed, decrypted with this hub's key, every line readable.
//   - Never log PHI: log lines carry Bundle ids, node names and statuses.
//
// The store is behind Store's methods so that the hub can grow onto
// PostgreSQL and several instances (DESIGN.md, "Where it outgrows one
// machine"), and toward the ABDM gateway, without the HTTP side changing.
package hub
