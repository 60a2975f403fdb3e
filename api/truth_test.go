package api_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/wire"
)

// truthRules: the brand's customers (consent) and purchases, the
// publisher's exposures; each person's spend clamped to [0, 300] and
// their rows of a table to 30 (max_rows_per_person), campaigns public.
const truthRules = `{"purpose": "measurement", "min_upload_users": 1000, "min_group_users": 1,
	"epsilon_budget": 100000, "max_query_epsilon": 100, "delta_budget": 0.001, "max_groups_contributed": 3,
	"public_groups": {"publisher_campaign": {"values": ["c0", "c1", "c2"]}},
	"tables": [
		{"party": "proposer", "name": "customers", "columns": [{"name": "region", "role": "dimension"}]},
		{"party": "proposer", "name": "purchases", "columns": [{"name": "amount", "role": "metric", "bounds": [0, 300]}, {"name": "purchase_date", "role": "time"}]},
		{"party": "partner", "name": "exposures", "columns": [{"name": "campaign", "role": "dimension"}, {"name": "exposure_date", "role": "time"}]}]}`

const truthMaxRows, truthHi = 30, 300.0

// truthFiles writes the three tables as their owners would upload them:
// the brand's 2000 customers (every tenth without the purpose) with 0-8
// purchases each; the publisher's people 800-2799 with 1-40 exposures
// each over three campaigns (every ninth without consent).
func truthFiles() map[string]string {
	r := rand.New(rand.NewPCG(7, 11))
	var cu, pu, ex strings.Builder
	cu.WriteString("email,region,consent\n")
	pu.WriteString("email,amount,purchase_date\n")
	ex.WriteString("email,campaign,exposure_date,consent\n")
	for k := 0; k < 2000; k++ {
		c := "measurement"
		if k%10 == 0 {
			c = "marketing"
		}
		fmt.Fprintf(&cu, "person%d@example.com,r%d,%s\n", k, r.IntN(4), c)
		for range r.IntN(9) {
			fmt.Fprintf(&pu, "person%d@example.com,%.2f,2026-11-%02d\n", k, 1+r.Float64()*59, 1+r.IntN(30))
		}
	}
	for k := 800; k < 2800; k++ {
		c := "measurement"
		if k%9 == 0 {
			c = ""
		}
		for range 1 + r.IntN(40) {
			fmt.Fprintf(&ex, "person%d@example.com,c%d,2026-%s,%s\n", k, r.IntN(3),
				time.Date(2026, 10, 25+r.IntN(32), 0, 0, 0, 0, time.UTC).Format("01-02"), c)
		}
	}
	return map[string]string{"customers": cu.String(), "purchases": pu.String(), "exposures": ex.String()}
}

// truthRows reads an uploaded file back: rows by email, as maps of column
// to value.
func truthRows(t *testing.T, text string) map[string][]map[string]string {
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]map[string]string{}
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, h := range recs[0] {
			row[h] = rec[i]
		}
		out[row["email"]] = append(out[row["email"]], row)
	}
	return out
}

