package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/wire"
)

// The reports' sentences live here, and only here: the console, the HTML
// export and the command line all show the words a report carries, so
// one fact reads the same everywhere.

// Familiar figures to set an epsilon against, from the deployments
// people have heard of (Apple's Differential Privacy Overview; the US
// Census Bureau's 2020 redistricting data, persons file).
const (
	strongEpsilon = 1.0
	appleEpsilon  = 8.0
	censusEpsilon = 17.14
)

// guarantee says what the privacy guarantee is and what epsilon bounds,
// once, for a report's readers.
const guarantee = "Every answer is about a group of people, with random noise added, so that it hardly depends on any one person " +
	"(differential privacy). A number, ε (epsilon), bounds how much all the answers of a collaboration together could reveal " +
	"about any one person, whoever asks and whatever else they know: the smaller, the more private. For comparison, 1 or less " +
	"is considered strong protection; Apple collects keyboard and emoji statistics at 2 to 8 a day; the US Census Bureau " +
	"published its 2020 redistricting data at 17.14."

// Exposure says what a total epsilon and delta mean, set against the
// familiar figures: no powers of e, no tiny numbers in exponent form.
func Exposure(eps, delta float64) string {
	if eps <= 0 {
		return "ε = 0: nothing has been released yet."
	}
	var how string
	switch {
	case eps <= strongEpsilon:
		how = "strong protection (1 or less is the strongest range in common use)"
	case eps <= appleEpsilon:
		how = "moderate protection, within the range of published uses (Apple's daily figures run from 2 to 8)"
	case eps <= censusEpsilon:
		how = "weaker protection, at the high end of published uses (the US Census Bureau's 2020 redistricting data used 17.14)"
	default:
		how = "weaker protection than the best-known published uses (the US Census Bureau's 2020 redistricting data used 17.14)"
	}
	s := "ε = " + epsText(eps) + ": " + how
	if delta > 0 {
		s += "; the bound holds but for a chance of " + oneIn(delta) + " (δ)"
	}
	return s + "."
}

// epsText shows an epsilon to two decimals at most, as people read it.
func epsText(eps float64) string {
	if eps < 0.01 {
		return "under 0.01"
	}
	return strconv.FormatFloat(math.Round(eps*100)/100, 'f', -1, 64)
}

// oneIn says a small probability as "1 in 77,000" (two significant
// figures), or "under 1 in a trillion".
func oneIn(p float64) string {
	if p >= 1 {
		return "1 in 1"
	}
	n := 1 / p
	if n >= 1e12 {
		return "under 1 in a trillion"
	}
	mag := math.Pow(10, math.Floor(math.Log10(n))-1)
	return "1 in " + thousands(int64(math.Round(n/mag)*mag))
}

// thousands writes n with commas: 77,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Duration says whole seconds in the unit a person would use.
func Duration(s int64) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case s < 1:
		return "under a second"
	case s < 60:
		return unit(s, "second")
	case s < 3600:
		return unit(s/60, "minute")
	case s < 86400:
		return unit(s/3600, "hour")
	}
	return unit(s/86400, "day")
}

// count says n things, in words for people.
func count(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return thousands(n) + " " + many
}

// day is a date as people write it.
func day(t time.Time) string { return t.UTC().Format("2 January 2006") }

// PrivacyWords writes the privacy report's sentences from its figures
// (the server does; the command line again for a report without them).
func PrivacyWords(r *wire.PrivacyReport) {
	who := r.PartnerName
	if who == "" {
		who = r.PartnerID
	}
	// until is the first instant after the period.
	w := wire.PrivacyWords{
		Title:     who + ": how your data was used",
		Period:    "A report for the people in " + who + "'s data, from " + day(r.Since) + " to " + day(r.Until.Add(-time.Nanosecond)) + ".",
		Guarantee: guarantee,
		Identifiers: "identifiers (email addresses, phone numbers) reached the clean room in the clear. " + who +
			" scrambles each one with a secret key of its own before it leaves, and people are matched on these scrambled codes only: " +
			"the clean room never sees who you are, not even as a hash.",
	}
	if n := len(r.Collaborations); n == 0 {
		w.Uses = who + "'s data was not sent to any collaboration in this period."
	} else {
		w.Uses = who + "'s data was sent to " + count(int64(n), "collaboration", "collaborations") + " in this period. In each, " + who +
			" and one partner ask questions that only get answers about large groups, never about a person."
	}
	for i := range r.Collaborations {
		c := &r.Collaborations[i]
		c.Use = count(c.Queries, "answer", "answers") + " and " + count(c.Matches, "match", "matches") + " in the period (" + stateWords(c.State) + ")"
	}
	for i := range r.Collaborations {
		c := &r.Collaborations[i]
		c.Exposure = Exposure(c.EpsilonSpent, c.DeltaSpent)
	}
	if n := r.OptOutsHonoured + r.DeletionsHonoured + r.ExpiriesHonoured; n == 0 {
		w.Requests = "No request to honour in this period."
	} else {
		w.Requests = "Each of the " + count(n, "request", "requests") + " got a signed receipt"
		if n == 1 {
			w.Requests = "The request got a signed receipt"
		}
		if r.IdentifiersSubmitted > 0 {
			w.Requests += "; " + count(r.IdentifiersSubmitted, "person was", "people were") + " named in them"
		}
		w.Requests += "."
	}
	if r.MedianSecondsToHonour != nil {
		w.MedianTime = Duration(*r.MedianSecondsToHonour)
	}
	r.Words = w
}

// stateWords says a collaboration's state for the public.
func stateWords(state string) string {
	switch state {
	case wire.StateActive:
		return "ongoing"
	case wire.StateProposed:
		return "its rules await approval"
	case wire.StateDeleted:
		return "ended, its data deleted"
	}
	return state
}

// ExposureWords is the transparency report's sentence on its exposure.
func ExposureWords(e wire.Exposure) string {
	return "Everything both partners spent over the collaboration's life, matches included, bounds what all its answers together " +
		"could reveal about any one person in the cohort. " + Exposure(e.CollaborationEpsilonSpent, e.CollaborationDeltaSpent)
}

// analystNames names each key of a transparency report so that no two
// read alike: its label, and when another key has the same label (or it
// has none), its role and the end of its ID.
func analystNames(qs []wire.AnalystQueries, roles map[string]string) {
	labels := map[string]int{}
	for _, q := range qs {
		labels[q.AnalystLabel]++
	}
	for i := range qs {
		q := &qs[i]
		id := q.AnalystKey
		if len(id) > 4 {
			id = "…" + id[len(id)-4:]
		}
		switch {
		case q.AnalystLabel == "":
			q.AnalystName = "key " + id
		case labels[q.AnalystLabel] > 1:
			role := roles[q.AnalystKey]
			if role == "" {
				role = "analyst"
			}
			q.AnalystName = q.AnalystLabel + " (" + role + ", key " + id + ")"
		default:
			q.AnalystName = q.AnalystLabel
		}
	}
	// Keys whose IDs end alike too are named by their whole IDs.
	names := map[string]int{}
	for _, q := range qs {
		names[q.AnalystName]++
	}
	for i := range qs {
		if q := &qs[i]; names[q.AnalystName] > 1 {
			q.AnalystName = strings.TrimSpace(q.AnalystLabel + " (key " + q.AnalystKey + ")")
		}
	}
}
