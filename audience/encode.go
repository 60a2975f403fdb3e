package audience

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/cleanroom/cleanroom/psi"
)

// EncodeOptions say how to turn a party's file into an upload.
type EncodeOptions struct {
	// IDColumn is the input column holding the identifier (required).
	IDColumn string
	// IDType is how identifiers are written: email, phone, maid, or sha256
	// for identifiers normalized and hashed elsewhere (required).
	IDType psi.IDType
	// HashedKind is, for IDType sha256, the kind of identifier that was
	// hashed; default email. Pre-hashed and plaintext identifiers of one
	// kind give the same points.
	HashedKind psi.IDType
	// Normalize holds the normalization choices both parties must share.
	Normalize psi.NormalizeOptions
	// Attributes lists the input columns to send, with their types. nil
	// sends every column except the id and consent columns, named by
	// SanitizeName of the header, with types inferred (CSV) or taken from
	// the file (Parquet).
	Attributes []AttrSpec
	// ConsentColumn is the input column holding each row's consent
	// purposes; in CSV separated by ';' (e.g. "measurement;marketing"). ""
	// means none. Purposes are trimmed and lower-cased.
	ConsentColumn string
	// ConsentAll, if set, is a purpose added to every row: the party attests
	// consent for all of them.
	ConsentAll string
	// BatchSize is the number of rows per Arrow record; default 8192.
	BatchSize int
	// Workers is how many goroutines blind; default GOMAXPROCS.
	Workers int
	// Progress, if set, is called after each record is written with the
	// number of rows written so far.
	Progress func(rows int64)
	// SkipBlankIDs skips and counts rows whose identifier is blank or null
	// instead of failing on the first.
	SkipBlankIDs bool
	// Comma is the CSV field separator; default ','.
	Comma rune
	// CacheBytes bounds the memory that remembers identifiers already
	// blinded in this upload, so that a person with many rows costs one
	// blinding: default 256 MiB (about 3 million people); a negative value
	// blinds every row. Rows of a person beyond what it holds are blinded
	// again, to the same point: memory stays bounded for any file.
	CacheBytes int64
}

// DefaultCacheBytes is EncodeOptions.CacheBytes's default.
const DefaultCacheBytes = 256 << 20

// AttrSpec selects one input column to send as an attribute.
type AttrSpec struct {
	// Name is the attribute's name in the upload (see ValidateSchema).
	Name string
	// Type is "string", "int", "float", "bool", "date" (YYYY-MM-DD) or
	// "timestamp" (RFC 3339; no offset means UTC). "" infers it (CSV) or
	// takes it from the file (Parquet).
	Type string
	// Column is the input column; default Name.
	Column string
}

// EncodeStats count what an encoding did.
type EncodeStats struct {
	// Rows is the number of rows in the upload.
	Rows int64
	// SkippedBlank is the number of input rows skipped for a blank id.
	SkippedBlank int64
	// Blinded is how many identifiers were hashed and blinded: the
	// distinct ones, when the cache held them all.
	Blinded int64
}

const (
	defaultBatchSize = 8192
	// maxRecordBytes closes a record early when its rows are wide, keeping
	// every record well below the server's DefaultMaxMessageBytes.
	maxRecordBytes = 64 << 20
)

// chunk is the non-identifier part of a run of input rows, waiting in the
// encoder's queue while the identifiers are blinded.
type chunk struct {
	n       int
	pos     []int64    // CSV line or Parquet row of each row
	consent [][]string // nil: no purposes
	cols    []colValues
}

func newChunk(nattrs, size int) *chunk {
	return &chunk{pos: make([]int64, 0, size), cols: make([]colValues, nattrs)}
}

// truncate drops a partly appended row after a parse error.
func (c *chunk) truncate() {
	c.pos = c.pos[:c.n]
	if len(c.consent) > c.n {
		c.consent = c.consent[:c.n]
	}
	for i := range c.cols {
		c.cols[i].truncate(c.n)
	}
}

// source is an input format: it reads up to len(ids) rows, putting the
// identifiers in ids and the rest of each row in c (counting them in c.n),
// and returns how many it read, with io.EOF after the last. An error is a
// *PositionError naming the row, or an error reading the input; rows before
// it are returned.
type source interface {
	read(ids []string, c *chunk) (int, error)
	skipped() int64
}

// encoder runs psi.BlindIDs over a source: BlindIDs' reader goroutine calls
// Read, which parses a chunk of rows and queues their non-identifier part;
// the calling goroutine gets the points back in order through Write, pairs
// them with the queued rows and writes Arrow records. Parsing, blinding and
// writing thus overlap, and the queue never holds more rows than BlindIDs
// has in flight (at most 2 x Workers x its batch size).
type encoder struct {
	src        source
	unit       string // "line" or "row", for errors
	attrs      []attr
	consent    bool
	consentAll string
	schema     *arrow.Schema

	mu    sync.Mutex
	queue []*chunk
	head  int // rows of queue[0] already written

	written int64 // rows passed to Write
	batch   int
	pending int   // rows in the builders
	bytes   int64 // rough size of the rows in the builders
	rows    int64 // rows in records written

	mem      memory.Allocator
	pid      *array.FixedSizeBinaryBuilder
	list     *array.ListBuilder
	purposes *array.StringBuilder
	builders []array.Builder
	appends  []func(c *colValues, i int)
	out      *ipc.Writer
	progress func(int64)
}

