// Package cohort is the server side of matching: the audiences each party
// uploads (points blinded with its own key, and attributes), the two-party
// match protocol of docs/design.md, the matched cohort analysts query,
// and the statements that delete any of it. Who may delete what, with
// which receipt, is package deletion's: it runs those statements
// (ForgetPeople, DropAudience, DropAudiences, DropMatches) in its own
// transactions.
//
// # What it may reveal
//
// A party learns of the other's data only what the protocol hands over:
// the number of the other's distinct consented points and those points
// blinded with the other's key (pseudorandom without it), and the cohort
// size with Laplace noise (rule match_epsilon, charged to both partners'
// budgets in the transaction that records the cohort). The exact size is
// kept for the operator and never read back by any caller. Every answer
// about one party's people (an upload's sizes, and the counts package
// deletion puts in an access request's answer or a deletion's receipt)
// counts only that party's own data, and a deletion runs the same
// statements, and bumps every cohort's revision, whether or
// not anyone matched: nothing here may depend on whether one person is in
// the other party's data.
//
// # Tables
//
// Bulk data goes straight between Arrow streams and DuckDB tables: an
// upload's IPC stream is validated record by record while DuckDB scans it,
// so no body is ever held in memory, and a table becomes part of the state
// only when a store.DB.Write transaction records it. A cohort, the
// heaviest of them, is built under staging names in a store.DB.Bulk
// transaction outside the write lock (one build per collaboration at a
// time), and the short Write that completes its match renames it into
// place. The names are in tables.go. Every table of people's data either belongs to a live record
// (an audience not deleted; a match waiting or done over live ones) or
// is dropped: a request that fails drops what it built; replacing or
// deleting an audience drops it and its matches' tables in the transaction
// that logs it; Cleanup drops, at start, what an interrupted request left.
//
// # Files
//
//	service.go  the Service, its clock and per-collaboration locks
//	upload.go   audiences: ingestion, body limits, Parquet spooling
//	limits.go   each partner's uploads in progress and spooled bytes; replacing and key checks
//	scan.go     handing an Arrow stream to DuckDB
//	match.go    the protocol: start, points, put points, states
//	points.go   a party's consented points: sorted, numbered, sent
//	tokens.go   the reader that turns re-blinded points into tokens
//	build.go    building the cohort outside the write lock, publishing it
//	migrate.go  older versions' matches brought to named tables
//	tables.go   table names, and the start-up cleanup
//	forget.go   what a deletion drops or deletes, and one person's rows
//	report.go   the consent mix of an audience, for the transparency report
//	schema.go   the tables and columns analysts may name, with types and roles
//
// doc_test.go keeps this list and the package's files the same.
package cohort
