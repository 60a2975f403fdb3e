package wire

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"time"
)

// Rules are a collaboration's terms, agreed by both partners. Every query
// path enforces them in one place. Fields left out of a rules JSON take
// the defaults of DefaultRules.
type Rules struct {
	// Purpose is the consent purpose a row must carry to be matched.
	Purpose string `json:"purpose"`
	// IDType is the identifier kind both parties match on (email, phone,
	// maid); each party may upload it plain or as SHA-256.
	IDType string `json:"id_type" schema:"enum=email|phone|maid"`
	// GmailRule: both parties apply the Gmail dot/plus rule.
	GmailRule bool `json:"gmail_rule"`
	// Dimensions are the columns allowed in GROUP BY and WHERE.
	Dimensions []string `json:"dimensions"`
	// Metrics are the columns allowed in SUM/AVG, with per-user bounds.
	Metrics map[string][2]float64 `json:"metrics"`
	// MinCohortUsers: below it no query runs.
	MinCohortUsers int `json:"min_cohort_users"`
	// MinGroupUsers: output rows whose noisy user count is below it are dropped.
	MinGroupUsers int `json:"min_group_users"`
	// EpsilonBudget and DeltaBudget per partner and budget period; Delta
	// is what one query spends when it needs a delta (partition selection
	// for GROUP BY, or Gaussian noise). Epsilons are whole numbers of
	// EpsilonUnit, deltas of DeltaUnit: the ledger counts units.
	EpsilonBudget float64 `json:"epsilon_budget"`
	DeltaBudget   float64 `json:"delta_budget"`
	Delta         float64 `json:"delta"`
	// MinQueryEpsilon and MaxQueryEpsilon bound one query's epsilon.
	MinQueryEpsilon float64 `json:"min_query_epsilon"`
	MaxQueryEpsilon float64 `json:"max_query_epsilon"`
	// DefaultQueryEpsilon is what a query spends when it names no
	// epsilon (kept within the bounds above). With the other defaults it
	// lets an analyst ask 110 questions, 100 of them grouped, before a
	// budget refuses (one match's match_epsilon paid).
	DefaultQueryEpsilon float64 `json:"default_query_epsilon"`
	// BudgetRefresh is "none" or "monthly".
	BudgetRefresh BudgetRefresh `json:"budget_refresh"`
	// Noise is "laplace" (the default) or "gaussian" (needs delta > 0).
	Noise Noise `json:"noise"`
	// MaxGroupsContributed caps the groups one user adds to per query.
	MaxGroupsContributed int `json:"max_groups_contributed"`
	// MaxRowsPerPerson caps what one person adds to a count of rows
	// (COUNT(column)) in one group: their rows beyond it are not counted.
	// A declared table may set its own.
	MaxRowsPerPerson int `json:"max_rows_per_person"`
	// MinUploadUsers is the smallest audience (distinct people) accepted;
	// smaller ones would let a party learn a cohort's members from its size.
	MinUploadUsers int `json:"min_upload_users"`
	// MatchEpsilon is the privacy cost of a match's noisy cohort size.
	MatchEpsilon float64 `json:"match_epsilon"`
	// Queriers are the partner IDs that may query; empty means both.
	Queriers []string `json:"queriers"`
	// PublicGroups declares, by dimension (as queries name it), the values
	// whose groups are public: a GROUP BY over public dimensions only
	// releases every declared group (empty ones as noisy zeros), needs no
	// partition selection and spends no delta.
	PublicGroups map[string]PublicValues `json:"public_groups"`
	// Templates are the collaboration's named questions (beside the
	// built-ins, BuiltinTemplates).
	Templates []Template `json:"templates"`
	// Tables declare the tables each party brings, their columns and each
	// column's role. Left empty, each party brings one table, named
	// DefaultTable, with whatever columns it uploads, and the queryable
	// columns are Dimensions and Metrics alone.
	Tables []TableRule `json:"tables"`
}

// PublicValues are one dimension's public values: a list, or a range of
// dates with a step.
type PublicValues struct {
	// Values are the values, as strings, numbers or booleans.
	Values []any `json:"values,omitempty"`
	// Dates is a range of dates: From to To (yyyy-mm-dd, both included)
	// every StepDays days.
	Dates *DateRange `json:"dates,omitempty"`
}

// DateRange is a range of dates with a step.
type DateRange struct {
	From     string `json:"from"`
	To       string `json:"to"`
	StepDays int    `json:"step_days"`
}

// MaxPublicValues bounds one dimension's public values, and the groups a
// query over public dimensions releases.
const MaxPublicValues = 1000

