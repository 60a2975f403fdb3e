package psi

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// Reader is a source of items read in batches, like io.Reader: Read fills
// up to len(buf) items and returns how many, with io.EOF after the last.
type Reader[T any] interface {
	Read(buf []T) (int, error)
}

// Writer is a sink of items. Write must not keep items after it returns:
// the stream reuses its buffers.
type Writer[T any] interface {
	Write(items []T) error
}

// SliceReader reads from a slice.
type SliceReader[T any] struct{ Items []T }

func (r *SliceReader[T]) Read(buf []T) (int, error) {
	if len(r.Items) == 0 {
		return 0, io.EOF
	}
	n := copy(buf, r.Items)
	r.Items = r.Items[n:]
	return n, nil
}

// SliceWriter appends to a slice.
type SliceWriter[T any] struct{ Items []T }

func (w *SliceWriter[T]) Write(items []T) error {
	w.Items = append(w.Items, items...)
	return nil
}

// WriterFunc adapts a function to a Writer.
type WriterFunc[T any] func(items []T) error

func (f WriterFunc[T]) Write(items []T) error { return f(items) }

// Options tune the parallel streams. The zero value is a good default.
type Options struct {
	// Workers is how many goroutines blind at once; default GOMAXPROCS.
	Workers int
	// BatchSize is how many items travel together; default 1024. Memory in
	// flight is bounded by 2 x Workers x BatchSize items.
	BatchSize int
	// Cache, when set, lets BlindIDs blind each distinct identifier once:
	// a repeat is served from it. One Cache serves one key and Hasher.
	Cache *Cache
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1024
	}
	return o
}

// RowError tells which item of a stream failed, counting from 1.
type RowError struct {
	Row int64
	Err error
}

