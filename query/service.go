package query

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// Service answers analysts' queries on collaborations' cohorts.
type Service struct {
	DB      *store.DB
	Cohorts *cohort.Service
	// Now stamps budget charges and picks the budget period; default
	// time.Now.
	Now func() time.Time
	// Logger receives what cannot go to the audit log (a refusal whose
	// entry failed to append); default slog.Default().
	Logger *slog.Logger
	// refusalsNotLogged counts refusals whose audit entry failed.
	refusalsNotLogged atomic.Int64
	// release overrides dp.ReleaseGroups' noise, for the statistical
	// test's negative controls only; it is not reachable from outside.
	release func([]dp.Group, dp.ReleaseOptions) (dp.Release, error)
	bound   func(BoundOptions) BoundOptions
	// midRun, for tests, runs after a query has read the current
	// cohort's record: before its columns' types ("types") and before
	// its rows ("read").
	midRun func(stage string)
	// MaxRunningPerKey is how many questions one key may have running
	// at once (default DefaultMaxRunningPerKey); more are refused
	// too_many_queries before any work.
	MaxRunningPerKey int

	// mu guards running (questions at work, by key) and held (the budget
	// they have reserved, by collaboration and partner).
	mu      sync.Mutex
	running map[string]int
	held    map[string]wire.Amount
}

// DefaultMaxRunningPerKey: a key's questions at work at once. One
// analyst's burst must not hold the database (or memory) from the others.
const DefaultMaxRunningPerKey = 4

// now is the service's clock.
func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run answers req for the actor's partner. Refusals (errs.IsRefusal: an
// *errs.Error of a refusal kind, or a *ledger.BudgetError) are logged; an answer leaves only once
// its debit, its cached copy and its audit entry have committed together,
// and a cached answer only once its own entry (query.cached) has.
func (s *Service) Run(ctx context.Context, actor partners.Principal, c wire.Collaboration, req wire.Request) (wire.Answer, error) {
	req, err := resolveTemplate(c, req)
	if err != nil {
		s.logRefusal(ctx, actor, c, req, err)
		return wire.Answer{}, err
	}
	ans, err := s.run(ctx, actor, c, req)
	if err != nil {
		if errs.IsRefusal(err) {
			s.logRefusal(ctx, actor, c, req, err)
		}
		return wire.Answer{}, err
	}
	return ans, nil
}

// logRefusal appends a refusal's audit entry. The refusal reaches the
// caller either way (its entry is a record, not a condition of the
// answer); an entry that fails is logged at error level and counted
// (RefusalsNotLogged), so the operator sees a gap in what is documented
// as logged. A caller that hung up does not cancel the entry.
func (s *Service) logRefusal(ctx context.Context, actor partners.Principal, c wire.Collaboration, req wire.Request, refused error) {
	ctx = context.WithoutCancel(ctx)
	code := errs.KindOf(refused).Code()
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		_, err := auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.QueryRefused,
			map[string]any{"sql": truncate(req.SQL, 10000), "epsilon": req.Epsilon, "code": code, "reason": refused.Error()})
		return err
	})
	if err == nil {
		return
	}
	s.refusalsNotLogged.Add(1)
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	// Names and the refusal code only: the SQL and the reason stay out of
	// the server's log, as request bodies do.
	log.ErrorContext(ctx, "query refusal not written to the audit log", "collab", c.ID, "partner", actor.PartnerID,
		"code", code, "err", err)
}

// RefusalsNotLogged is how many refusals' audit entries failed to append
// since the Service started.
func (s *Service) RefusalsNotLogged() int64 { return s.refusalsNotLogged.Load() }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func refusal(k *errs.Kind, format string, args ...any) *errs.Error {
	return errs.New(k, format, args...)
}

// prepared is a question checked and costed, before any data is read.
type prepared struct {
	plan, run *Plan // run: the plan executed (restricted to public values)
	eps       float64
	metrics   map[string][2]float64
	cur       cohort.Cohort
	src       Source
	version   string
	hash      string
	public    bool
	domain    [][]any
	types     map[string]string
	ro        dp.ReleaseOptions
	charge    ledger.Charge
	maxRows   map[string]float64 // COUNT(column)'s bound, by column
}

