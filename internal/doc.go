// Package internal holds the server's packages, which no one outside this
// module may import: api (HTTP), partners, cohort, query and ledger (the
// services), errs (the error taxonomy), store (the database) and
// auditlog (the audit log's storage and signer). Its test
// keeps their dependencies flowing one way, as docs/design.md draws them.
package internal
