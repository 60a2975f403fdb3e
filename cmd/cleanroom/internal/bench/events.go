package bench

import (
	"bufio"
	"context"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// The shapes of bench match's parties.
const (
	// ShapePeople: one row a person, as bench psi's identifiers, in each
	// party's one table.
	ShapePeople = "people"
	// ShapeEvents: named tables declared in the rules. The brand brings
	// customers (one row a person, with consent and a region) and
	// purchases (about 12 a person, skewed, dated over 60 days, without
	// consent: it comes from customers); the publisher brings exposures
	// (about 30 a person, by campaign and site, dated over the same days,
	// consent on each row). The event logs are in date order, so one
	// person's rows are spread through the file.
	ShapeEvents = "events"
)

// The event logs' default mean rows a person (MatchOptions.Purchases and
// Exposures).
const (
	DefaultPurchases = 12
	DefaultExposures = 30
)

// eventDays is the span of the events' dates.
const eventDays = 60

// eventTable is one table of the events shape: who brings it, its columns
// after email with their roles in the rules, whether its rows carry
// consent, and its rows: one a person (mean 0) or an event log of about
// mean rows a person, dated over eventDays.
type eventTable struct {
	name    string
	party   int // 0: the brand (proposer), 1: the publisher (partner)
	columns []wire.ColumnRule
	consent bool
	mean    float64
	salt    uint64
	// row appends the row's columns after email: day is the row's date
	// (-1 in a table of one row a person), h its own random draw.
	row func(b []byte, day int, h uint64) []byte
}

// eventTables are the events shape's tables, the brand's first, with
// purchases and exposures mean rows a person.
func eventTables(purchases, exposures float64) []eventTable {
	return []eventTable{
		{name: "customers", party: 0, consent: true, salt: 3 << 40,
			columns: []wire.ColumnRule{{Name: "region", Role: wire.RoleDimension}},
			row: func(b []byte, _ int, h uint64) []byte {
				b = append(b, 'r')
				return strconv.AppendUint(b, h%8, 10)
			}},
		{name: "purchases", party: 0, mean: purchases, salt: 1 << 40,
			columns: []wire.ColumnRule{{Name: "purchase_date", Role: wire.RoleTime},
				{Name: "amount", Role: wire.RoleMetric, Bounds: &[2]float64{0, 2000}},
				{Name: "category", Role: wire.RoleDimension}},
			row: func(b []byte, day int, h uint64) []byte {
				b = append(b, eventDates[day]...)
				b = append(b, ',')
				b = strconv.AppendFloat(b, float64(h%20000)/100, 'f', 2, 64)
				b = append(b, ",cat"...)
				return strconv.AppendUint(b, (h>>20)%6, 10)
			}},
		{name: "exposures", party: 1, consent: true, mean: exposures, salt: 2 << 40,
			columns: []wire.ColumnRule{{Name: "exposure_date", Role: wire.RoleTime},
				{Name: "campaign", Role: wire.RoleDimension}, {Name: "site", Role: wire.RoleDimension}},
			row: func(b []byte, day int, h uint64) []byte {
				b = append(b, eventDates[day]...)
				b = append(b, ",c"...)
				b = strconv.AppendUint(b, h%5, 10)
				b = append(b, ",s"...)
				return strconv.AppendUint(b, (h>>8)%10, 10)
			}},
	}
}

// header is the table's CSV header.
func (t eventTable) header() string {
	cols := []string{"email"}
	for _, c := range t.columns {
		cols = append(cols, c.Name)
	}
	if t.consent {
		cols = append(cols, "consent")
	}
	return strings.Join(cols, ",")
}

// attrs are the columns the encoder sends, typed by their roles.
func (t eventTable) attrs() []audience.AttrSpec {
	var out []audience.AttrSpec
	for _, c := range t.columns {
		typ := "string"
		switch c.Role {
		case wire.RoleTime:
			typ = "date"
		case wire.RoleMetric:
			typ = "float"
		}
		out = append(out, audience.AttrSpec{Name: c.Name, Type: typ})
	}
	return out
}

// rule declares the table in the rules.
func (t eventTable) rule() wire.TableRule {
	party := wire.PartyProposer
	if t.party == 1 {
		party = wire.PartyPartner
	}
	return wire.TableRule{Party: party, Name: t.name, Columns: t.columns}
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

// tableCounts are the rows a generator wrote: all of them, and those of
// the people in a range (the people both parties have).
type tableCounts struct {
	rows, inRange int64
}

// writeTable writes table t for people [first, first+n) as CSV, one row a
// person in order or, for an event log, day by day, counting the rows of
// people in [lo, hi).
func writeTable(w io.Writer, t eventTable, first, n, lo, hi int) (tableCounts, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(t.header() + "\n")
	var c tableCounts
	var b []byte
	put := func(k, day int, h uint64) error {
		b = append(b[:0], "customer"...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, "@example.com,"...)
		b = t.row(b, day, h)
		if t.consent {
			b = append(b, ",measurement"...)
		}
		b = append(b, '\n')
		c.rows++
		if k >= lo && k < hi {
			c.inRange++
		}
		_, err := bw.Write(b)
		return err
	}
	if t.mean == 0 {
		for k := first; k < first+n; k++ {
			if err := put(k, -1, mix64(uint64(k)^t.salt)); err != nil {
				return c, err
			}
		}
		return c, bw.Flush()
	}
	for day := range eventDays {
		for k := first; k < first+n; k++ {
			for j := range eventsOn(k, day, t.mean, t.salt) {
				if err := put(k, day, mix64(mix64(mix64(uint64(k)^t.salt)^mix64(uint64(day)+1))^uint64(j))); err != nil {
					return c, err
				}
			}
		}
	}
	return c, bw.Flush()
}

// TableRows are a table's rows as uploaded, stored and linked.
type TableRows struct {
	Table string `json:"table"`
	// Party is who uploaded it: proposer (the brand) or partner.
	Party        string `json:"party"`
	UploadedRows int64  `json:"uploaded_rows"`
	// StoredRows are the rows of its table in the database after the
	// match.
	StoredRows int64 `json:"stored_rows"`
	// Blinded is how many identifiers the client hashed and blinded for
	// it: its distinct people when the encoder's cache held them all.
	Blinded int64 `json:"blinded"`
	// LinkedRows are its rows the match linked to the person map (its
	// match_tables row), and ExpectedLinkedRows the rows the generator
	// wrote for the people both parties have (all of them consented).
	LinkedRows         int64 `json:"linked_rows"`
	ExpectedLinkedRows int64 `json:"expected_linked_rows"`
	audienceID         string
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
