// Package syncq is the node's store-and-forward delivery: it reads due rows
// of the outbox, has each turned into a FHIR R4 document Bundle by an
// injected Mapper, delivers them to one upstream FHIR R4 server (the
// district hub, syncq/hub, or any conformant server) and records what the
// upstream answered. It keeps each patient's documents in order, sends
// alerts before clinical documents before bulk device data, backs off per
// upstream with jitter and honours Retry-After, probes a dead link before
// retrying, respects the time windows and daily byte budget of a metered
// link, and quarantines documents the upstream refuses for good, with the
// server's reason, without blocking the rest. With no link at all, Export
// writes the same documents to a USB export file (syncq/exportfile) for the
// hub, PushExport delivers such a file from any machine with a link, and
// ImportReceipt records what the hub's signed receipt confirms.
//
// # What syncq must never do
//
//   - Never scan domain tables to guess what changed: it reads only the
//     outbox (edge.Store.DueOutbox) and records outcomes through edge
//     (edge.Store.SettleOutbox). The Mapper reads the records a row names.
//   - Never mark a document delivered unless the upstream's answer proves it:
//     a 2xx status and a body (or a read of the Location it named) that is
//     the Bundle sent, with its id, identifier, timestamp and a version. A
//     200 with an error body, garbage, a truncated or slow answer leaves the
//     document pending. A USB export receipt counts only when the hub's
//     receipt key signed it and it names this node's rows.
//   - Never write so that a retry could duplicate: every write is PUT
//     Bundle/{id} or a conditional create/update on the Bundle identifier.
//   - Never log PHI: log lines carry outbox IDs, statuses and issue codes;
//     the server's diagnostics go only to the outbox row and the run history
//     an administrator reads.
//   - Never sleep to wait for time: every wait goes through the injected
//     Clock, so tests run backoff and windows without sleeping.
package syncq