func (e *RowError) Error() string { return fmt.Sprintf("row %d: %v", e.Row, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// BlindIDs normalizes, hashes and blinds every identifier read from src
// with key, and writes the points to dst in the order read, on all cores.
// With opts.Cache, each distinct identifier is hashed and blinded once
// while the cache holds it.
// The first bad identifier stops the stream with a *RowError naming its row
// (identifiers are never put in errors); everything before it has been
// written.
func BlindIDs(ctx context.Context, src Reader[string], dst Writer[Point], n *Normalizer, h *Hasher, key *Key, opts Options) error {
	cache := opts.Cache
	var stream int64
	if cache != nil {
		stream = cache.stream()
	}
	return run(ctx, src, dst, opts, func(in []string, out []Point, row int64) error {
		digests := make([][32]byte, len(in))
		for i, id := range in {
			var err error
			if digests[i], err = n.Digest(id); err != nil {
				return &RowError{Row: row + int64(i), Err: err}
			}
		}
		if cache == nil {
			return blindDigests(h, key, digests, out, row, nil)
		}
		return blindCached(cache, h, key, digests, out, row, stream)
	})
}

// blindDigests hashes the digests to the curve and blinds them into out;
// rows maps an item to its row offset in the stream (nil: its index).
func blindDigests(h *Hasher, key *Key, digests [][32]byte, out []Point, row int64, rows []int) error {
	msgs := make([][]byte, len(digests))
	for i := range digests {
		msgs[i] = digests[i][:]
	}
	// Eight at a time on the vector path; the blinding in place.
	h.HashMany(msgs, out)
	if i, err := key.BlindBatch(out, out); err != nil {
		if rows != nil {
			i = rows[i]
		}
		return &RowError{Row: row + int64(i), Err: fmt.Errorf("identifier hashed to a degenerate point: %w", err)}
	}
	return nil
}

// blindCached fills out from the cache, blinding only the digests it does
// not hold and no other batch is blinding now; it waits for those others.
func blindCached(cache *Cache, h *Hasher, key *Key, digests [][32]byte, out []Point, row, stream int64) error {
	// Claims carry the stream's id beside the row, so that streams sharing
	// the cache never take each other's claims for their own.
	first := stream + row
	n := int64(len(digests))
	// Counted here and added once: the counters are shared by every worker.
	var hits, misses int64
	defer func() { cache.hits.Add(hits); cache.miss.Add(misses) }()
	var (
		mine  []int    // items this batch blinds
		waits []int    // items another batch blinds
		later [][2]int // item, the earlier item of this batch blinding its digest
	)
	for i := range digests {
		p, own, outcome := cache.lookup(&digests[i], first+int64(i), first, n)
		switch outcome {
		case cacheHit:
			out[i] = p
			hits++
		case cacheClaimed:
			mine = append(mine, i)
		case cacheOwn:
			later = append(later, [2]int{i, int(own - first)})
			hits++
		case cacheWait:
			waits = append(waits, i)
		}
	}
	ds := make([][32]byte, len(mine))
	for k, i := range mine {
		ds[k] = digests[i]
	}
	pts := make([]Point, len(mine))
	err := blindDigests(h, key, ds, pts, row, mine)
	for k, i := range mine {
		if err != nil {
			cache.land(&digests[i], first+int64(i), nil)
			continue
		}
		out[i] = pts[k]
		cache.land(&digests[i], first+int64(i), &pts[k])
	}
	if err != nil {
		return err
	}
	misses += int64(len(mine))
	for _, i := range waits {
		if p, ok := cache.await(&digests[i]); ok {
			out[i] = p
			hits++
			continue
		}
		// The batch blinding it failed, or lost its slot: blind it here.
		if err := blindDigests(h, key, digests[i:i+1], out[i:i+1], row+int64(i), nil); err != nil {
			return err
		}
		misses++
	}
	for _, l := range later {
		out[l[0]] = out[l[1]]
	}
	return nil
}

// Reblind blinds every point read from src with key (the other party's
// blinded points, in the protocol) and writes them to dst in order. A point
// that fails DecodePoint's checks stops the stream with a *RowError.
func Reblind(ctx context.Context, src Reader[Point], dst Writer[Point], key *Key, opts Options) error {
	return run(ctx, src, dst, opts, func(in []Point, out []Point, row int64) error {
		if i, err := key.BlindBatch(in, out); err != nil {
			return &RowError{Row: row + int64(i), Err: err}
		}
		return nil
	})
}

// Tokens writes the matching token of every doubly blinded point read from
// src to dst, in order.
func Tokens(ctx context.Context, src Reader[Point], dst Writer[Token], opts Options) error {
	return run(ctx, src, dst, opts, func(in []Point, out []Token, _ int64) error {
		for i := range in {
			out[i] = TokenOf(&in[i])
		}
		return nil
	})
}

// batch is one unit of work; batches are reused so memory stays constant.
type batch[I, O any] struct {
	in   []I
	out  []O
	row  int64 // row number of in[0], from 1
	err  error
	done chan struct{}
}

// run is an ordered parallel map: one goroutine reads batches from src,
// Workers goroutines apply work, and the caller's goroutine writes results to
// dst in input order. At most 2 x Workers batches exist, which bounds memory
// whatever the input size. It stops at the first error (src, work, dst or
// ctx) and returns it after every goroutine has stopped.
func run[I, O any](ctx context.Context, src Reader[I], dst Writer[O], opts Options, work func(in []I, out []O, row int64) error) error {
	opts = opts.withDefaults()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	nb := 2 * opts.Workers
	free := make(chan *batch[I, O], nb)
	for i := 0; i < nb; i++ {
		free <- &batch[I, O]{
			in:   make([]I, opts.BatchSize),
			out:  make([]O, opts.BatchSize),
			done: make(chan struct{}, 1),
		}
	}
	jobs := make(chan *batch[I, O], nb)
	order := make(chan *batch[I, O], nb)

	var wg sync.WaitGroup
	var readErr error
	eof := false
	wg.Add(1)
	go func() { // reader
		defer wg.Done()
		defer close(order)
		defer close(jobs)
		row := int64(1)
		for {
			var b *batch[I, O]
			select {
			case b = <-free:
			case <-ctx.Done():
				return
			}
			n, err := src.Read(b.in[:cap(b.in)])
			if n > 0 {
				b.in, b.out, b.row, b.err = b.in[:n], b.out[:n], row, nil
				row += int64(n)
				order <- b // never blocks: channels hold every batch
				jobs <- b
			} else {
				free <- b
			}
			if err == io.EOF {
				eof = true
				return
			}
			if err != nil {
				readErr = err
				return
			}
		}
	}()
	for i := 0; i < opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				if ctx.Err() != nil {
					b.err = ctx.Err()
				} else {
					b.err = work(b.in, b.out, b.row)
				}
				b.done <- struct{}{}
			}
		}()
	}

	err := func() error {
		for b := range order {
			select {
			case <-b.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if b.err != nil {
				return b.err
			}
			if err := dst.Write(b.out); err != nil {
				return err
			}
			b.in, b.out = b.in[:cap(b.in)], b.out[:cap(b.out)]
			free <- b
		}
		return nil
	}()
	cancel()
	wg.Wait()
	if err == nil {
		err = readErr
	}
	if err == nil && !eof {
		// the reader stopped early only because the caller cancelled
		err = parent.Err()
	}
	return err
}