// prepare checks a question in the order the refusals are documented
// (state and role, epsilon, syntax and subset, columns, cohort, types)
// and works out what it would release and spend, reading only metadata:
// the rules, the current cohort's record and schema, never its rows.
func (s *Service) prepare(ctx context.Context, actor partners.Principal, c wire.Collaboration, req wire.Request, now time.Time) (*prepared, error) {
	r := c.Rules
	switch c.State {
	case wire.StateActive:
	case wire.StateDeleted:
		return nil, refusal(errs.NoCohort, "collaboration %s is deleted: its data is gone and nothing more can be asked of it", c.ID)
	default:
		return nil, refusal(errs.NoCohort, "collaboration %s is %s: queries wait until both partners approve its rules (an admin approves or rejects the pending change)", c.ID, c.State)
	}
	if len(r.Queriers) > 0 && !slices.Contains(r.Queriers, actor.PartnerID) {
		return nil, refusal(errs.NotAQuerier, "the rules of collaboration %s do not let partner %s query", c.ID, actor.PartnerID)
	}
	for _, check := range []func() error{r.CheckUnits, r.CheckBounds} {
		if err := check(); err != nil {
			return nil, refusal(errs.RulesInvalid, "the rules of collaboration %s must be changed before queries run: %v", c.ID, err)
		}
	}
	p := &prepared{eps: req.Epsilon}
	if p.eps == 0 {
		p.eps = r.QueryEpsilon()
	}
	eps := p.eps
	if !(eps >= r.MinQueryEpsilon) {
		return nil, refusal(errs.EpsilonNotAllowed, "epsilon %v is not allowed: it is below the rule min_query_epsilon (%v)", eps, r.MinQueryEpsilon)
	}
	if eps > r.MaxQueryEpsilon {
		return nil, refusal(errs.EpsilonNotAllowed, "epsilon %v is not allowed: it is above the rule max_query_epsilon (%v)", eps, r.MaxQueryEpsilon)
	}
	if _, err := wire.EpsilonUnits(eps); err != nil {
		return nil, refusal(errs.EpsilonNotAllowed, "epsilon %v is not allowed: it must be a whole number of units of %v (the budget counts them exactly)", eps, wire.EpsilonUnit)
	}
	var err error
	if p.plan, err = Parse(ctx, s.DB.SQL(), req.SQL); err != nil {
		return nil, err
	}
	var dims []string
	if dims, p.metrics, err = Allowed(ctx, s.DB.SQL(), c); err != nil {
		return nil, err
	}
	if err := p.plan.Check(dims, p.metrics); err != nil {
		return nil, err
	}
	if p.cur, err = s.Cohorts.Current(ctx, s.DB.SQL(), c.ID); err != nil {
		return nil, refusal(errs.NoCohort, "%v", err)
	}
	p.version, p.src = p.cur.Version, SourceOf(p.cur)
	if s.midRun != nil {
		s.midRun("types")
	}
	colTypes, err := ColumnTypes(ctx, s.DB.SQL(), p.src)
	if err != nil {
		if gone := s.cohortGone(ctx, c, p.version); gone != nil {
			return nil, gone
		}
		return nil, err
	}
	if err := p.plan.checkTypes(colTypes); err != nil {
		// A table dropped since Current has no columns: say so, rather
		// than blame the rules.
		if gone := s.cohortGone(ctx, c, p.version); gone != nil {
			return nil, gone
		}
		return nil, err
	}
	p.hash = p.plan.Hash()
	p.maxRows = map[string]float64{}
	// Grouped only by public dimensions: every declared group is
	// released, no partition selection, no delta (public.go). A
	// per-person count's groups, 1 to max_rows_per_person, are public.
	p.run = p.plan
	if st := p.plan.Step; st != nil {
		col := p.cur.Columns[st.Agg.Column]
		for _, c := range whereColumns(p.plan.Where) {
			if p.cur.Columns[c].Link != col.Link {
				return nil, refusal(errs.NotAllowed, "the WHERE of a per-person step names %s, which is not in the table of %s; filter on that table's columns only", c, st.Agg.Column)
			}
		}
		k := r.MaxRows(partyOf(col.Side), col.Table)
		p.maxRows[st.Agg.Column] = float64(k)
		p.public = true
		p.domain = [][]any{make([]any, k)}
		for i := range k {
			p.domain[0][i] = float64(i + 1)
		}
		p.types = map[string]string{st.Agg.Alias: "BIGINT"}
	} else if p.domain, p.public = publicDomain(p.plan, r); p.public {
		n := 1
		for _, d := range p.domain {
			n *= len(d)
		}
		if n > wire.MaxPublicValues {
			return nil, refusal(errs.NotAllowed, "grouped by public dimensions, this question would release %d groups, over the limit of %d; group by fewer public dimensions", n, wire.MaxPublicValues)
		}
		p.types = colTypes
		if p.run, err = restrictToPublic(p.plan, p.domain, p.types); err != nil {
			return nil, err
		}
	}
	p.ro = dp.ReleaseOptions{Epsilon: eps, Delta: r.Delta, Gaussian: r.Noise == wire.NoiseGaussian, Grouped: len(p.plan.Dimensions) > 0 && !p.public,
		Public: p.public, MaxGroups: int64(r.MaxGroupsContributed), MinGroupUsers: int64(r.MinGroupUsers)}
	if p.plan.Step != nil {
		p.ro.MaxGroups = 1 // each person has one count: one group
	}
	for _, a := range p.plan.Aggregates {
		if a.Func == Rows {
			// A count of rows is a sum of each person's rows, clamped.
			col := p.cur.Columns[a.Column]
			m := float64(r.MaxRows(partyOf(col.Side), col.Table))
			p.maxRows[a.Column] = m
			p.ro.Aggs = append(p.ro.Aggs, dp.Agg{Func: string(Sum), Lower: 0, Upper: m})
			continue
		}
		b := p.metrics[a.Column]
		fn := string(a.Func)
		if a.Func == Median {
			fn = string(Quantile)
		}
		p.ro.Aggs = append(p.ro.Aggs, dp.Agg{Func: fn, Lower: b[0], Upper: b[1], Rank: a.Rank})
	}
	// The charge is known before anything runs: the query's epsilon, and
	// the rule delta when the release needs one. It is checked before the
	// query runs, and checked again and debited when the answer commits.
	p.charge = ledger.Charge{CollabID: c.ID, PartnerID: actor.PartnerID, Kind: ledger.KindQuery, Ref: p.hash,
		Epsilon: eps, Delta: p.ro.DeltaCost(), Budget: ledger.Of(r), Now: now}
	return p, nil
}

