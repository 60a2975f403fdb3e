package bench

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/marcboeker/go-duckdb"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// The soak's invariants are checked on a snapshot of what the server
// holds (read from its database while it is down, or from its API while
// it serves) against what the soak's clients were told. The checks are
// pure functions of a snapshot, so a test can break each one on purpose
// and see it caught.

// seen is what the soak's clients were told with a 2xx: every answer,
// match, upload and receipt. Each must be in the log the server keeps.
type seen struct {
	Answers  []seenAnswer
	Matches  []seenRef // match IDs the clients saw done
	Uploads  []seenRef // audience IDs of uploads answered 200
	Receipts []seenRef // deletion receipt IDs
}

// seenAnswer is one query answer a client received.
type seenAnswer struct {
	Collab, Actor, PlanHash, Version string
	Epsilon                          float64
	Cached                           bool
	// AnswerSHA256 is the hash the server logs with a released answer
	// (query.run answer_sha256), recomputed from the body received.
	AnswerSHA256 string
}

type seenRef struct{ Collab, ID string }

// ledgerRow is one row of budget_ledger.
type ledgerRow struct {
	Collab, Partner, Kind, Ref string
	EpsilonUnits, DeltaUnits   int64
}

// snapshot is what the server holds, as the checks need it.
type snapshot struct {
	// Entries are the audit log, in order (with details and private
	// parts for the operator).
	Entries []audit.Entry
	// Ledger is every charge; nil when read through the API (which gives
	// only its sums, in Spent).
	Ledger []ledgerRow
	// Spent is each collaboration's spend by partner, in units, as the
	// API's budget route states it (nil when read from the database).
	Spent map[string]map[string]wire.Amount
	// Collabs are the collaborations: members and budgets.
	Collabs map[string]collabInfo
	// Tables is every table's row count, by name (database snapshots
	// only), and Audiences, Matches the records that point to tables.
	Tables    map[string]int64
	Audiences []audienceRec
	Matches   []matchRec
}

type collabInfo struct {
	Members []string
	Budget  wire.Amount // per partner, budget_refresh none
}

type audienceRec struct {
	ID, Collab, Table string
	Rows              int64
	Deleted           bool
}

type matchRec struct {
	ID, State, Cohort string
	CohortSize        int64
	Links             []string // link tables recorded (NULL ones left out)
}

