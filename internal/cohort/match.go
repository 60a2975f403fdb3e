package cohort

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/marcboeker/go-duckdb"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// Match is one run of the protocol over both parties' current tables: its
// wire form and what only the server knows of it.
type Match struct {
	wire.Match
	// The content hashes of the halves received, so that a retry of a
	// half can be told from a different one.
	halfAHash string
	halfBHash string
}

// For fills in the caller's side and whether its half is in.
func (m Match) For(c wire.Collaboration, partnerID string) wire.Match {
	w := m.Match
	if !c.HasMember(partnerID) {
		return w
	}
	w.Side = side(c, partnerID)
	// Side a re-blinds b's points: that is half b, and the reverse.
	w.YourHalfReceived = (w.Side == "a" && w.HalfB) || (w.Side == "b" && w.HalfA)
	return w
}

// side returns "a" for the proposer and "b" for the other partner.
func side(c wire.Collaboration, partnerID string) string {
	if partnerID == c.Proposer {
		return "a"
	}
	return "b"
}

func otherSide(s string) string {
	if s == "a" {
		return "b"
	}
	return "a"
}

// StartMatch starts a match over both parties' current tables, or
// joins the one already running over them: created says which, so the API
// can answer 201 or 200. Concurrent starts make one match; the others
// join it.
//
// The point tables are built outside the write lock (they can be large)
// and become the match's only when its record commits. A start that
// fails, or loses the race to record, drops the tables it built.
// Starts of one collaboration take turns, so the parties' simultaneous
// starts build the tables once: the second finds the first's match.
//
// fp, when given, is the fingerprint of the key the caller will
// re-blind with: a key other than its tables' is refused
// (errs.KeyMismatch) before anything is built.
func (s *Service) StartMatch(ctx context.Context, actor partners.Principal, c wire.Collaboration, fp string) (m Match, created bool, err error) {
	if fp != "" {
		if err := psi.CheckFingerprint(fp); err != nil {
			return Match{}, false, errs.New(errs.Invalid, "key_fingerprint: %v", err)
		}
	}
	unlock, err := s.starts.lock(ctx, c.ID)
	if err != nil {
		return Match{}, false, fmt.Errorf("cohort.StartMatch: waiting for another start of collaboration %s: %w", c.ID, err)
	}
	defer unlock()
	m, created, err = s.startMatch(ctx, actor, c, fp)
	s.logCapRefusal(ctx, actor, c, "", err)
	return m, created, err
}

// logCapRefusal records a match refused for a partner's exposure cap
// (match.refused), as queries' refusals are recorded: the partners'
// auditors see that the cap stopped a release, and whose. Nothing is
// recorded for other errors. The refusal reaches the caller either way;
// an entry that fails to append is logged by code only, and a caller
// that hung up does not cancel it.
func (s *Service) logCapRefusal(ctx context.Context, actor partners.Principal, c wire.Collaboration, matchID string, refused error) {
	if errs.KindOf(refused) != errs.ExposureCapExceeded {
		return
	}
	ctx = context.WithoutCancel(ctx)
	code := errs.KindOf(refused).Code()
	details := map[string]any{"code": code, "reason": refused.Error()}
	if matchID != "" {
		details["match_id"] = matchID
	}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		_, err := auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.MatchRefused, details)
		return err
	})
	if err != nil {
		slog.ErrorContext(ctx, "match refusal not written to the audit log", "collab", c.ID, "code", code, "err", err)
	}
}

