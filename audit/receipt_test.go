package audit

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"
)

// testKey is a fixed signing key, so a receipt signed long ago can be
// kept here as it was issued.
func testKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// oldReceipt was signed with testKey by a server from before receipts
// recorded when the deletion was requested.
const oldReceipt = `{"id":"r_aaaaaaaaaaaaaaaa","kind":"optout","collab_id":"c_aaaaaaaaaaaaaaaa","partner_id":"p_aaaaaaaaaaaaaaaa","identifiers":2,"audience_rows":3,"tokens":2,"cohorts":"the deleted people's rows, if they had any, were removed from every cohort of the collaboration; the cohorts' revisions were bumped","at":"2026-03-04T05:06:07.123456Z","audit_seq":12,"audit_hash":"ab12","signature":"kInwe2v+r8WQeq95IX0TjqdGwavoh+ugDh4AUyHE+loMtwZZIKNn2ZRomtKrxa1KflokUcvAsXFl3DtPdPiMCQ=="}`

func TestReceiptsFromBeforeRequestedAtStillVerify(t *testing.T) {
	pub := testKey().Public().(ed25519.PublicKey)
	var r Receipt
	if err := json.Unmarshal([]byte(oldReceipt), &r); err != nil {
		t.Fatal(err)
	}
	if r.RequestedAt != nil {
		t.Fatalf("an old receipt reads as requested at %v", r.RequestedAt)
	}
	if err := VerifyReceipt(pub, r, nil); err != nil {
		t.Errorf("a receipt signed before requested_at existed: %v", err)
	}
}

func TestRequestedAtIsSigned(t *testing.T) {
	priv := testKey()
	pub := priv.Public().(ed25519.PublicKey)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	asked := at.Add(-90 * time.Second).In(time.FixedZone("CET", 3600))
	r := SignReceipt(priv, Receipt{ID: "r_1", Kind: "identifiers", CollabID: "c_1", PartnerID: "p_1", Identifiers: 1, At: at, RequestedAt: &asked})
	// Through JSON, as a partner keeps it.
	b, _ := json.Marshal(r)
	var got Receipt
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := VerifyReceipt(pub, got, nil); err != nil {
		t.Fatalf("a fresh receipt: %v", err)
	}
	if got.RequestedAt == nil || !got.RequestedAt.Equal(asked) || got.RequestedAt.Location() != time.UTC {
		t.Errorf("requested_at came back as %v, want %v in UTC", got.RequestedAt, asked)
	}
	// Claiming a quicker deletion breaks the signature, as does dropping
	// the time.
	sooner := got.At.Add(-time.Second)
	forged := got
	forged.RequestedAt = &sooner
	if VerifyReceipt(pub, forged, nil) == nil {
		t.Error("a receipt with an altered requested_at verifies")
	}
	forged.RequestedAt = nil
	if VerifyReceipt(pub, forged, nil) == nil {
		t.Error("a receipt stripped of its requested_at verifies")
	}
}