// List returns the public values, the dates of a range as yyyy-mm-dd
// strings.
func (p PublicValues) List() []any {
	if p.Dates == nil {
		return p.Values
	}
	from, err1 := time.Parse(time.DateOnly, p.Dates.From)
	to, err2 := time.Parse(time.DateOnly, p.Dates.To)
	if err1 != nil || err2 != nil || p.Dates.StepDays < 1 {
		return nil
	}
	var out []any
	for d := from; !d.After(to) && len(out) <= MaxPublicValues; d = d.AddDate(0, 0, p.Dates.StepDays) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

// DefaultTable is the name of a party's table when it names none: the one
// table of a collaboration whose rules declare no tables.
const DefaultTable = "audience"

// TableRule declares one table a party brings to a collaboration. An
// upload of it must have exactly the declared columns (and pid, and
// optionally consent); columns no rule declares are refused, so both
// partners approve everything that will be joined.
type TableRule struct {
	// Party is who brings it: "proposer" or "partner".
	Party string `json:"party" schema:"enum=proposer|partner"`
	// Name is the table's name, as uploads give it (--table).
	Name    string       `json:"name"`
	Columns []ColumnRule `json:"columns"`
	// MaxRowsPerPerson overrides the rule max_rows_per_person for counts
	// of this table's rows; 0 keeps it.
	MaxRowsPerPerson int `json:"max_rows_per_person,omitempty"`
}

// ColumnRule is one declared column and its role.
type ColumnRule struct {
	Name string     `json:"name"`
	Role ColumnRole `json:"role" schema:"enum=dimension|metric|time"`
	// Bounds are a metric's per-person bounds: each person's sum of the
	// column over their rows (in one group) is clamped to them.
	Bounds *[2]float64 `json:"bounds,omitempty"`
}

// ColumnRole is what a declared column may be used for.
type ColumnRole string

// Column roles.
const (
	// RoleDimension: grouped on and filtered on.
	RoleDimension ColumnRole = "dimension"
	// RoleMetric: summed and averaged, within the rule's bounds.
	RoleMetric ColumnRole = "metric"
	// RoleTime: a date or timestamp, filtered and grouped on as a dimension.
	RoleTime ColumnRole = "time"
)

// Parties a TableRule names.
const (
	PartyProposer = "proposer"
	PartyPartner  = "partner"
)

// TablesOf returns the tables the rules declare for a party ("proposer"
// or "partner"), in rule order.
func (r *Rules) TablesOf(party string) []TableRule {
	var out []TableRule
	for _, t := range r.Tables {
		if t.Party == party {
			out = append(out, t)
		}
	}
	return out
}

// Table returns the declared table of a party by name.
func (r *Rules) Table(party, name string) (TableRule, bool) {
	for _, t := range r.Tables {
		if t.Party == party && t.Name == name {
			return t, true
		}
	}
	return TableRule{}, false
}

// Noise is the noise a collaboration's releases add: the rule noise.
type Noise string

// Noises.
const (
	// NoiseLaplace needs no delta for the noise itself.
	NoiseLaplace Noise = "laplace"
	// NoiseGaussian spends the rule delta on every query.
	NoiseGaussian Noise = "gaussian"
)

// BudgetRefresh says when a partner's budgets start over: the rule
// budget_refresh. A refresh restores budgets, not privacy: what a person
// in the cohort is exposed to is everything spent over the
// collaboration's life.
type BudgetRefresh string

// Budget refreshes.
const (
	// RefreshNone: one budget for the collaboration's whole life.
	RefreshNone BudgetRefresh = "none"
	// RefreshMonthly: budgets start over on the first of each month (UTC).
	RefreshMonthly BudgetRefresh = "monthly"
)

// DefaultRules returns the rules a collaboration gets for every field its
// rules JSON leaves out.
func DefaultRules() Rules {
	return Rules{
		Purpose:              "measurement",
		IDType:               "email",
		Dimensions:           []string{},
		Metrics:              map[string][2]float64{},
		MinCohortUsers:       100,
		MinGroupUsers:        50,
		EpsilonBudget:        10,
		DeltaBudget:          1e-5,
		Delta:                1e-7,
		MinQueryEpsilon:      0.01,
		MaxQueryEpsilon:      1,
		DefaultQueryEpsilon:  0.09,
		BudgetRefresh:        RefreshNone,
		Noise:                NoiseLaplace,
		MaxGroupsContributed: 1,
		MaxRowsPerPerson:     30,
		MinUploadUsers:       1000,
		MatchEpsilon:         0.1,
		Queriers:             []string{},
		Tables:               []TableRule{},
		PublicGroups:         map[string]PublicValues{},
		Templates:            []Template{},
	}
}

// ParseRules reads rules JSON over the defaults: fields left out keep their
// default; unknown fields are an error (a typo must not silently weaken a
// rule).
func ParseRules(b []byte) (Rules, error) {
	r := DefaultRules()
	if len(bytes.TrimSpace(b)) == 0 {
		return r, nil
	}
	// A *JSONError says where, in lines and columns.
	if err := DecodeJSON(b, &r); err != nil {
		return r, fmt.Errorf("rules: %w", err)
	}
	return r, r.Validate()
}

// ColumnNamePattern is what a column name must look like wherever one is
// named: rules (dimensions, metrics, purposes), query columns and
// aliases. Lower-case ASCII only, so that no two spellings (case, Unicode
// lookalikes) name one column, and short enough for any SQL engine.
const ColumnNamePattern = `^[a-z][a-z0-9_]{0,62}$`

var columnName = regexp.MustCompile(ColumnNamePattern)

// IsColumnName reports whether s matches ColumnNamePattern.
func IsColumnName(s string) bool { return columnName.MatchString(s) }

// Validate reports the first rule that is out of range, naming it.
func (r *Rules) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("rules: %s: %s", field, fmt.Sprintf(format, args...))
	}
	if !columnName.MatchString(r.Purpose) {
		return bad("purpose", "%q must be lower case letters, digits and _", r.Purpose)
	}
	switch r.IDType {
	case "email", "phone", "maid":
	default:
		return bad("id_type", "%q is not one of email, phone, maid", r.IDType)
	}
	seen := map[string]bool{}
	for _, d := range r.Dimensions {
		if !columnName.MatchString(d) {
			return bad("dimensions", "%q is not a column name", d)
		}
		if seen[d] {
			return bad("dimensions", "%q is listed twice", d)
		}
		seen[d] = true
	}
	for m, b := range r.Metrics {
		if !columnName.MatchString(m) {
			return bad("metrics", "%q is not a column name", m)
		}
		if seen[m] {
			return bad("metrics", "%q is also a dimension", m)
		}
		if err := checkBounds(b); err != nil {
			return bad("metrics", "%q: %v", m, err)
		}
	}
	if err := r.validateTables(); err != nil {
		return err
	}
	if err := r.validatePublic(); err != nil {
		return err
	}
	seenT := map[string]bool{}
	for _, t := range r.Templates {
		if err := t.Validate(); err != nil {
			return err
		}
		if seenT[t.Name] {
			return fmt.Errorf("rules: templates: %s is declared twice", t.Name)
		}
		seenT[t.Name] = true
	}
	if r.MinCohortUsers < 1 {
		return bad("min_cohort_users", "must be at least 1, got %d", r.MinCohortUsers)
	}
	if r.MinGroupUsers < 0 {
		return bad("min_group_users", "must not be negative, got %d", r.MinGroupUsers)
	}
	if err := r.CheckUnits(); err != nil {
		return err
	}
	if !(r.EpsilonBudget > 0) {
		return bad("epsilon_budget", "must be positive, got %v", r.EpsilonBudget)
	}
	if !(r.DeltaBudget <= 1) {
		return bad("delta_budget", "must be in [0, 1], got %v", r.DeltaBudget)
	}
	if !(r.Delta < 1e-3) {
		return bad("delta", "must be in [0, 0.001), got %v", r.Delta)
	}
	if r.Delta > r.DeltaBudget {
		return bad("delta", "%v is more than the rule delta_budget (%v): no query needing a delta could ever run", r.Delta, r.DeltaBudget)
	}
	if !(r.MaxQueryEpsilon > 0) || r.MaxQueryEpsilon > r.EpsilonBudget {
		return bad("max_query_epsilon", "must be positive and at most epsilon_budget (%v), got %v", r.EpsilonBudget, r.MaxQueryEpsilon)
	}
	if r.MinQueryEpsilon < EpsilonUnit || r.MinQueryEpsilon > r.MaxQueryEpsilon {
		return bad("min_query_epsilon", "must be at least %v (one epsilon unit) and at most max_query_epsilon (%v), got %v", EpsilonUnit, r.MaxQueryEpsilon, r.MinQueryEpsilon)
	}
	if !(r.DefaultQueryEpsilon > 0) {
		return bad("default_query_epsilon", "must be positive, got %v", r.DefaultQueryEpsilon)
	}
	if r.BudgetRefresh != RefreshNone && r.BudgetRefresh != RefreshMonthly {
		return bad("budget_refresh", "%q is not none or monthly", r.BudgetRefresh)
	}
	if r.Noise != NoiseLaplace && r.Noise != NoiseGaussian {
		return bad("noise", "%q is not laplace or gaussian", r.Noise)
	}
	if r.Noise == NoiseGaussian && r.Delta <= 0 {
		return bad("noise", "gaussian noise needs delta > 0")
	}
	if r.MaxGroupsContributed < 1 {
		return bad("max_groups_contributed", "must be at least 1, got %d", r.MaxGroupsContributed)
	}
	if r.MaxRowsPerPerson < 1 {
		return bad("max_rows_per_person", "must be at least 1, got %d", r.MaxRowsPerPerson)
	}
	if r.MinUploadUsers < 1 {
		return bad("min_upload_users", "must be at least 1, got %d", r.MinUploadUsers)
	}
	if !(r.MatchEpsilon > 0) || r.MatchEpsilon > r.EpsilonBudget {
		return bad("match_epsilon", "must be positive and at most epsilon_budget, got %v", r.MatchEpsilon)
	}
	return nil
}

