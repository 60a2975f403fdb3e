package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/client"
)

// auditPage is GET /v1/audit's JSON answer, as a test reads it.
type auditPage struct {
	Entries []struct {
		Seq      int64           `json:"seq"`
		At       string          `json:"at"`
		Action   string          `json:"action"`
		Actor    string          `json:"actor"`
		Partner  string          `json:"partner_id"`
		CollabID string          `json:"collab_id"`
		Private  json.RawMessage `json:"private"`
	} `json:"entries"`
	Total  int64             `json:"total"`
	Labels map[string]string `json:"labels"`
}

func auditGet(t *testing.T, c *client.Client, v url.Values) auditPage {
	t.Helper()
	raw, err := c.AuditLog(context.Background(), v)
	if err != nil {
		t.Fatalf("GET /v1/audit?%s: %v", v.Encode(), err)
	}
	var p auditPage
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// auditCSV fetches the log as CSV, by format=csv or by Accept.
func auditCSV(t *testing.T, e *env, key string, v url.Values, byAccept bool) [][]string {
	t.Helper()
	if !byAccept {
		v.Set("format", "csv")
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/audit?"+v.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if byAccept {
		req.Header.Set("Accept", "text/csv")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV of the log: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, body)
	}
	return recs
}

// auditFilterEnv is a clean room whose log has answered and refused
// queries by keys with labels, in two collaborations, one named like a
// formula; the publisher's analyst, whose label the brand must never read,
// asks too.
type auditFilterEnv struct {
	*env
	summer       string // the second collaboration's id
	formula      string // the brand's analyst key labelled like a formula
	formulaKeyID string
	pubLabel     string
}

const formulaLabel = "=HYPERLINK(\"http://x\")"

func newAuditFilterEnv(t *testing.T) *auditFilterEnv {
	e := newQueryEnv(t)
	ctx := context.Background()
	a := &auditFilterEnv{env: e, pubLabel: "Pub private label"}
	k, err := e.brand.admin.CreateKey(ctx, e.brand.id, "analyst", formulaLabel)
	if err != nil {
		t.Fatal(err)
	}
	a.formula, a.formulaKeyID = k.Secret, k.Key.ID
	pk, err := e.pub.admin.CreateKey(ctx, e.pub.id, "analyst", a.pubLabel)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct{ key, sql string }{
		{a.formula, `SELECT COUNT(*) AS n FROM cohort`},
		{a.formula, `SELECT secret FROM cohort`}, // refused
		{e.brand.analyst.Key, `SELECT AVG(brand_co_value) AS v FROM cohort`},
		{pk.Secret, `SELECT COUNT(*) AS n FROM cohort`},
	} {
		e.ask(q.key, q.sql, 0.5, "")
	}
	co, err := e.brand.admin.Propose(ctx, "@Summer sale", e.pub.id, json.RawMessage(testRules))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.admin.Approve(ctx, co.ID, co.RulesVersion); err != nil {
		t.Fatal(err)
	}
	a.summer = co.ID
	return a
}