func truthDay(t *testing.T, s string) time.Time {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func truthAmount(t *testing.T, s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAnswersCentreOnTheUploadedTruth asks the questions campaign
// measurement is made of over uploaded files and checks each answer
// against the truth computed from those files alone (after the stated
// clamping): at a high epsilon within four half-widths of its own stated
// interval, or for a
// distribution within 1% of the bounds; and at the default epsilon, the
// stated 95% intervals cover the truth in 92-98% of repeated runs.
func TestAnswersCentreOnTheUploadedTruth(t *testing.T) {
	e := newEnv(t, truthRules)
	files := truthFiles()
	for _, x := range []struct {
		p     party
		table string
	}{{e.brand, "customers"}, {e.brand, "purchases"}, {e.pub, "exposures"}} {
		e.mustUploadTable(x.p, x.table, files[x.table], "")
	}
	e.matchBoth()

	// The truth, from the files: people in both with the purpose.
	customers, purchases, exposures := truthRows(t, files["customers"]), truthRows(t, files["purchases"]), truthRows(t, files["exposures"])
	var people []string
	for email, rows := range customers {
		if rows[0]["consent"] == "measurement" && len(exposures[email]) > 0 && exposures[email][0]["consent"] == "measurement" {
			people = append(people, email)
		}
	}
	slices.Sort(people)
	clampRows := func(n int) float64 { return float64(min(n, truthMaxRows)) }
	clampSpend := func(s float64) float64 { return math.Min(math.Max(s, 0), truthHi) }
	spend := func(email string) float64 {
		s := 0.0
		for _, p := range purchases[email] {
			s += truthAmount(t, p["amount"])
		}
		return s
	}
	campaigns := []string{"c0", "c1", "c2"}
	// inWindow: a person's purchases within lo..hi days after one of
	// their exposures in the campaign, each purchase once.
	inWindow := func(email, campaign string, lo, hi int) []map[string]string {
		var out []map[string]string
		for _, p := range purchases[email] {
			for _, x := range exposures[email] {
				d := int(truthDay(t, p["purchase_date"]).Sub(truthDay(t, x["exposure_date"])).Hours() / 24)
				if x["campaign"] == campaign && d >= lo && d <= hi {
					out = append(out, p)
					break
				}
			}
		}
		return out
	}
	type want map[string][]float64 // group ("" when ungrouped) -> each aggregate's truth
	reach, week, after := want{}, want{}, want{}
	freq := want{}
	var spends []float64
	for _, c := range campaigns {
		reach[c], week[c], after[c] = []float64{0, 0}, []float64{0, 0}, []float64{0, 0}
	}
	for n := 1; n <= truthMaxRows; n++ {
		freq[strconv.Itoa(n)] = []float64{0}
	}
	for _, email := range people {
		freq[strconv.Itoa(int(clampRows(len(exposures[email]))))][0]++
		byCampaign := map[string]int{}
		for _, x := range exposures[email] {
			byCampaign[x["campaign"]]++
		}
		for c, n := range byCampaign {
			reach[c][0]++
			reach[c][1] += clampRows(n)
		}
		if len(purchases[email]) > 0 {
			spends = append(spends, clampSpend(spend(email)))
		}
		for _, c := range campaigns {
			if w := inWindow(email, c, 0, 7); len(w) > 0 {
				week[c][0]++
				week[c][1] += clampRows(len(w))
			}
			if w := inWindow(email, c, 0, 3650); len(w) > 0 {
				s := 0.0
				for _, p := range w {
					s += truthAmount(t, p["amount"])
				}
				after[c][0]++
				after[c][1] += clampSpend(s)
			}
		}
	}
	slices.Sort(spends)
	mean := 0.0
	for _, s := range spends {
		mean += s
	}
	mean /= float64(len(spends))
	variance := 0.0
	for _, s := range spends {
		variance += (s - mean) * (s - mean)
	}
	variance /= float64(len(spends))
	dist := want{"": {spends[len(spends)/2], math.Sqrt(variance)}}
	// The median by campaign: of the spend of people with purchases and
	// an exposure in the campaign.
	byCampaignSpends := map[string][]float64{}
	for _, email := range people {
		seen := map[string]bool{}
		for _, x := range exposures[email] {
			if c := x["campaign"]; !seen[c] && len(purchases[email]) > 0 {
				seen[c] = true
				byCampaignSpends[c] = append(byCampaignSpends[c], clampSpend(spend(email)))
			}
		}
	}
	medians := want{}
	for c, v := range byCampaignSpends {
		slices.Sort(v)
		medians[c] = []float64{v[len(v)/2]}
	}

	ask := func(q string, eps float64) wire.Answer {
		t.Helper()
		st, body, _ := e.ask(e.brand.analyst.Key, q, eps, "")
		var a wire.Answer
		if err := json.Unmarshal(body, &a); st != 200 || err != nil {
			t.Fatalf("%s: %d %s", q, st, body)
		}
		return a
	}
	// groupsOf maps an answer's rows by their dimensions' values.
	groupsOf := func(a wire.Answer, dims int) map[string]int {
		out := map[string]int{}
		for i, row := range a.Rows {
			var k []string
			for _, v := range row[:dims] {
				k = append(k, fmt.Sprint(v))
			}
			out[strings.Join(k, ",")] = i
		}
		return out
	}
	for _, c := range []struct {
		name, sql string
		dims      int
		truth     want
		slack     float64 // a distribution's error allowed (no interval)
	}{
		{"people in both", `SELECT COUNT(*) AS people FROM cohort`, 0, want{"": {float64(len(people))}}, 0},
		{"reach and frequency by campaign", `SELECT publisher_campaign, COUNT(*) AS reach, COUNT(publisher_exposure_date) AS exposures FROM cohort GROUP BY publisher_campaign`, 1, reach, 0},
		{"frequency distribution", `SELECT exposures, COUNT(*) AS people FROM (SELECT COUNT(publisher_exposure_date) AS exposures FROM cohort GROUP BY person) GROUP BY exposures`, 1, freq, 0},
		{"conversions within 7 days of an exposure", `SELECT publisher_campaign, COUNT(*) AS converters, COUNT(brand_co_purchase_date) AS conversions FROM cohort
			WHERE date_diff('day', publisher_exposure_date, brand_co_purchase_date) BETWEEN 0 AND 7 GROUP BY publisher_campaign`, 1, week, 0},
		{"sales after first exposure", `SELECT publisher_campaign, COUNT(*) AS buyers, SUM(brand_co_amount) AS sales FROM cohort
			WHERE date_diff('day', publisher_exposure_date, brand_co_purchase_date) BETWEEN 0 AND 3650 GROUP BY publisher_campaign`, 1, after, 0},
		{"median purchase and spread of spend", `SELECT MEDIAN(brand_co_amount) AS median, STDDEV(brand_co_amount) AS spread FROM cohort`, 0, dist, truthHi / 100},
		{"median spend by campaign", `SELECT publisher_campaign, MEDIAN(brand_co_amount) AS median FROM cohort GROUP BY publisher_campaign`, 1, medians, truthHi / 100},
	} {
		a := ask(c.sql, 60)
		rows := groupsOf(a, c.dims)
		if len(rows) != len(c.truth) {
			t.Errorf("%s: %d groups, the files have %d", c.name, len(rows), len(c.truth))
		}
		for g, truth := range c.truth {
			i, ok := rows[g]
			if !ok {
				t.Errorf("%s: group %q missing", c.name, g)
				continue
			}
			for j, w := range truth {
				got, _ := a.Rows[i][c.dims+j].(float64)
				if iv := a.Intervals[i][c.dims+j]; iv != nil {
					// At a high epsilon the interval is narrow, and the
					// truth within four of its half-widths (a 95% interval
					// alone misses one check in twenty; four half-widths
					// of Laplace noise, about one in 160,000), give or
					// take one: a count's noise is whole, its interval
					// may have no width at all.
					half := (iv.Upper - iv.Lower) / 2
					if math.Abs(got-w) > 4*half+1 || half > 0.025*math.Max(w, 20) {
						t.Errorf("%s, group %q, column %d: answer %v (95%%: %v to %v), truth from the files %v", c.name, g, j, got, iv.Lower, iv.Upper, w)
					}
				} else if math.Abs(got-w) > c.slack {
					t.Errorf("%s, group %q, column %d: answer %v, truth from the files %v (within %v)", c.name, g, j, got, w, c.slack)
				}
			}
		}
	}

	// At the default epsilon (0: the rule's), public groups: the stated
	// 95% intervals of a count, a sum and an average cover the truth in
	// 92-98% of runs (aliases differ so that no answer is a cached one).
	byCampaign := want{}
	for _, c := range campaigns {
		byCampaign[c] = []float64{0, 0}
	}
	for _, email := range people {
		if len(purchases[email]) == 0 {
			continue
		}
		seen := map[string]bool{}
		for _, x := range exposures[email] {
			if c := x["campaign"]; !seen[c] {
				seen[c] = true
				byCampaign[c][0]++
				byCampaign[c][1] += clampSpend(spend(email))
			}
		}
	}
	covered, total := 0, 0
	for run := range 150 {
		a := ask(fmt.Sprintf(`SELECT publisher_campaign, COUNT(*) AS people%d, SUM(brand_co_amount) AS spend, AVG(brand_co_amount) AS average FROM cohort GROUP BY publisher_campaign`, run), 0)
		rows := groupsOf(a, 1)
		for _, c := range campaigns {
			i, ok := rows[c]
			if !ok {
				t.Fatalf("public group %s missing", c)
			}
			tr := byCampaign[c]
			for j, w := range []float64{tr[0], tr[1], tr[1] / tr[0]} {
				iv := a.Intervals[i][1+j]
				total++
				if iv != nil && iv.Lower <= w && w <= iv.Upper {
					covered++
				}
			}
		}
	}
	if r := float64(covered) / float64(total); r < 0.92 || r > 0.98 {
		t.Errorf("the stated 95%% intervals covered the truth in %.1f%% of %d", 100*r, total)
	} else {
		t.Logf("the stated 95%% intervals covered the truth in %.1f%% of %d", 100*r, total)
	}
}
