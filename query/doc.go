// Package query turns an analyst's SQL into an answer that is safe to
// release: it parses the text with a real SQL parser, accepts only the
// subset of docs/design.md ("Queries"), builds a typed plan, checks it
// against the collaboration's rules, and generates the SQL that DuckDB runs.
// The analyst's text is never executed.
//
// The query engine knows nothing of HTTP. It reads the current cohort from
// package cohort, calls package dp for noise, partition selection and
// thresholds, and package ledger for the budget.
//
// What callers may rely on:
//   - Service.Run returns an answer only once its debit, its cached copy
//     and its audit entry have committed together; otherwise nothing was
//     charged.
//   - Every refusal is an *errs.Error of a refusal kind (errs.IsRefusal),
//     checked in a fixed order that does not depend on the data, and
//     logged as query.refused; an audit entry that cannot be written is
//     logged and counted, and the refusal still reaches the caller.
//   - Parse and Plan.Check run nothing the analyst wrote and read no
//     table: Parse asks DuckDB's parser for the syntax tree only.
//
// # What an answer may reveal
//
// Only its rows and intervals depend on the data, and they are
// differentially private: each person's contribution is bounded inside
// DuckDB (their own rows summed per side, clamped to the rule bounds,
// groups capped at max_groups_contributed) before noise is added. The
// rest of an answer (epsilon split, budgets left, the collaboration's
// total, cohort version, cached) and every refusal depend only on the
// request, the rules, the budgets and the noisy size released at match
// time; refusals are checked in a fixed order (Service.Run), and a data
// error says only that the query failed. Service.Run releases an answer
// only once its debit, its cached copy and its audit entry (query.run)
// have committed together. The same question (same canonical plan,
// epsilon and cohort version) gets the stored answer at no cost, and its
// read is logged too (query.cached, with nothing of the answer), so the
// log counts every read.
//
// # Front end
//
// Parse hands the text to DuckDB's own parser as a bound parameter
// (SELECT json_serialize_sql(?::VARCHAR)) and walks the JSON syntax tree it
// returns. It fails closed: every object must have exactly the keys known
// for its kind, every key it does not use must hold its neutral value, and
// any other node, key or value is a refusal, never ignored. Statements
// other than SELECT (COPY, ATTACH, PRAGMA, SET, INSERT, ...) are refused
// because the serializer itself refuses them. The subset is stated in
// docs/design.md ("Queries"); the nodes it accepts, in detail:
//
//   - Aggregates: COUNT(*) (distinct people), COUNT(column) (the rows of
//     the column's table with a value, at most max_rows_per_person a
//     person), SUM(metric), AVG(metric); an optional alias matching
//     ^[a-z][a-z0-9_]{0,62}$, else the default count, count_<column>,
//     sum_<metric>, avg_<metric>. At least one aggregate; output names must
//     be distinct. DISTINCT, FILTER, ORDER BY inside an aggregate, other
//     aggregates (MIN, MAX, ...) are refused.
//   - A per-person step: FROM (SELECT COUNT(column) AS n FROM cohort
//     [WHERE ...] GROUP BY person), selecting n and COUNT(*) grouped by n;
//     nothing else in the outer query (no WHERE, no other aggregate).
//   - Dimensions: the selected non-aggregate columns and the GROUP BY
//     columns must be the same set; the plan keeps select order. Aliases
//     on dimensions are refused.
//   - Predicate: a column compared with literals by = <> != < <= > >=,
//     IN, NOT IN, BETWEEN, IS [NOT] NULL, combined with AND, OR, NOT. A
//     literal on the left (1 < age) is turned around. Literals are
//     strings, 64-bit integers, decimals and doubles (both become float
//     literals), true/false, and DATE 'yyyy-mm-dd' (a valid date). Two
//     dates compare only as a time window, date_diff('day', first, later)
//     BETWEEN n AND m with whole-day bounds. NULL, casts (other than the
//     DATE and boolean literal syntax), other functions, arithmetic,
//     LIKE, subqueries, parameters and other column-to-column comparisons
//     are refused.
//   - Columns are plain names: no table or schema qualifier. Quoted and
//     unquoted names are the same name, with ASCII letters folded to lower
//     case (as DuckDB does); the folded name must match
//     ^[a-z][a-z0-9_]{0,62}$, so names with other characters, Unicode
//     lookalikes included, are refused. uid, rowid and any name starting
//     with _ are hidden (code hidden_column) whatever the rules say.
//   - FROM is exactly cohort, any case, with no schema, catalog, alias or
//     sample (or the per-person step above). Joins (explicit and comma),
//     other subqueries, table functions,
//     file paths, CTEs, set operations, window functions, GROUP BY ALL,
//     ROLLUP/CUBE/GROUPING SETS, GROUP BY position, HAVING, QUALIFY,
//     ORDER BY, LIMIT, OFFSET, DISTINCT and multiple statements are
//     refused, each with its own message.
//   - Limits (code limit): MaxTextBytes of text, MaxDimensions,
//     MaxAggregates, MaxDepth levels of predicate, MaxInValues per IN list.
//     DuckDB's own expression depth limit (1000) refuses deeper texts as a
//     syntax error.
//
// The parser normalises what does not change the question: whitespace,
// comments, keyword and identifier case, a trailing semicolon, FROM-first
// syntax, redundant parentheses, nested AND (or OR) chains, NOT folded into
// the operator it negates (NOT a = 1 is a <> 1, NOT a IS NULL is a IS NOT
// NULL, NOT NOT p is p), default aliases. Plan.Canonical renders the result
// deterministically; the order of select items, AND/OR children and IN
// values is kept. Canonical text is itself in the subset and parses back
// to the same canonical text; Plan.Hash is its SHA-256, the cache key with
// the partner and the cohort version. A few clauses that the serializer
// drops without trace and that cannot change the plan (a named WINDOW
// definition no function uses) are accepted.
//
// Refusals are *errs.Error{Kind, Message, Position} (internal/errs, the
// server's one error model): Kind is errs.Syntax, Unsupported, Limit,
// NotAllowed or HiddenColumn; Position is a byte offset in the text, or
// -1; the message names the construct and its position ("JOIN at
// position 28; queries read the single table cohort"). Parse returns other errors only for infrastructure
// failures (database, context).
//
// Plan.Check applies the collaboration's rules: GROUP BY and WHERE columns
// must be dimensions, SUM/AVG columns metrics; refusals (not_allowed) name
// the column and list the allowed ones. Check also verifies the plan's
// structure, so a plan built by hand gets the same guarantees.
//
// Plan.WhereSQL and Plan.GroupSQL generate the SQL fragments that run:
// double-quoted column names, ? placeholders with their arguments (DATE
// literals as CAST(? AS DATE)) and fixed keywords; never analyst text.
package query