// MaxMetricBound bounds a metric's bounds: each lies in [-MaxMetricBound,
// MaxMetricBound]. Far above any one person's sum in practice, and small
// enough that whatever the data, every number a release computes stays
// finite: a sum over the most people DuckDB can count (2^63, about 9e18),
// a variance's squares over them (1e30 each), and the noise scaled by
// the groups a person may reach over the smallest epsilon. A bound near
// the float64 maximum let a SUM overflow to +Inf exactly when a person
// holding the maximum was in the cohort: a failure that told who was.
const MaxMetricBound = 1e15

// checkBounds checks a metric's bounds: finite, ordered, and within
// MaxMetricBound.
func checkBounds(b [2]float64) error {
	if math.IsNaN(b[0]) || math.IsNaN(b[1]) || math.IsInf(b[0], 0) || math.IsInf(b[1], 0) || b[0] > b[1] {
		return fmt.Errorf("bounds [%v, %v] must be finite with lower <= upper", b[0], b[1])
	}
	if math.Abs(b[0]) > MaxMetricBound || math.Abs(b[1]) > MaxMetricBound {
		return fmt.Errorf("bounds [%v, %v] must lie within [-%g, %g], so that sums over any cohort stay finite; measure the metric in larger units", b[0], b[1], MaxMetricBound, MaxMetricBound)
	}
	return nil
}