// Preview says what asking req would spend and how precise the answer
// would be, or why it would be refused, without reading the cohort's rows
// and without spending or logging anything: everything in it follows from
// the question, the rules, the cohort's record and schema and the
// caller's own budget, never from the data. A refusal of the question is
// in the preview (Refusal); an error is returned only when the preview
// itself fails.
func (s *Service) Preview(ctx context.Context, actor partners.Principal, c wire.Collaboration, req wire.Request) (wire.Preview, error) {
	now := s.now()
	out := wire.Preview{Columns: []wire.PreviewColumn{}, EpsilonSplit: map[string]float64{}}
	left, err := ledger.Remaining(ctx, s.DB.SQL(), c.ID, actor.PartnerID, ledger.Of(c.Rules), now)
	if err != nil {
		return out, err
	}
	out.BudgetRemaining, out.DeltaRemaining = left.Epsilon(), left.Delta()
	refused := func(err error) (wire.Preview, error) {
		if !errs.IsRefusal(err) {
			return out, err
		}
		e := errs.Classify(err)
		out.Refusal = &e
		return out, nil
	}
	req, err = resolveTemplate(c, req)
	if err != nil {
		return refused(err)
	}
	p, err := s.prepare(ctx, actor, c, req, now)
	if err != nil {
		return refused(err)
	}
	x, err := dp.Expect(p.ro, max(int64(c.Rules.MinGroupUsers), 1))
	if err != nil {
		return refused(refusal(errs.NotReleasable, "this answer cannot be released with these privacy parameters (epsilon %v, delta %v, %s noise): %v", p.eps, c.Rules.Delta, c.Rules.Noise, err))
	}
	out.Epsilon, out.Delta, out.EpsilonSplit, out.GroupUsers = x.Epsilon, x.Delta, x.Split, x.GroupUsers
	for i, a := range p.plan.Aggregates {
		c := wire.PreviewColumn{Name: a.Alias, Kind: string(a.Func)}
		if hw := x.HalfWidths[i]; !math.IsNaN(hw) {
			c.HalfWidth = &hw
		}
		out.Columns = append(out.Columns, c)
	}
	if _, ok, err := s.cached(ctx, s.DB.SQL(), actor, c, p.version, p.hash, p.eps); err != nil {
		return out, err
	} else if ok {
		out.Cached, out.Epsilon, out.Delta = true, 0, 0
		return out, nil
	}
	if err := s.affordable(ctx, c, p); err != nil {
		return refused(err)
	}
	return out, nil
}

