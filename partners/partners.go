package partners

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// The API's names for partners, keys and collaborations are the wire
// package's; these aliases keep the server's code in its own words.
type (
	Role          = wire.Role
	Partner       = wire.Partner
	Key           = wire.Key
	Collaboration = wire.Collaboration
	Rules         = wire.Rules
)

// Roles and collaboration states, as the wire package names them.
const (
	Admin    = wire.Admin
	Engineer = wire.Engineer
	Analyst  = wire.Analyst
	Auditor  = wire.Auditor

	StateProposed = wire.StateProposed
	StateActive   = wire.StateActive
	StateDeleted  = wire.StateDeleted
)

// Roles and the default rules, as the wire package reads them.
var (
	ParseRole    = wire.ParseRole
	DefaultRules = wire.DefaultRules
)

// ParseRules reads rules JSON over the defaults as wire.ParseRules does;
// its errors are of kind errs.InvalidRules and name the rule.
func ParseRules(b []byte) (Rules, error) {
	r, err := wire.ParseRules(b)
	if err != nil {
		return r, errs.New(errs.InvalidRules, "%v", err)
	}
	return r, nil
}

// OperatorID is the partner that runs the server. Its admin creates
// partners; its auditor reads the whole log.
const OperatorID = "operator"

func refuseDeleted(c Collaboration) error {
	if c.State == StateDeleted {
		return errs.New(errs.Conflict, "collaboration %s was deleted; deletion is final, propose a new collaboration instead", c.ID)
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return errs.New(errs.Invalid, "%s", fmt.Sprintf(format, args...))
}

// Principal is an authenticated key.
type Principal struct {
	KeyID     string
	PartnerID string
	Role      Role
}

// IsOperator reports whether the key belongs to the server's operator.
func (p Principal) IsOperator() bool { return p.PartnerID == OperatorID }

// keyPrefix starts every API key, so leaked keys are recognisable.
const keyPrefix = "crk_"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func randomID(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return prefix + strings.ToLower(b32.EncodeToString(b))
}

// NewID returns a random identifier with a type prefix ("c_", "a_"...).
func NewID(prefix string) string { return randomID(prefix, 10) }

var partnerName = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._&'-]{0,99}$`)

// CreatePartner adds a partner and its first admin key, returning the key's
// secret (shown once). Only the operator's admin creates partners; every
// key after the first is the partner's own admin's business (CreateKey).
func CreatePartner(ctx context.Context, tx *sql.Tx, actor Principal, name string) (Partner, Key, string, error) {
	if !actor.IsOperator() || actor.Role != Admin {
		return Partner{}, Key{}, "", errs.New(errs.Forbidden, "only the operator's admin key creates partners")
	}
	name = strings.TrimSpace(name)
	if !partnerName.MatchString(name) {
		return Partner{}, Key{}, "", invalidf("partner name %q: use 1-100 letters, digits, spaces or . _ & ' -", name)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM partners WHERE lower(name) = lower(?)`, name).Scan(&n); err != nil {
		return Partner{}, Key{}, "", err
	}
	if n > 0 {
		return Partner{}, Key{}, "", errs.New(errs.Conflict, "a partner named %q already exists", name)
	}
	p := Partner{ID: NewID("p_"), Name: name, CreatedAt: now()}
	if _, err := tx.ExecContext(ctx, `INSERT INTO partners VALUES (?, ?, ?)`, p.ID, p.Name, p.CreatedAt); err != nil {
		return Partner{}, Key{}, "", err
	}
	if _, err := auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, "", audit.PartnerCreate, map[string]any{"partner_id": p.ID, "name": p.Name}); err != nil {
		return Partner{}, Key{}, "", err
	}
	k, secret, err := createKey(ctx, tx, actor, p.ID, Admin, "first admin key")
	return p, k, secret, err
}

// EnsureOperator creates the operator partner and its admin key on first
// start. It returns the secret only when it created the key.
func EnsureOperator(ctx context.Context, tx *sql.Tx) (secret string, err error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM partners WHERE id = ?`, OperatorID).Scan(&n); err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO partners VALUES (?, 'operator', ?)`, OperatorID, now()); err != nil {
		return "", err
	}
	sys := Principal{KeyID: "system", PartnerID: OperatorID}
	if _, err := auditlog.Append(ctx, tx, sys.KeyID, OperatorID, "", audit.ServerInit, map[string]any{}); err != nil {
		return "", err
	}
	_, secret, err = createKey(ctx, tx, sys, OperatorID, Admin, "operator admin key")
	return secret, err
}

// keyAdmin refuses an actor that is not partnerID's own admin: a
// partner's keys, after the first, are its admin's alone, not the
// operator's.
func keyAdmin(actor Principal, partnerID string) error {
	if actor.IsOperator() {
		return errs.New(errs.Forbidden, "a partner's keys are its own admin's to manage; the operator creates a partner and its first admin key only")
	}
	if actor.PartnerID != partnerID {
		return errs.New(errs.NotFound, "partner %s", partnerID)
	}
	if actor.Role != Admin {
		return errs.New(errs.Forbidden, "this needs a key with role admin; yours is %s", actor.Role)
	}
	return nil
}

// CreateKey adds an API key for the actor's own partner (the actor must be
// its admin) and returns its secret, which is stored only as a SHA-256
// hash: it cannot be shown again.
func CreateKey(ctx context.Context, tx *sql.Tx, actor Principal, partnerID string, role Role, label string) (Key, string, error) {
	if err := keyAdmin(actor, partnerID); err != nil {
		return Key{}, "", err
	}
	return createKey(ctx, tx, actor, partnerID, role, label)
}

func createKey(ctx context.Context, tx *sql.Tx, actor Principal, partnerID string, role Role, label string) (Key, string, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return Key{}, "", invalidf("%v", err)
	}
	if len(label) > 200 {
		return Key{}, "", invalidf("label longer than 200 characters")
	}
	if _, err := GetPartner(ctx, tx, partnerID); err != nil {
		return Key{}, "", err
	}
	k := Key{ID: NewID("k_"), PartnerID: partnerID, Role: role, Label: label, CreatedAt: now()}
	secretPart := randomID("", 32)
	sum := sha256.Sum256([]byte(secretPart))
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)`,
		k.ID, k.PartnerID, string(k.Role), k.Label, sum[:], k.CreatedAt); err != nil {
		return Key{}, "", err
	}
	if _, err := auditlog.Append(ctx, tx, actor.KeyID, partnerID, "", audit.KeyCreate, map[string]any{"key_id": k.ID, "role": k.Role, "label": k.Label}); err != nil {
		return Key{}, "", err
	}
	return k, keyPrefix + k.ID + "." + secretPart, nil
}

