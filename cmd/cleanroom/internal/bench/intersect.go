package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/cleanroom/cleanroom/psi"
)

// IntersectResult is what `cleanroom bench intersect` prints.
type IntersectResult struct {
	N            int     `json:"n"`
	Expected     int64   `json:"expected"`
	Found        int64   `json:"found"`
	Seconds      float64 `json:"seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	// TokensPerSec counts the tokens of both streams.
	TokensPerSec float64 `json:"tokens_per_sec"`
}

// tokenStream yields pseudo-random tokens of person k for k in [next, end):
// the same k gives the same token on both sides, like a doubly blinded id.
type tokenStream struct{ next, end uint64 }

func (s *tokenStream) Read(buf []psi.Token) (int, error) {
	n := 0
	for ; n < len(buf) && s.next < s.end; n++ {
		binary.LittleEndian.PutUint64(buf[n][:8], mix64(s.next))
		binary.LittleEndian.PutUint32(buf[n][8:], uint32(mix64(^s.next)))
		s.next++
	}
	if s.next >= s.end {
		return n, io.EOF
	}
	return n, nil
}

// mix64 is the SplitMix64 finalizer: a bijection, so distinct people get
// distinct tokens.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// RunIntersect intersects two token streams of n each with the given
// overlap, holding only the first in memory.
func RunIntersect(ctx context.Context, n, overlap int) (IntersectResult, error) {
	if n <= 0 || overlap < 0 || overlap > n {
		return IntersectResult{}, fmt.Errorf("bench.RunIntersect: need 0 <= overlap (%d) <= n (%d), n > 0", overlap, n)
	}
	res := IntersectResult{N: n, Expected: int64(overlap)}
	t0 := time.Now()
	first := uint64(n - overlap)
	found, err := psi.Intersect(ctx, &tokenStream{0, uint64(n)}, &tokenStream{first, first + uint64(n)}, n,
		psi.WriterFunc[psi.Match](func([]psi.Match) error { return nil }))
	if err != nil {
		return res, err
	}
	res.Seconds = time.Since(t0).Seconds()
	res.Found = found
	res.TokensPerSec = float64(2*n) / res.Seconds
	res.PeakRSSBytes = PeakRSS()
	return res, nil
}
