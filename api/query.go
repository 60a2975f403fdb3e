package api

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/query"
	"github.com/cleanroom/cleanroom/wire"
)

// Queries and budgets: analysts ask aggregate questions; every answer is
// differentially private and charged to the partner's budget. Refusals
// are *errs.Error of refusal kinds, which classify turns into their codes.

func (s *Server) runQuery(c echo.Context) error {
	f, err := format(c)
	if err != nil {
		return err
	}
	// Checked before the question runs, as the format is: a typo must not
	// cost an answer's epsilon.
	comments := true
	switch v := c.QueryParam("comments"); v {
	case "", "true":
	case "false":
		comments = false
	default:
		return errs.New(errs.Invalid, "comments: want true or false, got %q", v)
	}
	var req wire.Request
	if err := decodeJSON(c, &req, maxJSONBody, false); err != nil {
		return err
	}
	ans, err := s.queries.Run(c.Request().Context(), principal(c), collabOf(c), req)
	if err != nil {
		return err
	}
	meta := answerMeta(collabOf(c), ans, s.now())
	switch f {
	case "csv":
		if !comments {
			meta = nil
		}
		return writeCSV(c, ans, meta)
	case "arrow":
		return writeArrow(c, ans, meta)
	}
	return c.JSON(http.StatusOK, ans)
}

// previewQuery says what a question would spend and how precise its
// answer would be, or why it would be refused, spending nothing.
func (s *Server) previewQuery(c echo.Context) error {
	var req wire.Request
	if err := decodeJSON(c, &req, maxJSONBody, false); err != nil {
		return err
	}
	pv, err := s.queries.Preview(c.Request().Context(), principal(c), collabOf(c), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pv)
}

// format picks the answer's format from ?format= or the Accept header,
// before the query runs (and spends anything).
func format(c echo.Context) (string, error) {
	switch f := c.QueryParam("format"); f {
	case "json", "csv", "arrow":
		return f, nil
	case "":
	default:
		return "", errs.New(errs.Invalid, "format: want json, csv or arrow, got %q", f)
	}
	acc := c.Request().Header.Get("Accept")
	switch {
	case strings.Contains(acc, mtCSV):
		return "csv", nil
	case strings.Contains(acc, mtArrow):
		return "arrow", nil
	}
	return "json", nil
}

// flatColumns lays an answer out as a table: each aggregate is followed by
// its interval's bounds.
func flatColumns(a wire.Answer) []string {
	var cols []string
	for _, col := range a.Columns {
		cols = append(cols, col.Name)
		if col.Kind != "dimension" {
			cols = append(cols, col.Name+"_ci_lower", col.Name+"_ci_upper")
		}
	}
	return cols
}

// setAnswerHeaders sets answerHeaders, for the formats without JSON fields.
func setAnswerHeaders(c echo.Context, a wire.Answer) {
	h := c.Response().Header()
	h.Set("Cleanroom-Epsilon", fmtFloat(a.Epsilon))
	h.Set("Cleanroom-Delta", fmtFloat(a.Delta))
	h.Set("Cleanroom-Budget-Remaining", fmtFloat(a.BudgetRemaining))
	h.Set("Cleanroom-Delta-Remaining", fmtFloat(a.DeltaRemaining))
	h.Set("Cleanroom-Collaboration-Epsilon-Spent", fmtFloat(a.CollaborationEpsilonSpent))
	h.Set("Cleanroom-Collaboration-Delta-Spent", fmtFloat(a.CollaborationDeltaSpent))
	h.Set("Cleanroom-Cached", strconv.FormatBool(a.Cached))
}

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// answerMeta is what a saved answer states of itself, so that a file
// keeps its privacy cost, its collaboration and its time wherever it
// goes: CSV comment lines before the header, Arrow schema metadata.
// answered_at is when this copy was sent, in whole seconds (a cached
// answer was first released earlier, at no cost now).
func answerMeta(co wire.Collaboration, a wire.Answer, at time.Time) [][2]string {
	return [][2]string{
		{"collaboration", co.Name},
		{"collaboration_id", co.ID},
		{"answered_at", at.UTC().Truncate(time.Second).Format(time.RFC3339)},
		{"epsilon", fmtFloat(a.Epsilon)},
		{"delta", fmtFloat(a.Delta)},
		{"noise", a.Noise},
		{"cached", strconv.FormatBool(a.Cached)},
		{"budget_remaining", fmtFloat(a.BudgetRemaining)},
		{"delta_remaining", fmtFloat(a.DeltaRemaining)},
		{"collaboration_epsilon_spent", fmtFloat(a.CollaborationEpsilonSpent)},
		{"collaboration_delta_spent", fmtFloat(a.CollaborationDeltaSpent)},
		{"plan_hash", a.PlanHash},
		{"cohort_version", a.CohortVersion},
	}
}

// oneLine keeps a comment's value on its line: a collaboration's name is
// an admin's text, and a line break in it would end the comment.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
}

