package psi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// events is rows of people: people distinct identifiers, each repeated
// about perPerson times, shuffled or (sorted) each person's rows together.
func events(people, perPerson int, sorted bool, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	var ids []string
	for p := 0; p < people; p++ {
		n := 1 + r.IntN(2*perPerson-1)
		for range n {
			// Case and spaces differ between a person's rows: the cache
			// keys on the normalized identifier.
			id := fmt.Sprintf("Person%d@Example.com", p)
			if r.IntN(2) == 0 {
				id = fmt.Sprintf("  person%d@example.COM ", p)
			}
			ids = append(ids, id)
		}
	}
	if !sorted {
		r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	}
	return ids
}

// TestCacheBlindsEachPersonOnce: with a cache, BlindIDs writes the same
// points as without, in order, and hashes and blinds each distinct
// identifier once when the cache holds them all; a cache too small for
// them (collisions) still gives the same points.
func TestCacheBlindsEachPersonOnce(t *testing.T) {
	k := mustKey(t)
	for _, sorted := range []bool{true, false} {
		ids := events(700, 12, sorted, 7)
		want := blindAll(t, ids, k, Options{Workers: 3, BatchSize: 128})
		for _, size := range []int64{64 << 20, 0} { // 0: the smallest cache, 1,024 slots, collisions
			c := NewCache(size)
			got := blindAll(t, ids, k, Options{Workers: 3, BatchSize: 128, Cache: c})
			if len(got) != len(want) {
				t.Fatalf("%d points, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("sorted=%v cache %d bytes: row %d differs from the uncached point", sorted, c.Bytes(), i+1)
				}
			}
			if c.Hits()+c.Misses() != int64(len(ids)) {
				t.Errorf("hits %d + misses %d != %d rows", c.Hits(), c.Misses(), len(ids))
			}
			if size > 0 && c.Misses() != 700 {
				t.Errorf("sorted=%v: %d blindings for 700 people in %d rows, want one a person", sorted, c.Misses(), len(ids))
			}
			if size == 0 && sorted && c.Misses() > 700*2 {
				t.Errorf("a person's rows together: %d blindings for 700 people", c.Misses())
			}
		}
	}
}

// TestCacheRowErrors: a bad identifier stops the stream at its own row
// whether its person's earlier rows came from the cache or not.
func TestCacheRowErrors(t *testing.T) {
	k := mustKey(t)
	ids := events(50, 10, false, 3)
	ids[137] = "no-at-sign.example.com"
	n, _ := NewNormalizer(Email, NormalizeOptions{})
	h, _ := NewHasher(Email)
	var out SliceWriter[Point]
	err := BlindIDs(context.Background(), &SliceReader[string]{Items: ids}, &out, n, h, k, Options{Workers: 2, BatchSize: 16, Cache: NewCache(1 << 20)})
	var re *RowError
	if !errors.As(err, &re) || re.Row != 138 {
		t.Fatalf("got %v, want a RowError for row 138", err)
	}
}

func TestCacheSize(t *testing.T) {
	if b := NewCache(64 << 20).Bytes(); b > 64<<20 || b < 64<<20-cacheWays*cacheSlotBytes {
		t.Errorf("a 64 MiB cache takes %d bytes", b)
	}
	if b := NewCache(0).Bytes(); b != 1024*cacheSlotBytes {
		t.Errorf("the smallest cache takes %d bytes", b)
	}
}

// BenchmarkBlindIDsEvents: blinding an event log (12 rows a person on
// average), per row, without the cache and with it; the ratio of the two
// is the saving.
func BenchmarkBlindIDsEvents(b *testing.B) {
	benchBlindIDs(b, events(20000, 12, false, 11))
}

// BenchmarkBlindIDsDistinct: one row a person, where the cache can only
// cost: its lookups against the blinding alone.
func BenchmarkBlindIDsDistinct(b *testing.B) {
	benchBlindIDs(b, events(200000, 1, false, 13))
}

func benchBlindIDs(b *testing.B, ids []string) {
	k := mustKey(b)
	n, _ := NewNormalizer(Email, NormalizeOptions{})
	h, _ := NewHasher(Email)
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%v", cached), func(b *testing.B) {
			for range b.N {
				opts := Options{}
				if cached {
					opts.Cache = NewCache(64 << 20)
				}
				var out SliceWriter[Point]
				if err := BlindIDs(context.Background(), &SliceReader[string]{Items: ids}, &out, n, h, k, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/row")
		})
	}
}

// TestCacheSetFitsALine: a set's head is one cache line, so a lookup of an
// identifier not seen reads one line.
func TestCacheSetFitsALine(t *testing.T) {
	if n := unsafe.Sizeof(cacheSet{}); n != 64 {
		t.Errorf("a set's head is %d bytes, want 64", n)
	}
}

// TestCacheWays: identifiers that fall in one set do not evict each other
// while the set has room for them.
func TestCacheWays(t *testing.T) {
	c := NewCache(0)
	var ds [][32]byte
	for i := 0; len(ds) < cacheWays; i++ {
		d := sha256.Sum256([]byte(fmt.Sprint(i)))
		if s, _ := c.set(&d); s == 7 {
			ds = append(ds, d)
		}
	}
	for r, d := range ds {
		if _, _, o := c.lookup(&d, int64(r+1), int64(r+1), 1); o != cacheClaimed {
			t.Fatalf("first lookup: %d", o)
		}
		p := Point{byte(r + 1)}
		c.land(&d, int64(r+1), &p)
	}
	for r, d := range ds {
		if p, _, o := c.lookup(&d, 100, 100, 1); o != cacheHit || p[0] != byte(r+1) {
			t.Errorf("way %d: outcome %d point %d", r, o, p[0])
		}
	}
}

// TestCacheSharedByStreams: two streams blinding at once through one
// cache each get their own identifiers' points.
func TestCacheSharedByStreams(t *testing.T) {
	k := mustKey(t)
	a, b := events(300, 6, false, 21), events(300, 6, true, 22)
	for i := range b {
		b[i] = "x" + strings.TrimSpace(b[i]) // other people than a's
	}
	wantA := blindAll(t, a, k, Options{Workers: 2, BatchSize: 32})
	wantB := blindAll(t, b, k, Options{Workers: 2, BatchSize: 32})
	c := NewCache(0)
	var gotA, gotB []Point
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); gotA = blindAll(t, a, k, Options{Workers: 2, BatchSize: 32, Cache: c}) }()
	go func() { defer wg.Done(); gotB = blindAll(t, b, k, Options{Workers: 2, BatchSize: 32, Cache: c}) }()
	wg.Wait()
	if !slices.Equal(gotA, wantA) || !slices.Equal(gotB, wantB) {
		t.Fatal("a stream got a point of the other's")
	}
}
