package api

import (
	"encoding/csv"
	"fmt"
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
	var req wire.Request
	if err := decodeJSON(c, &req, maxJSONBody, false); err != nil {
		return err
	}
	ans, err := s.queries.Run(c.Request().Context(), principal(c), collabOf(c), req)
	if err != nil {
		return err
	}
	switch f {
	case "csv":
		return writeCSV(c, ans)
	case "arrow":
		return writeArrow(c, ans)
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

func writeCSV(c echo.Context, a wire.Answer) error {
	c.Response().Header().Set("Content-Type", mtCSV+"; charset=utf-8")
	setAnswerHeaders(c, a)
	c.Response().WriteHeader(http.StatusOK)
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
// privacy cost travels in the schema metadata and headers.
func writeArrow(c echo.Context, a wire.Answer) error {
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
	md := arrow.NewMetadata(
		[]string{"epsilon", "delta", "budget_remaining", "delta_remaining", "collaboration_epsilon_spent", "collaboration_delta_spent", "cached", "plan_hash"},
		[]string{fmtFloat(a.Epsilon), fmtFloat(a.Delta), fmtFloat(a.BudgetRemaining), fmtFloat(a.DeltaRemaining),
			fmtFloat(a.CollaborationEpsilonSpent), fmtFloat(a.CollaborationDeltaSpent), strconv.FormatBool(a.Cached), a.PlanHash})
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
