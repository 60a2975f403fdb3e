package bench

import (
	"bufio"
	"context"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/cleanroom/cleanroom/internal/store"
)

// The shapes of bench match's parties.
const (
	// ShapePeople: one row a person, as bench psi's identifiers.
	ShapePeople = "people"
	// ShapeEvents: event logs. The brand uploads purchases (about 12 a
	// person, skewed, dated over 60 days), the publisher exposures (about
	// 30 a person, by campaign and site, dated over the same days), in
	// date order, so one person's rows are spread through the file.
	ShapeEvents = "events"
)

// eventDays is the span of the events' dates.
const eventDays = 60

// eventTable is one party's event log: its columns after email, and the
// mean rows a person.
type eventTable struct {
	name   string
	header string
	mean   float64
	row    func(b []byte, k, day int, h uint64) []byte
}

var eventTables = [2]eventTable{
	{name: "purchases", header: "email,purchase_date,amount,consent", mean: 12,
		row: func(b []byte, _ int, day int, h uint64) []byte {
			b = append(b, eventDates[day]...)
			b = append(b, ',')
			b = strconv.AppendFloat(b, float64(h%20000)/100, 'f', 2, 64)
			return b
		}},
	{name: "exposures", header: "email,exposure_date,campaign,site,consent", mean: 30,
		row: func(b []byte, _ int, day int, h uint64) []byte {
			b = append(b, eventDates[day]...)
			b = append(b, ",c"...)
			b = strconv.AppendUint(b, h%5, 10)
			b = append(b, ",s"...)
			b = strconv.AppendUint(b, (h>>8)%10, 10)
			return b
		}},
}

// eventDates are the events' dates, 2026-01-01 onwards, by day.
var eventDates = func() (d [eventDays]string) {
	for i := range d {
		d[i] = time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	return d
}()

// eventsOn is how many rows person k has on day: one on the person's
// first day, so everyone is in the log, and Poisson around the person's
// own rate, which is skewed (exponential around mean-1 rows over the
// days), so a few people have many rows and many have few.
func eventsOn(k, day int, mean float64, salt uint64) int {
	h := mix64(uint64(k) ^ salt)
	u := (float64(h>>11) + 0.5) / (1 << 53)
	rate := -math.Log(u) * (mean - 1) / eventDays
	first := 0
	if day == int(mix64(h)%eventDays) {
		first = 1
	}
	// Both inputs mixed before they meet: no two (person, day) draws
	// share one.
	v := (float64(mix64(h^mix64(uint64(day)+1))>>11) + 0.5) / (1 << 53)
	// Inverse transform of Poisson(rate).
	n, p := 0, math.Exp(-rate)
	for cum := p; v > cum && n < 200; cum += p {
		n++
		p *= rate / float64(n)
	}
	return first + n
}

// writeEvents writes party's event table for people [first, first+n) as
// CSV, day by day, and returns the rows written.
func writeEvents(w io.Writer, t eventTable, party, first, n int) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(t.header + "\n")
	salt := uint64(party+1) << 40
	var rows int64
	var b []byte
	for day := range eventDays {
		for k := first; k < first+n; k++ {
			for j := range eventsOn(k, day, t.mean, salt) {
				b = append(b[:0], "customer"...)
				b = strconv.AppendInt(b, int64(k), 10)
				b = append(b, "@example.com,"...)
				b = t.row(b, k, day, mix64(mix64(mix64(uint64(k)^salt)^mix64(uint64(day)+1))^uint64(j)))
				b = append(b, ",measurement\n"...)
				if _, err := bw.Write(b); err != nil {
					return rows, err
				}
				rows++
			}
		}
	}
	return rows, bw.Flush()
}

// TableRows are a table's rows as uploaded and as stored.
type TableRows struct {
	Table        string `json:"table"`
	UploadedRows int64  `json:"uploaded_rows"`
	StoredRows   int64  `json:"stored_rows"`
}

// largestTable is the most rows of any table in the database, from
// duckdb_tables() and a count of each.
func largestTable(ctx context.Context, db *store.DB) (string, int64, error) {
	names, err := store.QueryStrings(ctx, db.SQL(), `SELECT table_name FROM duckdb_tables() WHERE NOT temporary`)
	if err != nil {
		return "", 0, err
	}
	var best string
	var most int64
	for _, n := range names {
		var c int64
		if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM `+store.QuoteIdent(n)).Scan(&c); err != nil {
			return "", 0, err
		}
		if c > most {
			best, most = n, c
		}
	}
	return best, most, nil
}
