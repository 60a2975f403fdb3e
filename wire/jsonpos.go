package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// JSONError is JSON that does not decode, with where: a line and a
// column (1-based, in characters) that a person can find in an editor,
// never a byte offset.
type JSONError struct {
	// Offset is the byte offset of the problem in the document.
	Offset int64
	// Line and Column are Offset's place: line 1, column 1 is the first
	// character.
	Line, Column int
	// What says what is wrong there.
	What string
}

func (e *JSONError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.What)
}

// Shift returns e as a place in a document that holds e's document at
// byte offset off (a field of a request body).
func (e *JSONError) Shift(doc []byte, off int64) *JSONError {
	return newJSONError(doc, off+e.Offset, e.What)
}

func newJSONError(doc []byte, off int64, what string) *JSONError {
	off = min(max(off, 0), int64(len(doc)))
	before := doc[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return &JSONError{Offset: off, Line: line, Column: col, What: what}
}

// DecodeJSON decodes one JSON value from doc into v, refusing unknown
// fields and anything after the value. Its errors are *JSONError: what is
// wrong, at a line and column.
func DecodeJSON(doc []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonErr(doc, err)
	}
	// InputOffset is past the value; anything but space after it is
	// another value the caller did not mean to send.
	if rest := bytes.TrimSpace(doc[dec.InputOffset():]); len(rest) > 0 {
		return newJSONError(doc, int64(len(doc)-len(rest)), "data after the JSON value")
	}
	return nil
}

// jsonErr places an error of encoding/json in doc.
func jsonErr(doc []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// The offset is just past the character that did not fit.
		return newJSONError(doc, syn.Offset-1, syn.Error())
	case errors.As(err, &typ):
		what := fmt.Sprintf("%s: a %s where %s is expected", typ.Field, typ.Value, jsonKind(typ.Type))
		if typ.Field == "" {
			what = fmt.Sprintf("a %s where %s is expected", typ.Value, jsonKind(typ.Type))
		}
		return newJSONError(doc, valueStart(doc, typ.Offset), what)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if len(bytes.TrimSpace(doc)) == 0 {
			return newJSONError(doc, 0, "no JSON value (the document is empty)")
		}
		return newJSONError(doc, int64(len(bytes.TrimRight(doc, " \t\r\n"))), "the JSON ends early: a closing } or ] or \" is missing")
	}
	// DisallowUnknownFields says which name, not where: find the key.
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		var key string
		if json.Unmarshal([]byte(name), &key) == nil {
			return newJSONError(doc, keyOffset(doc, key), fmt.Sprintf("unknown field %q (a misspelt name would silently keep a default, so none is ignored)", key))
		}
	}
	return newJSONError(doc, 0, msg)
}

// jsonKind names a Go type as JSON.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list [...]"
	case reflect.Map, reflect.Struct:
		return "an object {...}"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a " + t.String()
}

// valueStart is where the value ending at end (an UnmarshalTypeError's
// offset) starts: a string's opening quote, a number's first digit.
func valueStart(doc []byte, end int64) int64 {
	i := min(max(end, 0), int64(len(doc)))
	if i > 0 && doc[i-1] == '"' {
		for i--; i > 0; i-- {
			if doc[i-1] == '"' && (i < 2 || doc[i-2] != '\\') {
				return i - 1
			}
		}
		return 0
	}
	for i > 0 && strings.IndexByte("0123456789+-.eEtrufalsn", doc[i-1]) >= 0 {
		i--
	}
	if i < end {
		return i
	}
	// An object or array: the offset is past its opening bracket.
	return max(end-1, 0)
}

// keyOffset is the offset of the first object key named key in doc, or 0.
func keyOffset(doc []byte, key string) int64 {
	dec := json.NewDecoder(bytes.NewReader(doc))
	// Token hides commas and colons, so whether a string is a key is
	// tracked here: per open container, whether it is an object and
	// whether its next token is a key.
	type frame struct{ object, wantKey bool }
	var stack []frame
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return 0
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.object && top.wantKey {
			top.wantKey = false
			if tok == key {
				// before is where the last token ended: the key's quote
				// comes after a comma and space.
				i := before
				for i < int64(len(doc)) && doc[i] != '"' {
					i++
				}
				return i
			}
			continue
		}
		if top != nil && top.object {
			top.wantKey = true // this value done, a key comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		}
	}
}
