package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// MatchOptions tune this party's half of a match.
type MatchOptions struct {
	PSI psi.Options
	// Progress, when set, is told how many points were re-blinded so far.
	Progress func(done int64)
	// Poll is how often to check whether the other party finished; default 1s.
	Poll time.Duration
	// NoWait returns after this party's half instead of waiting for the cohort.
	NoWait bool
	// Waiting, when set, is told once that the other party has not
	// uploaded yet (DoMatch then polls until it has, or ctx ends).
	Waiting func()
	// Started, when set, is told of the match once it is started or
	// joined, and Sent once this party's half is in; DoMatch then waits
	// for the cohort. A match gone stale starts over, and tells them again.
	Started func(wire.Match)
	Sent    func()
}

// DoMatch runs this party's half of a match: it starts (or joins) the
// match (with key's fingerprint: a key other than the one the party's
// tables were uploaded with is refused, ErrKeyMismatch, before anything
// is charged), streams the other party's points through key's re-blinding back
// to the server, in order and in bounded memory, then waits for the
// cohort. Running it again is safe: the server ignores a half it already
// has.
func (c *Client) DoMatch(ctx context.Context, collabID string, key *psi.Key, opts MatchOptions) (wire.Match, error) {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	// A match goes stale when an audience is replaced or people are
	// deleted while it runs; the next one starts over those changes.
	for attempt := 1; ; attempt++ {
		m, err := c.doMatch(ctx, collabID, key, opts)
		stale := m.State == wire.MatchStale || errors.Is(err, ErrStaleMatch)
		if !stale || attempt == 3 {
			if err == nil && stale {
				err = fmt.Errorf("match %s went stale three times (audiences keep changing); run match again later", m.ID)
			}
			return m, err
		}
	}
}

func (c *Client) doMatch(ctx context.Context, collabID string, key *psi.Key, opts MatchOptions) (wire.Match, error) {
	var m wire.Match
	for told := false; ; {
		var err error
		m, err = c.startMatch(ctx, collabID, key)
		if errors.Is(err, ErrAwaitingUpload) {
			if !told && opts.Waiting != nil {
				opts.Waiting()
			}
			told = true
			select {
			case <-ctx.Done():
				return m, ctx.Err()
			case <-time.After(opts.Poll):
				continue
			}
		}
		if err != nil {
			return m, err
		}
		break
	}
	if opts.Started != nil {
		opts.Started(m)
	}
	// A re-run (after a crash, or after deletions shortened the points
	// served) has nothing to send once the server holds this half.
	if !m.YourHalfReceived {
		if err := c.ReblindPoints(ctx, collabID, m.ID, key, opts); err != nil {
			return m, err
		}
	}
	if opts.Sent != nil {
		opts.Sent()
	}
	if opts.NoWait {
		return c.Match(ctx, collabID, m.ID)
	}
	return c.WaitMatch(ctx, collabID, m.ID, opts.Poll)
}

// ReblindPoints fetches the other party's points for match matchID,
// re-blinds them with key and returns them.
func (c *Client) ReblindPoints(ctx context.Context, collabID, matchID string, key *psi.Key, opts MatchOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	getR, getW := io.Pipe()
	getDone := make(chan error, 1)
	go func() {
		err := c.Points(ctx, collabID, matchID, getW)
		getW.CloseWithError(err)
		getDone <- err
	}()
	defer getR.Close()

	putR, putW := io.Pipe()
	putDone := make(chan error, 1)
	go func() {
		_, err := c.PutPoints(ctx, collabID, matchID, key.Fingerprint(), putR)
		putR.CloseWithError(err)
		putDone <- err
	}()

	err := reblindStream(ctx, getR, putW, key, opts)
	putW.CloseWithError(err)
	perr := <-putDone
	if err != nil {
		getR.CloseWithError(err)
		// The server's refusal (a stale match, say) says more than the
		// broken stream it left behind.
		if gerr := <-getDone; gerr != nil {
			return gerr
		}
		return fmt.Errorf("re-blinding points: %w", err)
	}
	return perr
}

// reblindStream reads an Arrow IPC stream of points from r and writes their
// re-blinding with key to w as an Arrow IPC stream, in order.
func reblindStream(ctx context.Context, r io.Reader, w io.Writer, key *psi.Key, opts MatchOptions) error {
	ir, err := ipc.NewReader(r)
	if err != nil {
		return fmt.Errorf("reading the server's points: %w", err)
	}
	defer ir.Release()
	iw := ipc.NewWriter(w, ipc.WithSchema(audience.PointsSchema))
	src := &arrowPoints{r: ir}
	var done int64
	dst := psi.WriterFunc[psi.Point](func(pts []psi.Point) error {
		b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, &arrow.FixedSizeBinaryType{ByteWidth: psi.PointSize})
		defer b.Release()
		b.Reserve(len(pts))
		for i := range pts {
			b.Append(pts[i][:])
		}
		arr := b.NewArray()
		defer arr.Release()
		rec := array.NewRecord(audience.PointsSchema, []arrow.Array{arr}, int64(len(pts)))
		defer rec.Release()
		done += int64(len(pts))
		if opts.Progress != nil {
			opts.Progress(done)
		}
		return iw.Write(rec)
	})
	opts.PSI.BatchSize = max(opts.PSI.BatchSize, 4096)
	if err := psi.Reblind(ctx, src, dst, key, opts.PSI); err != nil {
		return err
	}
	return iw.Close()
}

// arrowPoints reads points out of Arrow records for psi's streams.
type arrowPoints struct {
	r   *ipc.Reader
	cur *array.FixedSizeBinary
	i   int
}

func (a *arrowPoints) Read(buf []psi.Point) (int, error) {
	n := 0
	for n < len(buf) {
		if a.cur == nil || a.i >= a.cur.Len() {
			if !a.r.Next() {
				if err := a.r.Err(); err != nil {
					return n, err
				}
				return n, io.EOF
			}
			col, ok := a.r.Record().Column(0).(*array.FixedSizeBinary)
			if !ok {
				return n, fmt.Errorf("server sent points of type %s, want fixed_size_binary[32]", a.r.Record().Column(0).DataType())
			}
			a.cur, a.i = col, 0
			continue
		}
		p, err := psi.DecodePoint(a.cur.Value(a.i))
		if err != nil {
			return n, err
		}
		buf[n] = p
		n++
		a.i++
	}
	return n, nil
}