// resolveTemplate turns a request for a template (the rules' or a
// built-in) into its SQL, its parameters checked against their types and
// bounds; the text then meets every check a written question does.
func resolveTemplate(c wire.Collaboration, req wire.Request) (wire.Request, error) {
	if req.Template == "" {
		if len(req.Params) > 0 {
			return req, refusal(errs.NotAllowed, "params are for a template; name one with template")
		}
		return req, nil
	}
	if req.SQL != "" {
		return req, refusal(errs.NotAllowed, "give either sql or a template, not both")
	}
	all := c.Rules.AllTemplates()
	for _, t := range all {
		if t.Name != req.Template {
			continue
		}
		text, err := t.Render(req.Params)
		if err != nil {
			return req, refusal(errs.NotAllowed, "%v", err)
		}
		req.SQL = text
		return req, nil
	}
	var names []string
	for _, t := range all {
		names = append(names, t.Name)
	}
	return req, refusal(errs.NotAllowed, "collaboration %s has no template %q; its templates: %s", c.ID, req.Template, strings.Join(names, ", "))
}

// partyOf names a cohort side as the rules do.
func partyOf(side string) string {
	if side == "b" {
		return wire.PartyPartner
	}
	return wire.PartyProposer
}

// affordable refuses a prepared question the budgets cannot pay for, or
// one on a cohort under min_cohort_users (the noisy size released at
// match): the last refusals, before any data is read.
func (s *Service) affordable(ctx context.Context, c wire.Collaboration, p *prepared) error {
	if _, err := ledger.Check(ctx, s.DB.SQL(), p.charge); err != nil {
		return budgetRefusal(err)
	}
	if p.cur.NoisySize < int64(c.Rules.MinCohortUsers) {
		return refusal(errs.CohortTooSmall, "the cohort is below the rule min_cohort_users (%d people); no query runs on it", c.Rules.MinCohortUsers)
	}
	return nil
}

