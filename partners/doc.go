// Package partners holds partners, their API keys and roles (admin,
// engineer, analyst, auditor), and collaborations between two partners with
// their rules: one partner proposes, the other approves, and any change of
// rules needs both again.
//
// The operator's admin key creates partners, each with its first admin
// key, and nothing else of theirs: every later key of a partner is
// created, listed and revoked by that partner's own admin. Errors are the
// kinds of package errs (errs.NotFound, errs.Forbidden, errs.InvalidRules...).
package partners