// RevokeKey stops a key of the actor's own partner (the actor must be its
// admin) from working. Revoking twice is a no-op.
func RevokeKey(ctx context.Context, tx *sql.Tx, actor Principal, partnerID, keyID string) (Key, error) {
	if err := keyAdmin(actor, partnerID); err != nil {
		return Key{}, err
	}
	k, err := GetKey(ctx, tx, keyID)
	if err != nil || k.PartnerID != partnerID {
		return Key{}, errs.New(errs.NotFound, "key %s", keyID)
	}
	if k.RevokedAt != nil {
		return k, nil
	}
	t := now()
	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, t, keyID); err != nil {
		return Key{}, err
	}
	k.RevokedAt = &t
	if _, err := auditlog.Append(ctx, tx, actor.KeyID, partnerID, "", audit.KeyRevoke, map[string]any{"key_id": keyID}); err != nil {
		return Key{}, err
	}
	return k, nil
}

// Querier reads: *sql.DB, *sql.Tx or *sql.Conn.
type Querier = store.Querier

// GetKey returns a key by its id.
func GetKey(ctx context.Context, q Querier, id string) (Key, error) {
	var k Key
	var revoked sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT id, partner_id, role, label, created_at, revoked_at FROM api_keys WHERE id = ?`, id).
		Scan(&k.ID, &k.PartnerID, &k.Role, &k.Label, &k.CreatedAt, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return k, errs.New(errs.NotFound, "key %s", id)
	}
	if revoked.Valid {
		t := revoked.Time
		k.RevokedAt = &t
	}
	return k, err
}

// ListKeys returns the keys (never their secrets) of the actor's own
// partner; the actor must be its admin.
func ListKeys(ctx context.Context, q Querier, actor Principal, partnerID string) ([]Key, error) {
	if err := keyAdmin(actor, partnerID); err != nil {
		return nil, err
	}
	ids, err := store.QueryStrings(ctx, q, `SELECT id FROM api_keys WHERE partner_id = ? ORDER BY created_at`, partnerID)
	if err != nil {
		return nil, err
	}
	keys := make([]Key, 0, len(ids))
	for _, id := range ids {
		k, err := GetKey(ctx, q, id)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Authenticate checks an API key and returns who it belongs to. Every
// failure is the same errs.Unauthorized, so a caller learns nothing about
// which keys exist.
func Authenticate(ctx context.Context, q Querier, apiKey string) (Principal, error) {
	rest, ok := strings.CutPrefix(apiKey, keyPrefix)
	if !ok {
		return Principal{}, errs.Unauthorized
	}
	id, secret, ok := strings.Cut(rest, ".")
	if !ok || len(id) > 64 {
		return Principal{}, errs.Unauthorized
	}
	var p Principal
	var stored []byte
	var revoked sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT id, partner_id, role, secret_sha256, revoked_at FROM api_keys WHERE id = ?`, id).
		Scan(&p.KeyID, &p.PartnerID, &p.Role, &stored, &revoked)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		// An outage is the operator's to see, not an unknown key: the
		// caller gets a 500 and the log says why.
		return Principal{}, fmt.Errorf("authenticating a key: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if err != nil || revoked.Valid || subtle.ConstantTimeCompare(sum[:], stored) != 1 {
		return Principal{}, errs.Unauthorized
	}
	return p, nil
}

