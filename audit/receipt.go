package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Receipt proves a deletion: what was deleted, how much, when, and where in
// the audit log it is recorded, signed by the server.
type Receipt struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"` // identifiers, optout, audience, collaboration, expiry
	CollabID   string `json:"collab_id"`
	PartnerID  string `json:"partner_id"`
	AudienceID string `json:"audience_id,omitempty"`
	// Identifiers is how many blinded identifiers were submitted.
	Identifiers int64 `json:"identifiers,omitempty"`
	// AudienceRows and Tokens count what was deleted of the receiving
	// partner's own data: its audience rows and the match tokens of its
	// own points. Nothing here counts the cohort: how many cohort rows a
	// person had depends on the other partner's data.
	AudienceRows int64 `json:"audience_rows"`
	// TableRows splits AudienceRows by the name of the partner's table.
	TableRows map[string]int64 `json:"table_rows,omitempty"`
	Tokens    int64            `json:"tokens"`
	// Matches counts the matches (with their cohorts) deleted whole.
	Matches int64 `json:"matches,omitempty"`
	// Cohorts states what happened to the cohorts, the same words whatever
	// the data: see CohortStatement.
	Cohorts string    `json:"cohorts"`
	At      time.Time `json:"at"`
	// RequestedAt is when the deletion was asked for (for an expiry, when
	// the retention ran out): At minus RequestedAt is how long honouring
	// it took. Receipts signed before it was recorded leave it out.
	RequestedAt *time.Time `json:"requested_at,omitempty"`
	// AuditSeq and AuditHash name the log entry recording the deletion.
	AuditSeq  int64  `json:"audit_seq"`
	AuditHash string `json:"audit_hash"`
	Signature string `json:"signature"`
}

// Cohort statements: a receipt says what happened to cohorts without
// saying whether the person was in one.
const (
	CohortsRowsRemoved = "the deleted people's rows, if they had any, were removed from every cohort of the collaboration; the cohorts' revisions were bumped"
	CohortsDeleted     = "every match and cohort built from the deleted data was deleted"
)

func (r Receipt) message() []byte {
	r.Signature = ""
	b, _ := json.Marshal(r)
	return append([]byte("cleanroom-deletion-receipt-v1\n"), b...)
}

// SignReceipt signs r with the server's key.
func SignReceipt(priv ed25519.PrivateKey, r Receipt) Receipt {
	r.At = r.At.UTC()
	if r.RequestedAt != nil {
		t := r.RequestedAt.UTC()
		r.RequestedAt = &t
	}
	r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, r.message()))
	return r
}

// VerifyReceipt checks a receipt's signature and, when entries (a verified
// export) are given, that the log holds its entry at the stated position.
func VerifyReceipt(pub ed25519.PublicKey, r Receipt, entries []Entry) error {
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil || !ed25519.Verify(pub, r.message(), sig) {
		return errors.New("the receipt's signature is not the server's (forged or altered receipt)")
	}
	if entries == nil {
		return nil
	}
	if r.AuditSeq < 1 || r.AuditSeq > int64(len(entries)) {
		return fmt.Errorf("the log has no entry %d for this receipt", r.AuditSeq)
	}
	e := entries[r.AuditSeq-1]
	if e.Hash != r.AuditHash {
		return fmt.Errorf("log entry %d does not match the receipt", r.AuditSeq)
	}
	if !e.Redacted {
		var d struct {
			ReceiptID string `json:"receipt_id"`
		}
		if json.Unmarshal(e.Details, &d) != nil || d.ReceiptID != r.ID {
			return fmt.Errorf("log entry %d records another action, not receipt %s", r.AuditSeq, r.ID)
		}
	}
	return nil
}