// CheckBounds reports the first metric whose bounds Validate refuses.
// Queries check it too, for rules stored before MaxMetricBound existed.
func (r *Rules) CheckBounds() error {
	for _, m := range slices.Sorted(maps.Keys(r.Metrics)) {
		if err := checkBounds(r.Metrics[m]); err != nil {
			return fmt.Errorf("rules: metrics: %q: %w", m, err)
		}
	}
	for _, t := range r.Tables {
		for _, c := range t.Columns {
			if c.Bounds != nil {
				if err := checkBounds(*c.Bounds); err != nil {
					return fmt.Errorf("rules: tables: %s's table %s: column %q: %w", t.Party, t.Name, c.Name, err)
				}
			}
		}
	}
	return nil
}

// MaxRows is the most one person adds to a count of the rows of a party's
// table: the table's own max_rows_per_person, else the rule's.
func (r *Rules) MaxRows(party, table string) int {
	if t, ok := r.Table(party, table); ok && t.MaxRowsPerPerson > 0 {
		return t.MaxRowsPerPerson
	}
	return max(r.MaxRowsPerPerson, 1)
}

// QueryEpsilon is the epsilon a query that names none spends: the rule
// default_query_epsilon, kept within min_query_epsilon and
// max_query_epsilon (rules stored before the default existed, or with a
// maximum under it, spend what they allow).
func (r *Rules) QueryEpsilon() float64 {
	e := r.DefaultQueryEpsilon
	if !(e > 0) || e > r.MaxQueryEpsilon {
		e = r.MaxQueryEpsilon
	}
	return max(e, r.MinQueryEpsilon)
}

// CheckUnits reports the first epsilon rule that is not a whole number of
// EpsilonUnit, or delta rule not a whole number of DeltaUnit (or
// negative, or not finite): the ledger counts units, and never rounds a
// rule silently. Queries check it too, for rules stored before it existed.
func (r *Rules) CheckUnits() error {
	for _, x := range []struct {
		name string
		v    float64
	}{{"epsilon_budget", r.EpsilonBudget}, {"max_query_epsilon", r.MaxQueryEpsilon}, {"min_query_epsilon", r.MinQueryEpsilon}, {"match_epsilon", r.MatchEpsilon},
		{"default_query_epsilon", r.DefaultQueryEpsilon}} {
		if _, err := EpsilonUnits(x.v); err != nil {
			return fmt.Errorf("rules: %s: %w", x.name, err)
		}
	}
	for _, x := range []struct {
		name string
		v    float64
	}{{"delta_budget", r.DeltaBudget}, {"delta", r.Delta}} {
		if _, err := DeltaUnits(x.v); err != nil {
			return fmt.Errorf("rules: %s: %w", x.name, err)
		}
	}
	return nil
}

