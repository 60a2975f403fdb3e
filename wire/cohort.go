package wire

import (
	"encoding/json"
	"time"
)

// Audience is one party's upload in a collaboration. Its sizes and
// content hash are shown only to the partner that uploaded it (and the
// operator); the other partner sees that it exists, when, and its
// columns.
type Audience struct {
	ID        string `json:"id"`
	CollabID  string `json:"collab_id"`
	PartnerID string `json:"partner_id"`
	// Table is the table's name in the collaboration (DefaultTable when
	// the upload named none). Replacing a table replaces only it.
	Table string `json:"table"`
	// Rows, People, PeopleMatchable (the people who can match: consented
	// for the collaboration's purpose and not opted out) and ContentSHA256
	// are left out for the other partner.
	Rows            int64           `json:"rows,omitempty"`
	People          int64           `json:"people,omitempty"`
	PeopleMatchable int64           `json:"people_matchable,omitempty"`
	ContentSHA256   string          `json:"content_sha256,omitempty"`
	Columns         json.RawMessage `json:"columns"`
	CreatedAt       time.Time       `json:"created_at"`
	Replaced        string          `json:"replaced,omitempty"`
	// KeyFingerprint is the fingerprint of the partner's blinding key the
	// upload stated (psi.Key.Fingerprint: a hash of its public point),
	// shown only to that partner and the operator.
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// DryRun: the upload was checked, not stored (dry_run=true). Its ID
	// and CreatedAt are then empty, and Replaced names the table it would
	// replace.
	DryRun bool `json:"dry_run,omitempty"`
}

// Match is one run of the protocol over both parties' current tables.
type Match struct {
	ID        string     `json:"id"`
	CollabID  string     `json:"collab_id"`
	AudienceA string     `json:"audience_a"` // the proposer's first table (by name)
	AudienceB string     `json:"audience_b"` // the other partner's first table
	State     MatchState `json:"state"`
	PointsA   int64      `json:"points_a"`
	PointsB   int64      `json:"points_b"`
	HalfA     bool       `json:"half_a_received"` // A's points re-blinded by B
	HalfB     bool       `json:"half_b_received"`
	// Side is the caller's side, "a" (the proposer) or "b", as the API
	// fills it in; YourHalfReceived says whether the caller's re-blinding
	// is in, so a re-run knows it has nothing to send.
	Side             string `json:"side,omitempty" schema:"enum=a|b"`
	YourHalfReceived bool   `json:"your_half_received"`
	// NoisySize is the cohort size with Laplace noise (epsilon
	// MatchEpsilon): the only size parties ever see.
	NoisySize *int64    `json:"cohort_size_noisy,omitempty"`
	Epsilon   float64   `json:"epsilon"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MatchState is where a match is in the protocol.
type MatchState string

// Match states.
const (
	// MatchWaiting: waiting for one or both re-blinded halves.
	MatchWaiting MatchState = "waiting"
	// MatchDone: both halves are in and the cohort is built.
	MatchDone MatchState = "done"
	// MatchStale: an audience was replaced, or people deleted, before the
	// match completed, or its audience was replaced since; its data is
	// gone and a new match must be run.
	MatchStale MatchState = "stale"
	// MatchDeleted: its audience or collaboration was deleted, and its data with it.
	MatchDeleted MatchState = "deleted"
)

// DeletionKind is what a deletion receipt (and its audit entry,
// deletion.<kind>) says was asked for.
type DeletionKind string

// Deletion kinds.
const (
	// DeleteIdentifiers: people, given as points blinded with the party's key.
	DeleteIdentifiers DeletionKind = "identifiers"
	// DeleteOptOut: the same, and the people are kept out of later
	// uploads and matches.
	DeleteOptOut DeletionKind = "optout"
	// DeleteAudience: a whole audience, at its owner's request.
	DeleteAudience DeletionKind = "audience"
	// DeleteCollaboration: both parties' tables and every match; final.
	DeleteCollaboration DeletionKind = "collaboration"
	// DeleteExpiry: an audience whose retention passed, by the janitor.
	DeleteExpiry DeletionKind = "expiry"
)

// NotDisclosed is what an access request says of the cohort: the same
// words for everyone, matched or not.
const NotDisclosed = "whether this person matched the other partner's data is never disclosed, to either partner; deleting them removes their cohort rows, if they had any"

// Access is what the clean room holds of one person's data for the partner
// that asks: its own rows, consent and opt-out, and where its audience
// went. It never says whether the person matched: that would be a fact
// about the other partner's data.
type Access struct {
	CollabID  string `json:"collab_id"`
	PartnerID string `json:"partner_id"`
	// Purpose is the consent purpose the collaboration matches on.
	Purpose string `json:"purpose"`
	// AudienceID and Rows are the person's rows in the table named
	// DefaultTable; Tables has them in every table of the caller's.
	AudienceID string                      `json:"audience_id,omitempty"`
	Rows       []map[string]any            `json:"rows"`
	Tables     map[string][]map[string]any `json:"tables"`
	// Matchable: rows of the person carry the purpose and they have not
	// opted out, so their data takes part in matches.
	Matchable  bool       `json:"matchable"`
	OptedOut   bool       `json:"opted_out"`
	OptedOutAt *time.Time `json:"opted_out_at,omitempty"`
	Cohorts    string     `json:"cohorts"`
}
