// Package store is cleanroom's one DuckDB database: metadata, audiences,
// cohorts, the budget ledger and the audit log live in one file, so that a
// state change, its budget debit and its audit entry commit in one
// transaction, or not at all.
//
// Write transactions go through DB.Write, which serialises them: the audit
// log is a hash chain, and two writers must never read the same head; a
// ledger debit checks the budget and inserts without another debit in
// between, so concurrent charges never overspend. Bulk data is never
// built under that lock: uploads, points, tokens and cohorts (the person
// map and linked tables) are written outside it, in autocommitted statements or a
// DB.Bulk transaction, to tables under names of their own, and become
// visible only when a short Write records (or renames) them; until then
// nothing reads them, and a crash leaves only tables the cohort
// package's start-up cleanup drops. (Deletions do remove rows inside a
// Write: they commit with their receipt, or not at all; and the one-off
// migration of older versions' cohorts to linked tables runs in a Write at
// start-up, before the server serves.)
//
// Migrations are append-only and run once each, with the version bump in
// the same transaction.
//
// Querier is the one interface for code that only reads (*sql.DB, *sql.Tx,
// *sql.Conn); QuoteIdent is the one quoting rule for names in generated
// SQL.
package store