// An auditor filters the log by an action's prefix, a key's label and a
// collaboration's name, reads how many entries match in all, and jumps
// to a page.
func TestAuditFiltersByPrefixLabelAndName(t *testing.T) {
	e := newAuditFilterEnv(t)
	aud := e.brand.audit

	q := auditGet(t, aud, url.Values{"action": {"query"}})
	seen := map[string]bool{}
	for _, en := range q.Entries {
		seen[en.Action] = true
		if !strings.HasPrefix(en.Action, "query.") {
			t.Errorf("action=query lists %s", en.Action)
		}
	}
	if !seen["query.run"] || !seen["query.refused"] {
		t.Errorf("action=query lists the actions %v, want query.run and query.refused", seen)
	}
	if q.Total != int64(len(q.Entries)) || q.Total != 4 {
		t.Errorf("action=query: total %d for %d entries, want the 4 questions asked", q.Total, len(q.Entries))
	}
	if run := auditGet(t, aud, url.Values{"action": {"query.run"}}); run.Total == 0 || run.Total >= q.Total {
		t.Errorf("action=query.run matches %d of query's %d", run.Total, q.Total)
	}

	// A label, in any case, is the key it names; the label shows beside
	// the key's entries.
	byLabel := auditGet(t, aud, url.Values{"actor": {strings.ToLower(formulaLabel)}})
	if byLabel.Total != 2 || len(byLabel.Entries) != 2 {
		t.Fatalf("actor=%q: %d entries (total %d), want its 2 queries", formulaLabel, len(byLabel.Entries), byLabel.Total)
	}
	for _, en := range byLabel.Entries {
		if en.Actor != e.formulaKeyID {
			t.Errorf("actor=label lists an entry of %s", en.Actor)
		}
	}
	if got := byLabel.Labels[e.formulaKeyID]; got != formulaLabel {
		t.Errorf("the key's label shows as %q", got)
	}
	if byID := auditGet(t, aud, url.Values{"actor": {e.formulaKeyID}}); byID.Total != 2 {
		t.Errorf("actor=its id: total %d, want 2", byID.Total)
	}

	// A collaboration by its name, in any case, or its id.
	summer := auditGet(t, aud, url.Values{"collab": {"@SUMMER SALE"}})
	if summer.Total < 2 {
		t.Fatalf("collab by name: %d entries", summer.Total)
	}
	for _, en := range summer.Entries {
		if en.CollabID != e.summer {
			t.Errorf("collab by name lists an entry of %q", en.CollabID)
		}
	}
	if byID := auditGet(t, aud, url.Values{"collab": {e.summer}}); byID.Total != summer.Total {
		t.Errorf("collab by id: %d entries, by name %d", byID.Total, summer.Total)
	}
	both := auditGet(t, aud, url.Values{"collab": {"campaign"}, "action": {"query"}, "actor": {e.formulaKeyID}})
	if both.Total != 2 {
		t.Errorf("collab, action and actor together: %d entries, want 2", both.Total)
	}

	// The total counts every page; offset jumps to one.
	all := auditGet(t, aud, url.Values{"order": {"desc"}})
	page := auditGet(t, aud, url.Values{"order": {"desc"}, "limit": {"3"}, "offset": {"3"}})
	if page.Total != all.Total || len(page.Entries) != 3 || page.Entries[0].Seq != all.Entries[3].Seq {
		t.Errorf("offset 3, limit 3: total %d of %d, first %v, want #%d", page.Total, all.Total, page.Entries, all.Entries[3].Seq)
	}

	// Bad filters are refused, saying what is wrong.
	for _, bad := range []struct {
		v    url.Values
		says string
	}{
		{url.Values{"action": {"que"}}, "action"},
		{url.Values{"action": {"query.run.x"}}, "action"},
		{url.Values{"collab": {"no such collaboration"}}, "collab"},
		{url.Values{"actor": {"nobody"}}, "actor"},
		{url.Values{"offset": {"-1"}}, "offset"},
		{url.Values{"format": {"xml"}}, "format"},
	} {
		st, msg := getError(t, e.env, aud.Key, "/v1/audit?"+bad.v.Encode())
		if st != http.StatusBadRequest || !strings.HasPrefix(msg, bad.says+":") {
			t.Errorf("%s: %d %q, want 400 about %s", bad.v.Encode(), st, msg, bad.says)
		}
	}
}

