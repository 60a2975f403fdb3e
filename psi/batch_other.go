//go:build !amd64 || purego

package psi

import "github.com/cloudflare/circl/dh/x25519"

// useVector is false: there is no vector path on this platform.
var useVector = false

func x25519x8(k *x25519.Key, in, out *[BatchLanes]Point) {
	panic("psi: no vector X25519 on this platform")
}

func (h *Hasher) hash8(msgs [][]byte, out []Point) { panic("psi: no vector hashing on this platform") }
