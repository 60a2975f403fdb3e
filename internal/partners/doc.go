// Package partners holds partners, their API keys and roles (admin,
// engineer, analyst, auditor), and collaborations between two partners with
// their rules: one partner proposes, the other approves, and any change of
// rules needs both again.
package partners
