package audience

// Finding the identifier, consent and attribute columns of an input.

import (
	"fmt"
	"strconv"
	"strings"
)

// columnFinder finds input columns by name, exactly or else ignoring case
// and surrounding spaces, and lists the available ones when it cannot.
type columnFinder struct {
	names []string
	what  string // "the CSV header", "the Parquet file"
}

func (f columnFinder) find(name string) (int, error) {
	idx := -1
	for i, n := range f.names {
		if n == name {
			if idx >= 0 {
				return 0, fmt.Errorf("column %q appears more than once in %s", name, f.what)
			}
			idx = i
		}
	}
	if idx >= 0 {
		return idx, nil
	}
	for i, n := range f.names {
		if strings.EqualFold(strings.TrimSpace(n), strings.TrimSpace(name)) {
			if idx >= 0 {
				return 0, fmt.Errorf("column %q matches more than one column of %s when ignoring case", name, f.what)
			}
			idx = i
		}
	}
	if idx < 0 {
		return 0, fmt.Errorf("column %q not found in %s; available: %s", name, f.what, f.available())
	}
	return idx, nil
}

func (f columnFinder) available() string {
	q := make([]string, len(f.names))
	for i, n := range f.names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// resolve picks the id, consent and attribute columns by input column
// index. Attributes without a type get kindInfer, for the format to settle
// (inferred from CSV data, taken from the Parquet schema).
func resolve(f columnFinder, opts EncodeOptions) (id, consent int, attrs []attr, err error) {
	if opts.IDColumn == "" {
		return 0, 0, nil, fmt.Errorf("no identifier column given; available: %s", f.available())
	}
	if id, err = f.find(opts.IDColumn); err != nil {
		return 0, 0, nil, fmt.Errorf("identifier column: %w", err)
	}
	consent = -1
	if opts.ConsentColumn != "" {
		if consent, err = f.find(opts.ConsentColumn); err != nil {
			return 0, 0, nil, fmt.Errorf("consent column: %w", err)
		}
		if consent == id {
			return 0, 0, nil, fmt.Errorf("column %q cannot be both the identifier and the consent column", f.names[id])
		}
	}
	if opts.Attributes == nil {
		for i, h := range f.names {
			if i == id || i == consent {
				continue
			}
			name := SanitizeName(h)
			if name == "" {
				return 0, 0, nil, fmt.Errorf("column %d (%q) of %s has no letters or digits to name an attribute; choose the columns to send with Attributes", i+1, h, f.what)
			}
			attrs = append(attrs, attr{name: name, column: h, src: i})
		}
		return id, consent, attrs, nil
	}
	for _, spec := range opts.Attributes {
		col := spec.Column
		if col == "" {
			col = spec.Name
		}
		i, err := f.find(col)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("attribute %q: %w", spec.Name, err)
		}
		if i == id {
			// The raw identifier must never leave the party's machine.
			return 0, 0, nil, fmt.Errorf("attribute %q: column %q is the identifier column and cannot be sent as an attribute", spec.Name, f.names[i])
		}
		k, err := parseKind(spec.Type)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("attribute %q: %w", spec.Name, err)
		}
		attrs = append(attrs, attr{name: spec.Name, column: f.names[i], src: i, kind: k})
	}
	return id, consent, attrs, nil
}