// begin admits a question to run: at most MaxRunningPerKey of one key at
// once, and only if the budget covers it and every question of the same
// partner still running, whose charges it reserves until they are
// debited or fail. So a burst of questions is refused before any of them
// reads data, rather than after (the debit re-checks the ledger in its
// write either way). done releases the place and the reservation.
func (s *Service) begin(ctx context.Context, actor partners.Principal, ch ledger.Charge) (done func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running, s.held = map[string]int{}, map[string]wire.Amount{}
	}
	limit := s.MaxRunningPerKey
	if limit <= 0 {
		limit = DefaultMaxRunningPerKey
	}
	if s.running[actor.KeyID] >= limit {
		return nil, refusal(errs.TooManyQueries, "this key has %d questions running, as many as one key may at once; ask again when one has answered", limit)
	}
	eu, err := wire.EpsilonUnits(ch.Epsilon)
	if err != nil {
		return nil, err
	}
	du, err := wire.DeltaUnits(ch.Delta)
	if err != nil {
		return nil, err
	}
	budget := ch.CollabID + "/" + ch.PartnerID
	held := s.held[budget]
	if held != (wire.Amount{}) {
		all := ch
		all.Epsilon = wire.EpsilonOf(held.EpsilonUnits + eu)
		all.Delta = wire.DeltaOf(held.DeltaUnits + du)
		if _, err := ledger.Check(ctx, s.DB.SQL(), all); err != nil {
			var be *ledger.BudgetError
			if ce := (*ledger.CapError)(nil); errors.As(err, &ce) {
				// The cap's text states what all of them would add.
				return nil, refusal(errs.ExposureCapExceeded, "%v. That counts the other questions from your side still running, which hold epsilon %v and delta %v; ask again when they have answered",
					ce, held.Epsilon(), held.Delta())
			}
			if !errors.As(err, &be) {
				return nil, err
			}
			return nil, refusal(errs.KindOf(be), "the %s budget cannot cover this question (epsilon %v, delta %v) beside the other questions from your side still running, which hold epsilon %v and delta %v of it; ask again when they have answered",
				be.Budget, ch.Epsilon, ch.Delta, held.Epsilon(), held.Delta())
		}
	}
	s.running[actor.KeyID]++
	s.held[budget] = wire.Amount{EpsilonUnits: held.EpsilonUnits + eu, DeltaUnits: held.DeltaUnits + du}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.running[actor.KeyID]--; s.running[actor.KeyID] <= 0 {
			delete(s.running, actor.KeyID)
		}
		h := s.held[budget]
		h = wire.Amount{EpsilonUnits: h.EpsilonUnits - eu, DeltaUnits: h.DeltaUnits - du}
		if h == (wire.Amount{}) {
			delete(s.held, budget)
		} else {
			s.held[budget] = h
		}
	}, nil
}

