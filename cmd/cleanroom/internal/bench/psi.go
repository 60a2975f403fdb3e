package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cleanroom/cleanroom/psi"
)

// PSIOptions configure a two-party PSI run.
type PSIOptions struct {
	NA, NB  int // audience sizes
	Overlap int // people in both audiences
	Workers int // default GOMAXPROCS
	// Log, when set, is told each stage as it ends.
	Log func(stage string, d time.Duration)
	// RateTime is how long each one-core rate is measured; default 500ms.
	RateTime time.Duration
	// Progress, when set, is told how many of a stage's rows are done.
	Progress func(stage string, done, total int)
}

// PSIResult is what `cleanroom bench psi` prints.
type PSIResult struct {
	N            int     `json:"n"`
	NB           int     `json:"n_b,omitempty"`
	Expected     int64   `json:"expected"`
	Found        int64   `json:"found"`
	Seconds      float64 `json:"seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	// MultPerSecOneCore is the rate of the X25519 path in use (Vector
	// says which); BaselineMultPerSecOneCore is circl's scalar X25519,
	// measured in the same run, on which LimitSeconds rests.
	MultPerSecOneCore         float64 `json:"mult_per_sec_one_core"`
	BaselineMultPerSecOneCore float64 `json:"baseline_mult_per_sec_one_core"`
	Vector                    bool    `json:"vector_x25519"`
	HashPerSecOneCore         float64 `json:"hash_per_sec_one_core"`
	Cores                     int     `json:"cores"`
	// LimitSeconds is the time the protocol's scalar multiplications and
	// hashes alone take at the measured one-core rates (circl's for the
	// multiplications) on all cores.
	LimitSeconds float64 `json:"limit_seconds"`
	// Ratio is Seconds / LimitSeconds: the protocol's overhead over its
	// arithmetic. 1.0 is the speed limit.
	Ratio  float64            `json:"ratio"`
	Stages map[string]float64 `json:"stage_seconds"`
}

// emails is a synthetic audience: person k has customer<k>@example.com.
// People with odd k are written the way a messy CRM would (upper case,
// surrounding spaces) on side B, so matching depends on normalization.
type emails struct {
	next, end int
	messy     bool
	buf       []byte
}

func (e *emails) Read(out []string) (int, error) {
	n := 0
	for n < len(out) && e.next < e.end {
		k := e.next
		b := e.buf[:0]
		if e.messy && k%2 == 1 {
			b = append(b, " CUSTOMER"...)
			b = strconv.AppendInt(b, int64(k), 10)
			b = append(b, "@Example.COM\t"...)
		} else {
			b = append(b, "customer"...)
			b = strconv.AppendInt(b, int64(k), 10)
			b = append(b, "@example.com"...)
		}
		e.buf = b
		out[n] = string(b)
		n++
		e.next++
	}
	if e.next >= e.end {
		return n, io.EOF
	}
	return n, nil
}

// RunPSI runs the whole protocol for two synthetic parties in this process:
// each normalizes, hashes and blinds its own audience, re-blinds the other's
// points, and the doubly blinded points are tokenized and intersected.
func RunPSI(ctx context.Context, o PSIOptions) (PSIResult, error) {
	if o.NA <= 0 || o.NB <= 0 {
		return PSIResult{}, errors.New("bench.RunPSI: audience sizes must be positive")
	}
	if o.Overlap < 0 || o.Overlap > o.NA || o.Overlap > o.NB {
		return PSIResult{}, fmt.Errorf("bench.RunPSI: overlap %d does not fit audiences of %d and %d", o.Overlap, o.NA, o.NB)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, time.Duration) {}
	}
	res := PSIResult{N: o.NA, Expected: int64(o.Overlap), Cores: o.Workers, Stages: map[string]float64{}}
	if o.NB != o.NA {
		res.NB = o.NB
	}

	// Baselines first, on one core, with the same code the protocol runs.
	base, mult, hash, err := oneCoreRates(o.RateTime)
	if err != nil {
		return res, err
	}
	res.BaselineMultPerSecOneCore, res.MultPerSecOneCore, res.HashPerSecOneCore = base, mult, hash
	res.Vector = psi.VectorX25519()
	total := float64(o.NA + o.NB)
	res.LimitSeconds = (2*total/base + total/hash) / float64(o.Workers)

	norm, err := psi.NewNormalizer(psi.Email, psi.NormalizeOptions{})
	if err != nil {
		return res, err
	}
	h, err := psi.NewHasher(psi.Email)
	if err != nil {
		return res, err
	}
	ka, err := psi.GenerateKey(nil)
	if err != nil {
		return res, err
	}
	kb, err := psi.GenerateKey(nil)
	if err != nil {
		return res, err
	}
	opts := psi.Options{Workers: o.Workers}
	progress := func(stage string, total int, w psi.Writer[psi.Point]) psi.Writer[psi.Point] {
		if o.Progress == nil {
			return w
		}
		done := 0
		o.Progress(stage, 0, total)
		return psi.WriterFunc[psi.Point](func(p []psi.Point) error {
			done += len(p)
			o.Progress(stage, done, total)
			return w.Write(p)
		})
	}

	start := time.Now()
	stage := func(name string, t0 time.Time) {
		d := time.Since(t0)
		res.Stages[name] = d.Seconds()
		logf(name, d)
	}
	// Party A and party B each blind their own audience.
	t0 := time.Now()
	pa := &psi.SliceWriter[psi.Point]{Items: make([]psi.Point, 0, o.NA)}
	if err := psi.BlindIDs(ctx, &emails{next: 0, end: o.NA}, progress("a_blind_own", o.NA, pa), norm, h, ka, opts); err != nil {
		return res, fmt.Errorf("party A blinding: %w", err)
	}
	stage("a_blind_own", t0)
	t0 = time.Now()
	firstB := o.NA - o.Overlap
	pb := &psi.SliceWriter[psi.Point]{Items: make([]psi.Point, 0, o.NB)}
	if err := psi.BlindIDs(ctx, &emails{next: firstB, end: firstB + o.NB, messy: true}, progress("b_blind_own", o.NB, pb), norm, h, kb, opts); err != nil {
		return res, fmt.Errorf("party B blinding: %w", err)
	}
	stage("b_blind_own", t0)

	// Each re-blinds the other's points; the server tokenizes them as they
	// come back.
	tokenize := func(dst *[]psi.Token) psi.Writer[psi.Point] {
		return psi.WriterFunc[psi.Point](func(pts []psi.Point) error {
			for i := range pts {
				*dst = append(*dst, psi.TokenOf(&pts[i]))
			}
			return nil
		})
	}
	t0 = time.Now()
	ta := make([]psi.Token, 0, o.NA)
	if err := psi.Reblind(ctx, &psi.SliceReader[psi.Point]{Items: pa.Items}, progress("b_reblind_a", o.NA, tokenize(&ta)), kb, opts); err != nil {
		return res, fmt.Errorf("party B re-blinding A's points: %w", err)
	}
	pa.Items = nil
	stage("b_reblind_a", t0)
	t0 = time.Now()
	tb := make([]psi.Token, 0, o.NB)
	if err := psi.Reblind(ctx, &psi.SliceReader[psi.Point]{Items: pb.Items}, progress("a_reblind_b", o.NB, tokenize(&tb)), ka, opts); err != nil {
		return res, fmt.Errorf("party A re-blinding B's points: %w", err)
	}
	pb.Items = nil
	stage("a_reblind_b", t0)

	t0 = time.Now()
	found, err := psi.Intersect(ctx, &psi.SliceReader[psi.Token]{Items: ta}, &psi.SliceReader[psi.Token]{Items: tb}, o.NA,
		psi.WriterFunc[psi.Match](func([]psi.Match) error { return nil }))
	if err != nil {
		return res, err
	}
	stage("intersect", t0)
	res.Found = found
	res.Seconds = time.Since(start).Seconds()
	res.Ratio = res.Seconds / res.LimitSeconds
	res.PeakRSSBytes = PeakRSS()
	return res, nil
}

// oneCoreRates measures, on one goroutine and each for at least d:
// circl's X25519 (Blind), the batch path the streams use (BlindBatch over
// batches of points), and hash-to-curve.
func oneCoreRates(d time.Duration) (base, mult, hash float64, err error) {
	if d <= 0 {
		d = time.Second / 2
	}
	k, err := psi.GenerateKey(nil)
	if err != nil {
		return 0, 0, 0, err
	}
	h, err := psi.NewHasher(psi.Email)
	if err != nil {
		return 0, 0, 0, err
	}
	var msg [32]byte
	p := h.Hash(msg[:])
	base = rate(d, func(n int) {
		for i := 0; i < n; i++ {
			p, _ = k.Blind(p)
		}
	})
	const batch = 64 // a multiple of psi.BatchLanes, small enough for rate to step finely
	pts := make([]psi.Point, batch)
	for i := range pts {
		msg[0], msg[1] = byte(i), byte(i>>8)
		pts[i] = h.Hash(msg[:])
	}
	mult = batch * rate(d, func(n int) {
		for i := 0; i < n; i++ {
			k.BlindBatch(pts, pts)
		}
	})
	hash = rate(d, func(n int) {
		for i := 0; i < n; i++ {
			msg[0], msg[1], msg[2] = byte(i), byte(i>>8), byte(i>>16)
			p = h.Hash(msg[:])
		}
	})
	return base, mult, hash, nil
}

// rate returns the operations per second of f(n), doubling n until one
// run takes at least min.
func rate(min time.Duration, f func(n int)) float64 {
	f(100) // warm up
	for n := 256; ; n *= 2 {
		t0 := time.Now()
		f(n)
		if d := time.Since(t0); d >= min {
			return float64(n) / d.Seconds()
		}
	}
}

// PeakRSS returns the process's peak resident set size in bytes.
func PeakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	if runtime.GOOS == "darwin" {
		return ru.Maxrss // bytes there
	}
	return ru.Maxrss * 1024 // KiB on Linux
}

// ParseFraction reads an overlap given as 0.1 or 10%.
func ParseFraction(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("overlap %q is not a number (write 0.1 or 10%%)", s)
	}
	if pct {
		f /= 100
	}
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("overlap %q is outside 0..1", s)
	}
	return f, nil
}
