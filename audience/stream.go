package audience

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
)

// ErrTruncated is wrapped by the error for a stream that ends before its
// end-of-stream marker: the upload was cut off (a dropped connection, or a
// client that failed half way), and what arrived must not be taken for the
// whole audience.
var ErrTruncated = errors.New("upload truncated: the Arrow stream ended before its end-of-stream marker")

// DefaultMaxMessageBytes is the default limit on one record batch's body.
// The encoder closes records early to keep them under 64 MiB.
const DefaultMaxMessageBytes = 256 << 20

// maxMetadataBytes bounds a message's flatbuffer header. A schema of
// MaxColumns timestamp attributes with 63-character names and long time
// zone names takes 144 KiB.
const maxMetadataBytes = 4 << 20

// StreamOptions tune NewStreamReader.
type StreamOptions struct {
	// MaxMessageBytes is the largest record batch body accepted, which
	// bounds the memory one upload holds at a time. Default
	// DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// Allocator for the decoded buffers; default memory.DefaultAllocator.
	Allocator memory.Allocator
}

// NewStreamReader reads an upload sent as an Arrow IPC stream (an HTTP
// body, say) and validates it as NewReader does. Unlike a bare ipc.Reader,
// it also:
//   - rejects a stream without its end-of-stream marker with ErrTruncated
//     (ipc.Reader ends silently when the cut falls between messages);
//   - refuses, before allocating, any message whose header or body is larger
//     than the limits or whose buffers point outside its body (ipc.Reader
//     allocates whatever size the sender writes), and compressed or
//     dictionary batches;
//   - says so when the body is an Arrow file or a Parquet file instead.
//
// The Reader owns the stream reader; Release it when done.
func NewStreamReader(r io.Reader, opts StreamOptions) (*Reader, error) {
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	mr := &messageReader{r: r, maxBody: opts.MaxMessageBytes}
	mr.refs.Store(1)
	ir, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(opts.Allocator))
	if err != nil {
		mr.Release()
		return nil, err
	}
	defer ir.Release() // the Reader holds its own reference
	// The wire format sends pid as fixed_size_binary[32], never binary.
	rd, err := newReader(ir, false)
	if err != nil {
		return nil, err
	}
	mr.nodes, mr.buffers = layout(rd.schema)
	return rd, nil
}

// layout returns how many field nodes and buffers a record batch of a
// valid upload schema has.
func layout(s *arrow.Schema) (nodes, buffers int) {
	var count func(t arrow.DataType)
	count = func(t arrow.DataType) {
		nodes++
		switch t := t.(type) {
		case *arrow.ListType:
			buffers += 2 // validity, offsets
			count(t.Elem())
		case *arrow.StringType:
			buffers += 3 // validity, offsets, data
		default:
			buffers += 2 // validity, values
		}
	}
	for _, f := range s.Fields() {
		count(f.Type)
	}
	return nodes, buffers
}

// messageReader is an ipc.MessageReader that checks each message's framing
// and header before reading its body.
type messageReader struct {
	r       io.Reader
	maxBody int64
	refs    atomic.Int64
	msg     *ipc.Message
	n       int // messages read
	// nodes and buffers are the counts every record batch must have, set
	// once the schema is validated: ipc reads them by index without
	// checking the vectors' lengths.
	nodes, buffers int
}

func (m *messageReader) Retain() { m.refs.Add(1) }

func (m *messageReader) Release() {
	if m.refs.Add(-1) == 0 && m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
}

const continuation = 0xFFFFFFFF