// checkLog checks the ledger against the log: every charge has its
// entry and every entry that charges has its charge, no budget is
// overspent, and every answer, match, upload and receipt a client was
// given is in the log. It returns one message per failure.
func checkLog(s snapshot, told seen) []string {
	var fail []string
	failf := func(format string, args ...any) { fail = append(fail, fmt.Sprintf(format, args...)) }

	// What the log says was charged: a query.run charges its partner, a
	// match.complete both partners of the collaboration.
	type charge struct {
		Collab, Partner, Kind, Ref string
		Eps, Delta                 int64
	}
	logged := map[charge]int{}
	runs := map[string]int{}   // actor, collab, plan, version, epsilon, answer hash
	cached := map[string]int{} // actor, collab, plan, version, epsilon
	ids := map[string]bool{}   // match, audience and receipt IDs logged
	for _, e := range s.Entries {
		if e.Redacted {
			continue
		}
		var d map[string]any
		if err := json.Unmarshal(e.Details, &d); err != nil {
			failf("audit entry %d: details: %v", e.Seq, err)
			continue
		}
		str := func(k string) string { v, _ := d[k].(string); return v }
		num := func(k string) float64 { v, _ := d[k].(float64); return v }
		switch audit.Action(e.Action) {
		case audit.QueryRun:
			eu, err1 := wire.EpsilonUnits(num("epsilon"))
			du, err2 := wire.DeltaUnits(num("delta"))
			if err1 != nil || err2 != nil {
				failf("audit entry %d: query.run charge not in whole units: %v %v", e.Seq, err1, err2)
			}
			logged[charge{e.CollabID, e.PartnerID, "query", str("plan_hash"), eu, du}]++
			runs[answerKey(e.Actor, e.CollabID, str("plan_hash"), str("cohort_version"), num("epsilon"), str("answer_sha256"))]++
		case audit.QueryCached:
			cached[answerKey(e.Actor, e.CollabID, str("plan_hash"), str("cohort_version"), num("epsilon"), "")]++
		case audit.MatchComplete:
			eu, err := wire.EpsilonUnits(num("epsilon"))
			if err != nil {
				failf("audit entry %d: match.complete charge not in whole units: %v", e.Seq, err)
			}
			co, ok := s.Collabs[e.CollabID]
			if !ok {
				failf("audit entry %d: match.complete of unknown collaboration %s", e.Seq, e.CollabID)
			}
			for _, p := range co.Members {
				logged[charge{e.CollabID, p, "match", str("match_id"), eu, 0}]++
			}
			ids[str("match_id")] = true
		case audit.AudienceUpload:
			ids[str("audience_id")] = true
		case audit.DeletionIdentifiers, audit.DeletionOptOut, audit.DeletionAudience, audit.DeletionCollaboration:
			ids[str("receipt_id")] = true
		}
	}

	if s.Ledger != nil {
		charged := map[charge]int{}
		for _, r := range s.Ledger {
			charged[charge{r.Collab, r.Partner, r.Kind, r.Ref, r.EpsilonUnits, r.DeltaUnits}]++
		}
		for _, c := range sortedKeys(logged) {
			if n := charged[c]; n < logged[c] {
				failf("lost debit: %d %s charge(s) of epsilon %v, delta %v to partner %s in collaboration %s (ref %s) logged, %d in the ledger",
					logged[c], c.Kind, wire.EpsilonOf(c.Eps), wire.DeltaOf(c.Delta), c.Partner, c.Collab, c.Ref, n)
			}
		}
		for _, c := range sortedKeys(charged) {
			if n := logged[c]; n < charged[c] {
				failf("unlogged debit: %d %s charge(s) of epsilon %v, delta %v to partner %s in collaboration %s (ref %s) in the ledger, %d logged",
					charged[c], c.Kind, wire.EpsilonOf(c.Eps), wire.DeltaOf(c.Delta), c.Partner, c.Collab, c.Ref, n)
			}
		}
	}

	// Budgets: what each partner spent (the ledger's sum, or the API's)
	// within its budget, and never below zero.
	spent := map[string]map[string]wire.Amount{}
	if s.Ledger != nil {
		for _, r := range s.Ledger {
			if spent[r.Collab] == nil {
				spent[r.Collab] = map[string]wire.Amount{}
			}
			a := spent[r.Collab][r.Partner]
			spent[r.Collab][r.Partner] = wire.Amount{EpsilonUnits: a.EpsilonUnits + r.EpsilonUnits, DeltaUnits: a.DeltaUnits + r.DeltaUnits}
			if r.EpsilonUnits < 0 || r.DeltaUnits < 0 {
				failf("negative charge in the ledger: %+v", r)
			}
		}
	} else {
		spent = s.Spent
	}
	for _, cid := range sortedKeys(spent) {
		co, ok := s.Collabs[cid]
		if !ok {
			failf("charges to unknown collaboration %s", cid)
			continue
		}
		for _, p := range sortedKeys(spent[cid]) {
			a := spent[cid][p]
			if !slices.Contains(co.Members, p) {
				failf("collaboration %s: partner %s, not a member, was charged", cid, p)
			}
			if a.EpsilonUnits < 0 || a.DeltaUnits < 0 {
				failf("collaboration %s: partner %s has spent a negative amount (%v, %v)", cid, p, a.Epsilon(), a.Delta())
			}
			if a.EpsilonUnits > co.Budget.EpsilonUnits || a.DeltaUnits > co.Budget.DeltaUnits {
				failf("overspend: collaboration %s: partner %s spent epsilon %v of %v, delta %v of %v",
					cid, p, a.Epsilon(), co.Budget.Epsilon(), a.Delta(), co.Budget.Delta())
			}
		}
	}
	// The API's sums equal the log's (the database's ledger rows are
	// matched one by one above).
	if s.Ledger == nil && s.Spent != nil {
		sums := map[string]map[string]wire.Amount{}
		for c, n := range logged {
			if sums[c.Collab] == nil {
				sums[c.Collab] = map[string]wire.Amount{}
			}
			a := sums[c.Collab][c.Partner]
			sums[c.Collab][c.Partner] = wire.Amount{EpsilonUnits: a.EpsilonUnits + int64(n)*c.Eps, DeltaUnits: a.DeltaUnits + int64(n)*c.Delta}
		}
		for _, cid := range sortedKeys(s.Spent) {
			for _, p := range sortedKeys(s.Spent[cid]) {
				if got, want := s.Spent[cid][p], sums[cid][p]; got != want {
					failf("ledger differs from the log: collaboration %s: partner %s spent epsilon %v, delta %v by the budget route; the log's charges add up to %v, %v",
						cid, p, got.Epsilon(), got.Delta(), want.Epsilon(), want.Delta())
				}
			}
		}
	}

	// Everything a client was given is in the log.
	gotRuns, gotCached := map[string]int{}, map[string]int{}
	for _, a := range told.Answers {
		if a.Cached {
			gotCached[answerKey(a.Actor, a.Collab, a.PlanHash, a.Version, a.Epsilon, "")]++
		} else {
			gotRuns[answerKey(a.Actor, a.Collab, a.PlanHash, a.Version, a.Epsilon, a.AnswerSHA256)]++
		}
	}
	for _, k := range sortedKeys(gotRuns) {
		if runs[k] < gotRuns[k] {
			failf("answer not in the log: %d answer(s) released to a client (%s), %d query.run entries", gotRuns[k], k, runs[k])
		}
	}
	for _, k := range sortedKeys(gotCached) {
		if cached[k] < gotCached[k] {
			failf("cached answer not in the log: %d read(s) by a client (%s), %d query.cached entries", gotCached[k], k, cached[k])
		}
	}
	for _, group := range []struct {
		what string
		refs []seenRef
	}{{"match", told.Matches}, {"upload", told.Uploads}, {"deletion receipt", told.Receipts}} {
		for _, r := range group.refs {
			if !ids[r.ID] {
				failf("%s %s in collaboration %s was answered 200 but is not in the log", group.what, r.ID, r.Collab)
			}
		}
	}
	return fail
}

