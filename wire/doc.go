// Package wire holds the names of cleanroom's HTTP API: the requests,
// answers and resources that travel as JSON (partners, keys,
// collaborations and their rules, audiences, matches, access requests,
// query answers, budgets, errors), shared by the server and the Go client.
//
// It has no cgo and no server dependencies, so a program scripting the API
// in Go builds without a C toolchain. Rules validate here, the same way on
// both sides; epsilons and deltas are counted in whole units (EpsilonUnit,
// DeltaUnit) so that budgets add up exactly.
package wire
