package psi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"testing"

	"github.com/cloudflare/circl/dh/x25519"
)

// circlX25519 is the reference: circl's X25519, output written even for
// low-order inputs.
func circlX25519(k *x25519.Key, u *Point) Point {
	var out Point
	x25519.Shared((*x25519.Key)(&out), k, (*x25519.Key)(u))
	return out
}

// needVector skips a test of the vector path on a CPU without it.
func needVector(t testing.TB) {
	t.Helper()
	if !useVector {
		t.Skip("no AVX-512 IFMA on this CPU: the vector path is not built in or not usable")
	}
}

// lanesAgainstCircl runs eight u-coordinates through the vector ladder and
// compares each lane with circl.
func lanesAgainstCircl(t testing.TB, k *x25519.Key, in *[BatchLanes]Point) {
	t.Helper()
	var out [BatchLanes]Point
	x25519x8(k, in, &out)
	for j := range in {
		if want := circlX25519(k, &in[j]); out[j] != want {
			t.Fatalf("lane %d: key %x u %x: vector %x, circl %x", j, k[:], in[j][:], out[j][:], want[:])
		}
	}
}

func TestBatchRandom(t *testing.T) {
	needVector(t)
	r := mrand.New(mrand.NewPCG(1, 2))
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := 0; i < n; i++ {
		var k x25519.Key
		var in [BatchLanes]Point
		fill(r, k[:])
		for j := range in {
			fill(r, in[j][:]) // any 32 bytes: high bit set, >= p, low order
		}
		lanesAgainstCircl(t, &k, &in)
	}
}

func fill(r *mrand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// TestBatchRFC7748 runs RFC 7748 section 5.2's vectors in every lane.
func TestBatchRFC7748(t *testing.T) {
	needVector(t)
	for _, v := range []struct{ k, u, out string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	} {
		var k x25519.Key
		var in, out [BatchLanes]Point
		hex.Decode(k[:], []byte(v.k))
		for j := range in {
			hex.Decode(in[j][:], []byte(v.u))
		}
		x25519x8(&k, &in, &out)
		for j := range out {
			if got := hex.EncodeToString(out[j][:]); got != v.out {
				t.Fatalf("lane %d: %s, want %s", j, got, v.out)
			}
		}
	}
	// The iterated vector: k = u = 9, then k, u = X25519(k, u), k.
	var k, u x25519.Key
	k[0], u[0] = 9, 9
	for i := 1; i <= 1000; i++ {
		var in, out [BatchLanes]Point
		for j := range in {
			in[j] = Point(u)
		}
		x25519x8(&k, &in, &out)
		u, k = k, x25519.Key(out[0])
		if i == 1 && hex.EncodeToString(k[:]) != "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079" {
			t.Fatalf("1 iteration: %x", k[:])
		}
	}
	if hex.EncodeToString(k[:]) != "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51" {
		t.Fatalf("1000 iterations: %x", k[:])
	}
}

// TestBatchEdgeInputs covers reduction and the low-order points, in every
// lane position, against circl.
func TestBatchEdgeInputs(t *testing.T) {
	needVector(t)
	var edges []Point
	edges = append(edges, lowOrder[:]...)
	for _, lo := range lowOrder {
		alt := lo
		alt[31] |= 0x80 // the ignored top bit
		edges = append(edges, alt)
	}
	// p .. 2^255-1 (non-canonical, reduced mod p), and 2^255 - 20 = p - 1.
	for d := 0; d < 19; d++ {
		var u Point
		for i := range u {
			u[i] = 0xff
		}
		u[31] = 0x7f
		u[0] = byte(0xff - d)
		edges = append(edges, u)
	}
	// Limb boundaries: 2^51k +- 1.
	for k := 1; k < 5; k++ {
		for _, d := range []int{-1, 0, 1} {
			var u Point
			bit := 51 * k
			u[bit/8] |= 1 << (bit % 8)
			if d == -1 {
				u = Point{}
				for b := 0; b < bit; b++ {
					u[b/8] |= 1 << (b % 8)
				}
			} else if d == 1 {
				u[0] |= 1
			}
			edges = append(edges, u)
		}
	}
	keys := []x25519.Key{{}, {0xff, 0xff, 0xff, 0xff}}
	for i := range keys[1] {
		keys[1][i] = 0xff
	}
	var rk x25519.Key
	rand.Read(rk[:])
	keys = append(keys, rk)
	for _, k := range keys {
		for start := 0; start < len(edges); start += 3 {
			var in [BatchLanes]Point
			for j := range in {
				in[j] = edges[(start+j)%len(edges)]
			}
			lanesAgainstCircl(t, &k, &in)
		}
	}
	for _, lo := range lowOrder {
		var in, out [BatchLanes]Point
		for j := range in {
			in[j] = lo
		}
		x25519x8(&rk, &in, &out)
		for j := range out {
			if out[j] != (Point{}) {
				t.Fatalf("low-order %x gave %x, want zero", lo[:], out[j][:])
			}
		}
	}
}

// TestBlindBatch checks the public batch against Blind for every length
// around the lane count, with a bad point at each position, on the path
// in use and with the vector path forced off.
func TestBlindBatch(t *testing.T) {
	for _, vector := range []bool{true, false} {
		name := "fallback"
		if vector {
			name = "vector"
		}
		t.Run(name, func(t *testing.T) {
			if vector {
				needVector(t)
			} else {
				defer func(v bool) { useVector = v }(useVector)
				useVector = false
			}
			if VectorX25519() != vector {
				t.Fatalf("VectorX25519() = %v", VectorX25519())
			}
			key, _ := GenerateKey(nil)
			h, _ := NewHasher(Email)
			var pts []Point
			for i := 0; i < 3*BatchLanes+3; i++ {
				pts = append(pts, h.Hash([]byte{byte(i)}))
			}
			for n := 0; n <= len(pts); n++ {
				out := make([]Point, n)
				got, err := key.BlindBatch(pts[:n], out)
				if err != nil || got != n {
					t.Fatalf("n=%d: %d, %v", n, got, err)
				}
				for i := 0; i < n; i++ {
					if want, _ := key.Blind(pts[i]); out[i] != want {
						t.Fatalf("n=%d point %d differs from Blind", n, i)
					}
				}
			}
			for bad := 0; bad < 2*BatchLanes+1; bad++ {
				for _, b := range []Point{lowOrder[2], {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
					in := append([]Point(nil), pts...)
					in[bad] = b
					out := make([]Point, len(in))
					got, err := key.BlindBatch(in, out)
					_, want := key.Blind(b)
					if got != bad || !errors.Is(err, want) {
						t.Fatalf("bad point at %d: got index %d, error %v; want %d, %v", bad, got, err, bad, want)
					}
					for i := 0; i < bad; i++ {
						if w, _ := key.Blind(in[i]); out[i] != w {
							t.Fatalf("bad point at %d: point %d before it differs", bad, i)
						}
					}
				}
			}
		})
	}
}

// FuzzBatchX25519 compares the vector ladder with circl for any key and
// eight u-coordinates (`make test` runs it briefly: millions of lanes with
// make fuzz-long).
func FuzzBatchX25519(f *testing.F) {
	f.Add(bytes.Repeat([]byte{9}, 32), bytes.Repeat([]byte{0xff}, 8*32))
	f.Add(make([]byte, 32), make([]byte, 8*32))
	f.Fuzz(func(t *testing.T, key, us []byte) {
		needVector(t)
		var k x25519.Key
		copy(k[:], key)
		var in [BatchLanes]Point
		for j := range in {
			copy(in[j][:], us[min(len(us), 32*j):])
		}
		lanesAgainstCircl(t, &k, &in)
	})
}

// BenchmarkX25519 reports one multiplication per op: circl's scalar path
// and the vector path, on one core.
func BenchmarkX25519(b *testing.B) {
	var k x25519.Key
	rand.Read(k[:])
	h, _ := NewHasher(Email)
	var in, out [BatchLanes]Point
	for j := range in {
		in[j] = h.Hash([]byte{byte(j)})
	}
	b.Run("circl", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			out[0] = circlX25519(&k, &in[i%BatchLanes])
		}
	})
	b.Run("vector", func(b *testing.B) {
		needVector(b)
		for i := 0; i < b.N; i += BatchLanes {
			x25519x8(&k, &in, &out)
		}
	})
}

