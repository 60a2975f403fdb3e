// Package audit is the append-only, hash-chained log of every action, with a
// head signed by the server (Ed25519) so auditors can verify offline that no
// entry was changed, removed or reordered.
package audit