// GetPartner returns a partner.
func GetPartner(ctx context.Context, q Querier, id string) (Partner, error) {
	var p Partner
	err := q.QueryRowContext(ctx, `SELECT id, name, created_at FROM partners WHERE id = ?`, id).Scan(&p.ID, &p.Name, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return p, errs.New(errs.NotFound, "partner %s", id)
	}
	return p, err
}

// ListPartners returns every partner but the operator (an empty list, not
// nil, when there is none).
func ListPartners(ctx context.Context, q Querier) ([]Partner, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, created_at FROM partners WHERE id <> ? ORDER BY created_at`, OperatorID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Partner{}
	for rows.Next() {
		var p Partner
		if err := rows.Scan(&p.ID, &p.Name, &p.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Propose creates a collaboration between the actor's partner and another,
// approved by the proposer only until the other approves.
func Propose(ctx context.Context, tx *sql.Tx, actor Principal, name, otherPartner string, rules Rules) (Collaboration, error) {
	if actor.IsOperator() {
		return Collaboration{}, errs.New(errs.Forbidden, "the operator does not take part in collaborations; use a partner's admin key")
	}
	if otherPartner == actor.PartnerID {
		return Collaboration{}, invalidf("a collaboration needs two different partners")
	}
	if otherPartner == OperatorID {
		return Collaboration{}, invalidf("partner %s cannot take part in a collaboration", otherPartner)
	}
	if _, err := GetPartner(ctx, tx, otherPartner); err != nil {
		return Collaboration{}, invalidf("partner %q does not exist", otherPartner)
	}
	if err := checkRules(&rules, actor.PartnerID, otherPartner); err != nil {
		return Collaboration{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return Collaboration{}, invalidf("name must be 1-200 characters")
	}
	c := Collaboration{ID: NewID("c_"), Name: name, Proposer: actor.PartnerID, Partner: otherPartner, Rules: rules,
		RulesVersion: 1, ApprovedBy: []string{actor.PartnerID}, State: StateProposed, CreatedAt: now()}
	c.UpdatedAt = c.CreatedAt
	rj, _ := json.Marshal(c.Rules)
	aj, _ := json.Marshal(c.ApprovedBy)
	if _, err := tx.ExecContext(ctx, `INSERT INTO collaborations (id, name, proposer, partner, rules, rules_version, approved_by, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.Proposer, c.Partner, string(rj), c.RulesVersion, string(aj), c.State, c.CreatedAt, c.UpdatedAt); err != nil {
		return Collaboration{}, err
	}
	_, err := auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.CollaborationPropose,
		map[string]any{"name": c.Name, "partner": c.Partner, "rules": c.Rules, "rules_version": 1})
	return c, err
}

func checkRules(r *Rules, a, b string) error {
	if err := r.Validate(); err != nil {
		return errs.New(errs.InvalidRules, "%v", err)
	}
	for _, q := range r.Queriers {
		if q != a && q != b {
			return errs.New(errs.InvalidRules, "rules: queriers: %q is not a partner of this collaboration", q)
		}
	}
	return nil
}

