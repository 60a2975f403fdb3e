// Package dp is the differential-privacy math of a query's release, and
// nothing else: no SQL, no storage, no HTTP. Given each group's exact
// statistics after per-user bounding (done in DuckDB by the query engine),
// ReleaseGroups protects the group keys with partition selection, adds
// Laplace or Gaussian noise from google/differential-privacy to the user
// count and each sum or average, drops groups whose noisy count is under
// min_group_users, and states the epsilon and delta it spent and the 95%
// confidence intervals of what it released.
//
// Privacy: a release is (epsilon, delta)-differentially private with
// respect to adding or removing one person, provided each person
// contributes to at most MaxGroups groups with values inside the bounds;
// the caller enforces both. What it spends is charged to the querying
// partner's budget by the server's ledger (internal/ledger) in the same
// transaction as the answer and its audit entry.
package dp