// validateTables checks the declared tables: known parties, distinct
// table names per party, column names that are distinct across a party's
// tables (queries name a column without its table), roles known, and
// metric bounds finite and ordered.
func (r *Rules) validateTables() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("rules: tables: %s", fmt.Sprintf(format, args...))
	}
	tables := map[string]bool{}
	cols := map[string]string{} // party/column -> table
	for i, t := range r.Tables {
		if t.Party != PartyProposer && t.Party != PartyPartner {
			return bad("table %d: party %q is not proposer or partner", i+1, t.Party)
		}
		if !columnName.MatchString(t.Name) {
			return bad("table %d: name %q must be lower case letters, digits and _", i+1, t.Name)
		}
		if tables[t.Party+"/"+t.Name] {
			return bad("the %s declares table %s twice", t.Party, t.Name)
		}
		tables[t.Party+"/"+t.Name] = true
		if len(t.Columns) == 0 {
			return bad("%s's table %s declares no columns", t.Party, t.Name)
		}
		if t.MaxRowsPerPerson < 0 {
			return bad("%s's table %s: max_rows_per_person must not be negative", t.Party, t.Name)
		}
		for _, c := range t.Columns {
			where := fmt.Sprintf("%s's table %s: column %q", t.Party, t.Name, c.Name)
			if !columnName.MatchString(c.Name) {
				return bad("%s is not a column name", where)
			}
			if c.Name == "pid" || c.Name == "consent" {
				return bad("%s is implicit in every table; declare only the attributes", where)
			}
			if other, ok := cols[t.Party+"/"+c.Name]; ok {
				return bad("%s is also in table %s; queries name columns without their table, so name them apart", where, other)
			}
			cols[t.Party+"/"+c.Name] = t.Name
			switch c.Role {
			case RoleDimension, RoleTime:
				if c.Bounds != nil {
					return bad("%s: only a metric has bounds", where)
				}
			case RoleMetric:
				if c.Bounds == nil {
					return bad("%s: a metric needs bounds [lower, upper] on each person's sum", where)
				}
				if err := checkBounds(*c.Bounds); err != nil {
					return bad("%s: %v", where, err)
				}
			default:
				return bad("%s: role %q is not dimension, metric or time", where, c.Role)
			}
		}
	}
	return nil
}

// validatePublic checks the public groups: column names, one kind of
// values each, a list or a date range (not both), and at most
// MaxPublicValues values.
func (r *Rules) validatePublic() error {
	for col, p := range r.PublicGroups {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("rules: public_groups: %s: %s", col, fmt.Sprintf(format, args...))
		}
		if !columnName.MatchString(col) {
			return fmt.Errorf("rules: public_groups: %q is not a column name", col)
		}
		if (p.Dates == nil) == (len(p.Values) == 0) {
			return bad("give either values (a list) or dates (from, to, step_days)")
		}
		if p.Dates != nil {
			from, err1 := time.Parse(time.DateOnly, p.Dates.From)
			to, err2 := time.Parse(time.DateOnly, p.Dates.To)
			if err1 != nil || err2 != nil {
				return bad("dates from %q and to %q must be yyyy-mm-dd", p.Dates.From, p.Dates.To)
			}
			if p.Dates.StepDays < 1 || to.Before(from) {
				return bad("dates need from <= to and step_days >= 1")
			}
		}
		list := p.List()
		if len(list) > MaxPublicValues {
			return bad("more than %d values", MaxPublicValues)
		}
		kind := ""
		seen := map[string]bool{}
		for _, v := range list {
			var k string
			switch x := v.(type) {
			case string:
				k = "string"
			case float64:
				k = "number"
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return bad("value %v is not finite", x)
				}
			case bool:
				k = "bool"
			default:
				return bad("value %v is not a string, number or boolean", v)
			}
			if kind != "" && k != kind {
				return bad("values mix %ss and %ss", kind, k)
			}
			kind = k
			key := fmt.Sprint(v)
			if seen[key] {
				return bad("value %v is listed twice", v)
			}
			seen[key] = true
		}
	}
	return nil
}
