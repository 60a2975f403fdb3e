package psi

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cloudflare/circl/dh/x25519"
)

// Key is a party's secret blinding key for one collaboration. Never reuse
// a key across collaborations: the same key in two collaborations lets their
// blinded audiences be joined.
type Key struct {
	k x25519.Key
}

// keyPrefix marks a key file line, so a key is recognisable (and greppable
// by secret scanners) and the format can change with the version.
const keyPrefix = "CLEANROOM-PSI-KEY-1-"

// GenerateKey returns a new random key read from rand (crypto/rand.Reader
// when nil).
func GenerateKey(r io.Reader) (*Key, error) {
	if r == nil {
		r = rand.Reader
	}
	k := new(Key)
	if _, err := io.ReadFull(r, k.k[:]); err != nil {
		return nil, fmt.Errorf("psi.GenerateKey: %w", err)
	}
	return k, nil
}

// Blind returns k*p. It rejects a point that is not canonical or has low
// order (see DecodePoint).
func (k *Key) Blind(p Point) (Point, error) { return blind(&k.k, &p) }

// fingerprintTag separates a key's fingerprint from every other hash.
const fingerprintTag = "CLEANROOM-V01-PSI-KEY-FINGERPRINT"

// FingerprintLen is a fingerprint's length in hex digits.
const FingerprintLen = 2 * sha256.Size

// Fingerprint names the key without revealing it: the hex SHA-256 of
// its public point (the key times Curve25519's base point), never of the
// scalar. It is the same for everything one key blinds, so the server
// can refuse a match half re-blinded with another key than the party's
// uploads, and says nothing of any identifier.
func (k *Key) Fingerprint() string {
	var pub x25519.Key
	x25519.KeyGen(&pub, &k.k)
	h := sha256.New()
	h.Write([]byte(fingerprintTag))
	h.Write(pub[:])
	return hex.EncodeToString(h.Sum(nil))
}

// ShortFingerprint is a fingerprint's first 16 hex digits, as messages
// and the CLI show it.
func ShortFingerprint(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

// CheckFingerprint reports whether s is a fingerprint as Fingerprint
// writes it: FingerprintLen lower-case hex digits.
func CheckFingerprint(s string) error {
	if len(s) != FingerprintLen {
		return fmt.Errorf("a key fingerprint is %d hex digits, got %d characters", FingerprintLen, len(s))
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errors.New("a key fingerprint is lower-case hex digits")
		}
	}
	return nil
}

// Marshal returns the key file text: a comment line, then the key.
func (k *Key) Marshal(comment string) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(comment), "\n") {
		if line != "" {
			fmt.Fprintf(&b, "# %s\n", line)
		}
	}
	fmt.Fprintf(&b, "%s%s\n", keyPrefix, strings.ToUpper(hex.EncodeToString(k.k[:])))
	return b.Bytes()
}

// ParseKey reads a key file's text: '#' comment lines, blank lines and one
// key line.
func ParseKey(text []byte) (*Key, error) {
	var key *Key
	sc := bufio.NewScanner(bytes.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if !strings.HasPrefix(s, keyPrefix) {
			return nil, fmt.Errorf("line %d: not a cleanroom psi key (want a line starting %s)", line, keyPrefix)
		}
		if key != nil {
			return nil, fmt.Errorf("line %d: more than one key in the file", line)
		}
		raw, err := hex.DecodeString(s[len(keyPrefix):])
		if err != nil || len(raw) != x25519.Size {
			return nil, fmt.Errorf("line %d: key is not %d hex-encoded bytes", line, x25519.Size)
		}
		key = new(Key)
		copy(key.k[:], raw)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("no key line found")
	}
	return key, nil
}

// SaveKey writes k to a new file at path with mode 0600. It refuses to
// overwrite an existing file: losing a key means re-uploading the audience.
func SaveKey(path string, k *Key, comment string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("psi.SaveKey: %s already exists; choose another path or delete it first", path)
	}
	if err != nil {
		return fmt.Errorf("psi.SaveKey: %w", err)
	}
	if _, err := f.Write(k.Marshal(comment)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("psi.SaveKey: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("psi.SaveKey: %w", err)
	}
	return nil
}

// LoadKey reads a key file written by SaveKey. It refuses a file that
// others can read or write, as ssh does, since anyone holding the key can
// unblind this party's audience against a guessed list.
func LoadKey(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("psi.LoadKey: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("psi.LoadKey: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("psi.LoadKey: %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("psi.LoadKey: %s has mode %04o and is open to other users; run: chmod 600 %s", path, perm, path)
	}
	text, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("psi.LoadKey: %w", err)
	}
	k, err := ParseKey(text)
	if err != nil {
		return nil, fmt.Errorf("psi.LoadKey: %s: %w", path, err)
	}
	return k, nil
}
