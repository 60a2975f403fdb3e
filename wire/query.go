package wire

import "time"

// Request is an analyst's question.
type Request struct {
	// SQL is the question; with Template it is left empty.
	SQL string `json:"sql" schema:"optional"`
	// Template names a template (the rules' or a built-in) to ask
	// instead, with Params its parameters' values as text.
	Template string            `json:"template,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	// Epsilon is the budget this query may spend; 0 means the rule
	// default_query_epsilon (Rules.QueryEpsilon).
	Epsilon float64 `json:"epsilon" schema:"optional"`
	// CachedOnly asks for the stored answer alone: the same question at
	// the same epsilon on the current cohort, free. Without one it is
	// not_stored (409), which spends and logs nothing, never a new
	// answer, so reopening a past answer cannot charge.
	CachedOnly bool `json:"cached_only,omitempty"`
}

// Preview answers POST .../queries/preview: what a question would spend
// and how precise its answer would be, worked out from the question, the
// rules and the budgets, never from the data; nothing is spent or logged.
type Preview struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
	// EpsilonSplit is how the epsilon would divide, as an answer states it.
	EpsilonSplit map[string]float64 `json:"epsilon_split"`
	// Cached: the same question was answered before on this cohort
	// version; asking it again returns that answer and spends nothing.
	Cached bool `json:"cached"`
	// Columns are the answer's aggregates with the expected half-width of
	// their 95% intervals: whatever the data for counts and sums; for an
	// average, for a group of GroupUsers people (its width shrinks with
	// the group's size).
	Columns    []PreviewColumn `json:"columns"`
	GroupUsers int64           `json:"group_users"`
	// BudgetRemaining and DeltaRemaining are the caller's budgets now.
	BudgetRemaining float64 `json:"budget_remaining"`
	DeltaRemaining  float64 `json:"delta_remaining"`
	// Refusal is what asking the question would answer instead, when it
	// would be refused (epsilon out of range, no cohort, budget short, a
	// collaboration not active, ...); left out when it would be answered.
	Refusal *Error `json:"refusal,omitempty"`
}

// PreviewColumn is one aggregate of a preview.
type PreviewColumn struct {
	Name string `json:"name"`
	Kind string `json:"kind" schema:"enum=count|rows|sum|avg|median|quantile|variance|stddev"`
	// HalfWidth is null where the library states no interval (medians,
	// quantiles, variances, standard deviations).
	HalfWidth *float64 `json:"half_width"`
}

// Column is one column of an answer.
type Column struct {
	Name string `json:"name"`
	// Kind is "dimension", or the aggregate: count (people), rows
	// (COUNT(column)), sum, avg, median, quantile, variance, stddev.
	Kind string `json:"kind" schema:"enum=dimension|count|rows|sum|avg|median|quantile|variance|stddev"`
}

// Interval is a 95% confidence interval.
type Interval struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
}

// Answer is a released answer.
type Answer struct {
	Columns []Column `json:"columns"`
	Rows    [][]any  `json:"rows"`
	// Intervals holds, per row and column, the 95% confidence interval of
	// an aggregate (null for dimensions).
	Intervals    [][]*Interval      `json:"intervals"`
	Epsilon      float64            `json:"epsilon"`
	Delta        float64            `json:"delta"`
	EpsilonSplit map[string]float64 `json:"epsilon_split"`
	Noise        string             `json:"noise" schema:"enum=laplace|gaussian"`
	// BudgetRemaining and DeltaRemaining are what the partner has left of
	// the rules epsilon_budget and delta_budget in this period.
	BudgetRemaining float64 `json:"budget_remaining"`
	DeltaRemaining  float64 `json:"delta_remaining"`
	// CollaborationEpsilonSpent and CollaborationDeltaSpent are what the
	// collaboration has spent in all, by both partners and matches
	// included, over its whole life: the privacy loss of a person in the
	// cohort so far.
	CollaborationEpsilonSpent float64 `json:"collaboration_epsilon_spent"`
	CollaborationDeltaSpent   float64 `json:"collaboration_delta_spent"`
	Cached                    bool    `json:"cached"`
	PlanHash                  string  `json:"plan_hash"`
	CohortVersion             string  `json:"cohort_version"`
}

// Budget is a partner's budget in a collaboration.
type Budget struct {
	PartnerID      string  `json:"partner_id"`
	PartnerName    string  `json:"partner_name"`
	Budget         float64 `json:"epsilon_budget"`
	Spent          float64 `json:"epsilon_spent"`
	Remaining      float64 `json:"epsilon_remaining"`
	DeltaBudget    float64 `json:"delta_budget"`
	DeltaSpent     float64 `json:"delta_spent"`
	DeltaRemaining float64 `json:"delta_remaining"`
	Refresh        string  `json:"budget_refresh" schema:"enum=none|monthly"`
	// QueryEpsilon is what a question spends when it names no epsilon;
	// QuestionsLeft is how many such questions the epsilon left pays
	// for, GroupedQuestionsLeft how many of them may be grouped (each
	// grouped one also spends the rule delta), and Summary says both in
	// words.
	QueryEpsilon         float64   `json:"query_epsilon"`
	QuestionsLeft        int64     `json:"questions_left"`
	GroupedQuestionsLeft int64     `json:"grouped_questions_left"`
	Summary              string    `json:"summary"`
	PeriodStart          time.Time `json:"period_start,omitempty"`
	// NextRefresh is when the budgets start over; left out when they
	// never do (budget_refresh none).
	NextRefresh *time.Time `json:"next_refresh,omitempty"`
}

// BudgetStatus is the partners' budgets in a collaboration, and what the
// collaboration has spent in all.
type BudgetStatus struct {
	Budgets []Budget `json:"budgets"`
	// CollaborationEpsilonSpent and CollaborationDeltaSpent are the
	// collaboration's total spend, by all partners, matches included, over
	// its whole life.
	CollaborationEpsilonSpent float64 `json:"collaboration_epsilon_spent"`
	CollaborationDeltaSpent   float64 `json:"collaboration_delta_spent"`
}

// QueryHistory answers GET .../queries: the calling analyst key's own
// questions in the collaboration, newest first. It is the key's own
// record (from the audit log), never another key's.
type QueryHistory struct {
	Queries []QueryRecord `json:"queries"`
}

// QueryRecord is one question an analyst key asked.
type QueryRecord struct {
	AuditSeq int64     `json:"audit_seq"`
	At       time.Time `json:"at"`
	SQL      string    `json:"sql"`
	// Outcome is answered (released and charged), cached (the stored
	// answer, free) or refused.
	Outcome string  `json:"outcome" schema:"enum=answered|cached|refused"`
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
	// Rows is how many rows an answered query released.
	Rows int `json:"rows,omitempty"`
	// Code and Reason say why a refused query was refused.
	Code   ErrorCode `json:"code,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// Query outcomes.
const (
	OutcomeAnswered = "answered"
	OutcomeCached   = "cached"
	OutcomeRefused  = "refused"
)

// QuerySubset is the SQL subset analysts write, as the CLI's help, the
// OpenAPI document and docs/design.md ("Queries") state it; package
// query's documentation lists the exact nodes it accepts.
const QuerySubset = `SELECT [dimension, ...] COUNT(*) | COUNT(column) | SUM(metric) | AVG(metric) | MEDIAN(metric) | QUANTILE_CONT(metric, rank) | VARIANCE(metric) | STDDEV(metric) [AS name], ...
FROM cohort [WHERE predicate on dimensions] [GROUP BY dimension, ...]
SELECT n, COUNT(*) FROM (SELECT COUNT(column) AS n FROM cohort [WHERE ...] GROUP BY person) GROUP BY n`
