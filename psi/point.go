package psi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/dh/x25519"
)

// PointSize is the length of a point's wire encoding.
const PointSize = 32

// Point is a Curve25519 point as its canonical 32-byte little-endian
// u-coordinate (RFC 7748), the form X25519 takes and returns.
type Point [PointSize]byte

// String returns the point in hex; points are blinded, so printing one
// reveals nothing about the identifier behind it.
func (p Point) String() string { return hex.EncodeToString(p[:]) }

// Errors from DecodePoint. They say what was wrong with the encoding, never
// which identifier it came from.
var (
	ErrPointLength       = errors.New("point is not 32 bytes")
	ErrPointNonCanonical = errors.New("point encoding is not canonical (u-coordinate >= 2^255-19 or high bit set)")
	ErrPointLowOrder     = errors.New("point has low order (identity or small subgroup)")
)

// lowOrder lists the canonical u-coordinates of every point of order
// dividing 8 on Curve25519 and its twist. Blinding one of them gives the
// all-zero output for every key, so it would match across parties without
// telling anything about an identifier.
var lowOrder = [...]Point{
	{},  // 0: order 2 (and the encoding of the identity)
	{1}, // 1: order 4 on the twist
	// 325606250916557431795983626356110631294008115727848805560023387167927233504: order 8
	{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	// 39382357235489614581723060781553021112529911719440698176882885853963445705823: order 8
	{0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
	// p-1: order 4
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
}

// DecodePoint parses a point from the wire. It rejects any encoding other
// than 32 bytes, non-canonical encodings (so one point has one encoding and
// cannot be replayed under another), and the low-order points.
//
// It does not test that the point is on the curve rather than its twist:
// Curve25519 is twist-secure, and a twist point only ever blinds to a twist
// point, which matches nothing. Checking would cost a field exponentiation,
// about a tenth of a blinding. Timing depends only on the encoding, which is
// public.
func DecodePoint(b []byte) (Point, error) {
	var p Point
	if len(b) != PointSize {
		return p, fmt.Errorf("%w: got %d bytes", ErrPointLength, len(b))
	}
	copy(p[:], b)
	return p, p.Validate()
}

// Validate reports why p is not an acceptable blinded point, or nil.
func (p *Point) Validate() error {
	if !p.canonical() {
		return ErrPointNonCanonical
	}
	for i := range lowOrder {
		if *p == lowOrder[i] {
			return ErrPointLowOrder
		}
	}
	return nil
}

// canonical reports whether p encodes an integer below p = 2^255 - 19.
func (p *Point) canonical() bool {
	if p[31] < 0x7f {
		return true
	}
	if p[31] > 0x7f {
		return false
	}
	for i := 30; i >= 1; i-- {
		if p[i] != 0xff {
			return true
		}
	}
	return p[0] < 0xed
}

// TokenSize is the length of a matching token. 12 bytes (96 bits) keep the
// chance of any false match between two audiences of 10^8 below 10^-12.
const TokenSize = 12

// Token identifies a doubly blinded point for matching.
type Token [TokenSize]byte

const tokenDomain = "CLEANROOM-" + protocolVersion + "-TOKEN"

// TokenOf returns the matching token of a doubly blinded point: a
// domain-separated SHA-256 truncated to TokenSize bytes. The server stores
// tokens, not points, so the stored value cannot be blinded further.
func TokenOf(p *Point) Token {
	var buf [len(tokenDomain) + PointSize]byte
	copy(buf[:], tokenDomain)
	copy(buf[len(tokenDomain):], p[:])
	sum := sha256.Sum256(buf[:])
	var t Token
	copy(t[:], sum[:TokenSize])
	return t
}

// blind computes k*p with X25519 after validating p. X25519 (circl, constant
// time in the key) clamps the key to a multiple of 8, so the map is a
// bijection on the prime-order subgroup and k_A(k_B P) = k_B(k_A P).
func blind(k *x25519.Key, p *Point) (Point, error) {
	var out Point
	if err := p.Validate(); err != nil {
		return out, err
	}
	if !x25519.Shared((*x25519.Key)(&out), k, (*x25519.Key)(p)) {
		return out, ErrPointLowOrder
	}
	return out, nil
}
