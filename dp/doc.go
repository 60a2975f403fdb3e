// Package dp holds the differential-privacy side of a query: per-user
// bounding, noise and partition selection from google/differential-privacy,
// minimum group sizes, and the budget ledger whose debit commits in the same
// transaction as the released answer and its audit entry.
package dp
