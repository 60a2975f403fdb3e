package wire

import "time"

// Report is a collaboration's transparency report (GET .../report): what
// is held, what was done with it, and what was deleted. Of the other
// partner's data it says only what the protocol already tells: no exact
// sizes, consent mix or cohort counts.
type Report struct {
	Collaboration Collaboration `json:"collaboration"`
	GeneratedAt   time.Time     `json:"generated_at"`
	// DataHeld has one line per partner of the collaboration.
	DataHeld []HeldData `json:"data_held"`
	// Matches with the noisy cohort sizes both partners saw.
	Matches          []ReportMatch      `json:"matches"`
	QueriesByAnalyst []AnalystQueries   `json:"queries_by_analyst"`
	BudgetSpentByDay []DaySpend         `json:"budget_spent_by_day"`
	RefusalsByReason []ReasonRefusals   `json:"refusals_by_reason"`
	Deletions        []DeletionReceipts `json:"deletions"`
	// Honoured lists each deletion receipt of the reader's own partner
	// (every partner's for the operator) with how long it took: a
	// partner's deletion timings are facts about its own data.
	Honoured []HonouredDeletion `json:"honoured"`
	// Exposure is what a person in the cohort is exposed to: everything
	// both partners spent on the collaboration, matches included, over
	// its life.
	Exposure Exposure `json:"exposure"`
	// Words are the report's sentences, the same in the console, the
	// HTML export and the command line.
	Words ReportWords `json:"words"`
}

// ReportWords are a transparency report's sentences.
type ReportWords struct {
	// Exposure says what the collaboration's total epsilon (and delta)
	// bounds, in context.
	Exposure string `json:"exposure"`
}

// HeldData is what the clean room holds of one partner's data.
type HeldData struct {
	PartnerID string `json:"partner_id"`
	// Audience is the partner's first current table in name order (its
	// one table, named audience, in a collaboration whose rules declare
	// none), as GET .../audiences shows it to the reader; left out when
	// there is none. Tables has every one.
	Audience *Audience  `json:"audience,omitempty"`
	Tables   []Audience `json:"tables,omitempty"`
	// ConsentRowsByPurpose is the consent mix of the partner's rows in
	// its tables with a consent column, for the reader's own tables
	// (every partner's for the operator).
	ConsentRowsByPurpose []PurposeRows `json:"consent_rows_by_purpose,omitempty"`
}

// PurposeRows is how many rows of an audience carry one consent purpose.
type PurposeRows struct {
	Purpose string `json:"purpose"`
	Rows    int64  `json:"rows"`
}

// ReportMatch is one match of the collaboration.
type ReportMatch struct {
	ID    string     `json:"id"`
	State MatchState `json:"state"`
	// CohortSizeNoisy is null until the match is done.
	CohortSizeNoisy *int64    `json:"cohort_size_noisy"`
	Epsilon         float64   `json:"epsilon"`
	CreatedAt       time.Time `json:"created_at"`
}

// AnalystQueries counts the answers one analyst key released.
type AnalystQueries struct {
	AnalystKey string `json:"analyst_key"`
	// AnalystLabel is the key's label, as its partner's admin named it.
	AnalystLabel string  `json:"analyst_label"`
	PartnerID    string  `json:"partner_id"`
	Queries      int64   `json:"queries"`
	Epsilon      float64 `json:"epsilon"`
	// AnalystName is how the report names the key: its label, with its
	// role and the end of its ID when another key of the report has the
	// same label (or it has none), so two keys never read alike.
	AnalystName string `json:"analyst_name"`
}

// DaySpend is the budget one partner spent on one day (UTC) by kind of
// charge (query or match).
type DaySpend struct {
	Day       string  `json:"day" schema:"format=date"`
	PartnerID string  `json:"partner_id"`
	Kind      string  `json:"kind"`
	Charges   int64   `json:"charges"`
	Epsilon   float64 `json:"epsilon"`
	Delta     float64 `json:"delta"`
}

// ReasonRefusals counts refused queries by refusal code.
type ReasonRefusals struct {
	Reason   ErrorCode `json:"reason"`
	Refusals int64     `json:"refusals"`
}

// DeletionReceipts counts the deletion receipts of one kind issued to one
// partner, and the identifiers submitted with them: requests, never rows
// (how many cohort rows a deletion removed would tell whether the people
// matched).
type DeletionReceipts struct {
	Kind                 DeletionKind `json:"kind"`
	PartnerID            string       `json:"partner_id"`
	Receipts             int64        `json:"receipts"`
	IdentifiersSubmitted int64        `json:"identifiers_submitted"`
}

// Exposure is the collaboration's total spend.
type Exposure struct {
	CollaborationEpsilonSpent float64 `json:"collaboration_epsilon_spent"`
	CollaborationDeltaSpent   float64 `json:"collaboration_delta_spent"`
}

