// Package backup is the online backup's manifest and the offline restore:
// what a backup holds (a snapshot of the database, store.DB.Snapshot; the
// audit signing key if asked; a manifest signed with that key), what it
// claims (the audit head it contains, the ledger's totals, every table's
// rows), and the checks a restore makes before a server may open it.
//
// A backup holds personal data: every party's blinded points and
// attributes. Its files are 0600 and its directories 0700, as the data
// directory's are.
package backup