// The brand's auditor never reads the publisher's key labels or private
// parts: not in JSON, not in CSV, not by filtering on them.
func TestAuditLabelsAndPrivatePartsStayWithTheirPartner(t *testing.T) {
	e := newAuditFilterEnv(t)
	aud := e.brand.audit
	all := auditGet(t, aud, url.Values{"collab": {e.collab}})
	var pubActor string
	for _, en := range all.Entries {
		if en.Partner == e.pub.id && en.Action == "query.run" {
			pubActor = en.Actor
		}
		if en.Partner == e.pub.id && len(en.Private) > 0 {
			t.Errorf("the brand reads the publisher's private part of %s: %s", en.Action, en.Private)
		}
	}
	if pubActor == "" {
		t.Fatal("the publisher's query is not in the brand's log")
	}
	if l, ok := all.Labels[pubActor]; ok {
		t.Errorf("the brand reads the publisher's key label %q", l)
	}
	if all.Labels[e.formulaKeyID] != formulaLabel {
		t.Errorf("the brand's own key's label shows as %q", all.Labels[e.formulaKeyID])
	}
	// Filtering by the publisher's label finds no key: the same answer as
	// a label nobody has.
	st, msg := getError(t, e.env, aud.Key, "/v1/audit?"+url.Values{"actor": {e.pubLabel}}.Encode())
	st2, msg2 := getError(t, e.env, aud.Key, "/v1/audit?"+url.Values{"actor": {"Nobody's label"}}.Encode())
	if st != http.StatusBadRequest || st2 != st || strings.Replace(msg, e.pubLabel, "X", 1) != strings.Replace(msg2, "Nobody's label", "X", 1) {
		t.Errorf("filtering by the publisher's label: %d %q; by a label nobody has: %d %q", st, msg, st2, msg2)
	}
	// The publisher's own auditor reads its label.
	if pub := auditGet(t, e.pub.audit, url.Values{"actor": {e.pubLabel}}); pub.Total != 1 || pub.Labels[pubActor] != e.pubLabel {
		t.Errorf("the publisher's auditor, by its own label: total %d, labels %v", pub.Total, pub.Labels)
	}

	recs := auditCSV(t, e.env, aud.Key, url.Values{"collab": {e.collab}}, false)
	text := ""
	for _, r := range recs {
		text += strings.Join(r, "\x00") + "\n"
	}
	if strings.Contains(text, e.pubLabel) {
		t.Error("the brand's CSV holds the publisher's key label")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	uploads := 0
	for _, r := range recs[1:] {
		if r[col["action"]] != "audience.upload" {
			continue
		}
		uploads++
		own := r[col["partner_id"]] == e.brand.id
		if has := strings.Contains(r[col["private"]], "content_sha256"); has != own {
			t.Errorf("CSV: the %s upload's private part is %q", r[col["partner"]], r[col["private"]])
		}
	}
	if uploads != 2 {
		t.Errorf("CSV: %d uploads, want both partners'", uploads)
	}
}

// A CSV of a filtered view holds exactly the entries the filters match,
// all of them, with names beside the IDs, and no cell a spreadsheet would
// run as a formula.
func TestAuditCSVOfAFilteredView(t *testing.T) {
	e := newAuditFilterEnv(t)
	aud := e.brand.audit
	v := url.Values{"action": {"query"}, "order": {"desc"}}
	want := auditGet(t, aud, v)
	for _, byAccept := range []bool{false, true} {
		recs := auditCSV(t, e.env, aud.Key, url.Values{"action": {"query"}, "order": {"desc"}}, byAccept)
		if got := strings.Join(recs[0], ","); got != "seq,at,action,actor,actor_label,partner_id,partner,collab_id,collaboration,details,private,hash" {
			t.Fatalf("CSV columns: %s", got)
		}
		if len(recs)-1 != int(want.Total) {
			t.Fatalf("CSV (Accept %v): %d rows, the filters match %d", byAccept, len(recs)-1, want.Total)
		}
		for i, r := range recs[1:] {
			if r[0] != itoa(int(want.Entries[i].Seq)) || !strings.HasPrefix(r[2], "query.") || !strings.HasSuffix(r[1], "Z") {
				t.Errorf("CSV row %d: %q, want entry #%d, a query, a UTC time", i, r, want.Entries[i].Seq)
			}
			if r[3] == e.formulaKeyID && r[4] != "'"+formulaLabel {
				t.Errorf("a label that is a formula shows as %q, want it behind an apostrophe", r[4])
			}
			if r[7] == e.collab && (r[8] != "campaign" || r[6] == "") {
				t.Errorf("CSV row %d names the collaboration %q and the partner %q", i, r[8], r[6])
			}
			for j, cell := range r {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("CSV row %d, column %s: %q a spreadsheet would run", i, recs[0][j], cell)
				}
			}
		}
	}
	// A collaboration's name that reads as a formula, by name.
	recs := auditCSV(t, e.env, aud.Key, url.Values{"collab": {"@summer sale"}}, false)
	if len(recs) < 3 || recs[1][8] != "'@Summer sale" {
		t.Errorf("CSV of the collaboration %q: %q", "@Summer sale", recs)
	}
	// A limit bounds a CSV.
	if recs := auditCSV(t, e.env, aud.Key, url.Values{"limit": {"2"}}, false); len(recs) != 3 {
		t.Errorf("CSV with limit 2: %d rows", len(recs)-1)
	}
}
