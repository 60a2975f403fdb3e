//go:build ignore

// This program writes psi/batch_amd64.s: eight X25519 Montgomery ladders
// in the lanes of AVX-512 registers, field elements in five 51-bit limbs
// multiplied with AVX-512 IFMA (52-bit multiply-accumulate).
//
//	go run ./psi/internal/gen/batch_asm.go > psi/batch_amd64.s
//
// Why radix 2^51 when IFMA multiplies 52-bit limbs: the high half of a
// 52x52-bit product then lands at twice its limb's weight, which costs one
// addition, but 2^255 = 19 (mod p) folds the upper limbs with a small
// factor, and a limb has one bit of slack, so a carried sum or difference
// stays below 2^52 with one parallel carry round. In radix 2^52 the fold
// factor would be 608 and every limb would be full.
//
// Constant time: the only secret is the scalar, which reaches this code
// as the swap mask of ladderStep8, applied with masked blends. No branch
// or address depends on it.
package main

import (
	"fmt"
	"os"
	"strings"
)

// Offsets of the field elements in ladderState8 (see batch_amd64.go).
const feSize = 5 * 64

var slot = map[string]int{}

func init() {
	for i, n := range []string{"x1", "x2", "z2", "x3", "z3", "a", "b", "c", "d", "aa", "bb", "e", "da", "cb", "t"} {
		slot[n] = i * feSize
	}
}

var out strings.Builder

func p(format string, args ...any) { fmt.Fprintf(&out, "\t"+format+"\n", args...) }

// Register use: Z0-Z4 first operand, Z23-Z27 second operand, Z5-Z13 low
// halves at limb positions 0..8, Z14-Z22 high halves at positions 1..9,
// Z28 = 2^51-1, Z29 = 19, Z30 and Z31 the limbs of 2p.
const (
	zMask = "Z28"
	z19   = "Z29"
	z2p0  = "Z30"
	z2pk  = "Z31"
)

func z(i int) string    { return fmt.Sprintf("Z%d", i) }
func lo(pos int) string { return z(5 + pos) }  // pos 0..8
func hi(pos int) string { return z(13 + pos) } // pos 1..9

func mem(base string, name string, limb int) string {
	return fmt.Sprintf("%d(%s)", slot[name]+64*limb, base)
}

func constants() {
	p("MOVQ $0x7ffffffffffff, AX")
	p("VPBROADCASTQ AX, %s", zMask)
	p("MOVQ $19, AX")
	p("VPBROADCASTQ AX, %s", z19)
	p("MOVQ $0xfffffffffffda, AX") // 2^52 - 38
	p("VPBROADCASTQ AX, %s", z2p0)
	p("MOVQ $0xffffffffffffe, AX") // 2^52 - 2
	p("VPBROADCASTQ AX, %s", z2pk)
}

// carry runs one parallel carry round on the five limbs in regs (each
// below 2^61), leaving each below 2^52, using Z10-Z14 (or the given temps).
func carry(regs, tmp [5]string) {
	for k := 0; k < 5; k++ {
		p("VPSRLQ $51, %s, %s", regs[k], tmp[k])
	}
	for k := 0; k < 5; k++ {
		p("VPANDQ %s, %s, %s", zMask, regs[k], regs[k])
	}
	for k := 0; k < 4; k++ {
		p("VPADDQ %s, %s, %s", tmp[k], regs[k+1], regs[k+1])
	}
	p("VPMULLQ %s, %s, %s", z19, tmp[4], tmp[4])
	p("VPADDQ %s, %s, %s", tmp[4], regs[0], regs[0])
}

func five(first int) [5]string {
	var r [5]string
	for k := range r {
		r[k] = z(first + k)
	}
	return r
}

func load(regs [5]string, base, name string) {
	for k := 0; k < 5; k++ {
		p("VMOVDQU64 %s, %s", mem(base, name, k), regs[k])
	}
}

func store(regs [5]string, base, name string) {
	for k := 0; k < 5; k++ {
		p("VMOVDQU64 %s, %s", regs[k], mem(base, name, k))
	}
}

func zeroAcc() {
	for pos := 0; pos <= 8; pos++ {
		p("VPXORQ %s, %s, %s", lo(pos), lo(pos), lo(pos))
	}
	for pos := 1; pos <= 9; pos++ {
		p("VPXORQ %s, %s, %s", hi(pos), hi(pos), hi(pos))
	}
}