// Message returns the next message, or io.EOF (unwrapped) after the
// end-of-stream marker. ipc.Reader treats any error wrapping io.EOF as a
// clean end, so the errors here never wrap it.
func (m *messageReader) Message() (*ipc.Message, error) {
	if m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
	var hdr [8]byte
	if n, err := io.ReadFull(m.r, hdr[:4]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, ErrTruncated
		}
		return nil, readErr(err)
	}
	switch binary.LittleEndian.Uint32(hdr[:4]) {
	case continuation:
	case 0:
		return nil, io.EOF // the end-of-stream marker of streams before Arrow 0.15
	default:
		return nil, m.notAStream(hdr[:4])
	}
	if _, err := io.ReadFull(m.r, hdr[4:]); err != nil {
		return nil, readErr(err)
	}
	size := int32(binary.LittleEndian.Uint32(hdr[4:]))
	if size == 0 {
		return nil, io.EOF // the end-of-stream marker
	}
	if size < 0 || size > maxMetadataBytes {
		return nil, fmt.Errorf("message %d: header of %d bytes; at most %d are accepted", m.n+1, size, maxMetadataBytes)
	}
	meta := make([]byte, size)
	if _, err := io.ReadFull(m.r, meta); err != nil {
		return nil, readErr(err)
	}
	bodyLen, err := checkHeader(meta, m.maxBody, m.nodes, m.buffers)
	if err != nil {
		return nil, fmt.Errorf("message %d: %w", m.n+1, err)
	}
	body, err := readBody(m.r, bodyLen)
	if err != nil {
		return nil, err
	}
	m.n++
	m.msg = ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(body))
	return m.msg, nil
}

// readBody reads a message body of n bytes. It grows the buffer as bytes
// arrive rather than trusting the announced length up front, so a stream
// that lies about it costs only what it sent.
func readBody(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, min(n, 1<<20))
	have := 0
	for {
		k, err := io.ReadFull(r, buf[have:])
		have += k
		if err != nil {
			return nil, readErr(err)
		}
		if int64(have) == n {
			return buf, nil
		}
		more := make([]byte, min(2*int64(len(buf)), n))
		copy(more, buf)
		buf = more
	}
}

// readErr turns a read error into one that does not wrap io.EOF.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return fmt.Errorf("reading the upload: %w", err)
}

func (m *messageReader) notAStream(first []byte) error {
	if m.n == 0 {
		switch {
		case bytes.Equal(first, []byte("ARRO")):
			return errors.New("the upload is an Arrow IPC file; send an Arrow IPC stream (the streaming format) instead")
		case bytes.Equal(first, []byte("PAR1")):
			return errors.New("the upload is a Parquet file; send an Arrow IPC stream instead (the CLI's upload converts Parquet)")
		}
		return errors.New("the upload is not an Arrow IPC stream (it does not start with the continuation marker)")
	}
	return fmt.Errorf("message %d: missing continuation marker (stream corrupt or in the pre-0.15 format)", m.n+1)
}

// Arrow's flatbuffer Message schema (format/Message.fbs): the vtable slot
// of field i is 4 + 2i.
const (
	msgHeaderType = 6  // Message.header_type (ubyte)
	msgHeader     = 8  // Message.header (union)
	msgBodyLength = 10 // Message.bodyLength (long)

	rbNodes       = 6  // RecordBatch.nodes: [FieldNode{length, null_count: long}]
	rbBuffers     = 8  // RecordBatch.buffers: [Buffer{offset, length: long}]
	rbCompression = 10 // RecordBatch.compression

	headerSchema      = 1
	headerDictionary  = 2
	headerRecordBatch = 3
)

// checkHeader reads what the ipc reader would trust from a message header
// and returns the body length: within [0, maxBody], no compression (whose
// declared sizes ipc allocates blindly), for a record batch exactly the
// nodes and buffers the schema needs, every buffer inside the body.
func checkHeader(meta []byte, maxBody int64, nodes, buffers int) (bodyLen int64, err error) {
	defer func() {
		// flatbuffers does no bounds checks of its own; an index out of
		// range means a malformed header.
		if recover() != nil {
			err = errors.New("malformed message header")
		}
	}()
	msg := flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
	if o := msg.Offset(msgBodyLength); o != 0 {
		bodyLen = msg.GetInt64(msg.Pos + flatbuffers.UOffsetT(o))
	}
	if bodyLen < 0 || bodyLen > maxBody {
		return 0, fmt.Errorf("body of %d bytes; at most %d are accepted", bodyLen, maxBody)
	}
	var kind byte
	if o := msg.Offset(msgHeaderType); o != 0 {
		kind = msg.GetByte(msg.Pos + flatbuffers.UOffsetT(o))
	}
	switch kind {
	case headerSchema:
		o := msg.Offset(msgHeader)
		if o == 0 {
			return 0, errors.New("schema message without its schema")
		}
		var sc flatbuffers.Table
		msg.Union(&sc, flatbuffers.UOffsetT(o))
		return bodyLen, checkSchema(&sc)
	case headerDictionary:
		return 0, errors.New("dictionary batches are not accepted: upload columns are plain, not dictionary encoded")
	case headerRecordBatch:
	default:
		return 0, fmt.Errorf("unexpected message type %d; an upload holds a schema and record batches", kind)
	}
	o := msg.Offset(msgHeader)
	if o == 0 {
		return 0, errors.New("record batch message without its header")
	}
	var rb flatbuffers.Table
	msg.Union(&rb, flatbuffers.UOffsetT(o))
	if rb.Offset(rbCompression) != 0 {
		return 0, errors.New("compressed record batches are not accepted; send them uncompressed")
	}
	if buffers == 0 {
		return 0, errors.New("record batch before the schema")
	}
	n, _, err := vector(&rb, rbNodes, 16)
	if err != nil {
		return 0, err
	}
	if n != nodes {
		return 0, fmt.Errorf("record batch has %d field nodes; the schema needs %d", n, nodes)
	}
	n, vec, err := vector(&rb, rbBuffers, 16)
	if err != nil {
		return 0, err
	}
	if n != buffers {
		return 0, fmt.Errorf("record batch has %d buffers; the schema needs %d", n, buffers)
	}
	for i := 0; i < n; i++ {
		at := vec + flatbuffers.UOffsetT(16*i)
		off, length := rb.GetInt64(at), rb.GetInt64(at+8)
		if off < 0 || length < 0 || off > bodyLen || length > bodyLen-off {
			return 0, fmt.Errorf("buffer %d lies outside the message body", i+1)
		}
	}
	return bodyLen, nil
}

