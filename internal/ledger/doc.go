// Package ledger is the privacy budget: every release that spends epsilon
// or delta (a query's answer, a match's noisy cohort size) is a row of the
// budget_ledger table, and a release happens only if its debit fits.
//
// Amounts are exact: epsilon is counted in units of wire.EpsilonUnit
// (1e-6) and delta in units of wire.DeltaUnit (1e-12), summed as integers,
// so ten charges of 0.1 spend exactly 1 and a budget at 0 covers nothing
// more. Charges add up (basic composition). A budget refresh (rule
// budget_refresh) starts a partner's budgets over; it does not undo what
// was released, which CollaborationSpent reports: the exposure of a person
// in the cohort over the collaboration's whole life, both partners and
// matches included.
//
// Debit must run inside store.DB.Write: the check and the insert then
// happen with no other debit between them, and the debit commits with the
// release's audit entry or not at all.
package ledger
