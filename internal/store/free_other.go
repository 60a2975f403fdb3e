//go:build !unix

package store

import "errors"

// FreeBytes cannot tell on this system.
func FreeBytes(dir string) (uint64, error) {
	return 0, errors.New("store: free space is unknown on this system")
}
