package audience

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/cleanroom/cleanroom/psi"
)

// testRow is one customer of the synthetic CSV, with the values the upload
// must carry for it.
type testRow struct {
	email   string // as written in the file
	age     *int64
	spend   float64
	city    string // "" is null
	vip     bool
	signup  time.Time
	consent []string // as expected in the upload; nil is null
	cell    string   // the consent cell as written
}

func ptr[T any](v T) *T { return &v }

func testRows(n int) []testRow {
	rows := make([]testRow, n)
	for i := range rows {
		r := &rows[i]
		// Messy spelling: mixed case and stray spaces, which normalization
		// must remove.
		r.email = fmt.Sprintf("User%d@Example.COM", i)
		if i%4 == 1 {
			r.email = "  " + strings.ToUpper(r.email) + " "
		}
		if i%7 != 3 {
			r.age = ptr(int64(18 + i%60))
		}
		r.spend = float64(i) * 1.25
		if i%5 != 0 {
			r.city = []string{"Paris", "Lyon, France", "Zürich", `"Quoted"`}[i%4]
		}
		r.vip = i%2 == 0
		r.signup = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i)
		switch i % 3 {
		case 0:
			r.cell = ""
		case 1:
			r.cell, r.consent = "measurement", []string{"measurement"}
		case 2:
			r.cell, r.consent = " Measurement ; marketing;", []string{"measurement", "marketing"}
		}
	}
	return rows
}

