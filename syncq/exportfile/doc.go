// Package exportfile is the format of USB export files and of their
// receipts: how the documents of a health centre with no link travel to the
// district hub on a stick, and how the hub's answer travels back.
//
// A node seals documents (FHIR Bundles, with the outbox row each came from)
// into one file: gzip-compressed, encrypted to the hub's age X25519 key, and
// signed with the node's Ed25519 key. The file is
//
//	healthpost-export/1\n
//	{header: export id, signer's key, recipient, counts, payload length and SHA-256}\n
//	signature BASE64\n          (Ed25519 over the two lines above)
//	PAYLOAD                     (exactly payload_bytes of age ciphertext)
//
// and the payload, once decrypted, is JSON lines: a manifest naming the
// export and the signer again (so a signature cannot be swapped for
// another node's), then one document per line. The hub signs a receipt
// naming, for each document, the Bundle id and version it stored, or why it
// refused it; the node checks the receipt against the hub's key.
//
// # What this package must never do
//
//   - Never hand out a document of a file that does not check out whole:
//     the signature, the length and digest of the payload, the decryption
//     (authenticated) and every line are checked before the first document
//     is believed, so a corrupted, cut or tampered file is rejected whole.
//   - Never panic or allocate without bound on hostile input: every length
//     is capped, and every failure is an error naming what is wrong.
//   - Never put PHI into an error: messages name lines, counts, lengths and
//     key fingerprints, never a document's content.
package exportfile