// TestHashManyRFC9380 runs RFC 9380's vectors through the batch hash, in
// one padded batch and repeated into full ones.
func TestHashManyRFC9380(t *testing.T) {
	needVector(t)
	var vec h2cVectors
	loadJSON(t, "testdata/curve25519_XMD_SHA-512_ELL2_RO_.json", &vec)
	h := newHasherDST(vec.DST)
	var msgs [][]byte
	var want []string
	for len(msgs) < 2*BatchLanes+len(vec.Vectors) {
		for _, v := range vec.Vectors {
			msgs = append(msgs, []byte(v.Msg))
			want = append(want, hex.EncodeToString(feFromHex(t, v.P.X).Bytes()))
		}
	}
	for _, n := range []int{len(vec.Vectors), len(msgs)} {
		out := make([]Point, n)
		h.HashMany(msgs[:n], out)
		for i := range out {
			if got := hex.EncodeToString(out[i][:]); got != want[i] {
				t.Fatalf("n=%d message %d: %s, want %s", n, i, got, want[i])
			}
		}
	}
}

// TestHashMany compares the batch hash with Hash for every count around
// the lane count, on the path in use and with the vector path off.
func TestHashMany(t *testing.T) {
	h, _ := NewHasher(Email)
	r := mrand.New(mrand.NewPCG(3, 4))
	var msgs [][]byte
	for i := 0; i < 3*BatchLanes+3; i++ {
		m := make([]byte, r.IntN(64))
		fill(r, m)
		msgs = append(msgs, m)
	}
	for _, vector := range []bool{useVector, false} {
		func() {
			defer func(v bool) { useVector = v }(useVector)
			useVector = vector
			for n := 0; n <= len(msgs); n++ {
				out := make([]Point, n)
				h.HashMany(msgs[:n], out)
				for i := range out {
					if want := h.Hash(msgs[i]); out[i] != want {
						t.Fatalf("vector=%v n=%d message %d: %x, want %x", vector, n, i, out[i][:], want[:])
					}
				}
			}
		}()
	}
	if testing.Short() || !useVector {
		return
	}
	// Many random digests, as BlindIDs hashes them.
	out := make([]Point, 4096)
	in := make([][]byte, len(out))
	for i := range in {
		in[i] = make([]byte, 32)
		fill(r, in[i])
	}
	h.HashMany(in, out)
	for i := range in {
		if out[i] != h.Hash(in[i]) {
			t.Fatalf("digest %d differs", i)
		}
	}
}

// BenchmarkHashMany is one hash per op, eight at a time.
func BenchmarkHashMany(b *testing.B) {
	h, _ := NewHasher(Email)
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = []byte{byte(i), 1, 2, 3}
	}
	out := make([]Point, len(msgs))
	for i := 0; i < b.N; i += len(msgs) {
		h.HashMany(msgs, out)
	}
}
