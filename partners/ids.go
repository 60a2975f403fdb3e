package partners

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func randomID(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return prefix + strings.ToLower(b32.EncodeToString(b))
}

// NewID returns a random identifier with a type prefix ("c_", "a_"...).
func NewID(prefix string) string { return randomID(prefix, 10) }
