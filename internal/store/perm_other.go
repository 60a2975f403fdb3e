//go:build !unix

package store

// ownFilesOnly does nothing where there is no umask; the database's
// files take the data directory's access control.
func ownFilesOnly() {}
