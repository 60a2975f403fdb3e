// Package api is cleanroom's HTTP interface (echo) and the server's one
// bootstrap: New opens the store (unless Config.DB is given), loads the
// signing key and builds each service once; Serve (or Run, which does
// both) serves the route table until its context ends.
//
// What callers may rely on (the command is the only one; nothing else
// imports api):
//   - Every route is in routes.go's table with the roles that may call
//     it; guard (auth.go) enforces them in one place, and the served
//     OpenAPI document is made from the same table and the wire types.
//   - Every error answers {"error": {"code", "message", "position"?}};
//     the code is the kind's (internal/errs, the one mapping) and the
//     status is the code's (wire.ErrorCode.Status). An error of no kind
//     is a 500 whose cause is logged, never shown.
//   - Handlers parse and render: they run no SQL of their own and call the
//     services (partners, cohort, deletion, query, report, auditlog).
//   - A bad key is 401 with nothing about which keys exist; a database
//     failure while checking one is a logged 500.
//   - Serve stops gracefully: requests in flight get Config.ShutdownTimeout,
//     and the retention janitor finishes its round before the database
//     closes.
package api
