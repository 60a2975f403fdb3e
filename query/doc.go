// Package query turns an analyst's SQL into an answer that is safe to
// release: it parses the text with a real SQL parser, accepts only the
// subset of DESIGN.md ("Query semantics"), builds a typed plan, checks it
// against the collaboration's rules, and generates the SQL that DuckDB runs.
// The analyst's text is never executed. It also builds matched cohorts.
//
// The query engine knows nothing of HTTP; it calls package dp for noise,
// partition selection, thresholds and the budget ledger.
package query
