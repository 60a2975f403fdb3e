package auditlog

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
)

// SigningKeyFile is the server's audit signing key in the data directory.
const SigningKeyFile = "audit-signing.key"

const signingKeyPrefix = "CLEANROOM-AUDIT-SIGNING-KEY-1-"

// LoadOrCreateSigner reads the server's Ed25519 signing key from dir,
// creating it (mode 0600) on first start. It refuses a key file others can
// read: whoever holds the key can sign a rewritten log.
func LoadOrCreateSigner(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, SigningKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		text := signingKeyPrefix + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit: creating the signing key: %w", err)
		}
		if _, err := f.WriteString(text); err != nil {
			f.Close()
			return nil, err
		}
		return priv, f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit: %s has mode %04o and is open to other users; run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), signingKeyPrefix)
	seed, err := base64.StdEncoding.DecodeString(s)
	if !ok || err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: %s is not a cleanroom audit signing key", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// SignedHead reads the current head and signs it.
func SignedHead(ctx context.Context, q store.Querier, priv ed25519.PrivateKey) (audit.Head, error) {
	h := audit.Head{Hash: audit.GenesisHash, At: time.Now().UTC()}
	err := q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.Hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("auditlog.SignedHead: %w", err)
	}
	if h.V2From, err = firstV2(ctx, q, h.Seq); err != nil {
		return h, fmt.Errorf("auditlog.SignedHead: %w", err)
	}
	return audit.SignHead(priv, h), nil
}

// firstV2 finds the first version 2 entry up to seq upto (0: none). Every
// entry written since version 2 is version 2, so versions only go up and
// a binary search reads a few entries of any log.
func firstV2(ctx context.Context, q store.Querier, upto int64) (int64, error) {
	version := func(seq int64) (int, error) {
		var e audit.Entry
		var details string
		err := q.QueryRowContext(ctx, `SELECT seq, at, actor, partner_id, collab_id, action, CAST(details AS VARCHAR), prev_hash, hash
			FROM audit_log WHERE seq = ?`, seq).Scan(&e.Seq, &e.At, &e.Actor, &e.PartnerID, &e.CollabID, &e.Action, &details, &e.PrevHash, &e.Hash)
		e.Details = json.RawMessage(details)
		audit.InferVersion(&e)
		return e.Version, err
	}
	if upto < 1 {
		return 0, nil
	}
	if v, err := version(upto); err != nil || v < 2 {
		return 0, err
	}
	lo, hi := int64(1), upto // hi is version 2
	for lo < hi {
		mid := lo + (hi-lo)/2
		v, err := version(mid)
		if err != nil {
			return 0, err
		}
		if v == 2 {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}
