package psi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// party is one side of an in-process PSI run.
type party struct {
	key  *Key
	ids  []string
	own  []Point // own ids, blinded once
	back []Point // own points, blinded again by the other side
}

func blindAll(t *testing.T, ids []string, key *Key, opts Options) []Point {
	t.Helper()
	n, err := NewNormalizer(Email, NormalizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := NewHasher(Email)
	var out SliceWriter[Point]
	if err := BlindIDs(context.Background(), &SliceReader[string]{Items: ids}, &out, n, h, key, opts); err != nil {
		t.Fatal(err)
	}
	return out.Items
}

func reblindAll(t *testing.T, pts []Point, key *Key, opts Options) []Point {
	t.Helper()
	var out SliceWriter[Point]
	if err := Reblind(context.Background(), &SliceReader[Point]{Items: pts}, &out, key, opts); err != nil {
		t.Fatal(err)
	}
	return out.Items
}

func tokensOf(t *testing.T, pts []Point) []Token {
	t.Helper()
	var out SliceWriter[Token]
	if err := Tokens(context.Background(), &SliceReader[Point]{Items: pts}, &out, Options{}); err != nil {
		t.Fatal(err)
	}
	return out.Items
}

// audiences returns two email lists with exactly overlap people in common,
// the common ones written differently on each side (case, spaces, and one
// side pre-hashed), so matching goes through normalization.
func audiences(rng *rand.Rand, na, nb, overlap int) (a, b []string, common map[string]bool) {
	common = map[string]bool{}
	for i := 0; i < na; i++ {
		a = append(a, fmt.Sprintf("a%d.person%d@example.com", i, rng.IntN(1e9)))
	}
	for i := 0; i < nb-overlap; i++ {
		b = append(b, fmt.Sprintf("b%d.person%d@example.org", i, rng.IntN(1e9)))
	}
	for _, j := range rng.Perm(na)[:overlap] {
		e := a[j]
		common[e] = true
		switch j % 3 {
		case 0:
			e = "  " + strings.ToUpper(e) + "\t"
		case 1:
			sum := sha256.Sum256([]byte(e))
			e = hex.EncodeToString(sum[:])
		}
		b = append(b, e)
	}
	rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	return a, b, common
}

// TestTwoPartyPSIExact runs the whole protocol in process and checks the
// matched set equals the true intersection, person by person.
func TestTwoPartyPSIExact(t *testing.T) {
	sizes := []struct{ na, nb, overlap int }{
		{1, 1, 1}, {10, 7, 0}, {100, 300, 50}, {2000, 1500, 1500}, {5000, 5000, 417},
	}
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d/%d", sz.na, sz.nb, sz.overlap), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(sz.na), uint64(sz.nb)))
			ids, idsB, common := audiences(rng, sz.na, sz.nb, sz.overlap)
			opts := Options{BatchSize: 1 + rng.IntN(300)}
			A := party{key: mustKey(t), ids: ids}
			B := party{key: mustKey(t), ids: idsB}
			A.own = blindAllMixed(t, A.ids, A.key, opts)
			B.own = blindAllMixed(t, B.ids, B.key, opts)
			A.back = reblindAll(t, A.own, B.key, opts) // B reblinds A's points
			B.back = reblindAll(t, B.own, A.key, opts)
			var matches SliceWriter[Match]
			n, err := Intersect(context.Background(),
				&SliceReader[Token]{Items: tokensOf(t, A.back)},
				&SliceReader[Token]{Items: tokensOf(t, B.back)}, sz.na, &matches)
			if err != nil {
				t.Fatal(err)
			}
			if int(n) != len(common) || len(matches.Items) != len(common) {
				t.Fatalf("found %d (%d matches), want %d", n, len(matches.Items), len(common))
			}
			for _, m := range matches.Items {
				if !common[A.ids[m.A]] {
					t.Fatalf("matched %d:%d, which is not a common person", m.A, m.B)
				}
			}
		})
	}
}

// blindAllMixed blinds a list that mixes plain and sha256-hex emails, the
// way a party whose CRM holds both would: each through its own normalizer.
func blindAllMixed(t *testing.T, ids []string, key *Key, opts Options) []Point {
	t.Helper()
	h, _ := NewHasher(Email)
	plain, _ := NewNormalizer(Email, NormalizeOptions{})
	hashed, _ := NewNormalizer(SHA256, NormalizeOptions{})
	out := make([]Point, len(ids))
	for i, id := range ids {
		n := plain
		if len(id) == 64 && !strings.Contains(id, "@") {
			n = hashed
		}
		d, err := n.Digest(id)
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = key.Blind(h.Hash(d[:])); err != nil {
			t.Fatal(err)
		}
	}
	// The stream API must agree with the one-at-a-time path.
	if !strings.Contains(strings.Join(ids, ""), "@") || len(ids) == 0 {
		return out
	}
	var plainOnly []string
	var want []Point
	for i, id := range ids {
		if strings.Contains(id, "@") {
			plainOnly = append(plainOnly, id)
			want = append(want, out[i])
		}
	}
	got := blindAll(t, plainOnly, key, opts)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("BlindIDs row %d differs from Key.Blind", i+1)
		}
	}
	return out
}

