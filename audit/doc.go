// Package audit is the public side of the append-only, hash-chained log of
// every action, whose head the server signs (Ed25519): entries and their
// hashes, the actions, the export format, verification of an export and
// of deletion receipts, and the public key's text form. Auditors and the
// Go client use it to verify offline that no entry was changed, removed or
// reordered. It needs no database: the server stores, exports and signs
// the log in internal/auditlog.
package audit
