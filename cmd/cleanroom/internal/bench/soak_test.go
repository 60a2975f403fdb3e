package bench

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/wire"
)

// A soak that cannot fail proves nothing: each invariant, broken on
// purpose in an otherwise consistent snapshot, is reported.
func TestSoakChecksCatchBrokenInvariants(t *testing.T) {
	entry := func(seq int64, actor, partner, action string, d map[string]any) audit.Entry {
		b, _ := json.Marshal(d)
		return audit.Entry{Seq: seq, Actor: actor, PartnerID: partner, CollabID: "c1", Action: action, Details: b}
	}
	good := func() (snapshot, seen) {
		s := snapshot{
			Entries: []audit.Entry{
				entry(1, "k_eng", "p_a", string(audit.AudienceUpload), map[string]any{"audience_id": "a1"}),
				entry(2, "k_eng", "p_b", string(audit.AudienceUpload), map[string]any{"audience_id": "a2"}),
				entry(3, "k_eng", "p_a", string(audit.MatchComplete), map[string]any{"match_id": "m1", "epsilon": 0.1}),
				entry(4, "k_an", "p_a", string(audit.QueryRun), map[string]any{"plan_hash": "h1", "cohort_version": "m1.0",
					"epsilon": 0.5, "delta": 1e-7, "answer_sha256": "s1"}),
				entry(5, "k_an", "p_a", string(audit.QueryCached), map[string]any{"plan_hash": "h1", "cohort_version": "m1.0", "epsilon": 0.5}),
				entry(6, "k_eng", "p_b", string(audit.DeletionOptOut), map[string]any{"receipt_id": "r1"}),
			},
			Ledger: []ledgerRow{
				{"c1", "p_a", "match", "m1", 100000, 0},
				{"c1", "p_b", "match", "m1", 100000, 0},
				{"c1", "p_a", "query", "h1", 500000, 100000},
			},
			Collabs: map[string]collabInfo{"c1": {Members: []string{"p_a", "p_b"}, Budget: wire.Amount{EpsilonUnits: 1000000, DeltaUnits: 1000000}}},
			Tables:  map[string]int64{"aud_a1": 50, "aud_a2": 40, "cpeople_m1": 20, "clink_m1_a1": 20, "clink_m1_a2": 20, "mpts_m1_a": 30, "audiences": 2},
			Audiences: []audienceRec{{ID: "a1", Collab: "c1", Table: "aud_a1", Rows: 50}, {ID: "a2", Collab: "c1", Table: "aud_a2", Rows: 40},
				{ID: "a0", Collab: "c1", Table: "aud_a0", Rows: 10, Deleted: true}},
			Matches: []matchRec{{ID: "m1", State: "done", Cohort: "cpeople_m1", CohortSize: 20, Links: []string{"clink_m1_a1", "clink_m1_a2"}}},
		}
		told := seen{
			Answers: []seenAnswer{{Collab: "c1", Actor: "k_an", PlanHash: "h1", Version: "m1.0", Epsilon: 0.5, AnswerSHA256: "s1"},
				{Collab: "c1", Actor: "k_an", PlanHash: "h1", Version: "m1.0", Epsilon: 0.5, Cached: true}},
			Matches:  []seenRef{{"c1", "m1"}},
			Uploads:  []seenRef{{"c1", "a1"}, {"c1", "a2"}},
			Receipts: []seenRef{{"c1", "r1"}},
		}
		return s, told
	}
	s, told := good()
	if f := checkLog(s, told); len(f) > 0 {
		t.Fatalf("a consistent snapshot fails: %q", f)
	}
	if f, o := checkTables(s); len(f) > 0 || len(o) > 0 {
		t.Fatalf("a consistent snapshot's tables fail: %q, orphans %q", f, o)
	}

	for _, c := range []struct {
		name, want string
		breakIt    func(*snapshot, *seen)
	}{
		{"lost debit", "lost debit", func(s *snapshot, _ *seen) { s.Ledger = s.Ledger[:2] }},
		{"lost match debit", "lost debit", func(s *snapshot, _ *seen) { s.Ledger = s.Ledger[1:] }},
		{"debit without its entry", "unlogged debit", func(s *snapshot, _ *seen) {
			s.Ledger = append(s.Ledger, ledgerRow{"c1", "p_b", "query", "h2", 10000, 0})
		}},
		{"debit of another amount", "lost debit", func(s *snapshot, _ *seen) { s.Ledger[2].EpsilonUnits = 400000 }},
		{"overspend", "overspend", func(s *snapshot, _ *seen) {
			s.Collabs["c1"] = collabInfo{Members: []string{"p_a", "p_b"}, Budget: wire.Amount{EpsilonUnits: 550000, DeltaUnits: 1000000}}
		}},
		{"answer not logged", "answer not in the log", func(s *snapshot, _ *seen) {
			s.Entries = append(s.Entries[:3], s.Entries[4:]...)
			s.Ledger = s.Ledger[:2]
		}},
		{"answer altered", "answer not in the log", func(_ *snapshot, t *seen) { t.Answers[0].AnswerSHA256 = "other" }},
		{"cached read not logged", "cached answer not in the log", func(_ *snapshot, t *seen) { t.Answers = append(t.Answers, t.Answers[1]) }},
		{"match lost", "match m9", func(_ *snapshot, t *seen) { t.Matches = append(t.Matches, seenRef{"c1", "m9"}) }},
		{"upload lost", "upload a9", func(_ *snapshot, t *seen) { t.Uploads = append(t.Uploads, seenRef{"c1", "a9"}) }},
		{"receipt lost", "deletion receipt r9", func(_ *snapshot, t *seen) { t.Receipts = append(t.Receipts, seenRef{"c1", "r9"}) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, told := good()
			c.breakIt(&s, &told)
			f := checkLog(s, told)
			if !strings.Contains(strings.Join(f, "\n"), c.want) {
				t.Errorf("failures %q, want one with %q", f, c.want)
			}
		})
	}

	for _, c := range []struct {
		name, want, orphan string
		breakIt            func(*snapshot)
	}{
		{"partial audience", "partial audience", "", func(s *snapshot) { s.Tables["aud_a1"] = 49 }},
		{"audience without its table", "table aud_a2 is missing", "", func(s *snapshot) { delete(s.Tables, "aud_a2") }},
		{"deleted audience's table left", "still there", "", func(s *snapshot) { s.Tables["aud_a0"] = 10 }},
		{"partial cohort", "partial cohort", "", func(s *snapshot) { s.Tables["cpeople_m1"] = 19 }},
		{"linked table missing", "clink_m1_a2 is missing", "", func(s *snapshot) { delete(s.Tables, "clink_m1_a2") }},
		{"orphan", "", "aud_zz", func(s *snapshot) { s.Tables["aud_zz"] = 5 }},
		{"orphan of a stale match", "", "cpeople_m1", func(s *snapshot) { s.Matches[0].State = "stale"; s.Matches[0].Cohort = "" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := good()
			c.breakIt(&s)
			f, o := checkTables(s)
			if c.want != "" && !strings.Contains(strings.Join(f, "\n"), c.want) {
				t.Errorf("failures %q, want one with %q", f, c.want)
			}
			if c.orphan != "" && !strings.Contains(strings.Join(o, " "), c.orphan) {
				t.Errorf("orphans %q, want %s", o, c.orphan)
			}
		})
	}

	// Through the API: the budget route's spend against the log's.
	s, told = good()
	logged := logSpent(s.Entries, s.Collabs)
	if f := checkSpendBetween(logged, logged, logged); len(f) > 0 {
		t.Fatalf("the log's own sums fail: %q", f)
	}
	api := snapshot{Entries: s.Entries, Collabs: s.Collabs, Spent: logged}
	if f := checkLog(api, told); len(f) > 0 {
		t.Fatalf("the budget route equal to the log fails: %q", f)
	}
	more := map[string]map[string]wire.Amount{"c1": {"p_a": {EpsilonUnits: logged["c1"]["p_a"].EpsilonUnits + 1}, "p_b": logged["c1"]["p_b"]}}
	if f := checkSpendBetween(logged, logged, more); len(f) == 0 {
		t.Error("a charge the ledger lacks passes checkSpendBetween")
	}
	if f := checkSpendBetween(more, more, logged); len(f) == 0 {
		t.Error("a debit the log lacks passes checkSpendBetween")
	}
	api.Spent = more
	if f := checkLog(api, told); !strings.Contains(strings.Join(f, "\n"), "ledger differs from the log") {
		t.Errorf("the budget route above the log: failures %q", f)
	}
}

// answerSHA256 is the hash the server logs: the answer before its
// budgets' state and cached flag are added, numbers as sent.
func TestAnswerSHA256(t *testing.T) {
	a := wire.Answer{Columns: []wire.Column{{Name: "n", Kind: "count"}}, Rows: [][]any{{int64(12345678901)}}, Intervals: [][]*wire.Interval{{nil}},
		Epsilon: 0.1, EpsilonSplit: map[string]float64{"count": 0.1}, Noise: "laplace", PlanHash: "h", CohortVersion: "m.1"}
	served := a
	served.BudgetRemaining, served.CollaborationEpsilonSpent, served.Cached = 9.9, 0.2, true
	b, _ := json.Marshal(served)
	_, got, err := answerSHA256(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(a)
	if sum := sha256hex(want); got != sum {
		t.Errorf("answerSHA256 = %s, want %s", got, sum)
	}
}