func TestBlindIDsOrderAndRowErrors(t *testing.T) {
	k := mustKey(t)
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = fmt.Sprintf("user%d@example.com", i)
	}
	one := blindAll(t, ids, k, Options{Workers: 1, BatchSize: 5000})
	many := blindAll(t, ids, k, Options{Workers: 7, BatchSize: 3})
	if len(one) != len(ids) || len(many) != len(ids) {
		t.Fatalf("got %d and %d points for %d ids", len(one), len(many), len(ids))
	}
	for i := range one {
		if one[i] != many[i] {
			t.Fatalf("row %d: order not preserved across workers", i+1)
		}
	}

	ids[3456] = "no-at-sign.example.com"
	n, _ := NewNormalizer(Email, NormalizeOptions{})
	h, _ := NewHasher(Email)
	var out SliceWriter[Point]
	err := BlindIDs(context.Background(), &SliceReader[string]{Items: ids}, &out, n, h, k, Options{Workers: 3, BatchSize: 100})
	var re *RowError
	if !errors.As(err, &re) || re.Row != 3457 {
		t.Fatalf("got %v, want a RowError for row 3457", err)
	}
	if strings.Contains(err.Error(), "no-at-sign") {
		t.Errorf("error %q reveals the identifier", err)
	}
	if len(out.Items) > 3456 {
		t.Errorf("%d points written past the bad row", len(out.Items))
	}
	for i := range out.Items {
		if out.Items[i] != one[i] {
			t.Fatalf("row %d written before the error is wrong", i+1)
		}
	}
}

func TestReblindRejectsBadPoint(t *testing.T) {
	k := mustKey(t)
	pts := blindAll(t, []string{"a@x.com", "b@x.com", "c@x.com"}, k, Options{})
	pts[1] = lowOrder[3]
	var out SliceWriter[Point]
	err := Reblind(context.Background(), &SliceReader[Point]{Items: pts}, &out, k, Options{})
	var re *RowError
	if !errors.As(err, &re) || re.Row != 2 || !errors.Is(err, ErrPointLowOrder) {
		t.Fatalf("got %v, want row 2 low order", err)
	}
}

// endless yields identifiers forever.
type endless struct{ i int }

func (e *endless) Read(buf []string) (int, error) {
	for j := range buf {
		buf[j] = fmt.Sprintf("u%d@example.com", e.i)
		e.i++
	}
	return len(buf), nil
}

func TestStreamCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n, _ := NewNormalizer(Email, NormalizeOptions{})
	h, _ := NewHasher(Email)
	src := &endless{}
	written := 0
	dst := WriterFunc[Point](func(p []Point) error {
		written += len(p)
		if written >= 2000 {
			cancel()
		}
		return nil
	})
	err := BlindIDs(ctx, src, dst, n, h, mustKey(t), Options{Workers: 2, BatchSize: 100})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// Bounded buffering: the reader ran at most 2 x Workers batches ahead.
	if src.i > written+4*100 {
		t.Errorf("read %d ids for %d written: buffering is not bounded", src.i, written)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(buf []string) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk on fire")
	}
	f.n--
	buf[0] = "ok@example.com"
	return 1, nil
}

func TestStreamReadErrorKeepsEarlierRows(t *testing.T) {
	n, _ := NewNormalizer(Email, NormalizeOptions{})
	h, _ := NewHasher(Email)
	var out SliceWriter[Point]
	err := BlindIDs(context.Background(), &failingReader{n: 5}, &out, n, h, mustKey(t), Options{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("got %v", err)
	}
	if len(out.Items) != 5 {
		t.Errorf("wrote %d rows before the read error, want 5", len(out.Items))
	}
}

func TestStreamWriteErrorStops(t *testing.T) {
	boom := errors.New("sink full")
	err := Tokens(context.Background(), &SliceReader[Point]{Items: make([]Point, 10000)},
		WriterFunc[Token](func([]Token) error { return boom }), Options{BatchSize: 10})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

func TestTokenSetGrowsAndFinds(t *testing.T) {
	s := NewTokenSet(0)
	rng := rand.New(rand.NewPCG(1, 2))
	toks := make([]Token, 50000)
	for i := range toks {
		for j := range toks[i] {
			toks[i][j] = byte(rng.Uint32())
		}
		if !s.Add(toks[i], uint32(i)) {
			t.Fatalf("fresh token %d reported as duplicate", i)
		}
	}
	if s.Add(toks[7], 99) {
		t.Error("duplicate token added twice")
	}
	if s.Len() != len(toks) {
		t.Errorf("Len %d, want %d", s.Len(), len(toks))
	}
	for i, tk := range toks {
		if r, ok := s.Find(tk); !ok || r != uint32(i) {
			t.Fatalf("token %d: got %d %v", i, r, ok)
		}
	}
	var absent Token
	absent[0] = 1
	if _, ok := s.Find(absent); ok {
		t.Error("found a token never added")
	}
}

func TestIntersectEmpty(t *testing.T) {
	var m SliceWriter[Match]
	n, err := Intersect(context.Background(), &SliceReader[Token]{}, &SliceReader[Token]{Items: make([]Token, 3)}, 0, &m)
	if err != nil || n != 0 {
		t.Fatalf("got %d, %v", n, err)
	}
}

func BenchmarkBlind(b *testing.B) {
	k := mustKey(b)
	h, _ := NewHasher(Email)
	p := h.Hash([]byte("x"))
	for i := 0; i < b.N; i++ {
		p, _ = k.Blind(p)
	}
}
