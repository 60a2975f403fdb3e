// Package bench holds cleanroom's reproducible benchmarks, the figures
// bench/REPORT.md records. Each reports its figures next to a baseline
// measured in the same run (the primitive's own rate, raw DuckDB, the same
// cryptography without a server), so results compare across machines as
// ratios, and each checks its answer: a fast wrong result is no result.
//
//	RunPSI        both parties' whole PSI in one process, against the
//	              arithmetic's speed limit
//	RunIntersect  token intersection alone
//	RunMatch      the service flow against a server process on loopback
//	RunQuery      a grouped private query against raw DuckDB, and through
//	              the HTTP API
//	RunSoak       a server process under mixed load, killed and restarted
//	              at random, with the ledger, the log, the tables and its
//	              memory checked after each restart
//
// The benchmarks reach a server only through its HTTP client, so bench
// never links the API: RunMatch starts the command as its own process
// (whose memory is then measured alone), and RunQuery is handed a Serve
// function by the command. They read the store directly only where the
// API rightly refuses: RunMatch reads the exact cohort size, which only
// the operator's database holds, to check the match found every person,
// and counts every table's rows and the file's size; RunQuery builds its
// cohort in the store; RunSoak reads a killed server's database, read
// only, to check what it holds against what clients were told.
package bench
