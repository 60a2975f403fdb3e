package main

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// swapIn puts the complete backup tmp in to's place. On Linux the swap is
// one atomic exchange: at every instant to is the previous backup or the
// new one, whole.
func swapIn(tmp, to string) error {
	if _, err := os.Stat(to); errors.Is(err, os.ErrNotExist) {
		return os.Rename(tmp, to)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, to, unix.RENAME_EXCHANGE); err != nil {
		return swapByRenames(tmp, to)
	}
	// tmp now holds the previous backup.
	return os.RemoveAll(tmp)
}
