package psi

import (
	"crypto"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/cloudflare/circl/expander"
)

type jsonPoint struct{ X, Y string }

type h2cVectors struct {
	Ciphersuite string
	DST         string
	Vectors     []struct {
		Msg   string
		P     jsonPoint
		U     []string
		Q, Q0 jsonPoint
		Q1    jsonPoint
	}
}

func loadJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// feFromHex parses an RFC 9380 field element: 0x-prefixed big-endian hex.
func feFromHex(t *testing.T, s string) *field.Element {
	t.Helper()
	be, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(be) != 32 {
		t.Fatalf("bad field element %q", s)
	}
	var le [32]byte
	for i := range be {
		le[i] = be[31-i]
	}
	v, err := new(field.Element).SetBytes(le[:])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// montgomery converts an edwards25519 point to curve25519 (s, t) with the
// inverse of the rational map used by mapToEdwards.
func montgomery(p *edwards25519.Point) (s, tt *field.Element) {
	X, Y, Z, _ := p.ExtendedCoordinates()
	zi := new(field.Element).Invert(Z)
	x := new(field.Element).Multiply(X, zi)
	y := new(field.Element).Multiply(Y, zi)
	one := new(field.Element).One()
	num := new(field.Element).Add(one, y)
	den := new(field.Element).Subtract(one, y)
	s = new(field.Element).Multiply(num, den.Invert(den))
	tt = new(field.Element).Multiply(sqrtM486k, s)
	tt.Multiply(tt, new(field.Element).Invert(x))
	return s, tt
}

func checkPoint(t *testing.T, what string, p *edwards25519.Point, want jsonPoint) {
	t.Helper()
	s, tt := montgomery(p)
	if s.Equal(feFromHex(t, want.X)) != 1 || tt.Equal(feFromHex(t, want.Y)) != 1 {
		t.Errorf("%s: got (%x, %x), want (%s, %s)", what, s.Bytes(), tt.Bytes(), want.X, want.Y)
	}
}

func TestExpandMessageXMDVectors(t *testing.T) {
	var vec struct {
		DST   string
		Tests []struct {
			Msg          string
			LenInBytes   string `json:"len_in_bytes"`
			UniformBytes string `json:"uniform_bytes"`
		}
	}
	loadJSON(t, "testdata/expand_message_xmd_SHA512.json", &vec)
	if len(vec.Tests) == 0 {
		t.Fatal("no vectors")
	}
	exp := expander.NewExpanderMD(crypto.SHA512, []byte(vec.DST))
	for _, tc := range vec.Tests {
		n, err := strconv.ParseUint(strings.TrimPrefix(tc.LenInBytes, "0x"), 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(exp.Expand([]byte(tc.Msg), uint(n))); got != tc.UniformBytes {
			t.Errorf("msg %.10q len %d: got %s, want %s", tc.Msg, n, got, tc.UniformBytes)
		}
	}
}

func TestHashToCurveRFC9380Vectors(t *testing.T) {
	var vec h2cVectors
	loadJSON(t, "testdata/curve25519_XMD_SHA-512_ELL2_RO_.json", &vec)
	if vec.Ciphersuite != SuiteID || len(vec.Vectors) != 5 {
		t.Fatalf("unexpected vector file: suite %q, %d vectors", vec.Ciphersuite, len(vec.Vectors))
	}
	h := newHasherDST(vec.DST)
	for _, v := range vec.Vectors {
		name := v.Msg
		if len(name) > 10 {
			name = name[:10] + "..."
		}
		t.Run(name, func(t *testing.T) {
			var u0, u1 field.Element
			h.hashToField([]byte(v.Msg), &u0, &u1)
			if u0.Equal(feFromHex(t, v.U[0])) != 1 || u1.Equal(feFromHex(t, v.U[1])) != 1 {
				t.Fatalf("hash_to_field: got %x %x", u0.Bytes(), u1.Bytes())
			}
			checkPoint(t, "Q0", mapToEdwards(&u0), v.Q0)
			checkPoint(t, "Q1", mapToEdwards(&u1), v.Q1)
			checkPoint(t, "P", h.hashToCurve([]byte(v.Msg)), v.P)
			// The wire form is P's u-coordinate, little-endian.
			p := h.Hash([]byte(v.Msg))
			if want := feFromHex(t, v.P.X).Bytes(); hex.EncodeToString(p[:]) != hex.EncodeToString(want) {
				t.Errorf("Hash: got %x, want %x", p[:], want)
			}
		})
	}
}

// The NU suite shares map_to_curve; its vectors exercise more inputs.
func TestElligator2NUVectors(t *testing.T) {
	var vec h2cVectors
	loadJSON(t, "testdata/curve25519_XMD_SHA-512_ELL2_NU_.json", &vec)
	if len(vec.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vec.Vectors {
		q := mapToEdwards(feFromHex(t, v.U[0]))
		checkPoint(t, "Q", q, v.Q)
		checkPoint(t, "P", new(edwards25519.Point).MultByCofactor(q), v.P)
	}
}

func TestMapToCurveExceptionalInput(t *testing.T) {
	// u = 0 takes the x2 = 0 branch when g(-J) is not a square; the map
	// must still return a valid point rather than panic.
	var zero field.Element
	p := mapToEdwards(&zero)
	if p == nil {
		t.Fatal("nil point")
	}
}

func TestHashDomainSeparation(t *testing.T) {
	he, err := NewHasher(Email)
	if err != nil {
		t.Fatal(err)
	}
	hp, err := NewHasher(Phone)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("same digest")
	if he.Hash(msg) == hp.Hash(msg) {
		t.Error("email and phone hashers map the same input to the same point")
	}
	if he.Hash(msg) != he.Hash(msg) {
		t.Error("hash is not deterministic")
	}
	if !strings.Contains(DST(Email), "CLEANROOM-V01-EMAIL") || !strings.HasSuffix(DST(Email), SuiteID) {
		t.Errorf("DST %q does not name project, version, kind and suite", DST(Email))
	}
	if _, err := NewHasher(SHA256); err == nil || !strings.Contains(err.Error(), "name the kind") {
		t.Errorf("NewHasher(sha256) = %v, want an error telling to name the hashed kind", err)
	}
	if _, err := NewHasher("ssn"); err == nil {
		t.Error("NewHasher accepted an unknown kind")
	}
}

func BenchmarkHashToCurve(b *testing.B) {
	h, _ := NewHasher(Email)
	var msg [32]byte
	for i := 0; i < b.N; i++ {
		msg[0] = byte(i)
		msg[1] = byte(i >> 8)
		_ = h.Hash(msg[:])
	}
}