func newEncoder(src source, unit string, attrs []attr, w io.Writer, opts EncodeOptions) (*encoder, error) {
	consentAll := strings.ToLower(strings.TrimSpace(opts.ConsentAll))
	consent := opts.ConsentColumn != "" || consentAll != ""
	schema, err := outputSchema(attrs, consent)
	if err != nil {
		return nil, err
	}
	e := &encoder{
		src: src, unit: unit, attrs: attrs, consent: consent, consentAll: consentAll, schema: schema,
		batch: opts.BatchSize, mem: memory.DefaultAllocator, progress: opts.Progress,
	}
	if e.batch <= 0 {
		e.batch = defaultBatchSize
	}
	e.pid = array.NewFixedSizeBinaryBuilder(e.mem, PIDType)
	if consent {
		e.list = array.NewListBuilder(e.mem, arrow.BinaryTypes.String)
		e.purposes = e.list.ValueBuilder().(*array.StringBuilder)
	}
	for _, a := range attrs {
		b := array.NewBuilder(e.mem, a.arrowType())
		e.builders = append(e.builders, b)
		e.appends = append(e.appends, appender(b, a.kind))
	}
	e.out = ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(e.mem))
	return e, nil
}

// appender appends row i of a chunk column to b, a builder of kind k.
func appender(b array.Builder, k kind) func(c *colValues, i int) {
	switch k {
	case kindInt:
		b := b.(*array.Int64Builder)
		return func(c *colValues, i int) { b.Append(c.ints[i]) }
	case kindFloat:
		b := b.(*array.Float64Builder)
		return func(c *colValues, i int) { b.Append(c.flts[i]) }
	case kindBool:
		b := b.(*array.BooleanBuilder)
		return func(c *colValues, i int) { b.Append(c.bools[i]) }
	case kindDate:
		b := b.(*array.Date32Builder)
		return func(c *colValues, i int) { b.Append(arrow.Date32(c.ints[i])) }
	case kindTimestamp:
		b := b.(*array.TimestampBuilder)
		return func(c *colValues, i int) { b.Append(arrow.Timestamp(c.ints[i])) }
	}
	sb := b.(*array.StringBuilder)
	return func(c *colValues, i int) { sb.Append(c.strs[i]) }
}

func (e *encoder) release() {
	e.pid.Release()
	if e.list != nil {
		e.list.Release()
	}
	for _, b := range e.builders {
		b.Release()
	}
}

// Read is the psi.Reader BlindIDs draws identifiers from.
func (e *encoder) Read(ids []string) (int, error) {
	c := newChunk(len(e.attrs), len(ids))
	n, err := e.src.read(ids, c)
	if n > 0 {
		e.mu.Lock()
		e.queue = append(e.queue, c)
		e.mu.Unlock()
	}
	return n, err
}