// reduce folds the accumulators into five limbs in Z5-Z9 (carried).
func reduce() {
	// Position k holds lo(k) + 2*hi(k); positions 5..9 come back times 19.
	for k := 1; k <= 8; k++ {
		p("VPADDQ %s, %s, %s", hi(k), lo(k), lo(k))
		p("VPADDQ %s, %s, %s", hi(k), lo(k), lo(k))
	}
	p("VPADDQ %s, %s, %s", hi(9), hi(9), hi(9)) // position 9 is 2*hi(9) alone
	for k := 0; k < 5; k++ {
		up := lo(k + 5)
		if k == 4 {
			up = hi(9)
		}
		p("VPMULLQ %s, %s, %s", z19, up, up)
		p("VPADDQ %s, %s, %s", up, lo(k), lo(k))
	}
	carry(five(5), five(10))
}

// mul: dst = a*b. Bounds: inputs below 2^52; each position sums at most
// five products, so lo+2hi < 15*2^52 and the folded limb < 300*2^52 < 2^61.
func mul(base, dst, a, b string) {
	p("// %s = %s * %s", dst, a, b)
	load(five(0), base, a)
	load(five(23), base, b)
	mulRegs()
	store(five(5), base, dst)
}

// mulRegs multiplies Z0-Z4 by Z23-Z27 into carried limbs in Z5-Z9.
func mulRegs() {
	zeroAcc()
	for i := 0; i < 5; i++ {
		for j := 0; j < 5; j++ {
			p("VPMADD52LUQ %s, %s, %s", z(23+j), z(i), lo(i+j))
			p("VPMADD52HUQ %s, %s, %s", z(23+j), z(i), hi(i+j+1))
		}
	}
	reduce()
}

// sqrRegs squares Z0-Z4 into carried limbs in Z5-Z9. Cross products are
// accumulated once and doubled (doubling an input would pass 52 bits).
func sqrRegs() {
	zeroAcc()
	for i := 0; i < 5; i++ {
		for j := i + 1; j < 5; j++ {
			p("VPMADD52LUQ %s, %s, %s", z(j), z(i), lo(i+j))
			p("VPMADD52HUQ %s, %s, %s", z(j), z(i), hi(i+j+1))
		}
	}
	for pos := 1; pos <= 7; pos++ {
		p("VPADDQ %s, %s, %s", lo(pos), lo(pos), lo(pos))
	}
	for pos := 2; pos <= 8; pos++ {
		p("VPADDQ %s, %s, %s", hi(pos), hi(pos), hi(pos))
	}
	for i := 0; i < 5; i++ {
		p("VPMADD52LUQ %s, %s, %s", z(i), z(i), lo(2*i))
		p("VPMADD52HUQ %s, %s, %s", z(i), z(i), hi(2*i+1))
	}
	reduce()
}

func sqr(base, dst, a string) {
	p("// %s = %s^2", dst, a)
	load(five(0), base, a)
	sqrRegs()
	store(five(5), base, dst)
}

// add: dst = a + b, carried.
func add(base, dst, a, b string) {
	p("// %s = %s + %s", dst, a, b)
	r := five(5)
	load(r, base, a)
	for k := 0; k < 5; k++ {
		p("VPADDQ %s, %s, %s", mem(base, b, k), r[k], r[k])
	}
	carry(r, five(10))
	store(r, base, dst)
}

// sub: dst = a + 2p - b, carried. b's limbs are below 2^52 - 38.
func sub(base, dst, a, b string) {
	p("// %s = %s - %s", dst, a, b)
	r := five(5)
	load(r, base, a)
	for k := 0; k < 5; k++ {
		c := z2pk
		if k == 0 {
			c = z2p0
		}
		p("VPADDQ %s, %s, %s", c, r[k], r[k])
		p("VPSUBQ %s, %s, %s", mem(base, b, k), r[k], r[k])
	}
	carry(r, five(10))
	store(r, base, dst)
}

// a24: dst = aa + 121665*e.
func a24(base, dst, aa, e string) {
	p("// %s = %s + 121665*%s", dst, aa, e)
	load(five(0), base, e)
	p("MOVQ $121665, AX")
	p("VPBROADCASTQ AX, Z23")
	for k := 0; k < 5; k++ {
		p("VMOVDQU64 %s, %s", mem(base, aa, k), lo(k))
	}
	for pos := 1; pos <= 5; pos++ {
		p("VPXORQ %s, %s, %s", hi(pos), hi(pos), hi(pos))
	}
	for k := 0; k < 5; k++ {
		p("VPMADD52LUQ Z23, %s, %s", z(k), lo(k))
		p("VPMADD52HUQ Z23, %s, %s", z(k), hi(k+1))
	}
	for k := 1; k <= 4; k++ {
		p("VPADDQ %s, %s, %s", hi(k), lo(k), lo(k))
		p("VPADDQ %s, %s, %s", hi(k), lo(k), lo(k))
	}
	p("VPADDQ %s, %s, %s", hi(5), hi(5), hi(5))
	p("VPMULLQ %s, %s, %s", z19, hi(5), hi(5))
	p("VPADDQ %s, %s, %s", hi(5), lo(0), lo(0))
	carry(five(5), five(10))
	store(five(5), base, dst)
}