// writeCSV writes the answer, after meta as comment lines ("# epsilon:
// 0.09"), which pandas skips (comment='#') and a spreadsheet shows as
// text; comments=false leaves them out, for readers that take no
// comments.
func writeCSV(c echo.Context, a wire.Answer, meta [][2]string) error {
	c.Response().Header().Set("Content-Type", mtCSV+"; charset=utf-8")
	setAnswerHeaders(c, a)
	c.Response().WriteHeader(http.StatusOK)
	if len(meta) > 0 {
		var b strings.Builder
		b.WriteString("# cleanroom answer: a differentially private release; these lines state its privacy cost (skip lines starting with #)\n")
		for _, kv := range meta {
			fmt.Fprintf(&b, "# %s: %s\n", kv[0], oneLine(kv[1]))
		}
		if _, err := io.WriteString(c.Response(), b.String()); err != nil {
			return err
		}
	}
	w := csv.NewWriter(c.Response())
	w.Write(flatColumns(a))
	for i, row := range a.Rows {
		var rec []string
		for j, v := range row {
			if a.Columns[j].Kind == "dimension" {
				rec = append(rec, csvText(cell(v), v))
				continue
			}
			rec = append(rec, cell(v))
			// A median or variance states no interval: empty cells.
			if iv := a.Intervals[i][j]; iv != nil {
				rec = append(rec, strconv.FormatFloat(iv.Lower, 'g', -1, 64), strconv.FormatFloat(iv.Upper, 'g', -1, 64))
			} else {
				rec = append(rec, "", "")
			}
		}
		w.Write(rec)
	}
	w.Flush()
	return w.Error()
}

// csvText neutralises a text cell a spreadsheet would read as a formula
// (it starts with = + - @, a tab or a carriage return): a leading
// apostrophe, which spreadsheets show as text and do not evaluate. The
// values are the other party's; numbers and dates, which we format, are
// left as they are.
func csvText(s string, v any) string {
	if _, ok := v.(string); !ok || s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return x.Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}

// writeArrow sends the answer as an Arrow IPC stream: dimensions as
// strings (their text form), aggregates and bounds as float64; the
// privacy cost, collaboration and time travel in the schema metadata
// (answerMeta) and the cost in headers.
func writeArrow(c echo.Context, a wire.Answer, meta [][2]string) error {
	var fields []arrow.Field
	for _, name := range flatColumns(a) {
		fields = append(fields, arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	k := 0
	for _, col := range a.Columns {
		if col.Kind == "dimension" {
			fields[k].Type = arrow.BinaryTypes.String
			k++
		} else {
			k += 3
		}
	}
	keys, vals := make([]string, len(meta)), make([]string, len(meta))
	for i, kv := range meta {
		keys[i], vals[i] = kv[0], kv[1]
	}
	md := arrow.NewMetadata(keys, vals)
	schema := arrow.NewSchema(fields, &md)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, row := range a.Rows {
		k := 0
		for j, v := range row {
			if a.Columns[j].Kind == "dimension" {
				if v == nil {
					b.Field(k).AppendNull()
				} else {
					b.Field(k).(*array.StringBuilder).Append(cell(v))
				}
				k++
				continue
			}
			b.Field(k).(*array.Float64Builder).Append(v.(float64))
			if iv := a.Intervals[i][j]; iv != nil {
				b.Field(k + 1).(*array.Float64Builder).Append(iv.Lower)
				b.Field(k + 2).(*array.Float64Builder).Append(iv.Upper)
			} else { // a median or variance states no interval
				b.Field(k + 1).AppendNull()
				b.Field(k + 2).AppendNull()
			}
			k += 3
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	c.Response().Header().Set("Content-Type", mtArrow)
	setAnswerHeaders(c, a)
	c.Response().WriteHeader(http.StatusOK)
	w := ipc.NewWriter(c.Response(), ipc.WithSchema(schema))
	if err := w.Write(rec); err != nil {
		return err
	}
	return w.Close()
}

func (s *Server) budget(c echo.Context) error {
	p := principal(c)
	bs, err := s.queries.Budgets(c.Request().Context(), collabOf(c))
	if err != nil {
		return err
	}
	if !p.IsOperator() && p.Role != wire.Auditor && p.Role != wire.Admin {
		// Analysts and engineers see their own partner's budget, and the
		// collaboration's total spend: the privacy loss of its people.
		own := []wire.Budget{}
		for _, b := range bs.Budgets {
			if b.PartnerID == p.PartnerID {
				own = append(own, b)
			}
		}
		bs.Budgets = own
	}
	if bs.Budgets == nil {
		bs.Budgets = []wire.Budget{}
	}
	return c.JSON(http.StatusOK, bs)
}

func (s *Server) queryHistory(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errs.New(errs.Invalid, "limit: want 1..1000, got %q", v)
		}
		limit = n
	}
	qs, err := query.History(c.Request().Context(), s.db.SQL(), collabOf(c).ID, principal(c).KeyID, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.QueryHistory{Queries: qs})
}