func (s *Service) run(ctx context.Context, actor partners.Principal, c wire.Collaboration, req wire.Request) (wire.Answer, error) {
	r := c.Rules
	now := s.now()
	p, err := s.prepare(ctx, actor, c, req, now)
	if err != nil {
		return wire.Answer{}, err
	}
	plan, eps, metrics, src, version, hash, charge, ro := p.plan, p.eps, p.metrics, p.src, p.version, p.hash, p.charge, p.ro
	if a, ok, err := s.cached(ctx, s.DB.SQL(), actor, c, version, hash, eps); err != nil {
		return wire.Answer{}, err
	} else if ok {
		var out wire.Answer
		err := s.DB.Write(ctx, func(tx *sql.Tx) error {
			out = a
			if err := s.logCached(ctx, tx, actor, c, req, version, hash, eps); err != nil {
				return err
			}
			return s.state(ctx, tx, c, actor.PartnerID, now, &out)
		})
		if err != nil {
			return wire.Answer{}, err
		}
		return out, nil
	}
	if req.CachedOnly {
		// Not a refusal of the question (nothing is logged): the stored
		// answer asked for is not there, which the request and the cohort's
		// version alone decide.
		return wire.Answer{}, errs.New(errs.NotStored, "no stored answer of this question at epsilon %v on the current cohort: it was never answered, or the cohort has changed since (a deletion or a new match); ask without cached_only to answer it anew, charged", eps)
	}
	if err := s.affordable(ctx, c, p); err != nil {
		return wire.Answer{}, err
	}
	done, err := s.begin(ctx, actor, charge)
	if err != nil {
		return wire.Answer{}, err
	}
	defer done()

	bo := BoundOptions{MaxGroups: int64(r.MaxGroupsContributed), Bounds: metrics, MaxRows: p.maxRows}
	if s.bound != nil {
		bo = s.bound(bo)
	}
	if s.midRun != nil {
		s.midRun("read")
	}
	groups, err := p.run.Groups(ctx, s.DB.SQL(), src, bo)
	if err != nil {
		if gone := s.cohortGone(ctx, c, version); gone != nil {
			return wire.Answer{}, gone
		}
		// Data errors must not reveal data: say only that it failed.
		return wire.Answer{}, fmt.Errorf("query: running the plan: %w", err)
	}
	if p.public {
		if groups, err = fillPublic(plan, p.domain, p.types, groups, len(plan.Aggregates)); err != nil {
			return wire.Answer{}, err
		}
	}
	release := dp.ReleaseGroups
	if s.release != nil {
		release = s.release
	}
	rel, err := release(groups, ro)
	if err != nil {
		return wire.Answer{}, refusal(errs.NotReleasable, "this answer cannot be released with these privacy parameters (epsilon %v, delta %v, %s noise): %v", eps, r.Delta, r.Noise, err)
	}
	if rel.Epsilon != charge.Epsilon || rel.Delta != charge.Delta {
		return wire.Answer{}, fmt.Errorf("query: the release spent epsilon %v and delta %v, not the %v and %v charged", rel.Epsilon, rel.Delta, charge.Epsilon, charge.Delta)
	}
	ans := buildAnswer(plan, rel)
	ans.PlanHash, ans.CohortVersion = hash, version
	ans.Noise = string(r.Noise)
	body, err := json.Marshal(ans)
	if err != nil {
		return wire.Answer{}, err
	}
	sum := sha256.Sum256(body)
	answerHash := hex.EncodeToString(sum[:])

	var out wire.Answer
	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		// An identical query may have committed while this one ran: its
		// answer is the one released, at no further cost.
		if a, ok, err := s.cached(ctx, tx, actor, c, version, hash, eps); err != nil {
			return err
		} else if ok {
			out = a
			if err := s.logCached(ctx, tx, actor, c, req, version, hash, eps); err != nil {
				return err
			}
			return s.state(ctx, tx, c, actor.PartnerID, now, &out)
		}
		if _, err := ledger.Debit(ctx, tx, charge); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO query_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, actor.PartnerID, version, hash, eps, string(body), answerHash, now.UTC()); err != nil {
			return err
		}
		if _, err := auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.QueryRun, map[string]any{
			"sql": truncate(req.SQL, 10000), "plan_hash": hash, "epsilon": rel.Epsilon, "delta": rel.Delta,
			"answer_sha256": answerHash, "cohort_version": version, "rows": len(ans.Rows)}); err != nil {
			return err
		}
		out = ans
		return s.state(ctx, tx, c, actor.PartnerID, now, &out)
	})
	if err != nil {
		return wire.Answer{}, budgetRefusal(err)
	}
	return out, nil
}

// cohortGone explains a read of cohort version that failed because the
// cohort is no longer current: a party replaced or deleted a table, or
// deleted people, while the question ran, and the tables it read went
// with it. Reads run outside the write lock, so this is an ordinary race,
// not a server fault; nothing was charged and asking again answers on
// the current cohort. It returns nil when the cohort is unchanged (the
// failure is the server's).
func (s *Service) cohortGone(ctx context.Context, c wire.Collaboration, version string) error {
	cur, err := s.Cohorts.Current(ctx, s.DB.SQL(), c.ID)
	switch {
	case errs.KindOf(err) == errs.NotFound:
		return refusal(errs.NoCohort, "the cohort of collaboration %s was removed while the question ran (a table was replaced or deleted); nothing was charged: ask again once both parties have matched", c.ID)
	case err != nil || cur.Version == version:
		return nil
	}
	return errs.New(errs.Conflict, "the cohort of collaboration %s changed while the question ran (a table was replaced, or people deleted); nothing was charged: ask again", c.ID)
}

