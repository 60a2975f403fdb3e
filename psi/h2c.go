package psi

import (
	"crypto"
	_ "crypto/sha512" // registers SHA-512 for the expander
	"fmt"
	"strings"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/cloudflare/circl/expander"
)

// SuiteID is the RFC 9380 hash-to-curve suite every identifier goes through.
const SuiteID = "curve25519_XMD:SHA-512_ELL2_RO_"

// Protocol version in every domain-separation tag: bump it and old blinded
// audiences stop matching new ones, which is what a change of encoding needs.
const protocolVersion = "V01"

// Hasher maps identifier digests to points of Curve25519 in the prime-order
// subgroup, with the RFC 9380 random-oracle suite curve25519_XMD:SHA-512_ELL2_RO_.
//
// The domain-separation tag names the project, the protocol version and the
// identifier kind, so an email and a phone number with the same digest never
// map to the same point. A Hasher is safe for concurrent use.
//
// The map is constant time in the identifier (field arithmetic from
// filippo.io/edwards25519/field and conditional selects, no branches on
// secret data): the identifiers are the party's own secrets on its own machine.
type Hasher struct {
	exp expander.Expander
	dst string
}

// NewHasher returns the Hasher for identifiers of the given kind (email,
// phone or maid). SHA-256 input is an encoding, not a kind: pass the kind the
// hashes were made from, so that pre-hashed and plaintext input match.
func NewHasher(kind IDType) (*Hasher, error) {
	switch kind {
	case Email, Phone, MAID:
	case SHA256:
		return nil, fmt.Errorf("psi.NewHasher: %q is an input encoding; name the kind that was hashed (email, phone or maid)", kind)
	default:
		return nil, fmt.Errorf("psi.NewHasher: unknown identifier kind %q (want email, phone or maid)", kind)
	}
	return newHasherDST(DST(kind)), nil
}

// DST returns the domain-separation tag for identifiers of kind.
func DST(kind IDType) string {
	return "CLEANROOM-" + protocolVersion + "-" + strings.ToUpper(string(kind)) + "-with-" + SuiteID
}

func newHasherDST(dst string) *Hasher {
	return &Hasher{exp: expander.NewExpanderMD(crypto.SHA512, []byte(dst)), dst: dst}
}

// Hash maps msg (normally a 32-byte identifier digest) to a point.
func (h *Hasher) Hash(msg []byte) Point {
	var p Point
	copy(p[:], h.hashToCurve(msg).BytesMontgomery())
	return p
}

// HashMany sets out[i] = h.Hash(msgs[i]) for every i; len(out) must be at
// least len(msgs). On the vector path (VectorX25519) it maps eight
// messages at once, which is several times faster than Hash one by one.
func (h *Hasher) HashMany(msgs [][]byte, out []Point) {
	i := 0
	if useVector {
		for ; len(msgs)-i >= minVectorTail; i += BatchLanes {
			h.hash8(msgs[i:min(i+BatchLanes, len(msgs))], out[i:])
		}
	}
	for ; i < len(msgs); i++ {
		out[i] = h.Hash(msgs[i])
	}
}

// hashToCurve is RFC 9380 section 3 hash_to_curve, computed on the twisted
// Edwards form, where point addition and cofactor clearing are complete.
func (h *Hasher) hashToCurve(msg []byte) *edwards25519.Point {
	var u0, u1 field.Element
	h.hashToField(msg, &u0, &u1)
	q0 := mapToEdwards(&u0)
	q1 := mapToEdwards(&u1)
	q0.Add(q0, q1)
	return q0.MultByCofactor(q0)
}

// hashToField is RFC 9380 hash_to_field with count 2 and L = 48 bytes per
// element: 48 = ceil((255 + 128) / 8) gives a bias below 2^-128.
func (h *Hasher) hashToField(msg []byte, u0, u1 *field.Element) {
	b := h.exp.Expand(msg, 96)
	setBigEndian48(u0, b[:48])
	setBigEndian48(u1, b[48:])
}

// setBigEndian48 reduces a 48-byte big-endian integer modulo p.
func setBigEndian48(v *field.Element, be []byte) {
	var wide [64]byte
	for i := 0; i < 48; i++ {
		wide[i] = be[47-i]
	}
	if _, err := v.SetWideBytes(wide[:]); err != nil {
		panic("psi: SetWideBytes rejected 64 bytes: " + err.Error())
	}
}