// startMatch is StartMatch without the turn-taking (the race with a
// start in another process, or a test, stays handled at record time).
func (s *Service) startMatch(ctx context.Context, actor partners.Principal, c wire.Collaboration, fp string) (m Match, created bool, err error) {
	if c.State != wire.StateActive {
		return Match{}, false, errs.New(errs.Conflict, "collaboration %s is %s", c.ID, c.State)
	}
	ta, err := s.CurrentTables(ctx, s.DB.SQL(), c.ID, c.Proposer)
	if err != nil {
		return Match{}, false, err
	}
	tb, err := s.CurrentTables(ctx, s.DB.SQL(), c.ID, c.Partner)
	if err != nil {
		return Match{}, false, err
	}
	for _, x := range []struct {
		p      string
		tables []Audience
	}{{c.Proposer, ta}, {c.Partner, tb}} {
		if len(x.tables) == 0 {
			return Match{}, false, errs.New(errs.AwaitingUpload, "both parties must upload before matching; partner %s has no table in collaboration %s", x.p, c.ID)
		}
	}
	mineT := ta
	if side(c, actor.PartnerID) == "b" {
		mineT = tb
	}
	if t, ok := otherKey(mineT, fp, ""); ok {
		return Match{}, false, errMatchKey(fp, t)
	}
	if err := checkNames(ctx, s.DB.SQL(), c, ta, tb); err != nil {
		return Match{}, false, err
	}
	if m, err := s.findMatch(ctx, s.DB.SQL(), c.ID, ta, tb); err == nil {
		return m, false, nil
	}
	// Publishing the cohort charges match_epsilon to both partners, and
	// both charges count against each partner's exposure cap: a match the
	// caps would refuse then is refused now, before either party blinds
	// anything. (The debits check again when the cohort is published.)
	if mu, err := wire.EpsilonUnits(c.Rules.MatchEpsilon); err == nil {
		n := int64(len(c.Members()))
		if err := ledger.CheckCaps(ctx, s.DB.SQL(), c.ID, actor.PartnerID, wire.Amount{EpsilonUnits: n * mu}, s.now()); err != nil {
			return Match{}, false, err
		}
	}
	mine := Match{Match: wire.Match{ID: partners.NewID("m_"), CollabID: c.ID, AudienceA: ta[0].ID, AudienceB: tb[0].ID, State: wire.MatchWaiting,
		Epsilon: c.Rules.MatchEpsilon}}
	recorded := false
	defer func() {
		if !recorded {
			s.dropTables(pointsTable(mine.ID, "a"), pointsTable(mine.ID, "b"))
		}
	}()
	// Only consented people take part, each once however many rows and
	// tables they have, in an order (by point) that says nothing about
	// the uploads' row order. (Building the two sides at once measured no
	// faster at 1M or 10M: each side's read, sort and write already keep
	// both cores busy.)
	for _, x := range []struct {
		side   string
		tables []Audience
		n      *int64
	}{{"a", ta, &mine.PointsA}, {"b", tb, &mine.PointsB}} {
		if s.beforePoints != nil {
			s.beforePoints()
		}
		if *x.n, err = s.buildPoints(ctx, x.tables, c.Rules.Purpose, pointsTable(mine.ID, x.side)); err != nil {
			// Points are read outside the write lock: a table replaced or
			// deleted since it was listed is gone from under the read.
			// That is the caller's race to retry, as when it happens
			// just after the read (checked when the match is recorded).
			for _, a := range append(slices.Clone(ta), tb...) {
				if _, gone := s.AudienceByID(ctx, s.DB.SQL(), a.ID); errs.KindOf(gone) == errs.Conflict {
					return Match{}, false, gone
				}
			}
			return Match{}, false, fmt.Errorf("cohort.StartMatch: %w", err)
		}
	}
	// Deletions may have taken a party below the minimum since its
	// uploads; a match of it would then release a tiny audience's cohort
	// size. The other party's count is not named: the protocol reveals
	// it only as its number of points.
	least := int64(c.Rules.MinUploadUsers)
	for _, x := range []struct {
		p string
		n int64
	}{{c.Proposer, mine.PointsA}, {c.Partner, mine.PointsB}} {
		if x.n >= least {
			continue
		}
		if x.p == actor.PartnerID {
			return Match{}, false, errs.New(errs.Conflict, "your tables have %d people who can match (consented for purpose %q, not opted out), fewer than the rule min_upload_users (%d); upload a larger audience", x.n, c.Rules.Purpose, least)
		}
		return Match{}, false, errs.New(errs.Conflict, "the other partner's tables have fewer people who can match than the rule min_upload_users (%d), after deletions; it must upload again before a new match", least)
	}
	if s.beforeRecord != nil {
		s.beforeRecord()
	}
	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		// Another start may have won the race: join its match.
		if other, err := s.findMatch(ctx, tx, c.ID, ta, tb); err == nil {
			m = other
			return nil
		}
		// A table replaced or deleted while the points were built: its
		// replacement dropped its matches, and this one would be stale
		// from birth.
		for _, x := range [][]Audience{ta, tb} {
			for _, a := range x {
				if _, err := s.AudienceByID(ctx, tx, a.ID); err != nil {
					return err
				}
			}
		}
		at := s.now().UTC().Truncate(time.Microsecond)
		if _, err := tx.ExecContext(ctx, `INSERT INTO matches (id, collab_id, audience_a, audience_b, state, points_a, points_b, epsilon, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, mine.ID, mine.CollabID, mine.AudienceA, mine.AudienceB, mine.State, mine.PointsA, mine.PointsB, mine.Epsilon, at, at); err != nil {
			return err
		}
		// The store orders by the exact time; parties read whole seconds
		// (see GetMatch).
		mine.CreatedAt = at.Truncate(time.Second)
		mine.UpdatedAt = mine.CreatedAt
		tables := map[string][]string{}
		for _, x := range []struct {
			side   string
			tables []Audience
		}{{"a", ta}, {"b", tb}} {
			for _, a := range x.tables {
				if _, err := tx.ExecContext(ctx, `INSERT INTO match_tables (match_id, side, audience_id, name) VALUES (?, ?, ?, ?)`, mine.ID, x.side, a.ID, a.Table); err != nil {
					return err
				}
				tables[x.side] = append(tables[x.side], a.Table)
			}
		}
		if _, err := auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.MatchStart,
			map[string]any{"match_id": mine.ID, "audience_a": mine.AudienceA, "audience_b": mine.AudienceB, "tables_a": tables["a"], "tables_b": tables["b"]}); err != nil {
			return err
		}
		m, created = mine, true
		return nil
	})
	if err != nil {
		return Match{}, false, err
	}
	recorded = created
	return m, created, nil
}

// completes reports whether the half of side target completes m: it is
// live, waiting for that half, and has the other.
func completes(m Match, target string) bool {
	if m.State != wire.MatchWaiting {
		return false
	}
	if target == "a" {
		return !m.HalfA && m.HalfB
	}
	return !m.HalfB && m.HalfA
}

// errRaceLost ends a transaction that found another request's write
// already there.
var errRaceLost = errors.New("race lost")

func errStale(matchID string) error {
	return errs.New(errs.StaleMatch, "match %s is stale: an audience was replaced, or people were deleted, since it started; run match again to start a new one", matchID)
}

func errDeleted(matchID string) error {
	return errs.New(errs.Conflict, "match %s was deleted with its audience or collaboration", matchID)
}

// findMatch returns the newest live match over exactly the tables ta and
// tb (side a's and side b's).
func (s *Service) findMatch(ctx context.Context, q store.Querier, collabID string, ta, tb []Audience) (Match, error) {
	var want []string
	for _, a := range append(slices.Clone(ta), tb...) {
		want = append(want, a.ID)
	}
	slices.Sort(want)
	ids, err := store.QueryStrings(ctx, q, `SELECT m.id FROM matches m WHERE m.collab_id = ? AND m.state IN (?, ?)
		AND (SELECT string_agg(t.audience_id, ',' ORDER BY t.audience_id) FROM match_tables t WHERE t.match_id = m.id) = ?
		ORDER BY m.created_at DESC LIMIT 1`, collabID, wire.MatchWaiting, wire.MatchDone, strings.Join(want, ","))
	if err != nil {
		return Match{}, err
	}
	if len(ids) == 0 {
		return Match{}, errs.New(errs.NotFound, "match")
	}
	return s.GetMatch(ctx, q, collabID, ids[0])
}

// GetMatch returns a match of collabID. The exact cohort size the store
// keeps is not read: no caller may release it.
func (s *Service) GetMatch(ctx context.Context, q store.Querier, collabID, id string) (Match, error) {
	var m Match
	var ha, hb sql.NullString
	var noisy sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT m.id, m.collab_id, m.audience_a, m.audience_b, m.state, m.points_a, m.points_b, m.half_a_sha256, m.half_b_sha256,
			m.noisy_size, m.epsilon, m.created_at, m.updated_at
		FROM matches m WHERE m.id = ? AND m.collab_id = ?`, id, collabID).
		Scan(&m.ID, &m.CollabID, &m.AudienceA, &m.AudienceB, &m.State, &m.PointsA, &m.PointsB, &ha, &hb, &noisy, &m.Epsilon, &m.CreatedAt, &m.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return m, errs.New(errs.NotFound, "match %s", id)
	}
	if err != nil {
		return m, err
	}
	// A match of a table no longer current reads as stale, whatever its
	// record says (records written before replacements marked their
	// matches say waiting or done; deleted audiences' say deleted).
	var gone int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM match_tables t WHERE t.match_id = ?
		AND NOT EXISTS (SELECT 1 FROM audiences x WHERE x.id = t.audience_id AND x.deleted_at IS NULL)`, m.ID).Scan(&gone); err != nil {
		return m, err
	}
	if gone > 0 {
		m.State = wire.MatchStale
	}
	// Both parties read a match's times; to the microsecond, the gap
	// from its last half to done would time the build, which grows with
	// the other party's data. Whole seconds, as the audit log's.
	m.CreatedAt, m.UpdatedAt = m.CreatedAt.Truncate(time.Second), m.UpdatedAt.Truncate(time.Second)
	m.halfAHash, m.halfBHash = ha.String, hb.String
	m.HalfA, m.HalfB = ha.Valid, hb.Valid
	if noisy.Valid {
		n := noisy.Int64
		m.NoisySize = &n
	}
	return m, nil
}

// Points writes, as an Arrow IPC stream with one column pid, the points
// the caller must re-blind: the other party's consented people, once each.
func (s *Service) Points(ctx context.Context, c wire.Collaboration, m Match, partnerID string, w io.Writer) error {
	switch m.State {
	case wire.MatchStale:
		return errStale(m.ID)
	case wire.MatchDeleted:
		return errDeleted(m.ID)
	}
	tbl := pointsTable(m.ID, otherSide(side(c, partnerID)))
	err := s.DB.Raw(ctx, func(conn driver.Conn) error {
		return readSnapshot(ctx, conn, func(ar *duckdb.Arrow) error {
			var end int64
			if err := queryInts(ctx, ar, `SELECT coalesce(max(pos) + 1, 0) FROM `+tbl, nil, &end); err != nil {
				return err
			}
			wr := ipc.NewWriter(w, ipc.WithSchema(audience.PointsSchema))
			// The table was written in pos order and DuckDB keeps insertion
			// order (preserve_insertion_order), so the ranges of pos need
			// no sort (at 10M points an ORDER BY pos costs seconds and
			// holds every point). The order is checked as they go out.
			last := int64(-1)
			err := readRanges(ctx, ar, `SELECT pos, pid FROM `+tbl+` WHERE pos >= ? AND pos < ?`, nil, end, func(rec arrow.Record) error {
				pos, ok := rec.Column(0).(*array.Int64)
				if !ok {
					return fmt.Errorf("cohort: unexpected pos column type %s", rec.Column(0).DataType())
				}
				for _, p := range pos.Int64Values() {
					if p <= last {
						return fmt.Errorf("cohort: points table %s read out of order (pos %d after %d)", tbl, p, last)
					}
					last = p
				}
				out, err := toPoints(rec.Column(1))
				if err != nil {
					return err
				}
				defer out.Release()
				return wr.Write(out)
			})
			if err != nil {
				return err
			}
			return wr.Close()
		})
	})
	if err != nil {
		// The caller read the match before a replacement or a deletion
		// voided it and dropped its points: that is the stale match the
		// caller would have met a moment later, not a server fault.
		if cur, gerr := s.GetMatch(ctx, s.DB.SQL(), c.ID, m.ID); gerr == nil {
			switch cur.State {
			case wire.MatchStale:
				return errStale(m.ID)
			case wire.MatchDeleted:
				return errDeleted(m.ID)
			}
		}
	}
	return err
}

// toPoints converts DuckDB's BLOB column (exported as Arrow binary) to a
// record of audience.PointsSchema.
func toPoints(arr arrow.Array) (arrow.Record, error) {
	type binaryColumn interface {
		arrow.Array
		Value(i int) []byte
	}
	col, ok := arr.(binaryColumn)
	if !ok {
		return nil, fmt.Errorf("cohort: unexpected points column type %s", arr.DataType())
	}
	b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, &arrow.FixedSizeBinaryType{ByteWidth: psi.PointSize})
	defer b.Release()
	b.Reserve(col.Len())
	for i := 0; i < col.Len(); i++ {
		b.Append(col.Value(i))
	}
	out := b.NewArray()
	defer out.Release()
	return array.NewRecord(audience.PointsSchema, []arrow.Array{out}, int64(out.Len())), nil
}

// PutPoints takes the caller's re-blinding of the other party's points, in
// the order Points sent them, and stores their tokens. Sending the same
// points again is a no-op; different ones are a conflict. When both halves
// are in, the cohort is built (outside the write lock) and recorded in the
// same transaction as the half that completes it.
//
// fp is the fingerprint of the re-blinding key. A key other than the one
// the caller's tables were uploaded with is refused (errs.KeyMismatch)
// before the body is read or anything is charged; tables uploaded
// without a fingerprint take this half's.
func (s *Service) PutPoints(ctx context.Context, actor partners.Principal, c wire.Collaboration, m Match, fp string, body io.Reader) (Match, error) {
	switch m.State {
	case wire.MatchStale:
		return m, errStale(m.ID)
	case wire.MatchDeleted:
		return m, errDeleted(m.ID)
	}
	if err := psi.CheckFingerprint(fp); err != nil {
		return m, errs.New(errs.Invalid, "key_fingerprint: %v; send the fingerprint of the key re-blinding these points (psi.Key.Fingerprint; cleanroom match and the Go client send it)", err)
	}
	if err := s.checkMatchKey(ctx, s.DB.SQL(), c, actor.PartnerID, fp); err != nil {
		return m, err
	}
	target := otherSide(side(c, actor.PartnerID)) // whose points these are
	want, have := m.PointsB, m.halfBHash
	if target == "a" {
		want, have = m.PointsA, m.halfAHash
	}
	hr := &hashingReader{r: body, h: sha256.New()}
	if have != "" {
		// A retry of a half already received: the same bytes are a no-op,
		// others a conflict. Deletions since may have shortened the points
		// served, so the body is compared, not re-counted.
		if _, err := io.Copy(io.Discard, hr); err != nil {
			return m, classify(fmt.Errorf("reading the body: %w", err))
		}
		if hex.EncodeToString(hr.h.Sum(nil)) == have {
			return m, nil
		}
		return m, errs.New(errs.Conflict, "this half of match %s was already received with different points", m.ID)
	}
	ir, err := ipc.NewReader(hr)
	if err != nil {
		return m, errs.New(errs.Invalid, "body is not an Arrow IPC stream: %v", err)
	}
	defer ir.Release()
	tr := &tokenReader{src: ir, want: want, mem: memory.DefaultAllocator}
	defer tr.Release() // the only reference: the scan reads tr through a shim
	tbl := tokensTable(m.ID, target)
	staging := tbl + "_" + strings.ToLower(partners.NewID(""))
	view := "v_" + staging
	_, err = s.DB.SQL().ExecContext(ctx, `CREATE TABLE `+staging+` (pos BIGINT, token `+randomBlob+`)`)
	if err == nil {
		err = s.scan(ctx, tr, view, `INSERT INTO `+staging+` SELECT * FROM `+view)
	}
	if tr.err != nil {
		s.dropTables(staging)
		return m, classify(tr.err)
	}
	if err != nil {
		s.dropTables(staging)
		return m, fmt.Errorf("cohort.PutPoints: %w", err)
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		s.dropTables(staging)
		return m, classify(fmt.Errorf("reading the body: %w", err))
	}
	sum := hex.EncodeToString(hr.h.Sum(nil))

	// The half that completes the match builds the cohort first, outside
	// the write lock (it takes seconds at millions of rows, and every
	// other collaboration's writes and queries would wait); the Write
	// below then checks the match is still live and publishes half and
	// cohort together, in milliseconds. Taking turns per collaboration
	// means the half that arrives second sees the first one recorded.
	unlock, err := s.builds.lock(ctx, c.ID)
	if err != nil {
		s.dropTables(staging)
		return m, fmt.Errorf("cohort.PutPoints: waiting for another half of collaboration %s: %w", c.ID, err)
	}
	defer unlock()
	tokA, tokB := staging, tokensTable(m.ID, "b")
	if target == "b" {
		tokA, tokB = tokensTable(m.ID, "a"), staging
	}
	var built *builtCohort
	defer func() {
		if built != nil {
			s.dropTables(built.staged()...)
		}
	}()
	cur, err := s.GetMatch(ctx, s.DB.SQL(), c.ID, m.ID)
	if err != nil {
		s.dropTables(staging)
		return m, err
	}
	if completes(cur, target) {
		b, err := s.buildCohort(ctx, c, cur, tokA, tokB)
		if err != nil {
			s.dropTables(staging)
			// A deletion or a replacement that voided the match while it
			// was built fails the build as it fails the Write below.
			if cur, gerr := s.GetMatch(ctx, s.DB.SQL(), c.ID, m.ID); gerr == nil {
				switch cur.State {
				case wire.MatchStale:
					return m, errStale(m.ID)
				case wire.MatchDeleted:
					return m, errDeleted(m.ID)
				}
			}
			return m, fmt.Errorf("cohort.PutPoints: %w", err)
		}
		built = &b
	}

	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		cur, err := s.GetMatch(ctx, tx, c.ID, m.ID)
		if err != nil {
			return err
		}
		// A deletion or a replacement voided it while the points arrived
		// (or the cohort was built).
		switch cur.State {
		case wire.MatchStale:
			return errStale(m.ID)
		case wire.MatchDeleted:
			return errDeleted(m.ID)
		}
		if err := s.checkMatchKey(ctx, tx, c, actor.PartnerID, fp); err != nil {
			return err
		}
		received, got := cur.HalfB, cur.halfBHash
		if target == "a" {
			received, got = cur.HalfA, cur.halfAHash
		}
		if received {
			// The same half arrived twice at once (and may have completed
			// the match): as for a retry, the same bytes are a no-op and
			// others a conflict.
			if got != sum {
				return errs.New(errs.Conflict, "this half of match %s was already received with different points", m.ID)
			}
			m = cur
			return errRaceLost
		}
		// Builds take turns, so what the build saw is still so; should it
		// not be, nothing half-built is published.
		if completes(cur, target) != (built != nil) {
			return errs.New(errs.Conflict, "match %s changed while its cohort was built; send the half again", m.ID)
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+tbl); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+staging+` RENAME TO `+tbl); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE matches SET half_`+target+`_sha256 = ?, updated_at = ? WHERE id = ?`, sum, s.now().UTC(), m.ID); err != nil {
			return err
		}
		// Tables uploaded by a client that stated no key take this half's,
		// so a later half with another key is refused.
		if _, err := tx.ExecContext(ctx, `UPDATE audiences SET key_fingerprint = ? WHERE collab_id = ? AND partner_id = ? AND deleted_at IS NULL AND key_fingerprint IS NULL`,
			fp, c.ID, actor.PartnerID); err != nil {
			return err
		}
		// The key's fingerprint is the caller's own; the other partner reads
		// only the commitment to it.
		if _, err := auditlog.AppendPrivate(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.MatchPoints,
			map[string]any{"match_id": m.ID, "side": target, "points": want, "content_sha256": sum}, map[string]any{"key_fingerprint": fp}); err != nil {
			return err
		}
		if built != nil {
			return s.publishCohort(ctx, tx, actor, c, cur, *built)
		}
		return nil
	})
	if errors.Is(err, errRaceLost) {
		s.dropTables(staging)
		return m, nil
	}
	if err != nil {
		s.dropTables(staging)
		s.logCapRefusal(ctx, actor, c, m.ID, err)
		return m, err
	}
	built = nil // published: its tables are the match's now
	return s.GetMatch(ctx, s.DB.SQL(), c.ID, m.ID)
}

// checkMatchKey refuses a match half whose key fingerprint is not the
// one the caller's current tables were uploaded with.
func (s *Service) checkMatchKey(ctx context.Context, q store.Querier, c wire.Collaboration, partnerID, fp string) error {
	tables, err := s.CurrentTables(ctx, q, c.ID, partnerID)
	if err != nil {
		return err
	}
	if t, ok := otherKey(tables, fp, ""); ok {
		return errMatchKey(fp, t)
	}
	return nil
}