// Allowed returns the columns analysts of c may group and filter on
// (dimensions) and sum or average (metrics, with their per-person
// bounds): the rules' own lists and the declared tables' columns, named
// as the cohort names them.
func Allowed(ctx context.Context, q store.Querier, c wire.Collaboration) ([]string, map[string][2]float64, error) {
	dims, metrics, err := cohort.Allowed(ctx, q, c)
	if err != nil {
		return nil, nil, err
	}
	dims = append(slices.Clone(c.Rules.Dimensions), dims...)
	for m, b := range c.Rules.Metrics {
		metrics[m] = b
	}
	return dims, metrics, nil
}

// state fills in an answer's budget left and the collaboration's totals as
// they are now (a cached answer's are not those of its first release).
func (s *Service) state(ctx context.Context, q store.Querier, c wire.Collaboration, partnerID string, now time.Time, a *wire.Answer) error {
	left, err := ledger.Remaining(ctx, q, c.ID, partnerID, ledger.Of(c.Rules), now)
	if err != nil {
		return err
	}
	total, err := ledger.CollaborationSpent(ctx, q, c.ID)
	if err != nil {
		return err
	}
	a.BudgetRemaining, a.DeltaRemaining = left.Epsilon(), left.Delta()
	a.CollaborationEpsilonSpent, a.CollaborationDeltaSpent = total.Epsilon(), total.Delta()
	return nil
}

// budgetRefusal turns a *ledger.BudgetError in err into its refusal, with
// the budget error's text alone; other errors pass through.
func budgetRefusal(err error) error {
	var be *ledger.BudgetError
	if !errors.As(err, &be) {
		return err
	}
	return refusal(errs.KindOf(be), "%v", be)
}

// cached returns the stored answer of the same plan, partner, epsilon and
// cohort version: asking again reveals nothing new and costs nothing.
func (s *Service) cached(ctx context.Context, q store.Querier, actor partners.Principal, c wire.Collaboration, version, hash string, eps float64) (wire.Answer, bool, error) {
	var body string
	err := q.QueryRowContext(ctx, `SELECT CAST(answer AS VARCHAR) FROM query_cache
		WHERE collab_id = ? AND partner_id = ? AND cohort_version = ? AND plan_hash = ? AND epsilon = ?`,
		c.ID, actor.PartnerID, version, hash, eps).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return wire.Answer{}, false, nil
	}
	if err != nil {
		return wire.Answer{}, false, err
	}
	var a wire.Answer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		return wire.Answer{}, false, fmt.Errorf("query: cached answer: %w", err)
	}
	a.Cached = true
	return a, true, nil
}

// logCached records a read of a cached answer (query.cached), in the
// transaction that reads the state sent with it: auditors see every
// read, not only the releases. The entry is the request and what names
// the answer (plan, cohort version, epsilon), all known before anything
// ran; nothing of the answer itself, which query.run logged when it was
// released, and no charge, since none is made.
func (s *Service) logCached(ctx context.Context, tx *sql.Tx, actor partners.Principal, c wire.Collaboration, req wire.Request, version, hash string, eps float64) error {
	_, err := auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.QueryCached, map[string]any{
		"sql": truncate(req.SQL, 10000), "plan_hash": hash, "epsilon": eps, "cohort_version": version, "charged": false})
	return err
}

func buildAnswer(p *Plan, rel dp.Release) wire.Answer {
	a := wire.Answer{Epsilon: rel.Epsilon, Delta: rel.Delta, EpsilonSplit: rel.Split, Rows: [][]any{}, Intervals: [][]*wire.Interval{}}
	for _, oc := range p.Columns {
		kind := "dimension"
		if !oc.Dimension {
			kind = string(p.Aggregates[oc.Index].Func)
		}
		a.Columns = append(a.Columns, wire.Column{Name: oc.Name, Kind: kind})
	}
	for _, r := range rel.Rows {
		row := make([]any, len(p.Columns))
		ivs := make([]*wire.Interval, len(p.Columns))
		for j, oc := range p.Columns {
			if oc.Dimension {
				row[j] = keyOf(r.Key[oc.Index])
				continue
			}
			v := r.Values[oc.Index]
			row[j] = v.Value
			if !v.NoInterval {
				ivs[j] = &wire.Interval{Lower: v.Lower, Upper: v.Upper}
			}
		}
		a.Rows = append(a.Rows, row)
		a.Intervals = append(a.Intervals, ivs)
	}
	return a
}

