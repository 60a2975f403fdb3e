package psi

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
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
	mask  uint64
	locks [64]sync.Mutex // striped by slot
	hits  atomic.Int64
	miss  atomic.Int64

	// flights are the digests some batch is blinding now: another batch
	// that meets one waits for its point instead of blinding it again.
	flightMu sync.Mutex
	flights  map[[32]byte]*flight
}

// flight is one digest being blinded; done closes when p is set, or when
// the batch failed (ok false) and the waiter must blind it itself.
type flight struct {
	done chan struct{}
	p    Point
	ok   bool
}

type cacheSlot struct {
	digest [32]byte
	point  Point
	used   bool
}

// cacheSlotBytes is a slot's size in memory.
const cacheSlotBytes = 72

// NewCache returns a Cache of about maxBytes (at least 1,024 slots, a
// power of two).
func NewCache(maxBytes int64) *Cache {
	n := uint64(1024)
	for int64(n*2*cacheSlotBytes) <= maxBytes {
		n *= 2
	}
	return &Cache{slots: make([]cacheSlot, n), mask: n - 1, flights: map[[32]byte]*flight{}}
}

// Hits is how many identifiers were served from the cache; Misses how
// many were hashed and blinded.
func (c *Cache) Hits() int64   { return c.hits.Load() }
func (c *Cache) Misses() int64 { return c.miss.Load() }

// Bytes is the cache's memory.
func (c *Cache) Bytes() int64 { return int64(len(c.slots)) * cacheSlotBytes }

// index of a digest: its first bytes are uniformly random (SHA-256).
func (c *Cache) index(d *[32]byte) uint64 { return binary.LittleEndian.Uint64(d[:8]) & c.mask }

func (c *Cache) lock(i uint64) *sync.Mutex { return &c.locks[i%uint64(len(c.locks))] }

// get reports d's point, if remembered.
func (c *Cache) get(d *[32]byte) (Point, bool) {
	i := c.index(d)
	mu := c.lock(i)
	mu.Lock()
	s := c.slots[i]
	mu.Unlock()
	if s.used && s.digest == *d {
		return s.point, true
	}
	return Point{}, false
}

// put remembers d's point, in place of whatever held its slot.
func (c *Cache) put(d *[32]byte, p *Point) {
	i := c.index(d)
	mu := c.lock(i)
	mu.Lock()
	c.slots[i] = cacheSlot{digest: *d, point: *p, used: true}
	mu.Unlock()
}

// claim returns the flight blinding d, and whether the caller is the one
// to blind it (the flight is new).
func (c *Cache) claim(d *[32]byte) (*flight, bool) {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	if f, ok := c.flights[*d]; ok {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	c.flights[*d] = f
	return f, true
}

// land ends d's flight: with its point when ok, else as failed.
func (c *Cache) land(d *[32]byte, f *flight, p *Point, ok bool) {
	if ok {
		c.put(d, p)
		f.p, f.ok = *p, true
	}
	c.flightMu.Lock()
	delete(c.flights, *d)
	c.flightMu.Unlock()
	close(f.done)
}
