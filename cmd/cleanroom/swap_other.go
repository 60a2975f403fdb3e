//go:build !linux

package main

import (
	"errors"
	"os"
)

// swapIn puts the complete backup tmp in to's place, by two renames.
func swapIn(tmp, to string) error {
	if _, err := os.Stat(to); errors.Is(err, os.ErrNotExist) {
		return os.Rename(tmp, to)
	}
	return swapByRenames(tmp, to)
}
