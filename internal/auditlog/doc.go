// Package auditlog is the server's storage and signer of the audit log:
// it appends entries in the database's transactions, lists and exports
// them as each reader may see them, and signs the head with the key kept
// in the data directory. It has no public contract; what readers rely on
// (entries, hashes, exports, verification) is package audit.
package auditlog