// Approve records the actor's partner's approval of the current rules; the
// collaboration is active once both approved. Approving again is a no-op.
func Approve(ctx context.Context, tx *sql.Tx, actor Principal, id string, rulesVersion int) (Collaboration, error) {
	c, err := GetCollaboration(ctx, tx, id, actor)
	if err != nil {
		return c, err
	}
	if !c.HasMember(actor.PartnerID) {
		return c, errs.New(errs.Forbidden, "only the collaboration's partners approve or change its rules")
	}
	if err := refuseDeleted(c); err != nil {
		return c, err
	}
	if rulesVersion != 0 && rulesVersion != c.RulesVersion {
		return c, errs.New(errs.Conflict, "the rules changed (now version %d, you approved version %d); review them and approve again", c.RulesVersion, rulesVersion)
	}
	if slices.Contains(c.ApprovedBy, actor.PartnerID) {
		return c, nil
	}
	c.ApprovedBy = append(c.ApprovedBy, actor.PartnerID)
	if len(c.ApprovedBy) == 2 {
		c.State, c.ApprovedRules = StateActive, nil
	}
	c.UpdatedAt = now()
	aj, _ := json.Marshal(c.ApprovedBy)
	// Rules both approved are kept apart, for the diff of a later change.
	if _, err := tx.ExecContext(ctx, `UPDATE collaborations SET approved_by = ?, state = ?, updated_at = ?,
		approved_rules = CASE WHEN ? = 'active' THEN rules ELSE approved_rules END WHERE id = ?`,
		string(aj), c.State, c.UpdatedAt, c.State, c.ID); err != nil {
		return c, err
	}
	_, err = auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.CollaborationApprove,
		map[string]any{"rules_version": c.RulesVersion, "state": c.State})
	return c, err
}

// ChangeRules proposes new rules: the collaboration goes back to proposed
// with only the actor's approval, until the other partner approves again.
func ChangeRules(ctx context.Context, tx *sql.Tx, actor Principal, id string, rules Rules) (Collaboration, error) {
	c, err := GetCollaboration(ctx, tx, id, actor)
	if err != nil {
		return c, err
	}
	if !c.HasMember(actor.PartnerID) {
		return c, errs.New(errs.Forbidden, "only the collaboration's partners approve or change its rules")
	}
	if err := refuseDeleted(c); err != nil {
		return c, err
	}
	if err := checkRules(&rules, c.Proposer, c.Partner); err != nil {
		return c, err
	}
	c.Rules, c.RulesVersion, c.ApprovedBy, c.State, c.UpdatedAt = rules, c.RulesVersion+1, []string{actor.PartnerID}, StateProposed, now()
	rj, _ := json.Marshal(c.Rules)
	aj, _ := json.Marshal(c.ApprovedBy)
	if _, err := tx.ExecContext(ctx, `UPDATE collaborations SET rules = ?, rules_version = ?, approved_by = ?, state = ?, updated_at = ? WHERE id = ?`,
		string(rj), c.RulesVersion, string(aj), c.State, c.UpdatedAt, c.ID); err != nil {
		return c, err
	}
	if _, err = auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.CollaborationChangeRules,
		map[string]any{"rules": c.Rules, "rules_version": c.RulesVersion}); err != nil {
		return c, err
	}
	return GetCollaboration(ctx, tx, c.ID, actor) // with the approved rules beside the change
}

