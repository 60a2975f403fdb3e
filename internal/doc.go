// Package internal holds what has no public contract: the services'
// storage and helpers (cohort, deletion, ledger, report), the error model
// (errs), the database (store), the audit log's storage and signer
// (auditlog) and the console's assets (console). Its test keeps every
// package's imports to those docs/design.md allows, flowing one way.
package internal
