// Package partners holds partners, their API keys and roles (admin,
// engineer, analyst, auditor), and collaborations between two partners with
// their rules: one partner proposes, the other approves, and any change of
// rules needs both again.
//
// The operator's admin key creates partners, each with its first admin
// key, and nothing else of theirs: every later key of a partner is
// created, listed and revoked by that partner's own admin.
//
// What callers may rely on:
//   - Every change is a method of Service (whose clock stamps it), takes
//     the caller's *sql.Tx (store.DB.Write) and writes its audit entry in
//     it, so a change and its entry commit together or not at all; reads
//     are functions over any store.Querier.
//   - A refusal is an *errs.Error of a kind (errs.NotFound, errs.Forbidden,
//     errs.Conflict, errs.Invalid, errs.InvalidRules) whose message says
//     what to do; a collaboration a key's partner is not in is NotFound,
//     never Forbidden, so outsiders learn nothing of it.
//   - Authenticate answers every bad key with the one errs.Unauthorized
//     and returns a failure of the database as it is, never as a bad key.
//   - An API key's secret is returned once, at creation; only its SHA-256
//     is stored.
package partners
