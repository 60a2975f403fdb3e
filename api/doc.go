// Package api is cleanroom's HTTP interface (echo). One file per concern:
//
//	server.go          wiring, lifecycle, request bodies, health
//	routes.go          the route table: every route, its roles and scope, its contract
//	auth.go            authentication and the one access check (guard)
//	errors.go          the one mapping from errors to codes and statuses
//	openapi.go         the OpenAPI document, made from the table and the wire types
//	metrics.go         Prometheus metrics
//	partners.go        partners and keys
//	collaborations.go  collaborations and their rules
//	audiences.go       uploads and audience lists
//	matches.go         the match protocol's routes
//	deletions.go       deletions and receipts
//	access.go          access requests and the transparency report
//	query.go           queries and budgets
//	audit.go           the audit log, its head and export
//
// Handlers run no SQL of their own: they call partners, cohort, query,
// ledger and audit. Errors are {"error": {"code", "message", "position"?}}.
// No package imports api but the command.
package api