func answerKey(actor, collab, plan, version string, eps float64, sha string) string {
	return fmt.Sprintf("key %s, collaboration %s, plan %.12s, cohort version %s, epsilon %v, answer %.12s", actor, collab, plan, version, eps, sha)
}

// liveTables are the tables the records point to, as cohort.Cleanup
// counts them: an audience not deleted, a match waiting or done.
func liveTables(s snapshot) map[string]bool {
	live := map[string]bool{}
	for _, a := range s.Audiences {
		if !a.Deleted {
			live[a.Table] = true
		}
	}
	for _, m := range s.Matches {
		if m.State != string(wire.MatchWaiting) && m.State != string(wire.MatchDone) {
			continue
		}
		for _, t := range []string{"mpts_" + m.ID + "_a", "mpts_" + m.ID + "_b", "mtok_" + m.ID + "_a", "mtok_" + m.ID + "_b",
			"cpeople_" + m.ID, "cohort_" + m.ID, m.Cohort} {
			live[t] = true
		}
		for _, l := range m.Links {
			live[l] = true
		}
	}
	return live
}

// dataPrefixes start every table of people's data (internal/cohort's
// tables.go): a table with one of them that no record points to is an
// orphan.
var dataPrefixes = []string{"aud_", "mpts_", "mtok_", "cpeople_", "clink_", "cohort_m_"}

// checkTables checks a database snapshot's tables against its records:
// every live audience's table holds exactly the rows its record states
// (no partial upload, no partial deletion), every done match's person map
// and linked tables exist, with the exact cohort size. It returns the
// failures and the orphans: tables of people's data no record points to.
// Orphans are expected right after a kill (an upload or build in flight)
// and must be gone once the server has started again.
func checkTables(s snapshot) (fail, orphans []string) {
	failf := func(format string, args ...any) { fail = append(fail, fmt.Sprintf(format, args...)) }
	for _, a := range s.Audiences {
		if a.Deleted {
			if _, ok := s.Tables[a.Table]; ok {
				failf("audience %s is deleted but its table %s is still there", a.ID, a.Table)
			}
			continue
		}
		n, ok := s.Tables[a.Table]
		switch {
		case !ok:
			failf("audience %s (collaboration %s) is listed but its table %s is missing", a.ID, a.Collab, a.Table)
		case n != a.Rows:
			failf("partial audience: %s (collaboration %s) records %d rows, its table holds %d", a.ID, a.Collab, a.Rows, n)
		}
	}
	for _, m := range s.Matches {
		if m.State != string(wire.MatchDone) {
			continue
		}
		n, ok := s.Tables[m.Cohort]
		switch {
		case m.Cohort == "" || !ok:
			failf("match %s is done but its person map %q is missing", m.ID, m.Cohort)
		case n != m.CohortSize:
			failf("partial cohort: match %s records %d people, its person map holds %d", m.ID, m.CohortSize, n)
		}
		if len(m.Links) == 0 {
			failf("match %s is done but links no table", m.ID)
		}
		for _, l := range m.Links {
			if _, ok := s.Tables[l]; !ok {
				failf("match %s is done but its linked table %s is missing", m.ID, l)
			}
		}
	}
	live := liveTables(s)
	for _, t := range sortedKeys(s.Tables) {
		if live[t] {
			continue
		}
		for _, p := range dataPrefixes {
			if strings.HasPrefix(t, p) {
				orphans = append(orphans, t)
				break
			}
		}
	}
	return fail, orphans
}

