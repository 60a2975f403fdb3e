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
	Identifiers  int64     `json:"identifiers,omitempty"`
	AudienceRows int64     `json:"audience_rows"`
	CohortRows   int64     `json:"cohort_rows"`
	Tokens       int64     `json:"tokens"`
	At           time.Time `json:"at"`
	// AuditSeq and AuditHash name the log entry recording the deletion.
	AuditSeq  int64  `json:"audit_seq"`
	AuditHash string `json:"audit_hash"`
	Signature string `json:"signature"`
}

func (r Receipt) message() []byte {
	r.Signature = ""
	b, _ := json.Marshal(r)
	return append([]byte("cleanroom-deletion-receipt-v1\n"), b...)
}

// SignReceipt signs r with the server's key.
func SignReceipt(priv ed25519.PrivateKey, r Receipt) Receipt {
	r.At = r.At.UTC()
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
