package psi

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// TokenSet is an open-addressing hash set of tokens with the row each came
// from. Tokens are uniformly random, so their first 8 bytes index the table
// directly. It takes 16 bytes a slot and keeps the load at most 3/4: 10M
// tokens fit in 256 MiB.
type TokenSet struct {
	slots []tokenSlot
	mask  uint64
	n     int
}

type tokenSlot struct {
	tok Token
	row uint32 // row + 1; 0 marks an empty slot
}

// NewTokenSet returns a set sized for about n tokens; it grows beyond that.
func NewTokenSet(n int) *TokenSet {
	size := uint64(16)
	if n > 0 {
		size = uint64(1) << bits.Len64(uint64(n)*4/3)
	}
	return &TokenSet{slots: make([]tokenSlot, size), mask: size - 1}
}

// Len returns the number of distinct tokens in the set.
func (s *TokenSet) Len() int { return s.n }

// Add records that t occurs at row (from 0). For a token already present it
// keeps the first row and returns false.
func (s *TokenSet) Add(t Token, row uint32) bool {
	if row == math.MaxUint32 {
		panic("psi: TokenSet holds at most 2^32-1 rows")
	}
	if uint64(s.n+1)*4 > uint64(len(s.slots))*3 {
		s.grow()
	}
	i := binary.LittleEndian.Uint64(t[:8]) & s.mask
	for {
		sl := &s.slots[i]
		if sl.row == 0 {
			sl.tok, sl.row = t, row+1
			s.n++
			return true
		}
		if sl.tok == t {
			return false
		}
		i = (i + 1) & s.mask
	}
}

// Find returns the row t was added at.
func (s *TokenSet) Find(t Token) (uint32, bool) {
	i := binary.LittleEndian.Uint64(t[:8]) & s.mask
	for {
		sl := &s.slots[i]
		if sl.row == 0 {
			return 0, false
		}
		if sl.tok == t {
			return sl.row - 1, true
		}
		i = (i + 1) & s.mask
	}
}

func (s *TokenSet) grow() {
	old := s.slots
	s.slots = make([]tokenSlot, 2*len(old))
	s.mask = uint64(len(s.slots)) - 1
	s.n = 0
	for _, sl := range old {
		if sl.row != 0 {
			s.Add(sl.tok, sl.row-1)
		}
	}
}

// Match is one common token: its row in each stream, from 0.
type Match struct {
	A, B uint32
}

// Intersect finds the tokens common to two streams. It holds stream a in a
// TokenSet (sizeHint tokens expected) and streams b past it, so memory is
// about 16-21 bytes per token of a whatever the size of b. Each token of b
// found in a is written to dst as a Match, in b's order; a token repeated
// within a matches at its first row. It returns the number of matches.
func Intersect(ctx context.Context, a, b Reader[Token], sizeHint int, dst Writer[Match]) (int64, error) {
	const chunk = 4096
	set := NewTokenSet(sizeHint)
	buf := make([]Token, chunk)
	var row uint64
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := a.Read(buf)
		for _, t := range buf[:n] {
			if row >= math.MaxUint32 {
				return 0, fmt.Errorf("psi.Intersect: stream a has more than %d rows", uint32(math.MaxUint32-1))
			}
			set.Add(t, uint32(row))
			row++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("psi.Intersect: reading a: %w", err)
		}
	}
	var found int64
	matches := make([]Match, 0, chunk)
	row = 0
	for {
		if err := ctx.Err(); err != nil {
			return found, err
		}
		n, err := b.Read(buf)
		matches = matches[:0]
		for _, t := range buf[:n] {
			if ra, ok := set.Find(t); ok {
				matches = append(matches, Match{A: ra, B: uint32(row)})
			}
			row++
		}
		if len(matches) > 0 {
			found += int64(len(matches))
			if werr := dst.Write(matches); werr != nil {
				return found, werr
			}
		}
		if err == io.EOF {
			return found, nil
		}
		if err != nil {
			return found, fmt.Errorf("psi.Intersect: reading b: %w", err)
		}
	}
}
