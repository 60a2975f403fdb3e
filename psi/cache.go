package psi

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// A Cache remembers the points BlindIDs made in one stream, so that an
// identifier seen again (a person's second purchase, thirtieth exposure)
// costs a lookup instead of a hash to the curve and a blinding. It holds a
// fixed number of slots, so its memory is bounded whatever the input's
// size: a slot holds one identifier's digest and point, and an identifier
// whose slot another took is simply blinded again (the result is the same:
// blinding is deterministic). One Cache serves one key and one Hasher: the
// point it remembers for a digest is that key's and that kind's.
//
// Constant time: a lookup branches on whether the digest was seen before
// in this party's own input, which only this party runs; the key never
// meets a branch.
type Cache struct {
	slots []cacheSlot
	n     uint64
	locks [64]sync.Mutex // striped by slot
	hits  atomic.Int64
	miss  atomic.Int64
}

// cacheSlot holds a digest and, once blinded, its point. While a batch
// blinds it (pending), owner is the stream row of the batch's item that
// claimed it, so the batch knows its own claims and others wait.
type cacheSlot struct {
	digest  [32]byte
	point   Point
	owner   int64
	pending bool
	used    bool
}

// cacheSlotBytes is a slot's size in memory.
const cacheSlotBytes = 80

// NewCache returns a Cache of at most maxBytes (and at least 1,024 slots).
func NewCache(maxBytes int64) *Cache {
	n := max(maxBytes/cacheSlotBytes, 1024)
	return &Cache{slots: make([]cacheSlot, n), n: uint64(n)}
}

// Hits is how many identifiers were served from the cache; Misses how
// many were hashed and blinded.
func (c *Cache) Hits() int64   { return c.hits.Load() }
func (c *Cache) Misses() int64 { return c.miss.Load() }

// Bytes is the cache's memory.
func (c *Cache) Bytes() int64 { return int64(len(c.slots)) * cacheSlotBytes }

// index of a digest: its first bytes are uniformly random (SHA-256).
func (c *Cache) index(d *[32]byte) uint64 { return binary.LittleEndian.Uint64(d[:8]) % c.n }

func (c *Cache) lock(i uint64) *sync.Mutex { return &c.locks[i%uint64(len(c.locks))] }

// lookup outcomes.
const (
	cacheHit     = iota // the point is known
	cacheClaimed        // the caller blinds it (its slot is now pending)
	cacheOwn            // a row of the caller's own batch blinds it
	cacheWait           // another batch blinds it now
)

// lookup finds d for the item at stream row row of a batch whose rows are
// [first, first+n): its point, the row of the batch's own item that
// blinds it, or a claim of its slot.
func (c *Cache) lookup(d *[32]byte, row, first, n int64) (p Point, ownRow int64, outcome int) {
	i := c.index(d)
	mu := c.lock(i)
	mu.Lock()
	defer mu.Unlock()
	s := &c.slots[i]
	if s.used && s.digest == *d {
		switch {
		case !s.pending:
			return s.point, 0, cacheHit
		case s.owner >= first && s.owner < first+n:
			return Point{}, s.owner, cacheOwn
		default:
			return Point{}, 0, cacheWait
		}
	}
	// Empty, or another digest's (remembered or pending): take it. A
	// batch whose pending slot is taken blinds its item all the same.
	*s = cacheSlot{digest: *d, owner: row, pending: true, used: true}
	return Point{}, 0, cacheClaimed
}

// land records d's point, if the claim of row still holds its slot; with
// p nil (the batch failed) it frees the slot.
func (c *Cache) land(d *[32]byte, row int64, p *Point) {
	i := c.index(d)
	mu := c.lock(i)
	mu.Lock()
	defer mu.Unlock()
	s := &c.slots[i]
	if !s.used || !s.pending || s.digest != *d || s.owner != row {
		return
	}
	if p == nil {
		*s = cacheSlot{}
		return
	}
	s.point, s.pending = *p, false
}

// await waits for another batch to land d: its point, or false if the
// slot was freed or taken meanwhile (the caller blinds it itself).
func (c *Cache) await(d *[32]byte) (Point, bool) {
	i := c.index(d)
	mu := c.lock(i)
	for wait := 20 * time.Microsecond; ; wait = min(2*wait, time.Millisecond) {
		mu.Lock()
		s := c.slots[i]
		mu.Unlock()
		if !s.used || s.digest != *d {
			return Point{}, false
		}
		if !s.pending {
			return s.point, true
		}
		// The other batch is blinding (about a millisecond a hundred
		// items): sleep rather than take the cores it needs.
		time.Sleep(wait)
	}
}
