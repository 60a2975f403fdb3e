package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/client"
)

// A refusal for the SQL's text is placed as a person counts: lines from
// 1, columns in characters (not bytes) from 1.
func TestPlaceSQLSaysLineAndColumn(t *testing.T) {
	sql := "SELECT COUNT(*)\nFROM cohort WHERE région WHERE"
	pos := len("SELECT COUNT(*)\nFROM cohort WHERE région ")
	err := placeSQL(sql, &client.Error{Status: 400, Code: "syntax", Message: fmt.Sprintf(`syntax error at or near "WHERE" at position %d`, pos), Position: pos})
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("placeSQL gave %v, want a client error", err)
	}
	if want := `syntax error at or near "WHERE" at line 2, column 26`; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
	// Errors without a position pass through unchanged.
	other := &client.Error{Status: 403, Message: "role", Position: -1}
	if placeSQL(sql, other) != error(other) {
		t.Errorf("an error without a position was changed")
	}
	if !strings.Contains(placeSQL("SELECT", &client.Error{Message: "x", Position: 3}).Error(), "line 1, column 4") {
		t.Errorf("a message without the API's position text gets no place")
	}
}
