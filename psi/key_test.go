package psi

import (
	"bytes"
	"strings"
	"testing"
)

// A fingerprint names one key for everything it blinds, tells two keys
// apart, and is not the key: the key file's text never appears in it.
func TestKeyFingerprint(t *testing.T) {
	k1, _ := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	k2, _ := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{2}, 32)))
	fp := k1.Fingerprint()
	if err := CheckFingerprint(fp); err != nil {
		t.Fatal(err)
	}
	again, err := ParseKey(k1.Marshal("copy"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint() != fp {
		t.Errorf("the same key has two fingerprints")
	}
	if k2.Fingerprint() == fp {
		t.Errorf("two keys share fingerprint %s", fp)
	}
	if strings.Contains(strings.ToUpper(fp), strings.Repeat("01", 8)) {
		t.Errorf("fingerprint %s shows the key", fp)
	}
	for _, bad := range []string{"", fp[:63], strings.ToUpper(fp), fp[:63] + "g"} {
		if CheckFingerprint(bad) == nil {
			t.Errorf("CheckFingerprint(%q) accepted", bad)
		}
	}
}
