package psi

import (
	"encoding/binary"

	"github.com/cloudflare/circl/dh/x25519"
)

// BatchLanes is how many X25519 multiplications the vector path runs at
// once. Batches are most efficient in multiples of it.
const BatchLanes = 8

// BlindBatch sets out[i] = k*in[i] for every i, exactly as Blind would
// (same points, same errors), using the vector path when the CPU has one.
// It stops at the first point that fails DecodePoint's checks and returns
// its index and error; out[:index] are then filled. len(out) must be at
// least len(in).
//
// Timing depends on the key only through nothing (the ladders are constant
// time) and on the points only through their count and validity, which are
// public.
func (k *Key) BlindBatch(in, out []Point) (int, error) {
	return blindBatch(&k.k, in, out)
}

// batchFallback reports whether the batch path uses circl's X25519 for
// every point: the vector path is absent (no AVX-512 IFMA, another
// architecture, the purego tag) or switched off by a test.
func batchFallback() bool { return !useVector }

// VectorX25519 reports whether BlindBatch, BlindIDs and Reblind use the
// eight-lane AVX-512 IFMA path on this machine.
func VectorX25519() bool { return useVector }

// minVectorTail is the smallest remainder worth a padded vector batch: a
// batch costs about as much as three or four scalar multiplications.
const minVectorTail = 4

func blindBatch(k *x25519.Key, in, out []Point) (int, error) {
	// Validate first, so that errors come in order and the vector lanes
	// only ever see acceptable points.
	for i := range in {
		if err := in[i].Validate(); err != nil {
			n, _ := blindValid(k, in[:i], out)
			return n, err
		}
	}
	return blindValid(k, in, out)
}

// blindValid blinds points that passed Validate.
func blindValid(k *x25519.Key, in, out []Point) (int, error) {
	i := 0
	if useVector {
		for ; len(in)-i >= BatchLanes || (len(in)-i >= minVectorTail); i += BatchLanes {
			var lanes, res [BatchLanes]Point
			n := copy(lanes[:], in[i:])
			for j := n; j < BatchLanes; j++ {
				lanes[j] = lanes[0] // padding; its result is dropped
			}
			x25519x8(k, &lanes, &res)
			for j := 0; j < n; j++ {
				if res[j] == (Point{}) {
					return i + j, ErrPointLowOrder
				}
				out[i+j] = res[j]
			}
			if n < BatchLanes {
				return len(in), nil
			}
		}
	}
	for ; i < len(in); i++ {
		var err error
		if out[i], err = blind(k, &in[i]); err != nil {
			return i, err
		}
	}
	return len(in), nil
}

// fe51 is a field element mod 2^255-19 in five 51-bit limbs.
type fe51 [5]uint64

const mask51 = 1<<51 - 1

// unpack reads a u-coordinate as RFC 7748 says: little-endian, the top bit
// ignored, values at or above p taken modulo p (the arithmetic does that).
func unpack(b *Point) fe51 {
	return fe51{
		binary.LittleEndian.Uint64(b[0:8]) & mask51,
		binary.LittleEndian.Uint64(b[6:14]) >> 3 & mask51,
		binary.LittleEndian.Uint64(b[12:20]) >> 6 & mask51,
		binary.LittleEndian.Uint64(b[19:27]) >> 1 & mask51,
		binary.LittleEndian.Uint64(b[24:32]) >> 12 & mask51,
	}
}

// pack writes the canonical encoding of l (limbs below 2^52), in constant
// time.
func pack(l fe51) Point {
	for round := 0; round < 2; round++ {
		for i := 0; i < 4; i++ {
			l[i+1] += l[i] >> 51
			l[i] &= mask51
		}
		l[0] += 19 * (l[4] >> 51)
		l[4] &= mask51
	}
	// Now l < 2^255 + 19*2; subtract p if l >= p: q is 1 exactly then.
	q := (l[0] + 19) >> 51
	for i := 1; i < 5; i++ {
		q = (l[i] + q) >> 51
	}
	l[0] += 19 * q
	for i := 0; i < 4; i++ {
		l[i+1] += l[i] >> 51
		l[i] &= mask51
	}
	l[4] &= mask51
	var p Point
	binary.LittleEndian.PutUint64(p[0:8], l[0]|l[1]<<51)
	binary.LittleEndian.PutUint64(p[8:16], l[1]>>13|l[2]<<38)
	binary.LittleEndian.PutUint64(p[16:24], l[2]>>26|l[3]<<25)
	binary.LittleEndian.PutUint64(p[24:32], l[3]>>39|l[4]<<12)
	return p
}
