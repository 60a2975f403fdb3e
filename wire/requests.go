package wire

import (
	"encoding/json"
	"time"
)

// The bodies the API reads and the envelopes it answers with, beyond the
// resources themselves. The server decodes each request body into one of
// these and refuses unknown fields; the OpenAPI document (GET
// /openapi.json) is generated from the same types.
//
// Struct tags named schema add to what the document says of a field:
// optional (a field the server reads as a default when left out),
// nullable, min=N, ref=Name (the field, or a list's items, is the
// component schema Name: for raw JSON whose type lives outside wire).

// CreatePartnerRequest is the body of POST /v1/partners.
type CreatePartnerRequest struct {
	// Name: 1-100 letters, digits, spaces or . _ & ' -; unique.
	Name string `json:"name"`
}

// CreatedPartner is a new partner with its first admin key and that key's
// secret, shown once.
type CreatedPartner struct {
	Partner  Partner `json:"partner"`
	AdminKey Key     `json:"admin_key"`
	Secret   string  `json:"secret"`
	// Rotate asks for the key to be replaced: its secret passed through
	// the operator, so the partner's admin should swap it for one only
	// the partner has seen, at once.
	Rotate string `json:"rotate"`
}

// CreateKeyRequest is the body of POST /v1/partners/{pid}/keys.
type CreateKeyRequest struct {
	Role  Role   `json:"role"`
	Label string `json:"label,omitempty"`
}

// CreatedKey is a new API key and its secret, shown once.
type CreatedKey struct {
	Key    Key    `json:"key"`
	Secret string `json:"secret"`
}

// ProposeRequest is the body of POST /v1/collaborations.
type ProposeRequest struct {
	Name string `json:"name"`
	// Partner is the other partner's ID.
	Partner string `json:"partner"`
	// Rules is rules JSON over the defaults (DefaultRules): fields left
	// out keep their default, unknown fields are refused.
	Rules json.RawMessage `json:"rules,omitempty" schema:"ref=RulesRequest"`
}

// ApproveRequest is the (optional) body of POST
// /v1/collaborations/{cid}/approve: the rules version the approver read;
// 0 or left out approves whatever the rules are now.
type ApproveRequest struct {
	RulesVersion int `json:"rules_version,omitempty"`
}

// IdentifiersRequest is the body of POST .../deletions and .../optouts:
// people as base64 32-byte points, blinded with the caller's key for the
// collaboration (never the identifiers themselves).
type IdentifiersRequest struct {
	PIDs []string `json:"pids"`
}

// AccessRequest is the body of POST .../access-requests: one person as a
// base64 32-byte point blinded with the caller's key.
type AccessRequest struct {
	PID string `json:"pid"`
}

// PartnerList answers GET /v1/partners.
type PartnerList struct {
	Partners []Partner `json:"partners"`
}

// KeyList answers GET /v1/partners/{pid}/keys: the keys, never their
// secrets.
type KeyList struct {
	Keys []Key `json:"keys"`
}

// CollaborationList answers GET /v1/collaborations: the caller's
// partner's collaborations (every one for the operator).
type CollaborationList struct {
	Collaborations []Collaboration `json:"collaborations"`
}

// AudienceList answers GET .../audiences: each partner's current
// tables, by partner ID, in name order; a partner without one is left
// out. Audiences holds each partner's table named DefaultTable, as
// clients before named tables read it.
type AudienceList struct {
	Audiences map[string]Audience   `json:"audiences"`
	Tables    map[string][]Audience `json:"tables"`
}

// ReceiptList answers GET .../receipts: signed deletion receipts, the
// caller's partner's own (every partner's for the operator). Each is an
// audit.Receipt, as stored and signed.
type ReceiptList struct {
	Receipts []json.RawMessage `json:"receipts" schema:"ref=Receipt"`
}

// AccessRequestList answers GET .../access-requests: the access requests
// the caller's partner's keys made in the collaboration (every partner's
// for the operator), newest first.
type AccessRequestList struct {
	AccessRequests []AccessRequestRecord `json:"access_requests"`
}

// AccessRequestRecord is one access request as the audit log records it:
// when, by which key, and what it found of the asking partner's own data.
// Never the person asked about, nor anything of the other partner's data.
type AccessRequestRecord struct {
	// AuditSeq is the log entry that records it.
	AuditSeq  int64     `json:"audit_seq"`
	At        time.Time `json:"at"`
	PartnerID string    `json:"partner_id"`
	KeyID     string    `json:"key_id"`
	// KeyLabel is the asking key's label, as its partner's admin named it.
	KeyLabel string `json:"key_label"`
	// Rows is how many of the partner's rows the person had, in all its
	// tables; TableRows splits them by table name.
	Rows      int64            `json:"rows"`
	TableRows map[string]int64 `json:"table_rows"`
	// OptedOut: the person had opted out of the partner's data.
	OptedOut bool `json:"opted_out"`
}

// Health answers GET /healthz and /readyz.
type Health struct {
	// Status is ok (/healthz), ready, or why not (/readyz).
	Status string `json:"status"`
}

// PublicKey answers GET /v1/audit/pubkey: the key that signs the audit
// log's head and deletion receipts, in the text form audit verify reads.
type PublicKey struct {
	PublicKey string `json:"public_key"`
}