// HonouredDeletion is one deletion receipt and how long honouring it
// took: from the request (or, for an expiry, from the moment retention
// ran out) to the signed receipt, rounded down to the second, so the
// work done (which depends on the rows deleted) does not show finer.
type HonouredDeletion struct {
	ReceiptID string       `json:"receipt_id"`
	Kind      DeletionKind `json:"kind"`
	PartnerID string       `json:"partner_id"`
	// Identifiers is how many identifiers the request submitted (0 for
	// whole audiences and collaborations).
	Identifiers int64     `json:"identifiers"`
	RequestedAt time.Time `json:"requested_at"`
	HonouredAt  time.Time `json:"honoured_at"`
	Seconds     int64     `json:"seconds"`
	// Took is Seconds in words ("under a second", "3 minutes").
	Took string `json:"took"`
}

// PrivacyReport is the public privacy report of one partner over a
// period: what a brand can publish for the people in its data. It holds
// only aggregate, non-sensitive figures about the partner's own use of
// its data: nothing about any person, nor about a partner's data.
type PrivacyReport struct {
	PartnerID   string    `json:"partner_id"`
	PartnerName string    `json:"partner_name"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	GeneratedAt time.Time `json:"generated_at"`
	// Collaborations are those that received the partner's data during
	// the period: a table of the partner's uploaded before its end and
	// not deleted before its start. (A collaboration proposed or agreed
	// but never sent data is not a use of anyone's data.)
	Collaborations []PrivacyCollaboration `json:"collaborations"`
	// TotalEpsilonSpent and TotalDeltaSpent are a person's exposure across
	// all the partner's collaborations (deleted ones and those before the
	// period included) up to the period's end: the sum of their totals,
	// by basic composition what someone in every one of them was exposed
	// to. It is at least each collaboration's own figure.
	TotalEpsilonSpent float64 `json:"total_epsilon_spent"`
	TotalDeltaSpent   float64 `json:"total_delta_spent"`
	// ExposureCap is the partner's cap on that total as it stands when
	// the report is generated (every part null: none) and what counts
	// against it then.
	ExposureCap ExposureCap `json:"exposure_cap"`
	// IdentifiersInTheClear is always 0: the server never receives an
	// identifier, not even hashed; it is stated so the page can say so.
	IdentifiersInTheClear int64 `json:"identifiers_in_the_clear"`
	// Requests honoured in the period, of the partner's own data.
	OptOutsHonoured      int64 `json:"opt_outs_honoured"`
	DeletionsHonoured    int64 `json:"deletion_requests_honoured"`
	ExpiriesHonoured     int64 `json:"expiries_honoured"`
	IdentifiersSubmitted int64 `json:"identifiers_submitted"`
	// MedianSecondsToHonour is the median of HonouredDeletion.Seconds
	// over the period's receipts; null without any.
	MedianSecondsToHonour *int64 `json:"median_seconds_to_honour"`
	// About is what the partner's admin wrote for its readers.
	About ReportSettings `json:"about"`
	// Words are the report's sentences, the same in the console, the
	// HTML export and the command line.
	Words PrivacyWords `json:"words"`
}

// ReportSettings are what a partner's admin adds to its public privacy
// report (PUT /v1/partners/{pid}/report-settings): each may be empty.
type ReportSettings struct {
	// Introduction is the partner's own words to its customers, in
	// paragraphs separated by newlines; at most 2,000 characters.
	Introduction string `json:"introduction"`
	// PrivacyContact is who to ask about privacy: an email address, a
	// postal address or a name; at most 200 characters.
	PrivacyContact string `json:"privacy_contact"`
	// OptOutURL is where a person opts out: an https URL of at most 500
	// characters.
	OptOutURL string `json:"opt_out_url"`
}

// PrivacyWords are a privacy report's sentences.
type PrivacyWords struct {
	Title  string `json:"title"`  // "Brand Co: how your data was used"
	Period string `json:"period"` // whom the report is for, and the period
	// Uses says how many collaborations received the data.
	Uses string `json:"uses"`
	// Identifiers follows the number of identifiers received in the
	// clear (0), saying why there are none.
	Identifiers string `json:"identifiers"`
	// Guarantee says what epsilon bounds, with familiar figures.
	Guarantee string `json:"guarantee"`
	// Requests sums up the requests honoured; MedianTime is the median
	// time to honour one in words ("" without any).
	Requests   string `json:"requests"`
	MedianTime string `json:"median_time"`
}

// PrivacyCollaboration is one collaboration in a PrivacyReport.
type PrivacyCollaboration struct {
	Name        string `json:"name"`
	PartnerName string `json:"partner_name"` // the other partner
	Purpose     string `json:"purpose"`
	// State is the collaboration's state now (deleted: its data is gone).
	State string `json:"state" schema:"enum=proposed|active|deleted"`
	Noise Noise  `json:"noise"`
	// EpsilonSpent and DeltaSpent are the collaboration's total spend
	// from its start to the period's end, both partners and matches: the
	// privacy loss a person in it was exposed to.
	EpsilonSpent float64 `json:"epsilon_spent"`
	DeltaSpent   float64 `json:"delta_spent"`
	// Queries answered and matches run in the period, by both partners.
	Queries int64 `json:"queries"`
	Matches int64 `json:"matches"`
	// Use sums up its answers and matches in the period and its state;
	// Exposure says what EpsilonSpent means, in context.
	Use      string `json:"use"`
	Exposure string `json:"exposure"`
}