// Slots of Arrow's flatbuffer Schema and Field tables (format/Schema.fbs).
const (
	schemaFields   = 6  // [Field]
	schemaMetadata = 8  // [KeyValue]
	schemaFeatures = 10 // [long]

	fieldChildren = 14 // [Field]
	fieldMetadata = 16 // [KeyValue]

	// maxFieldDepth is deeper than any upload column (list<utf8> is 2), so
	// ValidateSchema still gets to name what is wrong with shallower ones.
	maxFieldDepth = 3
	// maxFields bounds the fields of a schema, nested ones included.
	maxFields = 4 * MaxColumns
)

// checkSchema walks a schema's fields before arrow decodes it: arrow sizes
// slices by the vector lengths the sender writes, and follows children
// without a depth limit (a field can be made its own child).
func checkSchema(sc *flatbuffers.Table) error {
	n, vec, err := vector(sc, schemaFields, 4)
	if err != nil {
		return err
	}
	if n > MaxColumns {
		return fmt.Errorf("schema has %d columns, more than the %d allowed", n, MaxColumns)
	}
	if _, _, err := vector(sc, schemaMetadata, 4); err != nil {
		return err
	}
	if _, _, err := vector(sc, schemaFeatures, 8); err != nil {
		return err
	}
	visited := 0
	for i := 0; i < n; i++ {
		if err := checkField(sc, vec+flatbuffers.UOffsetT(4*i), 1, &visited); err != nil {
			return err
		}
	}
	return nil
}

func checkField(parent *flatbuffers.Table, at flatbuffers.UOffsetT, depth int, visited *int) error {
	if *visited++; *visited > maxFields {
		return fmt.Errorf("schema has more than %d fields", maxFields)
	}
	if depth > maxFieldDepth {
		return errors.New("schema nests fields deeper than an upload allows (list<utf8> at most)")
	}
	f := flatbuffers.Table{Bytes: parent.Bytes, Pos: parent.Indirect(at)}
	if _, _, err := vector(&f, fieldMetadata, 4); err != nil {
		return err
	}
	n, vec, err := vector(&f, fieldChildren, 4)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := checkField(&f, vec+flatbuffers.UOffsetT(4*i), depth+1, visited); err != nil {
			return err
		}
	}
	return nil
}

// vector returns the length and first element of the vector in slot of t,
// checking that its elements of size elem lie within the buffer.
func vector(t *flatbuffers.Table, slot flatbuffers.VOffsetT, elem int) (int, flatbuffers.UOffsetT, error) {
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 {
		return 0, 0, nil
	}
	n, vec := t.VectorLen(o), t.Vector(o)
	if n < 0 || int(vec) > len(t.Bytes) || n > (len(t.Bytes)-int(vec))/elem {
		return 0, 0, errors.New("malformed message header")
	}
	return n, vec, nil
}