// readSnapshot reads what the checks need from a stopped server's
// database, read only: it changes nothing the server will find (its WAL
// is replayed in memory, not checkpointed).
func readSnapshot(ctx context.Context, dir string) (snapshot, error) {
	var s snapshot
	// A small pool: the soak reads a few tables' counts, and must not
	// take memory from the server it measures (DuckDB's default is 80%
	// of the machine's).
	conn, err := duckdb.NewConnector(filepath.Join(dir, store.FileName)+"?access_mode=READ_ONLY&memory_limit=256MB&threads=1", nil)
	if err != nil {
		return s, fmt.Errorf("opening the database read only: %w", err)
	}
	db := sql.OpenDB(conn)
	defer func() { db.Close(); conn.Close() }()
	db.SetMaxOpenConns(1)

	rows, err := db.QueryContext(ctx, `SELECT seq, actor, partner_id, collab_id, action, CAST(details AS VARCHAR) FROM audit_log ORDER BY seq`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var e audit.Entry
		var d string
		if err := rows.Scan(&e.Seq, &e.Actor, &e.PartnerID, &e.CollabID, &e.Action, &d); err != nil {
			rows.Close()
			return s, err
		}
		e.Details = json.RawMessage(d)
		s.Entries = append(s.Entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}

	rows, err = db.QueryContext(ctx, `SELECT collab_id, partner_id, kind, ref, epsilon_units, delta_units FROM budget_ledger`)
	if err != nil {
		return s, err
	}
	s.Ledger = []ledgerRow{}
	for rows.Next() {
		var r ledgerRow
		if err := rows.Scan(&r.Collab, &r.Partner, &r.Kind, &r.Ref, &r.EpsilonUnits, &r.DeltaUnits); err != nil {
			rows.Close()
			return s, err
		}
		s.Ledger = append(s.Ledger, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}

	s.Collabs = map[string]collabInfo{}
	rows, err = db.QueryContext(ctx, `SELECT id, proposer, partner, CAST(rules AS VARCHAR) FROM collaborations`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var id, a, b, rj string
		if err := rows.Scan(&id, &a, &b, &rj); err != nil {
			rows.Close()
			return s, err
		}
		var r wire.Rules
		if err := json.Unmarshal([]byte(rj), &r); err != nil {
			rows.Close()
			return s, fmt.Errorf("collaboration %s: rules: %w", id, err)
		}
		s.Collabs[id] = collabInfo{Members: []string{a, b}, Budget: budgetUnits(r)}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}

	rows, err = db.QueryContext(ctx, `SELECT id, collab_id, table_name, rows, deleted_at IS NOT NULL FROM audiences`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var a audienceRec
		if err := rows.Scan(&a.ID, &a.Collab, &a.Table, &a.Rows, &a.Deleted); err != nil {
			rows.Close()
			return s, err
		}
		s.Audiences = append(s.Audiences, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}

	rows, err = db.QueryContext(ctx, `SELECT m.id, m.state, coalesce(m.cohort_table, ''), coalesce(m.cohort_size, 0),
		coalesce(string_agg(t.link_table, ',' ORDER BY t.link_table), '')
		FROM matches m LEFT JOIN match_tables t ON t.match_id = m.id GROUP BY ALL`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var m matchRec
		var links string
		if err := rows.Scan(&m.ID, &m.State, &m.Cohort, &m.CohortSize, &links); err != nil {
			rows.Close()
			return s, err
		}
		if links != "" {
			m.Links = strings.Split(links, ",")
		}
		s.Matches = append(s.Matches, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}

	names, err := store.QueryStrings(ctx, db, `SELECT table_name FROM duckdb_tables() WHERE NOT temporary`)
	if err != nil {
		return s, err
	}
	s.Tables = map[string]int64{}
	for _, t := range names {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+store.QuoteIdent(t)).Scan(&n); err != nil {
			return s, fmt.Errorf("counting %s: %w", t, err)
		}
		s.Tables[t] = n
	}
	return s, nil
}

// budgetUnits is a collaboration's budget per partner, in units; a
// budget that is not whole units (refused by the rules) counts as 0, so
// any charge shows as overspent.
func budgetUnits(r wire.Rules) wire.Amount {
	e, err1 := wire.EpsilonUnits(r.EpsilonBudget)
	d, err2 := wire.DeltaUnits(r.DeltaBudget)
	if err1 != nil || err2 != nil {
		return wire.Amount{}
	}
	return wire.Amount{EpsilonUnits: e, DeltaUnits: d}
}

// answerSHA256 recomputes the hash the server logs with a released
// answer (query.run answer_sha256) from the JSON body a client received:
// the server hashes the answer before it adds the budgets' state and the
// cached flag, so those are zeroed; numbers keep their exact text.
func answerSHA256(body []byte) (wire.Answer, string, error) {
	var a wire.Answer
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return a, "", err
	}
	h := a
	h.BudgetRemaining, h.DeltaRemaining, h.CollaborationEpsilonSpent, h.CollaborationDeltaSpent, h.Cached = 0, 0, 0, 0, false
	b, err := json.Marshal(h)
	if err != nil {
		return a, "", err
	}
	sum := sha256.Sum256(b)
	return a, hex.EncodeToString(sum[:]), nil
}

// spentFromBudget reads the API's budget route into units.
func spentFromBudget(st wire.BudgetStatus) (map[string]wire.Amount, error) {
	out := map[string]wire.Amount{}
	for _, b := range st.Budgets {
		e, err1 := wire.EpsilonUnits(b.Spent)
		d, err2 := wire.DeltaUnits(b.DeltaSpent)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("partner %s: spend not in whole units: %w", b.PartnerID, err)
		}
		if b.Remaining < 0 || b.DeltaRemaining < 0 || math.IsNaN(b.Remaining) {
			return nil, fmt.Errorf("partner %s: negative budget remaining (%v, %v)", b.PartnerID, b.Remaining, b.DeltaRemaining)
		}
		out[b.PartnerID] = wire.Amount{EpsilonUnits: e, DeltaUnits: d}
	}
	return out, nil
}

func sortedKeys[K comparable, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return fmt.Sprint(ks[i]) < fmt.Sprint(ks[j]) })
	return ks
}

