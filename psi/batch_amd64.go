//go:build amd64 && !purego

package psi

import (
	"filippo.io/edwards25519/field"
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

// invert8 sets dst = z^(p-2) lane by lane (0 for 0): 254 squarings and 11
// multiplications, the same for every input.
func invert8(dst, z *fe8) {
	var t, z11 fe8
	chain250(&t, &z11, z)
	sqr8(&t, &t, 5)     // 2^255 - 2^5
	mul8(dst, &t, &z11) // 2^255 - 21 = p - 2
}

// pow22523x8 sets dst = z^((p-5)/8) lane by lane, the exponentiation of a
// square root.
func pow22523x8(dst, z *fe8) {
	var t, z11 fe8
	chain250(&t, &z11, z)
	sqr8(&t, &t, 2)  // 2^252 - 4
	mul8(dst, &t, z) // 2^252 - 3 = (p - 5)/8
}

// chain250 sets t = z^(2^250 - 1) and z11 = z^11, the common part of the
// usual addition chains for inversion and square roots.
func chain250(t, z11, z *fe8) {
	var z2, z9, z2_5_0, z2_10_0, z2_20_0, z2_50_0, z2_100_0 fe8
	sqr8(&z2, z, 1)             // 2
	sqr8(t, &z2, 2)             // 8
	mul8(&z9, t, z)             // 9
	mul8(z11, &z9, &z2)         // 11
	sqr8(t, z11, 1)             // 22
	mul8(&z2_5_0, t, &z9)       // 2^5 - 1
	sqr8(t, &z2_5_0, 5)         // 2^10 - 2^5
	mul8(&z2_10_0, t, &z2_5_0)  // 2^10 - 1
	sqr8(t, &z2_10_0, 10)       // 2^20 - 2^10
	mul8(&z2_20_0, t, &z2_10_0) // 2^20 - 1
	sqr8(t, &z2_20_0, 20)       // 2^40 - 2^20
	mul8(t, t, &z2_20_0)        // 2^40 - 1
	sqr8(t, t, 10)              // 2^50 - 2^10
	mul8(&z2_50_0, t, &z2_10_0) // 2^50 - 1
	sqr8(t, &z2_50_0, 50)       // 2^100 - 2^50
	mul8(&z2_100_0, t, &z2_50_0)
	sqr8(t, &z2_100_0, 100) // 2^200 - 2^100
	mul8(t, t, &z2_100_0)   // 2^200 - 1
	sqr8(t, t, 50)          // 2^250 - 2^50
	mul8(t, t, &z2_50_0)    // 2^250 - 1
}

// setLane and lane move one element between filippo's field and a lane.
func setLane(v *fe8, j int, e *field.Element) {
	u := unpack((*Point)(e.Bytes()))
	for i := 0; i < 5; i++ {
		v[i][j] = u[i]
	}
}

func lane(v *fe8, j int, e *field.Element) {
	var l fe51
	for i := 0; i < 5; i++ {
		l[i] = v[i][j]
	}
	p := pack(l)
	if _, err := e.SetBytes(p[:]); err != nil {
		panic("psi: 32-byte field element rejected")
	}
}

// sqrtRatio8 is field.Element.SqrtRatio for eight inputs, with the
// exponentiation in the vector lanes; the rest is filippo's algorithm, step
// for step, in constant time.
func sqrtRatio8(r *[BatchLanes]field.Element, wasSquare *[BatchLanes]int, m *[BatchLanes]elligator) {
	var uv3 [BatchLanes]field.Element
	var w fe8
	for j := range m {
		u, v := &m[j].gx1, &m[j].gxd
		var v2, t, uv7 field.Element
		v2.Square(v)
		uv3[j].Multiply(u, t.Multiply(&v2, v))
		uv7.Multiply(&uv3[j], t.Square(&v2))
		setLane(&w, j, &uv7)
	}
	pow22523x8(&w, &w)
	for j := range m {
		u, v := &m[j].gx1, &m[j].gxd
		var rr, t, check, uNeg, rPrime field.Element
		lane(&w, j, &t)
		rr.Multiply(&uv3[j], &t)
		check.Multiply(v, t.Square(&rr))
		uNeg.Negate(u)
		correct := check.Equal(u)
		flipped := check.Equal(&uNeg)
		flippedI := check.Equal(t.Multiply(&uNeg, sqrtM1))
		rPrime.Multiply(&rr, sqrtM1)
		rr.Select(&rPrime, &rr, flipped|flippedI)
		r[j].Absolute(&rr)
		wasSquare[j] = correct | flipped
	}
}

// hash8 sets out[j] = h.Hash(msgs[j]) for up to eight messages: the square
// roots of the sixteen Elligator maps and the eight inversions of the
// Montgomery u-coordinates run in the lanes. Padding lanes repeat the
// last message and are dropped.
func (h *Hasher) hash8(msgs [][]byte, out []Point) {
	var u [2][BatchLanes]field.Element
	var m [2][BatchLanes]elligator
	for j := 0; j < BatchLanes; j++ {
		h.hashToField(msgs[min(j, len(msgs)-1)], &u[0][j], &u[1][j])
		m[0][j].start(&u[0][j])
		m[1][j].start(&u[1][j])
	}
	var r [2][BatchLanes]field.Element
	var sq [2][BatchLanes]int
	sqrtRatio8(&r[0], &sq[0], &m[0])
	sqrtRatio8(&r[1], &sq[1], &m[1])
	// u = (1 + y)/(1 - y) with y = Y/Z is (Z + Y)/(Z - Y): one inversion,
	// of 0 for the identity, which gives u = 0 as BytesMontgomery does.
	var num, den fe8
	for j := 0; j < BatchLanes; j++ {
		q := m[0][j].finish(&u[0][j], &r[0][j], sq[0][j])
		q.Add(q, m[1][j].finish(&u[1][j], &r[1][j], sq[1][j]))
		q.MultByCofactor(q)
		_, Y, Z, _ := q.ExtendedCoordinates()
		var t field.Element
		setLane(&num, j, t.Add(Z, Y))
		setLane(&den, j, t.Subtract(Z, Y))
	}
	invert8(&den, &den)
	mul8(&num, &num, &den)
	for j := range msgs {
		var l fe51
		for i := 0; i < 5; i++ {
			l[i] = num[i][j]
		}
		out[j] = pack(l)
	}
}

// wipe8 clears the ladder's state, which holds multiples of the points by
// prefixes of the secret scalar.
func wipe8(s *ladderState8) { *s = ladderState8{} }