// cswap swaps (x2, z2) with (x3, z3) in the lanes set in K1.
func cswap(base string) {
	for _, pair := range [][2]string{{"x2", "x3"}, {"z2", "z3"}} {
		for k := 0; k < 5; k++ {
			p("VMOVDQU64 %s, Z0", mem(base, pair[0], k))
			p("VMOVDQU64 %s, Z1", mem(base, pair[1], k))
			p("VPBLENDMQ Z1, Z0, K1, Z2")
			p("VPBLENDMQ Z0, Z1, K1, Z3")
			p("VMOVDQU64 Z2, %s", mem(base, pair[0], k))
			p("VMOVDQU64 Z3, %s", mem(base, pair[1], k))
		}
	}
}

func main() {
	fmt.Fprintln(&out, "// Code generated by psi/internal/gen/batch_asm.go. DO NOT EDIT.")
	fmt.Fprintln(&out)
	fmt.Fprintln(&out, "//go:build amd64 && !purego")
	fmt.Fprintln(&out)
	fmt.Fprintln(&out, `#include "textflag.h"`)
	fmt.Fprintln(&out)

	// ladderStep8(s *ladderState8, swap uint64): conditional swap by the
	// mask, then one step of RFC 7748's ladder in all eight lanes.
	fmt.Fprintln(&out, "// func ladderStep8(s *ladderState8, swap uint64)")
	fmt.Fprintln(&out, "TEXT ·ladderStep8(SB), NOSPLIT, $0-16")
	p("MOVQ s+0(FP), DI")
	p("MOVQ swap+8(FP), AX")
	p("NEGQ AX")
	p("KMOVB AX, K1")
	constants()
	cswap("DI")
	add("DI", "a", "x2", "z2")
	sub("DI", "b", "x2", "z2")
	add("DI", "c", "x3", "z3")
	sub("DI", "d", "x3", "z3")
	sqr("DI", "aa", "a")
	sqr("DI", "bb", "b")
	mul("DI", "da", "d", "a")
	mul("DI", "cb", "c", "b")
	add("DI", "t", "da", "cb")
	sqr("DI", "x3", "t")
	sub("DI", "t", "da", "cb")
	sqr("DI", "t", "t")
	mul("DI", "z3", "x1", "t")
	sub("DI", "e", "aa", "bb")
	mul("DI", "x2", "aa", "bb")
	a24("DI", "t", "aa", "e")
	mul("DI", "z2", "e", "t")
	p("VZEROUPPER")
	p("RET")
	fmt.Fprintln(&out)

	// mul8(dst, a, b *fe8): the operands are addressed through three
	// registers, so the slot table is bypassed with zero offsets.
	slot["dst"], slot["a"], slot["b"] = 0, 0, 0
	fmt.Fprintln(&out, "// func mul8(dst, a, b *fe8)")
	fmt.Fprintln(&out, "TEXT ·mul8(SB), NOSPLIT, $0-24")
	p("MOVQ dst+0(FP), DI")
	p("MOVQ a+8(FP), SI")
	p("MOVQ b+16(FP), DX")
	constants()
	load(five(0), "SI", "a")
	load(five(23), "DX", "b")
	mulRegs()
	store(five(5), "DI", "dst")
	p("VZEROUPPER")
	p("RET")
	fmt.Fprintln(&out)

	// sqr8(dst, a *fe8, n uint64): dst = a^(2^n), n >= 1.
	fmt.Fprintln(&out, "// func sqr8(dst, a *fe8, n uint64)")
	fmt.Fprintln(&out, "TEXT ·sqr8(SB), NOSPLIT, $0-24")
	p("MOVQ dst+0(FP), DI")
	p("MOVQ a+8(FP), SI")
	p("MOVQ n+16(FP), CX")
	constants()
	load(five(0), "SI", "a")
	fmt.Fprintln(&out, "sqrloop:")
	sqrRegs()
	for k := 0; k < 5; k++ {
		p("VMOVDQA64 %s, %s", z(5+k), z(k))
	}
	p("DECQ CX")
	p("JNZ sqrloop")
	store(five(0), "DI", "dst")
	p("VZEROUPPER")
	p("RET")

	os.Stdout.WriteString(out.String())
}