// Write is the psi.Writer BlindIDs writes points to, in input order.
func (e *encoder) Write(pts []psi.Point) error {
	for len(pts) > 0 {
		e.mu.Lock()
		c := e.queue[0]
		e.mu.Unlock()
		k := min(len(pts), c.n-e.head, e.batch-e.pending)
		for i := 0; i < k; i++ {
			e.appendRow(c, e.head+i, &pts[i])
		}
		pts = pts[k:]
		e.head += k
		e.written += int64(k)
		e.pending += k
		if e.head == c.n {
			e.mu.Lock()
			e.queue[0] = nil
			e.queue = e.queue[1:]
			e.mu.Unlock()
			e.head = 0
		}
		if e.pending == e.batch || e.bytes >= maxRecordBytes {
			if err := e.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *encoder) appendRow(c *chunk, i int, p *psi.Point) {
	e.pid.Append(p[:])
	e.bytes += psi.PointSize + 8*int64(len(e.attrs))
	if e.consent {
		var ps []string
		if i < len(c.consent) {
			ps = c.consent[i]
		}
		if ps == nil && e.consentAll == "" {
			e.list.AppendNull()
		} else {
			e.list.Append(true)
			all := e.consentAll != ""
			for _, s := range ps {
				e.purposes.Append(s)
				e.bytes += int64(len(s))
				all = all && s != e.consentAll
			}
			if all {
				e.purposes.Append(e.consentAll)
			}
		}
	}
	for j := range e.attrs {
		col := &c.cols[j]
		if !col.valid[i] {
			e.builders[j].AppendNull()
			continue
		}
		e.appends[j](col, i)
		if col.strs != nil {
			e.bytes += int64(len(col.strs[i]))
		}
	}
}

// flush writes the rows in the builders as one record.
func (e *encoder) flush() error {
	if e.pending == 0 {
		return nil
	}
	cols := make([]arrow.Array, 0, len(e.schema.Fields()))
	cols = append(cols, e.pid.NewArray())
	if e.consent {
		cols = append(cols, e.list.NewArray())
	}
	for _, b := range e.builders {
		cols = append(cols, b.NewArray())
	}
	rec := array.NewRecord(e.schema, cols, int64(e.pending))
	for _, c := range cols {
		c.Release()
	}
	err := e.out.Write(rec)
	rec.Release()
	if err != nil {
		return fmt.Errorf("writing the upload: %w", err)
	}
	e.rows += int64(e.pending)
	e.pending, e.bytes = 0, 0
	if e.progress != nil {
		e.progress(e.rows)
	}
	return nil
}

// where returns the input position of stream row r (from 1), which must
// not have been written yet: BlindIDs stops at a bad row after writing
// every row before it, so it is still queued.
func (e *encoder) where(r int64) int64 {
	i := int(r-e.written-1) + e.head
	for _, c := range e.queue {
		if i < c.n {
			return c.pos[i]
		}
		i -= c.n
	}
	return 0
}

// run blinds and writes everything, then ends the stream. On error the
// stream is left without its end-of-stream marker, so the server sees a
// truncated upload, never a short one that looks whole.
func (e *encoder) run(ctx context.Context, ids idPipeline, key *psi.Key, opts EncodeOptions) (EncodeStats, error) {
	defer e.release()
	popts := psi.Options{Workers: opts.Workers}
	switch {
	case opts.CacheBytes == 0:
		popts.Cache = psi.NewCache(DefaultCacheBytes)
	case opts.CacheBytes > 0:
		popts.Cache = psi.NewCache(opts.CacheBytes)
	}
	err := psi.BlindIDs(ctx, e, e, ids.norm, ids.hasher, key, popts)
	blinded := e.rows + int64(e.pending) // every row read, without a cache
	if popts.Cache != nil {
		blinded = popts.Cache.Misses()
	}
	stats := EncodeStats{Rows: e.rows, SkippedBlank: e.src.skipped(), Blinded: blinded}
	if err != nil {
		var re *psi.RowError
		if errors.As(err, &re) {
			err = e.idError(re)
		}
		return stats, err
	}
	if err := e.flush(); err != nil {
		return stats, err
	}
	stats.Rows = e.rows
	if e.rows == 0 {
		if stats.SkippedBlank > 0 {
			return stats, fmt.Errorf("no rows to upload: all %d rows have a blank %q", stats.SkippedBlank, opts.IDColumn)
		}
		return stats, errors.New("no rows to upload: the input has no data rows")
	}
	if err := e.out.Close(); err != nil {
		return stats, fmt.Errorf("writing the upload: %w", err)
	}
	return stats, nil
}

func (e *encoder) idError(re *psi.RowError) error {
	hint := ""
	if errors.Is(re.Err, psi.ErrEmpty) {
		hint = " (rows with a blank id can be skipped and counted instead)"
	}
	return &PositionError{Unit: e.unit, N: e.where(re.Row), Err: re.Err, hint: hint}
}

// PositionError is an error about one row of the input: its file line
// (CSV, the header being line 1) or its row (Parquet, from 1), and the
// column when the problem is an attribute's value.
type PositionError struct {
	Unit   string // "line" or "row"
	N      int64
	Column string // "" for the identifier
	Err    error
	hint   string
}

func (e *PositionError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("%s %d, column %q: %v%s", e.Unit, e.N, e.Column, e.Err, e.hint)
	}
	return fmt.Sprintf("%s %d: %v%s", e.Unit, e.N, e.Err, e.hint)
}

func (e *PositionError) Unwrap() error { return e.Err }

// idPipeline turns identifiers into points.
type idPipeline struct {
	norm   *psi.Normalizer
	hasher *psi.Hasher
}

// newIDPipeline checks the identifier options, before any input is read.
func newIDPipeline(key *psi.Key, opts EncodeOptions) (idPipeline, error) {
	if key == nil {
		return idPipeline{}, errors.New("no blinding key")
	}
	if opts.IDType == "" {
		return idPipeline{}, errors.New("no identifier type: set it to email, phone, maid or sha256")
	}
	norm, err := psi.NewNormalizer(opts.IDType, opts.Normalize)
	if err != nil {
		return idPipeline{}, err
	}
	kind := opts.IDType
	if kind == psi.SHA256 {
		kind = opts.HashedKind
		if kind == "" {
			kind = psi.Email
		}
	}
	hasher, err := psi.NewHasher(kind)
	if err != nil {
		return idPipeline{}, err
	}
	return idPipeline{norm, hasher}, nil
}