func csvQuote(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func writeCSV(rows []testRow, id func(r testRow) string) string {
	var b strings.Builder
	b.WriteString("Email,Age,spend,city,VIP,signup,consent\n")
	for _, r := range rows {
		age := ""
		if r.age != nil {
			age = fmt.Sprint(*r.age)
		}
		fmt.Fprintf(&b, "%s,%s,%g,%s,%t,%s,%s\n", csvQuote(id(r)), age, r.spend, csvQuote(r.city), r.vip, r.signup.Format(time.DateOnly), r.cell)
	}
	return b.String()
}

// expectedPIDs is what a party's blinding of these emails must give.
func expectedPIDs(t testing.TB, key *psi.Key, emails []string) []psi.Point {
	t.Helper()
	n, err := psi.NewNormalizer(psi.Email, psi.NormalizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := psi.NewHasher(psi.Email)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]psi.Point, len(emails))
	for i, e := range emails {
		d, err := n.Digest(e)
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = key.Blind(h.Hash(d[:])); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// upload is a decoded upload, column by column.
type upload struct {
	schema   *arrow.Schema
	records  int
	pids     []psi.Point
	consent  [][]string
	attrs    map[string][]any // nil entries are nulls
	rowCount int64
}

// decode reads an encoded upload back through ipc.NewReader and NewReader,
// as the server does.
func decode(t testing.TB, data []byte) upload {
	t.Helper()
	ir, err := ipc.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer ir.Release()
	r, err := NewReader(ir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	u := upload{schema: r.Schema(), attrs: map[string][]any{}}
	for r.Next() {
		rec := r.Record()
		u.records++
		for c, f := range rec.Schema().Fields() {
			col := rec.Column(c)
			for i := 0; i < col.Len(); i++ {
				switch f.Name {
				case PIDColumn:
					u.pids = append(u.pids, psi.Point(col.(*array.FixedSizeBinary).Value(i)))
				case ConsentColumn:
					var ps []string
					if col.IsValid(i) {
						l := col.(*array.List)
						start, end := l.ValueOffsets(i)
						vals := l.ListValues().(*array.String)
						ps = []string{}
						for j := start; j < end; j++ {
							ps = append(ps, vals.Value(int(j)))
						}
					}
					u.consent = append(u.consent, ps)
				default:
					var v any
					if col.IsValid(i) {
						switch a := col.(type) {
						case *array.Int64:
							v = a.Value(i)
						case *array.Float64:
							v = a.Value(i)
						case *array.String:
							v = a.Value(i)
						case *array.Boolean:
							v = a.Value(i)
						case *array.Date32:
							v = a.Value(i).ToTime()
						case *array.Timestamp:
							v = a.Value(i).ToTime(arrow.Microsecond)
						}
					}
					u.attrs[f.Name] = append(u.attrs[f.Name], v)
				}
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	u.rowCount = r.Rows()
	return u
}

func mustKey(t testing.TB) *psi.Key {
	t.Helper()
	key, err := psi.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestEncodeCSVRoundTrip(t *testing.T) {
	key := mustKey(t)
	rows := testRows(3000)
	in := writeCSV(rows, func(r testRow) string { return r.email })
	var out bytes.Buffer
	var progress []int64
	opts := EncodeOptions{
		IDColumn: "email", IDType: psi.Email, ConsentColumn: "consent",
		BatchSize: 700, Workers: 3,
		Progress: func(n int64) { progress = append(progress, n) },
	}
	stats, err := EncodeCSV(context.Background(), strings.NewReader(in), &out, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Rows != 3000 || stats.SkippedBlank != 0 {
		t.Errorf("stats = %+v", stats)
	}
	if want := []int64{700, 1400, 2100, 2800, 3000}; !reflect.DeepEqual(progress, want) {
		t.Errorf("progress = %v, want %v", progress, want)
	}

	u := decode(t, out.Bytes())
	if u.rowCount != 3000 || u.records != 5 {
		t.Fatalf("read %d rows in %d records, want 3000 in 5", u.rowCount, u.records)
	}
	// Types: inferred from the data; names from the headers.
	wantTypes := map[string]arrow.DataType{
		"age": arrow.PrimitiveTypes.Int64, "spend": arrow.PrimitiveTypes.Float64, "city": arrow.BinaryTypes.String,
		"vip": arrow.FixedWidthTypes.Boolean, "signup": arrow.FixedWidthTypes.Date32,
	}
	if got := len(Attributes(u.schema)); got != len(wantTypes) {
		t.Errorf("%d attributes: %v", got, u.schema)
	}
	for name, typ := range wantTypes {
		i := u.schema.FieldIndices(name)
		if len(i) != 1 || !arrow.TypeEqual(u.schema.Field(i[0]).Type, typ) {
			t.Errorf("attribute %s: want type %s in %v", name, typ, u.schema)
		}
	}

	emails := make([]string, len(rows))
	for i := range rows {
		emails[i] = rows[i].email
	}
	want := expectedPIDs(t, key, emails)
	for i, r := range rows {
		if u.pids[i] != want[i] {
			t.Fatalf("row %d: pid is not the blinded email (order lost?)", i+1)
		}
		var age any
		if r.age != nil {
			age = *r.age
		}
		var city any
		if r.city != "" {
			city = r.city
		}
		got := []any{u.attrs["age"][i], u.attrs["spend"][i], u.attrs["city"][i], u.attrs["vip"][i], u.attrs["signup"][i]}
		exp := []any{age, r.spend, city, r.vip, r.signup}
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("row %d: attributes %v, want %v", i+1, got, exp)
		}
		if !reflect.DeepEqual(u.consent[i], r.consent) {
			t.Fatalf("row %d: consent %q, want %q", i+1, u.consent[i], r.consent)
		}
	}

	// The same people given as SHA-256 of their normalized email.
	norm, _ := psi.NewNormalizer(psi.Email, psi.NormalizeOptions{})
	hashed := writeCSV(rows, func(r testRow) string {
		c, err := norm.Canonical(r.email)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(c))
		return hex.EncodeToString(sum[:])
	})
	var out2 bytes.Buffer
	opts.IDType, opts.Progress = psi.SHA256, nil
	if _, err := EncodeCSV(context.Background(), strings.NewReader(hashed), &out2, key, opts); err != nil {
		t.Fatal(err)
	}
	if got := decode(t, out2.Bytes()).pids; !reflect.DeepEqual(got, u.pids) {
		t.Error("pre-hashed emails do not give the same points as plaintext ones")
	}
}

func TestEncodeCSVBlankIDs(t *testing.T) {
	key := mustKey(t)
	rows := testRows(50)
	rows[20].email = "   "
	in := writeCSV(rows, func(r testRow) string { return r.email })
	opts := EncodeOptions{IDColumn: "Email", IDType: psi.Email, ConsentColumn: "consent"}

	_, err := EncodeCSV(context.Background(), strings.NewReader(in), io.Discard, key, opts)
	if err == nil || !strings.HasPrefix(err.Error(), "line 22: email: empty value") || !errors.Is(err, psi.ErrEmpty) {
		t.Errorf("blank id: %v, want line 22 and psi.ErrEmpty", err)
	}

	opts.SkipBlankIDs = true
	var out bytes.Buffer
	stats, err := EncodeCSV(context.Background(), strings.NewReader(in), &out, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Rows != 49 || stats.SkippedBlank != 1 {
		t.Errorf("stats = %+v, want 49 rows and 1 skipped", stats)
	}
	u := decode(t, out.Bytes())
	emails := []string{}
	for i, r := range rows {
		if i != 20 {
			emails = append(emails, r.email)
		}
	}
	if !reflect.DeepEqual(u.pids, expectedPIDs(t, key, emails)) {
		t.Error("the rows around the skipped one are not in order")
	}
	if u.attrs["spend"][20] != rows[21].spend {
		t.Error("attributes are not aligned with their ids after a skipped row")
	}
}

func TestEncodeCSVErrors(t *testing.T) {
	key := mustKey(t)
	good := "email,age,note\na@example.com,3,x\n"
	many := func(bad string, at int) string {
		var b strings.Builder
		b.WriteString("email,age\n")
		for i := 0; i < 2000; i++ {
			v := fmt.Sprint(i)
			if i == at {
				v = bad
			}
			fmt.Fprintf(&b, "u%d@example.com,%s\n", i, v)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		in   string
		opts EncodeOptions
		want string
		is   error
	}{
		{"bad email", "email,age\na@example.com,1\nb@example.com,2\nsecret.person.example.com,3\n",
			EncodeOptions{}, "line 4: email: missing @", psi.ErrInvalid},
		{"bad int, explicit type", "email,age\na@example.com,1\nb@example.com,abc\n",
			EncodeOptions{Attributes: []AttrSpec{{Name: "age", Type: "int"}}}, `line 3, column "age": not an int`, errNotInt},
		{"bad int after inference", many("12.5", 1500), EncodeOptions{},
			`line 1502, column "age": not an int`, errNotInt},
		{"NaN, explicit type", "email,spend\na@example.com,1.5\nb@example.com,NaN\n",
			EncodeOptions{Attributes: []AttrSpec{{Name: "spend", Type: "float"}}}, `line 3, column "spend": not a finite number (NaN and infinities are refused`, errNotFinite},
		{"infinity on line 1502", strings.Replace(many("-Infinity", 1500), "email,age", "email,spend", 1), EncodeOptions{Attributes: []AttrSpec{{Name: "spend", Type: "float"}}},
			`line 1502, column "spend": not a finite number`, errNotFinite},
		{"beyond float64", "email,spend\na@example.com,1e999\n",
			EncodeOptions{Attributes: []AttrSpec{{Name: "spend", Type: "float"}}}, `line 2, column "spend": number out of the 64-bit float range`, errFloatRange},
		{"year 0", "email,d\na@example.com,2024-12-01\nb@example.com,0000-06-01\n",
			EncodeOptions{Attributes: []AttrSpec{{Name: "d", Type: "date"}}}, `line 3, column "d": outside the years 1 to 9999`, errYears},
		{"bad date", "email,d\na@example.com,2024-13-01\n",
			EncodeOptions{Attributes: []AttrSpec{{Name: "d", Type: "date"}}}, `line 2, column "d": not a date (YYYY-MM-DD)`, nil},
		{"missing id column", good, EncodeOptions{IDColumn: "mail"},
			`identifier column: column "mail" not found in the CSV header; available: "email", "age", "note"`, nil},
		{"missing attribute column", good, EncodeOptions{Attributes: []AttrSpec{{Name: "score"}}},
			`attribute "score": column "score" not found in the CSV header; available: "email", "age", "note"`, nil},
		{"missing consent column", good, EncodeOptions{ConsentColumn: "optin"},
			`consent column: column "optin" not found`, nil},
		{"id as attribute", good, EncodeOptions{Attributes: []AttrSpec{{Name: "mail", Column: "email"}}},
			`column "email" is the identifier column and cannot be sent`, nil},
		{"unknown type", good, EncodeOptions{Attributes: []AttrSpec{{Name: "age", Type: "integer"}}},
			`attribute "age": unknown type "integer"`, nil},
		{"bad attribute name", good, EncodeOptions{Attributes: []AttrSpec{{Name: "Age", Column: "age"}}},
			`column "Age": attribute names must match`, nil},
		{"reserved name", "email,uid\na@example.com,1\n", EncodeOptions{},
			`input column "uid": attribute name "uid" is reserved`, nil},
		{"names collide", "email,Order Total,order_total\na@example.com,1,2\n", EncodeOptions{},
			`input columns "Order Total" and "order_total" would both be sent as attribute "order_total"`, nil},
		{"ragged row", "email,age\na@example.com,1\nb@example.com\n", EncodeOptions{},
			"line 3: 1 fields, but the header has 2", nil},
		{"no rows", "email,age\n", EncodeOptions{}, "no rows to upload", nil},
		{"empty file", "", EncodeOptions{}, "the CSV is empty", nil},
		{"no id type", good, EncodeOptions{IDType: "-"}, "no identifier type", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.IDColumn == "" {
				opts.IDColumn = "email"
			}
			switch opts.IDType {
			case "":
				opts.IDType = psi.Email
			case "-":
				opts.IDType = ""
			}
			var out bytes.Buffer
			_, err := EncodeCSV(context.Background(), strings.NewReader(tc.in), &out, key, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if strings.Contains(err.Error(), "secret.person") {
				t.Errorf("error %q contains the identifier", err)
			}
			// What was written must not pass for a complete upload.
			if out.Len() > 0 {
				r, err := NewStreamReader(bytes.NewReader(out.Bytes()), StreamOptions{})
				if err == nil {
					readAll(r)
					err = r.Err()
					r.Release()
				}
				if !errors.Is(err, ErrTruncated) {
					t.Errorf("partial output reads as %v, want ErrTruncated", err)
				}
			}
		})
	}
}

func TestEncodeCSVExplicitAttributesAndConsentAll(t *testing.T) {
	key := mustKey(t)
	in := "id;Zip;when;score;optin\n" +
		"A@example.com;01234;2024-05-01T12:00:00+02:00;1;Marketing\n" +
		"b@example.com;;2024-05-02 08:30:00;;\n"
	var out bytes.Buffer
	_, err := EncodeCSV(context.Background(), strings.NewReader(in), &out, key, EncodeOptions{
		IDColumn: "id", IDType: psi.Email, Comma: ';',
		Attributes: []AttrSpec{
			{Name: "zip", Type: "string", Column: "Zip"}, // would infer int and lose the 0
			{Name: "seen", Type: "timestamp", Column: "when"},
			{Name: "score", Type: "float"},
		},
		ConsentColumn: "optin", ConsentAll: "Measurement",
	})
	if err != nil {
		t.Fatal(err)
	}
	u := decode(t, out.Bytes())
	if got := u.schema.String(); !strings.Contains(got, "zip: type=utf8") || !strings.Contains(got, "seen: type=timestamp[us, tz=UTC]") || !strings.Contains(got, "score: type=float64") {
		t.Errorf("schema %s", got)
	}
	want := map[string][]any{
		"zip":   {"01234", nil},
		"seen":  {time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), time.Date(2024, 5, 2, 8, 30, 0, 0, time.UTC)},
		"score": {1.0, nil},
	}
	if !reflect.DeepEqual(u.attrs, want) {
		t.Errorf("attributes %v, want %v", u.attrs, want)
	}
	if want := [][]string{{"marketing", "measurement"}, {"measurement"}}; !reflect.DeepEqual(u.consent, want) {
		t.Errorf("consent %q, want %q", u.consent, want)
	}
}

func TestEncodeCSVCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := writeCSV(testRows(5000), func(r testRow) string { return r.email })
	_, err := EncodeCSV(ctx, strings.NewReader(in), io.Discard, mustKey(t), EncodeOptions{IDColumn: "email", IDType: psi.Email, ConsentColumn: "consent"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled encode: %v", err)
	}
}

func TestEncodeParquetRoundTrip(t *testing.T) {
	key := mustKey(t)
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "Email", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "visits", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "basket", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "purposes", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "secret", Type: arrow.BinaryTypes.Binary, Nullable: true}, // not sent, and not sendable
	}, nil)
	const n = 2500
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	var emails []string
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		if i == 7 {
			b.Field(0).AppendNull() // a blank id, skipped
		} else {
			e := fmt.Sprintf(" Person%d@Example.org", i)
			emails = append(emails, e)
			b.Field(0).(*array.StringBuilder).Append(e)
		}
		b.Field(1).(*array.Int32Builder).Append(int32(i))
		b.Field(2).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(i) * 25)) // scale 2: i/4
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(base.Add(time.Duration(i) * time.Minute).UnixMilli()))
		b.Field(4).(*array.Date32Builder).Append(arrow.Date32FromTime(base.AddDate(0, 0, i%40)))
		if i%3 == 0 {
			b.Field(5).AppendNull()
		} else {
			b.Field(5).(*array.BooleanBuilder).Append(i%2 == 0)
		}
		lb := b.Field(6).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.StringBuilder).Append("Measurement")
		b.Field(7).(*array.BinaryBuilder).Append([]byte{1, 2})
	}
	rec := b.NewRecord()
	defer rec.Release()
	var file bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(1000))
	w, err := pqarrow.NewFileWriter(schema, &file, props, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	opts := EncodeOptions{
		IDColumn: "email", IDType: psi.Email, ConsentColumn: "purposes", SkipBlankIDs: true, BatchSize: 600,
		Attributes: []AttrSpec{{Name: "visits"}, {Name: "basket"}, {Name: "ts"}, {Name: "day"}, {Name: "ok"}, {Name: "day_text", Type: "string", Column: "day"}},
	}
	var out bytes.Buffer
	stats, err := EncodeParquet(context.Background(), bytes.NewReader(file.Bytes()), &out, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Rows != n-1 || stats.SkippedBlank != 1 {
		t.Errorf("stats = %+v", stats)
	}
	u := decode(t, out.Bytes())
	if !reflect.DeepEqual(u.pids, expectedPIDs(t, key, emails)) {
		t.Fatal("pids are not the blinded emails in file order")
	}
	for _, want := range []string{"visits: type=int64", "basket: type=float64", "ts: type=timestamp[us, tz=UTC]", "day: type=date32", "ok: type=bool", "day_text: type=utf8"} {
		if !strings.Contains(u.schema.String(), want) {
			t.Errorf("schema lacks %q: %s", want, u.schema)
		}
	}
	for j := 0; j < n-1; j++ {
		i := j
		if j >= 7 {
			i++ // the skipped row
		}
		var ok any
		if i%3 != 0 {
			ok = i%2 == 0
		}
		got := []any{u.attrs["visits"][j], u.attrs["basket"][j], u.attrs["ts"][j], u.attrs["day"][j], u.attrs["ok"][j], u.attrs["day_text"][j]}
		exp := []any{int64(i), float64(i) * 0.25, base.Add(time.Duration(i) * time.Minute), base.AddDate(0, 0, i%40), ok, base.AddDate(0, 0, i%40).Format(time.DateOnly)}
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("row %d: %v, want %v", i+1, got, exp)
		}
		if !reflect.DeepEqual(u.consent[j], []string{"measurement"}) {
			t.Fatalf("row %d: consent %q", i+1, u.consent[j])
		}
	}

	// Sending every column by default names the one that cannot be sent.
	opts.Attributes = nil
	_, err = EncodeParquet(context.Background(), bytes.NewReader(file.Bytes()), io.Discard, key, opts)
	if err == nil || !strings.Contains(err.Error(), `column "secret": type binary cannot be sent as an attribute`) {
		t.Errorf("binary column: %v", err)
	}
	opts.Attributes = []AttrSpec{{Name: "visits", Type: "bool"}}
	_, err = EncodeParquet(context.Background(), bytes.NewReader(file.Bytes()), io.Discard, key, opts)
	if err == nil || !strings.Contains(err.Error(), `column "visits": type int32 cannot be sent as bool`) {
		t.Errorf("int as bool: %v", err)
	}
	opts.Attributes, opts.IDColumn = []AttrSpec{{Name: "visits"}}, "mail"
	_, err = EncodeParquet(context.Background(), bytes.NewReader(file.Bytes()), io.Discard, key, opts)
	if err == nil || !strings.Contains(err.Error(), `column "mail" not found in the Parquet file; available: "Email", "visits"`) {
		t.Errorf("missing column: %v", err)
	}
}

