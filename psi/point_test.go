package psi

import (
	"bytes"
	"crypto/rand"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/quick"

	"github.com/cloudflare/circl/dh/x25519"
)

func mustKey(t testing.TB) *Key {
	t.Helper()
	k, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func leBytes(n *big.Int) []byte {
	be := n.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

var fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

func TestLowOrderPointsAreRejected(t *testing.T) {
	// The list must hold exactly the points every key blinds to zero.
	for i, p := range lowOrder {
		var out x25519.Key
		k := mustKey(t)
		x25519.Shared(&out, &k.k, (*x25519.Key)(&p))
		if out != (x25519.Key{}) {
			t.Errorf("lowOrder[%d] = %x is not of low order", i, p[:])
		}
		if _, err := DecodePoint(p[:]); !errors.Is(err, ErrPointLowOrder) {
			t.Errorf("DecodePoint(lowOrder[%d]) = %v, want ErrPointLowOrder", i, err)
		}
		if _, err := k.Blind(p); err == nil {
			t.Errorf("Blind(lowOrder[%d]) succeeded", i)
		}
	}
	// The decimal values in the comments match the bytes.
	for _, dec := range []string{
		"325606250916557431795983626356110631294008115727848805560023387167927233504",
		"39382357235489614581723060781553021112529911719440698176882885853963445705823",
	} {
		n, _ := new(big.Int).SetString(dec, 10)
		if _, err := DecodePoint(leBytes(n)); !errors.Is(err, ErrPointLowOrder) {
			t.Errorf("%s...: %v, want ErrPointLowOrder", dec[:10], err)
		}
	}
}

func TestDecodePointRejectsNonCanonical(t *testing.T) {
	cases := map[string][]byte{
		"p":           leBytes(fieldP),
		"p+1":         leBytes(new(big.Int).Add(fieldP, big.NewInt(1))),
		"p+9":         leBytes(new(big.Int).Add(fieldP, big.NewInt(9))),
		"2^255-1":     leBytes(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1))),
		"high bit, 9": append([]byte{9}, append(make([]byte, 30), 0x80)...),
	}
	for name, b := range cases {
		if _, err := DecodePoint(b); !errors.Is(err, ErrPointNonCanonical) {
			t.Errorf("%s: got %v, want ErrPointNonCanonical", name, err)
		}
	}
	// p-2 is the largest canonical value that is not of low order.
	if _, err := DecodePoint(leBytes(new(big.Int).Sub(fieldP, big.NewInt(2)))); err != nil {
		t.Errorf("p-2: %v", err)
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := DecodePoint(make([]byte, n)); !errors.Is(err, ErrPointLength) {
			t.Errorf("%d bytes: got %v, want ErrPointLength", n, err)
		}
	}
}

// Blinding commutes: A then B equals B then A, for random keys and inputs.
func TestBlindCommutes(t *testing.T) {
	h, _ := NewHasher(Email)
	prop := func(seedA, seedB [32]byte, msg []byte) bool {
		ka, kb := &Key{k: seedA}, &Key{k: seedB}
		p := h.Hash(msg)
		pa, err1 := ka.Blind(p)
		pb, err2 := kb.Blind(p)
		pab, err3 := kb.Blind(pa)
		pba, err4 := ka.Blind(pb)
		return err1 == nil && err2 == nil && err3 == nil && err4 == nil &&
			pab == pba && pa != pb && pa != p
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 300}); err != nil {
		t.Error(err)
	}
}

func TestTokenOf(t *testing.T) {
	var p, q Point
	p[0], q[0] = 9, 10
	if TokenOf(&p) == TokenOf(&q) {
		t.Error("different points gave the same token")
	}
	if TokenOf(&p) != TokenOf(&p) {
		t.Error("token is not deterministic")
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.key")
	k := mustKey(t)
	if err := SaveKey(path, k, "collaboration c1\nparty acme"); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %o, want 600", st.Mode().Perm())
	}
	got, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.k != k.k {
		t.Error("loaded key differs from saved key")
	}
	if err := SaveKey(path, mustKey(t), ""); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwrite: got %v, want an 'already exists' error", err)
	}
	if again, _ := LoadKey(path); again.k != k.k {
		t.Error("a refused overwrite changed the key file")
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := string(mustKey(t).Marshal(""))
	cases := []struct {
		name, text string
		mode       os.FileMode
		want       string
	}{
		{"loose", good, 0o644, "chmod 600"},
		{"group", good, 0o640, "chmod 600"},
		{"garbage", "hello\n", 0o600, "not a cleanroom psi key"},
		{"short", "CLEANROOM-PSI-KEY-1-ABCD\n", 0o600, "not 32 hex-encoded bytes"},
		{"empty", "# only a comment\n", 0o600, "no key line"},
		{"two", good + good, 0o600, "more than one key"},
	}
	for _, c := range cases {
		_, err := LoadKey(write(c.name, c.text, c.mode))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), strings.TrimSpace(good)[20:]) {
			t.Errorf("%s: error reveals the key", c.name)
		}
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestKeyFileLayout(t *testing.T) {
	k := mustKey(t)
	text := k.Marshal("c")
	if !bytes.HasPrefix(bytes.TrimSpace(bytes.SplitN(text, []byte("\n"), 2)[1]), []byte(keyPrefix)) {
		t.Errorf("unexpected key file layout: %q", text)
	}
}

func FuzzDecodePoint(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(leBytes(fieldP))
	f.Add(leBytes(big.NewInt(9)))
	f.Add(lowOrder[2][:])
	f.Add([]byte{1, 2, 3})
	k, _ := GenerateKey(rand.Reader)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePoint(b)
		if err != nil {
			return
		}
		// Accepted points are canonical: one point, one encoding.
		n := new(big.Int).SetBytes(reverse(b))
		if n.Cmp(fieldP) >= 0 {
			t.Fatalf("accepted non-canonical %x", b)
		}
		out, err := k.Blind(p)
		if err != nil {
			t.Fatalf("accepted point %x does not blind: %v", b, err)
		}
		if out == (Point{}) {
			t.Fatalf("accepted point %x blinds to zero", b)
		}
	})
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}