// Curve constants, computed once.
var (
	feOne     = new(field.Element).One()
	feJ       = feFromUint(486662) // Montgomery A of curve25519
	feMinusJ  = new(field.Element).Negate(feJ)
	sqrtM1    = mustSqrt(new(field.Element).Negate(feOne))                                              // sqrt(-1)
	sqrtM2I   = mustSqrt(new(field.Element).Negate(new(field.Element).Multiply(feFromUint(2), sqrtM1))) // sqrt(-2i)
	sqrtM486k = mustSqrt(new(field.Element).Negate(feFromUint(486664)))                                 // rational map to edwards25519
)

func feFromUint(x uint32) *field.Element {
	return new(field.Element).Mult32(feOne, x)
}

func mustSqrt(x *field.Element) *field.Element {
	r, ok := new(field.Element).SqrtRatio(x, feOne)
	if ok != 1 {
		panic("psi: constant is not a square")
	}
	return r
}

// mapToEdwards is RFC 9380 map_to_curve_elligator2 for curve25519 (J = 486662,
// K = 1, Z = 2), followed by the rational map to edwards25519 of RFC 7748.
// It uses one exponentiation (SqrtRatio) and no inversion: x stays a fraction
// xn/xd and the Edwards point is built in projective coordinates.
func mapToEdwards(u *field.Element) *edwards25519.Point {
	var m elligator
	m.start(u)
	r, isSquare := new(field.Element).SqrtRatio(&m.gx1, &m.gxd)
	return m.finish(u, r, isSquare)
}

// elligator holds map_to_curve_elligator2 around its square root, so that
// hashMany can take the roots of eight inputs at once.
type elligator struct {
	tv1, xd, gx1, gxd field.Element
}

// start computes x1 = -J/xd and g(x1) = gx1/gxd, whose square root (or
// that of i g(x1)) the map needs.
func (m *elligator) start(u *field.Element) {
	var t field.Element
	m.tv1.Square(u)
	m.tv1.Add(&m.tv1, &m.tv1) // 2u^2
	m.xd.Add(&m.tv1, feOne)   // nonzero: -1/2 is not a square mod p
	// x1 = -J / xd, g(x1) = gx1 / xd^3 with gx1 = x1n^3 + J x1n^2 xd + x1n xd^2.
	m.gx1.Multiply(feJ, &m.xd)         // J xd
	m.gx1.Add(&m.gx1, feMinusJ)        // x1n + J xd
	m.gx1.Multiply(&m.gx1, feMinusJ)   // x1n^2 + J x1n xd
	m.gx1.Add(&m.gx1, t.Square(&m.xd)) // + xd^2
	m.gx1.Multiply(&m.gx1, feMinusJ)   // * x1n
	m.gxd.Multiply(t.Square(&m.xd), &m.xd)
}

// finish takes r = SqrtRatio(gx1, gxd) and builds the Edwards point.
func (m *elligator) finish(u, r *field.Element, isSquare int) *edwards25519.Point {
	// If g(x1) is square, r = sqrt(g(x1)); otherwise r = sqrt(i g(x1)) and
	// g(x2) = 2u^2 g(x1), so sqrt(g(x2)) = u r sqrt(-2i).
	var x2n, y2 field.Element
	y2.Multiply(r, u).Multiply(&y2, sqrtM2I)
	x2n.Multiply(feMinusJ, &m.tv1)
	var xn, y field.Element
	xn.Select(feMinusJ, &x2n, isSquare)
	y.Select(r, &y2, isSquare)
	// sgn0(y) must be 1 for x1 and 0 for x2.
	var negY field.Element
	negY.Negate(&y)
	y.Select(&negY, &y, y.IsNegative()^isSquare)

	// Rational map (s, t) -> (c s / t, (s - 1) / (s + 1)), c = sqrt(-486664),
	// with s = xn/xd and t = y, as X = c xn (xn + xd), Y = (xn - xd) xd y,
	// Z = xd y (xn + xd), T = c xn (xn - xd). t = 0 or s = -1 map to the
	// identity.
	var sp, sm, xdy, X, Y, Z, T field.Element
	sp.Add(&xn, &m.xd)
	sm.Subtract(&xn, &m.xd)
	xdy.Multiply(&m.xd, &y)
	X.Multiply(sqrtM486k, &xn)
	T.Multiply(&X, &sm)
	X.Multiply(&X, &sp)
	Y.Multiply(&sm, &xdy)
	Z.Multiply(&xdy, &sp)
	var zero field.Element
	exceptional := Z.Equal(&zero)
	X.Select(&zero, &X, exceptional)
	Y.Select(feOne, &Y, exceptional)
	Z.Select(feOne, &Z, exceptional)
	T.Select(&zero, &T, exceptional)
	p, err := new(edwards25519.Point).SetExtendedCoordinates(&X, &Y, &Z, &T)
	if err != nil {
		panic("psi: elligator2 produced a point off the curve")
	}
	return p
}
