//go:build amd64 && !purego

package psi

import (
	"github.com/cloudflare/circl/dh/x25519"
	"golang.org/x/sys/cpu"
)

//go:generate sh -c "go run ./internal/gen/batch_asm.go > batch_amd64.s"

// useVector is whether the eight-lane ladder runs; tests switch it off to
// run the fallback.
var useVector = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512IFMA

// fe8 is eight field elements, limb-major: fe8[i][lane] is limb i of lane.
type fe8 [5][8]uint64

// ladderState8 is the ladder's state and scratch, in the order of the
// generator's slot table.
type ladderState8 struct {
	x1, x2, z2, x3, z3               fe8
	a, b, c, d, aa, bb, e, da, cb, t fe8
}

// ladderStep8 swaps (x2, z2) and (x3, z3) if swap is 1, then runs one
// ladder step in every lane. swap must be 0 or 1.
//
//go:noescape
func ladderStep8(s *ladderState8, swap uint64)

// mul8 sets dst = a*b lane by lane; dst may alias a or b.
//
//go:noescape
func mul8(dst, a, b *fe8)

// sqr8 sets dst = a^(2^n) lane by lane, n >= 1; dst may alias a.
//
//go:noescape
func sqr8(dst, a *fe8, n uint64)

// x25519x8 computes X25519(k, in[j]) for the eight lanes: RFC 7748's
// ladder, with the scalar clamped as there. The scalar's bits only choose
// the swap mask; every lane runs the same instructions.
func x25519x8(k *x25519.Key, in, out *[BatchLanes]Point) {
	var s ladderState8
	e := *k
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64
	for j := range in {
		u := unpack(&in[j])
		for i := 0; i < 5; i++ {
			s.x1[i][j] = u[i]
			s.x3[i][j] = u[i]
		}
		s.x2[0][j] = 1
		s.z3[0][j] = 1
	}
	swap := uint64(0)
	for t := 254; t >= 0; t-- {
		bit := uint64(e[t>>3]>>(t&7)) & 1
		swap ^= bit
		ladderStep8(&s, swap)
		swap = bit
	}
	m := -swap
	for i := 0; i < 5; i++ {
		for j := 0; j < BatchLanes; j++ {
			d := m & (s.x2[i][j] ^ s.x3[i][j])
			s.x2[i][j] ^= d
			d = m & (s.z2[i][j] ^ s.z3[i][j])
			s.z2[i][j] ^= d
		}
	}
	var inv fe8
	invert8(&inv, &s.z2)
	mul8(&s.x2, &s.x2, &inv)
	for j := range out {
		var l fe51
		for i := 0; i < 5; i++ {
			l[i] = s.x2[i][j]
		}
		out[j] = pack(l)
	}
	wipe8(&s)
}

// invert8 sets dst = z^(p-2) lane by lane (0 for 0), by the usual addition
// chain: 254 squarings and 11 multiplications, the same for every input.
func invert8(dst, z *fe8) {
	var z2, z9, z11, z2_5_0, z2_10_0, z2_20_0, z2_50_0, z2_100_0, t fe8
	sqr8(&z2, z, 1)             // 2
	sqr8(&t, &z2, 2)            // 8
	mul8(&z9, &t, z)            // 9
	mul8(&z11, &z9, &z2)        // 11
	sqr8(&t, &z11, 1)           // 22
	mul8(&z2_5_0, &t, &z9)      // 2^5 - 1
	sqr8(&t, &z2_5_0, 5)        // 2^10 - 2^5
	mul8(&z2_10_0, &t, &z2_5_0) // 2^10 - 1
	sqr8(&t, &z2_10_0, 10)
	mul8(&z2_20_0, &t, &z2_10_0) // 2^20 - 1
	sqr8(&t, &z2_20_0, 20)
	mul8(&t, &t, &z2_20_0) // 2^40 - 1
	sqr8(&t, &t, 10)
	mul8(&z2_50_0, &t, &z2_10_0) // 2^50 - 1
	sqr8(&t, &z2_50_0, 50)
	mul8(&z2_100_0, &t, &z2_50_0) // 2^100 - 1
	sqr8(&t, &z2_100_0, 100)
	mul8(&t, &t, &z2_100_0) // 2^200 - 1
	sqr8(&t, &t, 50)
	mul8(&t, &t, &z2_50_0) // 2^250 - 1
	sqr8(&t, &t, 5)        // 2^255 - 2^5
	mul8(dst, &t, &z11)    // 2^255 - 21 = p - 2
}

// wipe8 clears the ladder's state, which holds multiples of the points by
// prefixes of the secret scalar.
func wipe8(s *ladderState8) { *s = ladderState8{} }