func TestEncodeParquetReportsRow(t *testing.T) {
	for _, tc := range []struct {
		typ  arrow.DataType
		bad  any // row 25's n; the others are their index
		as   string
		want string
	}{
		{arrow.BinaryTypes.String, "n/a", "int", `row 25, column "n": not an int`},
		{arrow.PrimitiveTypes.Float64, math.NaN(), "float", `row 25, column "n": not a finite number (NaN and infinities are refused`},
		{arrow.PrimitiveTypes.Float32, float32(math.Inf(-1)), "float", `row 25, column "n": not a finite number`},
	} {
		schema := arrow.NewSchema([]arrow.Field{{Name: "email", Type: arrow.BinaryTypes.String}, {Name: "n", Type: tc.typ}}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := 0; i < 30; i++ {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("p%d@example.com", i))
			switch f := b.Field(1).(type) {
			case *array.StringBuilder:
				v := fmt.Sprint(i)
				if i == 24 {
					v = tc.bad.(string)
				}
				f.Append(v)
			case *array.Float64Builder:
				v := float64(i)
				if i == 24 {
					v = tc.bad.(float64)
				}
				f.Append(v)
			case *array.Float32Builder:
				v := float32(i)
				if i == 24 {
					v = tc.bad.(float32)
				}
				f.Append(v)
			}
		}
		rec := b.NewRecord()
		b.Release()
		var file bytes.Buffer
		w, err := pqarrow.NewFileWriter(schema, &file, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(10)), pqarrow.DefaultWriterProps())
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		w.Close()
		rec.Release()
		_, err = EncodeParquet(context.Background(), bytes.NewReader(file.Bytes()), io.Discard, mustKey(t), EncodeOptions{
			IDColumn: "email", IDType: psi.Email, Attributes: []AttrSpec{{Name: "n", Type: tc.as}}, BatchSize: 4,
		})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.typ, err, tc.want)
		}
	}
}

