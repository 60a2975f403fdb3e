package wire

import (
	"fmt"
	"time"
)

// Role is what an API key may do.
type Role string

const (
	Admin    Role = "admin"    // manages its partner's keys and collaborations
	Engineer Role = "engineer" // uploads audiences and runs matches
	Analyst  Role = "analyst"  // queries cohorts
	Auditor  Role = "auditor"  // reads the audit log and reports
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Admin, Engineer, Analyst, Auditor:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want admin, engineer, analyst or auditor)", s)
}

// Partner is a company taking part in collaborations.
type Partner struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Key describes an API key; the secret is never stored.
type Key struct {
	ID        string     `json:"id"`
	PartnerID string     `json:"partner_id"`
	Role      Role       `json:"role"`
	Label     string     `json:"label"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Me is what GET /v1/me says of the calling key: who it acts for and
// with which role, so a client (the console) shows only what the role
// may do.
type Me struct {
	KeyID       string `json:"key_id"`
	Label       string `json:"label"`
	Role        Role   `json:"role"`
	PartnerID   string `json:"partner_id"`
	PartnerName string `json:"partner_name"`
	// Operator is true for the server operator's key (its role is admin).
	Operator bool `json:"operator"`
}

// Collaboration joins two partners under rules both approved.
type Collaboration struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Proposer string `json:"proposer"`
	Partner  string `json:"partner"`
	// ProposerName and PartnerName are the partners' names, so no reader
	// needs the partner list (an admin's) to tell who is who.
	ProposerName string `json:"proposer_name"`
	PartnerName  string `json:"partner_name"`
	Rules        Rules  `json:"rules"`
	// ApprovedRules are the rules both partners last approved, given
	// while a change of them awaits approval (state proposed after the
	// collaboration was active), so a reviewer sees what would change;
	// left out otherwise.
	ApprovedRules *Rules    `json:"approved_rules,omitempty"`
	RulesVersion  int       `json:"rules_version"`
	ApprovedBy    []string  `json:"approved_by"`
	State         string    `json:"state" schema:"enum=proposed|active|deleted"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Queryable is what an analyst may name under Rules, as the cohort
	// names it, given where a collaboration is read (GET): the rules'
	// dimensions and metrics, and every declared table's columns behind
	// its party's prefix. Absent when two declared columns would get one
	// name (rules stored before that was refused): change the rules.
	Queryable *Queryable `json:"queryable,omitempty"`
}

// Queryable lists the columns a collaboration's queries may name.
type Queryable struct {
	// Dimensions may be grouped and filtered on (time columns included).
	Dimensions []string `json:"dimensions"`
	// Metrics may be summed and averaged, each person's sum clamped to
	// its bounds.
	Metrics map[string][2]float64 `json:"metrics"`
	// Templates are the named questions an analyst may run: the rules',
	// then the built-ins they do not replace.
	Templates []Template `json:"templates"`
}

// Collaboration states.
const (
	StateProposed = "proposed"
	StateActive   = "active"
	// StateDeleted is final: a deleted collaboration's data is gone, with
	// signed receipts saying so, and no rules change or approval revives it.
	StateDeleted = "deleted"
)

// Members returns both partner IDs.
func (c *Collaboration) Members() []string { return []string{c.Proposer, c.Partner} }

// HasMember reports whether partnerID is one of the two partners.
func (c *Collaboration) HasMember(partnerID string) bool {
	return partnerID == c.Proposer || partnerID == c.Partner
}

// Other returns the other member.
func (c *Collaboration) Other(partnerID string) string {
	if partnerID == c.Proposer {
		return c.Partner
	}
	return c.Proposer
}

// ExposureCapRequest sets a partner's exposure cap (PUT
// /v1/partners/{pid}/exposure-cap): the total epsilon and delta its
// people may be exposed to across all its collaborations in a period.
// Both left out removes the cap.
type ExposureCapRequest struct {
	// Epsilon caps the epsilon, a whole number of millionths above 0;
	// left out: no cap on epsilon.
	Epsilon *float64 `json:"epsilon,omitempty"`
	// Delta caps the delta, a whole number of 1e-12 in [0, 1]; left out:
	// no cap on delta.
	Delta *float64 `json:"delta,omitempty"`
	// Refresh is the period: none (the default) counts every charge
	// ever made, a person's whole exposure; monthly counts the calendar
	// month (UTC).
	Refresh BudgetRefresh `json:"refresh,omitempty" schema:"enum=none|monthly"`
}

// ExposureCap is a partner's cap on its people's exposure across all its
// collaborations, and what counts against it now: every charge in any of
// them (queries and matches, by either partner, since a release is
// privacy loss for everyone in the cohort) in the period. A charge that
// would pass it is refused (exposure_cap_exceeded). Its own keys read
// it; the other partner of a collaboration never reads its figures.
type ExposureCap struct {
	PartnerID string `json:"partner_id"`
	// Epsilon and Delta are the cap; null: not capped.
	Epsilon *float64      `json:"epsilon"`
	Delta   *float64      `json:"delta"`
	Refresh BudgetRefresh `json:"refresh" schema:"enum=none|monthly"`
	// PeriodStart is when the period counted began (the zero time for
	// refresh none); NextRefresh when the next one begins (monthly only).
	PeriodStart time.Time  `json:"period_start"`
	NextRefresh *time.Time `json:"next_refresh,omitempty"`
	// EpsilonSpent and DeltaSpent count against the cap: the sum of the
	// partner's collaborations' totals over the period.
	EpsilonSpent float64 `json:"epsilon_spent"`
	DeltaSpent   float64 `json:"delta_spent"`
	// EpsilonRemaining and DeltaRemaining are what the cap has left;
	// null where there is no cap.
	EpsilonRemaining *float64 `json:"epsilon_remaining"`
	DeltaRemaining   *float64 `json:"delta_remaining"`
	// SetAt is when the partner's admin last set it; left out when it
	// never did.
	SetAt *time.Time `json:"set_at,omitempty"`
}
