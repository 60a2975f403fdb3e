//go:build unix

package store

import "syscall"

// ownFilesOnly makes the files the process creates from now on its own
// alone (umask 077). DuckDB creates the database, its write-ahead log
// (again after every checkpoint) and its spill files with the default
// mode, 0644 under the usual umask: readable by every user of the
// machine when the operator made the data directory 0755.
func ownFilesOnly() { syscall.Umask(0o077) }