// GetCollaboration returns a collaboration the viewer may see: a member's
// key, or the operator's. Anyone else gets errs.NotFound, so outsiders cannot
// tell which collaborations exist.
func GetCollaboration(ctx context.Context, q Querier, id string, viewer Principal) (Collaboration, error) {
	var c Collaboration
	var rj, aj string
	var approved sql.NullString
	err := q.QueryRowContext(ctx, `SELECT c.id, c.name, c.proposer, c.partner, CAST(c.rules AS VARCHAR), c.rules_version, CAST(c.approved_by AS VARCHAR),
			c.state, c.created_at, c.updated_at, CAST(c.approved_rules AS VARCHAR), coalesce(a.name, ''), coalesce(b.name, '')
		FROM collaborations c LEFT JOIN partners a ON a.id = c.proposer LEFT JOIN partners b ON b.id = c.partner
		WHERE c.id = ?`, id).Scan(&c.ID, &c.Name, &c.Proposer, &c.Partner, &rj, &c.RulesVersion, &aj, &c.State, &c.CreatedAt, &c.UpdatedAt,
		&approved, &c.ProposerName, &c.PartnerName)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !c.HasMember(viewer.PartnerID) && !viewer.IsOperator()) {
		return Collaboration{}, errs.New(errs.NotFound, "collaboration %s", id)
	}
	if err != nil {
		return c, err
	}
	c.Rules = DefaultRules() // rules added since a collaboration was stored take their defaults
	if err := json.Unmarshal([]byte(rj), &c.Rules); err != nil {
		return c, fmt.Errorf("collaboration %s: stored rules: %w", id, err)
	}
	if err := json.Unmarshal([]byte(aj), &c.ApprovedBy); err != nil {
		return c, fmt.Errorf("collaboration %s: stored approvals: %w", id, err)
	}
	// The rules both last approved are shown beside a pending change, so
	// whoever approves it sees what would change.
	if approved.Valid && c.State == StateProposed {
		r := DefaultRules()
		if err := json.Unmarshal([]byte(approved.String), &r); err != nil {
			return c, fmt.Errorf("collaboration %s: stored approved rules: %w", id, err)
		}
		c.ApprovedRules = &r
	}
	return c, nil
}

// Reject turns down a pending change of the rules: the rules both last
// approved come back, as a new version both partners approve. Only the
// partner asked to approve the change rejects it; a first proposal has
// nothing to go back to and is declined by deleting the collaboration.
func Reject(ctx context.Context, tx *sql.Tx, actor Principal, id string, rulesVersion int) (Collaboration, error) {
	c, err := GetCollaboration(ctx, tx, id, actor)
	if err != nil {
		return c, err
	}
	if !c.HasMember(actor.PartnerID) {
		return c, errs.New(errs.Forbidden, "only the collaboration's partners approve or reject its rules")
	}
	if err := refuseDeleted(c); err != nil {
		return c, err
	}
	switch {
	case c.State != StateProposed:
		return c, errs.New(errs.Conflict, "no change of the rules awaits approval (the collaboration is %s)", c.State)
	case c.ApprovedRules == nil:
		return c, errs.New(errs.Conflict, "both partners have yet to approve any rules of this collaboration, so there are none to go back to; to decline this proposal, delete the collaboration")
	case slices.Contains(c.ApprovedBy, actor.PartnerID):
		return c, errs.New(errs.Conflict, "your partner proposed this change, so only the other partner can reject it; wait for its answer, or propose the earlier rules again (PUT .../rules) to withdraw it")
	case rulesVersion != 0 && rulesVersion != c.RulesVersion:
		return c, errs.New(errs.Conflict, "the rules changed (now version %d, you rejected version %d); review them again", c.RulesVersion, rulesVersion)
	}
	rejected := c.RulesVersion
	c.Rules, c.RulesVersion, c.ApprovedBy, c.State, c.UpdatedAt = *c.ApprovedRules, c.RulesVersion+1, c.Members(), StateActive, now()
	c.ApprovedRules = nil
	rj, _ := json.Marshal(c.Rules)
	aj, _ := json.Marshal(c.ApprovedBy)
	if _, err := tx.ExecContext(ctx, `UPDATE collaborations SET rules = ?, rules_version = ?, approved_by = ?, state = ?, updated_at = ? WHERE id = ?`,
		string(rj), c.RulesVersion, string(aj), c.State, c.UpdatedAt, c.ID); err != nil {
		return c, err
	}
	_, err = auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.CollaborationRejectRules,
		map[string]any{"rejected_version": rejected, "rules": c.Rules, "rules_version": c.RulesVersion, "state": c.State})
	return c, err
}

// ListCollaborations returns the collaborations the viewer may see.
func ListCollaborations(ctx context.Context, q Querier, viewer Principal) ([]Collaboration, error) {
	query := `SELECT id FROM collaborations`
	var args []any
	if !viewer.IsOperator() {
		query += ` WHERE proposer = ? OR partner = ?`
		args = append(args, viewer.PartnerID, viewer.PartnerID)
	}
	ids, err := store.QueryStrings(ctx, q, query+` ORDER BY created_at`, args...)
	if err != nil {
		return nil, err
	}
	out := make([]Collaboration, 0, len(ids))
	for _, id := range ids {
		c, err := GetCollaboration(ctx, q, id, viewer)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