// benchCSV is a CSV of n customers with a few attributes.
func benchCSV(n int) string {
	return writeCSV(testRows(n), func(r testRow) string { return r.email })
}

// BenchmarkEncodeCSV measures the whole client path (parse, normalize,
// hash, blind, build and write Arrow) in rows per second. Compare with
// BenchmarkBlindIDs, psi's rate for the normalize-hash-blind step alone.
func BenchmarkEncodeCSV(b *testing.B) {
	const n = 20000
	in := benchCSV(n)
	key := mustKey(b)
	opts := EncodeOptions{IDColumn: "email", IDType: psi.Email, ConsentColumn: "consent"}
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := EncodeCSV(context.Background(), strings.NewReader(in), io.Discard, key, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkBlindIDs is psi.BlindIDs alone over the same identifiers.
func BenchmarkBlindIDs(b *testing.B) {
	const n = 20000
	rows := testRows(n)
	ids := make([]string, n)
	for i := range rows {
		ids[i] = rows[i].email
	}
	key := mustKey(b)
	norm, _ := psi.NewNormalizer(psi.Email, psi.NormalizeOptions{})
	h, _ := psi.NewHasher(psi.Email)
	discard := psi.WriterFunc[psi.Point](func([]psi.Point) error { return nil })
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := psi.BlindIDs(context.Background(), &psi.SliceReader[string]{Items: ids}, discard, norm, h, key, psi.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
}

// TestEncodeBlindsEachPersonOnce: an event log (several rows a person,
// written differently) costs one blinding a person, and every row still
// carries its person's point, the same as with the cache off.
func TestEncodeBlindsEachPersonOnce(t *testing.T) {
	key := mustKey(t)
	var b strings.Builder
	b.WriteString("email,amount\n")
	var emails []string
	for row := 0; row < 2400; row++ {
		p := (row * 7919) % 200 // 200 people, 12 rows each, interleaved
		email := fmt.Sprintf("Buyer%d@Example.com", p)
		if row%2 == 1 {
			email = fmt.Sprintf("  buyer%d@example.com", p)
		}
		emails = append(emails, strings.ToLower(strings.TrimSpace(email)))
		fmt.Fprintf(&b, "%s,%d\n", email, row)
	}
	want := expectedPIDs(t, key, emails)
	for _, cache := range []int64{0, -1, 1} { // default, off, smallest (collisions)
		var out bytes.Buffer
		opts := EncodeOptions{IDColumn: "email", IDType: psi.Email, ConsentAll: "measurement", BatchSize: 500, Workers: 2, CacheBytes: cache}
		stats, err := EncodeCSV(context.Background(), strings.NewReader(b.String()), &out, key, opts)
		if err != nil {
			t.Fatal(err)
		}
		u := decode(t, out.Bytes())
		if !reflect.DeepEqual(u.pids, want) {
			t.Fatalf("cache %d: the points differ from blinding each row", cache)
		}
		switch {
		case cache == 0 && stats.Blinded != 200:
			t.Errorf("default cache: %d blindings for 200 people in 2400 rows", stats.Blinded)
		case cache < 0 && stats.Blinded != 2400:
			t.Errorf("cache off: %d blindings for 2400 rows", stats.Blinded)
		case stats.Rows != 2400:
			t.Errorf("%d rows", stats.Rows)
		}
	}
}
