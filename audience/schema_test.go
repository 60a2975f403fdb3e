package audience

import (
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
)

func field(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

var pidField = arrow.Field{Name: PIDColumn, Type: PIDType}

func TestValidateSchemaAcceptsEveryAllowedType(t *testing.T) {
	s := arrow.NewSchema([]arrow.Field{
		field("age", arrow.PrimitiveTypes.Int64),
		pidField,
		field(ConsentColumn, arrow.ListOf(arrow.BinaryTypes.String)),
		field("spend", arrow.PrimitiveTypes.Float64),
		field("region", arrow.BinaryTypes.String),
		field("vip", arrow.FixedWidthTypes.Boolean),
		field("signup", arrow.FixedWidthTypes.Date32),
		field("seen_at", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "Europe/Paris"}),
		field("seen_naive", &arrow.TimestampType{Unit: arrow.Microsecond}),
		field("x"+strings.Repeat("9", 62), arrow.PrimitiveTypes.Int64),
	}, nil)
	if err := ValidateSchema(s); err != nil {
		t.Fatalf("ValidateSchema: %v", err)
	}
	var names []string
	for _, f := range Attributes(s) {
		names = append(names, f.Name)
	}
	want := "age spend region vip signup seen_at seen_naive x" + strings.Repeat("9", 62)
	if got := strings.Join(names, " "); got != want {
		t.Errorf("Attributes = %s, want %s", got, want)
	}
}

func TestValidateSchemaRejects(t *testing.T) {
	many := []arrow.Field{pidField}
	for i := 1; i <= MaxColumns; i++ {
		many = append(many, field(fmt.Sprintf("a%d", i), arrow.PrimitiveTypes.Int64))
	}
	for _, tc := range []struct {
		name   string
		fields []arrow.Field
		want   []string // substrings of the error
	}{
		{"missing pid", []arrow.Field{field("age", arrow.PrimitiveTypes.Int64)},
			[]string{`no "pid" column`, "fixed_size_binary[32]"}},
		{"pid binary", []arrow.Field{field(PIDColumn, arrow.BinaryTypes.Binary)},
			[]string{`column "pid"`, "type binary", "fixed_size_binary[32]"}},
		{"pid 31 bytes", []arrow.Field{field(PIDColumn, &arrow.FixedSizeBinaryType{ByteWidth: 31})},
			[]string{`column "pid"`, "fixed_size_binary[31]", "want fixed_size_binary[32]"}},
		{"consent of ints", []arrow.Field{pidField, field(ConsentColumn, arrow.ListOf(arrow.PrimitiveTypes.Int64))},
			[]string{`column "consent"`, "list<utf8>"}},
		{"consent as string", []arrow.Field{pidField, field(ConsentColumn, arrow.BinaryTypes.String)},
			[]string{`column "consent"`, "type utf8", "want list<utf8>"}},
		{"float32", []arrow.Field{pidField, field("score", arrow.PrimitiveTypes.Float32)},
			[]string{`column "score"`, "float32 is not allowed", "allowed: int64, float64, utf8, bool, date32, timestamp[us]"}},
		{"struct", []arrow.Field{pidField, field("addr", arrow.StructOf(field("zip", arrow.BinaryTypes.String)))},
			[]string{`column "addr"`, "not allowed"}},
		{"timestamp ns", []arrow.Field{pidField, field("ts", arrow.FixedWidthTypes.Timestamp_ns)},
			[]string{`column "ts"`, "timestamp[ns", "not allowed"}},
		{"large string", []arrow.Field{pidField, field("city", arrow.BinaryTypes.LargeString)},
			[]string{`column "city"`, "large_utf8 is not allowed"}},
		{"upper case", []arrow.Field{pidField, field("Age", arrow.PrimitiveTypes.Int64)},
			[]string{`column "Age"`, "^[a-z][a-z0-9_]{0,62}$"}},
		{"leading digit", []arrow.Field{pidField, field("1st", arrow.PrimitiveTypes.Int64)},
			[]string{`column "1st"`, "must match"}},
		{"space", []arrow.Field{pidField, field("order total", arrow.PrimitiveTypes.Int64)},
			[]string{`column "order total"`, "must match"}},
		{"too long", []arrow.Field{pidField, field("a"+strings.Repeat("b", 63), arrow.PrimitiveTypes.Int64)},
			[]string{`column "abbb`, "at most 63"}},
		{"empty name", []arrow.Field{pidField, field("", arrow.PrimitiveTypes.Int64)},
			[]string{`column ""`, "must match"}},
		{"uid reserved", []arrow.Field{pidField, field("uid", arrow.PrimitiveTypes.Int64)},
			[]string{`column "uid"`, "reserved"}},
		{"duplicate attribute", []arrow.Field{pidField, field("age", arrow.PrimitiveTypes.Int64), field("age", arrow.PrimitiveTypes.Int64)},
			[]string{`column "age" appears twice`, "columns 2 and 3"}},
		{"duplicate pid", []arrow.Field{pidField, pidField},
			[]string{`column "pid" appears twice`}},
		{"too many columns", append(many, field("over", arrow.PrimitiveTypes.Int64)),
			[]string{"1002 columns", "1000 allowed", `"a1000"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSchema(arrow.NewSchema(tc.fields, nil))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if err := ValidateSchema(arrow.NewSchema(many, nil)); err == nil || !strings.Contains(err.Error(), "1001 columns") {
		t.Errorf("1001 columns: %v", err)
	}
	if err := ValidateSchema(arrow.NewSchema(many[:MaxColumns], nil)); err != nil {
		t.Errorf("1000 columns: %v", err)
	}
}

func TestValidateSchemaShortensLongNames(t *testing.T) {
	long := strings.Repeat("X", 10000)
	err := ValidateSchema(arrow.NewSchema([]arrow.Field{pidField, field(long, arrow.PrimitiveTypes.Int64)}, nil))
	if err == nil || len(err.Error()) > 400 {
		t.Errorf("error for a 10000-character name is %d bytes long", len(err.Error()))
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"Order Total":            "order_total",
		" E-mail Address":        "e_mail_address",
		"order_total":            "order_total",
		"__x__":                  "x",
		"2nd visit":              "c_2nd_visit",
		"Année":                  "annee",
		"---":                    "",
		strings.Repeat("ab", 40): strings.Repeat("ab", 40)[:63],
	} {
		if got := SanitizeName(in); got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}