// keyOf is a group's key as an answer holds it. A float that is not
// finite, or a time outside years 0 to 9999 (stored before uploads
// refused them), has no JSON form, and the answer must never fail on the
// data: it leaves as its text ("NaN", "+Inf", RFC 3339), as the CSV and
// Arrow forms show every key.
func keyOf(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	case time.Time:
		if x.Year() < 0 || x.Year() > 9999 {
			return x.UTC().Format(time.RFC3339Nano)
		}
	}
	return v
}

// questionsLeft fills in how many questions at the default epsilon the
// amount left pays for, how many of them grouped, and says so. Counted
// in the ledger's units, so the count is exact.
func questionsLeft(w *wire.Budget, r wire.Rules, left wire.Amount) {
	w.QueryEpsilon = r.QueryEpsilon()
	eu, err := wire.EpsilonUnits(w.QueryEpsilon)
	if err != nil || eu <= 0 {
		return
	}
	w.QuestionsLeft = left.EpsilonUnits / eu
	w.GroupedQuestionsLeft = w.QuestionsLeft
	if du, err := wire.DeltaUnits(r.Delta); err == nil && du > 0 {
		if r.Noise == wire.NoiseGaussian {
			w.QuestionsLeft = min(w.QuestionsLeft, left.DeltaUnits/du)
		}
		w.GroupedQuestionsLeft = min(w.QuestionsLeft, left.DeltaUnits/du)
	}
	grouped := fmt.Sprintf("%d of them grouped (each grouped question also spends delta %g)", w.GroupedQuestionsLeft, r.Delta)
	if w.GroupedQuestionsLeft == w.QuestionsLeft {
		grouped = "grouped or not"
	}
	w.Summary = fmt.Sprintf("%d questions left at epsilon %g, %s", w.QuestionsLeft, w.QueryEpsilon, grouped)
	if r.Noise == wire.NoiseGaussian {
		w.Summary += "; gaussian noise spends delta on every question"
	}
}

// Budgets returns both partners' budgets in a collaboration and its total
// spend.
func (s *Service) Budgets(ctx context.Context, c wire.Collaboration) (wire.BudgetStatus, error) {
	now := s.now()
	b := ledger.Of(c.Rules)
	total, err := b.Units()
	if err != nil {
		return wire.BudgetStatus{}, err
	}
	start := ledger.PeriodStart(b.Refresh, now)
	var next *time.Time
	if b.Refresh == wire.RefreshMonthly {
		t := start.AddDate(0, 1, 0)
		next = &t
	}
	names := map[string]string{c.Proposer: c.ProposerName, c.Partner: c.PartnerName}
	out := wire.BudgetStatus{Budgets: []wire.Budget{}}
	for _, p := range c.Members() {
		spent, err := ledger.Spent(ctx, s.DB.SQL(), c.ID, p, start)
		if err != nil {
			return wire.BudgetStatus{}, err
		}
		left := total.Sub(spent)
		w := wire.Budget{PartnerID: p, PartnerName: names[p], NextRefresh: next,
			Budget: b.Epsilon, Spent: spent.Epsilon(), Remaining: left.Epsilon(),
			DeltaBudget: b.Delta, DeltaSpent: spent.Delta(), DeltaRemaining: left.Delta(),
			Refresh: string(b.Refresh), PeriodStart: start}
		questionsLeft(&w, c.Rules, left)
		out.Budgets = append(out.Budgets, w)
	}
	all, err := ledger.CollaborationSpent(ctx, s.DB.SQL(), c.ID)
	if err != nil {
		return wire.BudgetStatus{}, err
	}
	out.CollaborationEpsilonSpent, out.CollaborationDeltaSpent = all.Epsilon(), all.Delta()
	return out, nil
}