// logSpent adds up, from the log, what each partner of each
// collaboration was charged: query.run to its partner, match.complete to
// both partners of the collaboration.
func logSpent(entries []audit.Entry, collabs map[string]collabInfo) map[string]map[string]wire.Amount {
	out := map[string]map[string]wire.Amount{}
	add := func(c, p string, eu, du int64) {
		if out[c] == nil {
			out[c] = map[string]wire.Amount{}
		}
		a := out[c][p]
		out[c][p] = wire.Amount{EpsilonUnits: a.EpsilonUnits + eu, DeltaUnits: a.DeltaUnits + du}
	}
	for _, e := range entries {
		if e.Redacted || (e.Action != string(audit.QueryRun) && e.Action != string(audit.MatchComplete)) {
			continue
		}
		var d struct{ Epsilon, Delta float64 }
		if json.Unmarshal(e.Details, &d) != nil {
			continue // checkLog reports it
		}
		eu, _ := wire.EpsilonUnits(d.Epsilon)
		du, _ := wire.DeltaUnits(d.Delta)
		if e.Action == string(audit.QueryRun) {
			add(e.CollabID, e.PartnerID, eu, du)
			continue
		}
		for _, p := range collabs[e.CollabID].Members {
			add(e.CollabID, p, eu, 0)
		}
	}
	return out
}

// checkSpendBetween checks, under load, that the log's charges lie
// between the budget route's spend read before the export (lo) and
// after it (hi): a debit the ledger holds without its entry, or the
// reverse, would fall outside.
func checkSpendBetween(lo, hi, logged map[string]map[string]wire.Amount) []string {
	var fail []string
	for _, c := range sortedKeys(hi) {
		for _, p := range sortedKeys(hi[c]) {
			l, g, h := lo[c][p], logged[c][p], hi[c][p]
			if l.EpsilonUnits > g.EpsilonUnits || g.EpsilonUnits > h.EpsilonUnits || l.DeltaUnits > g.DeltaUnits || g.DeltaUnits > h.DeltaUnits {
				fail = append(fail, fmt.Sprintf("ledger differs from the log: collaboration %s: partner %s: the budget route said epsilon %v then %v spent, the log's charges add up to %v (delta %v, %v, %v)",
					c, p, l.Epsilon(), h.Epsilon(), g.Epsilon(), l.Delta(), h.Delta(), g.Delta()))
			}
		}
	}
	return fail
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
