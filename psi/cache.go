package psi

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// A Cache remembers the points BlindIDs made in the streams that use it,
// so that an
// identifier seen again (a person's second purchase, thirtieth exposure)
// costs a lookup instead of a hash to the curve and a blinding. It holds a
// fixed number of slots, so its memory is bounded whatever the input's
// size: a slot holds one identifier's digest and point, in sets of
// cacheWays slots a digest may use (so that a few identifiers that fall
// in one set do not evict each other), the least recently used giving way;
// an identifier whose slot another took is simply blinded again (the
// result is the same: blinding is deterministic). One Cache serves one key and one Hasher: the
// point it remembers for a digest is that key's and that kind's.
//
// Constant time: a lookup branches on whether the digest was seen before
// in this party's own input, which only this party runs; the key never
// meets a branch.
type Cache struct {
	heads []cacheSet     // one a set: what a lookup reads first
	slots []cacheSlot    // cacheWays a set
	locks [64]sync.Mutex // striped by set
	hits  atomic.Int64
	miss  atomic.Int64
	// streams counts the streams that used the cache: each claims slots
	// under an id of its own (stream).
	streams atomic.Int64
}

// cacheSet is a set's head, one cache line: a lookup of a digest the set
// lacks reads nothing else.
type cacheSet struct {
	tags    [cacheWays]uint64 // a slot's digest bytes 8-16; 0: empty
	used    [cacheWays]uint32 // recency of each slot's last use
	tick    uint32            // the set's own clock of uses
	pending uint8             // a bit a slot being blinded
	_       [11]byte          // to 64 bytes
}

// cacheSlot holds a digest and, once blinded, its point; while a batch
// blinds it, owner is the claim of the item that took it (its stream's
// base plus its row), so the batch knows its own claims and others wait.
type cacheSlot struct {
	digest [32]byte
	point  Point
	owner  int64
}

// cacheSlotBytes is a slot's memory with its share of the set's head;
// cacheWays the slots of a set.
const (
	cacheWays      = 4
	cacheSlotBytes = 72 + 64/cacheWays
)

// NewCache returns a Cache of at most maxBytes (and at least 1,024 slots).
func NewCache(maxBytes int64) *Cache {
	sets := max(maxBytes/cacheSlotBytes/cacheWays, 1024/cacheWays)
	return &Cache{heads: make([]cacheSet, sets), slots: make([]cacheSlot, sets*cacheWays)}
}

// Hits is how many identifiers were served from the cache; Misses how
// many were hashed and blinded.
func (c *Cache) Hits() int64   { return c.hits.Load() }
func (c *Cache) Misses() int64 { return c.miss.Load() }

// Bytes is the cache's memory.
func (c *Cache) Bytes() int64 { return int64(len(c.slots)) * cacheSlotBytes }

// set of a digest, and its tag: its bytes are uniformly random (SHA-256).
func (c *Cache) set(d *[32]byte) (uint64, uint64) {
	i := binary.LittleEndian.Uint64(d[:8]) % uint64(len(c.heads))
	return i, max(binary.LittleEndian.Uint64(d[8:16]), 1)
}

func (c *Cache) lock(i uint64) *sync.Mutex { return &c.locks[i%uint64(len(c.locks))] }

// streamRows bounds a stream's rows: a claim is the stream's id times it
// plus the row, so no two streams' claims are alike.
const streamRows = 1 << 40

// stream returns a new stream's id, as the base of its claims.
func (c *Cache) stream() int64 { return c.streams.Add(1) * streamRows }

// use is a recency stamp of set h, taken under its lock; it wraps after
// 2^32 uses of the set, which only makes its eviction order wrong for a
// while, never a point.
func (h *cacheSet) use() uint32 {
	h.tick++
	return h.tick
}

// find returns the way of d in set i, or -1.
func (c *Cache) find(i, tag uint64, d *[32]byte) int {
	h := &c.heads[i]
	for k := range cacheWays {
		if h.tags[k] == tag && c.slots[i*cacheWays+uint64(k)].digest == *d {
			return k
		}
	}
	return -1
}

// lookup outcomes.
const (
	cacheHit     = iota // the point is known
	cacheClaimed        // the caller blinds it (its slot is now pending)
	cacheOwn            // a row of the caller's own batch blinds it
	cacheWait           // another batch blinds it now
)

// lookup finds d for the item whose claim is row, of a batch whose claims
// are [first, first+n): its point, the claim of the batch's own item that
// blinds it, or a claim of a slot.
func (c *Cache) lookup(d *[32]byte, row, first, n int64) (p Point, ownRow int64, outcome int) {
	i, tag := c.set(d)
	mu := c.lock(i)
	mu.Lock()
	defer mu.Unlock()
	h := &c.heads[i]
	if k := c.find(i, tag, d); k >= 0 {
		s := &c.slots[i*cacheWays+uint64(k)]
		switch {
		case h.pending&(1<<k) == 0:
			h.used[k] = h.use()
			return s.point, 0, cacheHit
		case s.owner >= first && s.owner < first+n:
			return Point{}, s.owner, cacheOwn
		default:
			return Point{}, 0, cacheWait
		}
	}
	// An empty slot, else the least recently used one not being blinded,
	// else the least recently used: the batch blinding what it held blinds
	// its item all the same.
	v := 0
	for k := range cacheWays {
		if h.tags[k] == 0 {
			v = k
			break
		}
		vp, kp := h.pending&(1<<v) != 0, h.pending&(1<<k) != 0
		if (vp && !kp) || (vp == kp && h.used[k] < h.used[v]) {
			v = k
		}
	}
	h.tags[v], h.used[v], h.pending = tag, h.use(), h.pending|1<<v
	c.slots[i*cacheWays+uint64(v)] = cacheSlot{digest: *d, owner: row}
	return Point{}, 0, cacheClaimed
}

// land records d's point, if the claim of row still holds its slot; with
// p nil (the batch failed) it frees the slot.
func (c *Cache) land(d *[32]byte, row int64, p *Point) {
	i, tag := c.set(d)
	mu := c.lock(i)
	mu.Lock()
	defer mu.Unlock()
	k := c.find(i, tag, d)
	h := &c.heads[i]
	if k < 0 || h.pending&(1<<k) == 0 || c.slots[i*cacheWays+uint64(k)].owner != row {
		return
	}
	h.pending &^= 1 << k
	if p == nil {
		h.tags[k] = 0
		return
	}
	c.slots[i*cacheWays+uint64(k)].point = *p
}

// await waits for another batch to land d: its point, or false if the
// slot was freed or taken meanwhile (the caller blinds it itself).
func (c *Cache) await(d *[32]byte) (Point, bool) {
	i, tag := c.set(d)
	mu := c.lock(i)
	for wait := 20 * time.Microsecond; ; wait = min(2*wait, time.Millisecond) {
		mu.Lock()
		k := c.find(i, tag, d)
		pending := k >= 0 && c.heads[i].pending&(1<<k) != 0
		var p Point
		if k >= 0 {
			p = c.slots[i*cacheWays+uint64(k)].point
		}
		mu.Unlock()
		if k < 0 {
			return Point{}, false
		}
		if !pending {
			return p, true
		}
		// The other batch is blinding (about a millisecond a hundred
		// items): sleep rather than take the cores it needs.
		time.Sleep(wait)
	}
}
