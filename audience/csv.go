package audience

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cleanroom/cleanroom/psi"
)

// inferRows is how many rows type inference looks at.
const inferRows = 1000

// EncodeCSV reads a CSV file with a header row from r and writes the Arrow
// IPC stream of the upload to w. Each identifier is normalized, hashed and
// blinded with key on all cores, in order, alongside the typed attributes
// and consent purposes of its row; memory stays bounded whatever the size
// of the file.
//
// Attributes without a type get one from the first 1000 rows: int if every
// non-empty cell is a 64-bit integer, else float, else bool (true/false),
// else date (YYYY-MM-DD), else string. Empty cells are nulls.
//
// Errors about the data are *PositionError naming the file line (the
// header is line 1) and, for attributes, the column; they never contain a
// value. On error, w holds a stream without its end-of-stream marker, which
// the server rejects as truncated.
func EncodeCSV(ctx context.Context, r io.Reader, w io.Writer, key *psi.Key, opts EncodeOptions) (EncodeStats, error) {
	ids, err := newIDPipeline(key, opts)
	if err != nil {
		return EncodeStats{}, err
	}
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
	if opts.Comma != 0 {
		cr.Comma = opts.Comma
	}
	header, err := cr.Read()
	if err == io.EOF {
		return EncodeStats{}, errors.New("the CSV is empty; it needs a header row naming the columns")
	}
	if err != nil {
		return EncodeStats{}, csvError(err, nil, 0)
	}
	// Spreadsheet exports often start with a byte order mark.
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	id, consent, attrs, err := resolve(columnFinder{names: header, what: "the CSV header"}, opts)
	if err != nil {
		return EncodeStats{}, err
	}
	src := &csvSource{r: cr, width: len(header), id: id, consent: consent, attrs: attrs, skipBlank: opts.SkipBlankIDs}
	if err := src.inferTypes(); err != nil {
		return EncodeStats{}, err
	}
	e, err := newEncoder(src, "line", src.attrs, w, opts)
	if err != nil {
		return EncodeStats{}, err
	}
	return e.run(ctx, ids, key, opts)
}

type csvRow struct {
	rec  []string
	line int64
}

type csvSource struct {
	r         *csv.Reader
	width     int
	id        int
	consent   int // -1: none
	attrs     []attr
	skipBlank bool
	nSkipped  int64
	ahead     []csvRow // rows read for type inference, served first
	line      int64    // line of the last row read
}

func (s *csvSource) skipped() int64 { return s.nSkipped }

// inferTypes reads up to inferRows rows ahead and picks the kind of every
// attribute that has none.
func (s *csvSource) inferTypes() error {
	need := false
	for i := range s.attrs {
		if s.attrs[i].kind == kindTimestamp {
			s.attrs[i].tz = "UTC"
		}
		need = need || s.attrs[i].kind == kindInfer
	}
	if !need {
		return nil
	}
	for len(s.ahead) < inferRows {
		rec, line, err := s.readCSV()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		s.ahead = append(s.ahead, csvRow{rec, line})
	}
	for i := range s.attrs {
		if a := &s.attrs[i]; a.kind == kindInfer {
			a.kind = inferKind(s.ahead, a.src)
		}
	}
	return nil
}

func inferKind(rows []csvRow, col int) kind {
	isInt, isFloat, isBool, isDate, seen := true, true, true, true, false
	for _, row := range rows {
		t := strings.TrimSpace(row.rec[col])
		if t == "" {
			continue
		}
		seen = true
		if isInt {
			_, err := parseIntStrict(t)
			isInt = err == nil
		}
		if isFloat {
			_, isFloat = parseDecimalFloat(t)
		}
		if isBool {
			_, isBool = parseBool(t)
		}
		if isDate {
			_, isDate = parseDate(t)
		}
	}
	switch {
	case !seen:
		return kindString
	case isInt:
		return kindInt
	case isFloat:
		return kindFloat
	case isBool:
		return kindBool
	case isDate:
		return kindDate
	}
	return kindString
}

// next returns the next record and its line, io.EOF at the end.
func (s *csvSource) next() ([]string, int64, error) {
	if len(s.ahead) > 0 {
		row := s.ahead[0]
		s.ahead[0] = csvRow{}
		s.ahead = s.ahead[1:]
		return row.rec, row.line, nil
	}
	return s.readCSV()
}

// readCSV reads the next record from the file.
func (s *csvSource) readCSV() ([]string, int64, error) {
	rec, err := s.r.Read()
	if err == io.EOF {
		return nil, 0, io.EOF
	}
	if err != nil {
		return nil, 0, csvError(err, rec, s.width)
	}
	line, _ := s.r.FieldPos(0)
	s.line = int64(line)
	return rec, s.line, nil
}

// csvError names the line of a CSV syntax error.
func csvError(err error, rec []string, width int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return &PositionError{Unit: "line", N: int64(pe.StartLine), Err: fmt.Errorf("%d fields, but the header has %d", len(rec), width)}
		}
		return &PositionError{Unit: "line", N: int64(pe.Line), Err: fmt.Errorf("CSV syntax, column %d: %w", pe.Column, pe.Err)}
	}
	return fmt.Errorf("reading the CSV: %w", err)
}

func (s *csvSource) read(ids []string, c *chunk) (int, error) {
	for c.n < len(ids) {
		rec, line, err := s.next()
		if err != nil {
			return c.n, err
		}
		id := rec[s.id]
		if s.skipBlank && strings.TrimSpace(id) == "" {
			s.nSkipped++
			continue
		}
		c.pos = append(c.pos, line)
		if s.consent >= 0 {
			c.consent = append(c.consent, normalizePurposes(strings.Split(rec[s.consent], ";")))
		}
		for j := range s.attrs {
			a := &s.attrs[j]
			if err := c.cols[j].appendText(a.kind, rec[a.src]); err != nil {
				c.truncate()
				return c.n, &PositionError{Unit: "line", N: line, Column: a.column, Err: err}
			}
		}
		ids[c.n] = id
		c.n++
	}
	return c.n, nil
}
