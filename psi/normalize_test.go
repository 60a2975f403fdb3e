package psi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
)

func mustNormalizer(tb testing.TB, t IDType, opts NormalizeOptions) *Normalizer {
	tb.Helper()
	n, err := NewNormalizer(t, opts)
	if err != nil {
		tb.Fatalf("NewNormalizer(%q, %+v): %v", t, opts, err)
	}
	return n
}

var (
	noOpts = NormalizeOptions{}
	gmail  = NormalizeOptions{GmailRule: true}
	us     = NormalizeOptions{DefaultRegion: "US"}
	gb     = NormalizeOptions{DefaultRegion: "GB"}
)

func TestNormalizeCanonical(t *testing.T) {
	tests := []struct {
		name string
		typ  IDType
		opts NormalizeOptions
		in   string
		want string
	}{
		// Email: case and Unicode.
		{"email lower ascii", Email, noOpts, "alice@example.com", "alice@example.com"},
		{"email upper ascii", Email, noOpts, "Alice.Smith@Example.COM", "alice.smith@example.com"},
		{"email NFC é", Email, noOpts, "jos\u00e9@example.com", "jos\u00e9@example.com"},
		{"email NFD é matches NFC", Email, noOpts, "jose\u0301@example.com", "jos\u00e9@example.com"},
		{"email upper non-ascii", Email, noOpts, "JOS\u00c9@EXAMPLE.COM", "jos\u00e9@example.com"},
		{"email upper NFD non-ascii", Email, noOpts, "A\u030aSA@b\u00fccher.DE", "\u00e5sa@b\u00fccher.de"},
		{"email kelvin sign", Email, noOpts, "\u212aim@example.com", "kim@example.com"},
		// Email: surrounding whitespace.
		{"email spaces", Email, noOpts, "  alice@example.com  ", "alice@example.com"},
		{"email tab newline", Email, noOpts, "\talice@example.com\r\n", "alice@example.com"},
		{"email unicode spaces", Email, noOpts, "\u00a0alice@example.com\u3000", "alice@example.com"},
		// Email: permissive domain.
		{"email dotless domain", Email, noOpts, "root@localhost", "root@localhost"},
		// Email: Gmail rule.
		{"gmail off keeps dots and tag", Email, noOpts, "John.Smith+promo@gmail.com", "john.smith+promo@gmail.com"},
		{"gmail off keeps googlemail", Email, noOpts, "john.smith@googlemail.com", "john.smith@googlemail.com"},
		{"gmail on dots and tag", Email, gmail, "John.Smith+promo@gmail.com", "johnsmith@gmail.com"},
		{"gmail on several tags", Email, gmail, "john+a+b@GMAIL.COM", "john@gmail.com"},
		{"gmail on googlemail", Email, gmail, "j.o.h.n@googlemail.com", "john@gmail.com"},
		{"gmail on canonical", Email, gmail, "john@gmail.com", "john@gmail.com"},
		{"gmail on dot after tag", Email, gmail, "jo.hn+x.y@gmail.com", "john@gmail.com"},
		{"gmail on other domain", Email, gmail, "John.Smith+promo@example.com", "john.smith+promo@example.com"},
		{"gmail on gmail subdomain", Email, gmail, "john.smith+x@mail.gmail.com", "john.smith+x@mail.gmail.com"},
		{"gmail on other tld", Email, gmail, "john.smith+x@gmail.co.uk", "john.smith+x@gmail.co.uk"},
		{"gmail off bare tag", Email, noOpts, "+tag@gmail.com", "+tag@gmail.com"},

		// Phone.
		{"phone intl punctuation", Phone, noOpts, "+1 (415) 555-0123", "+14155550123"},
		{"phone intl with region", Phone, gb, "+1 (415) 555-0123", "+14155550123"},
		{"phone dots US", Phone, us, "415.555.0123", "+14155550123"},
		{"phone parens US", Phone, us, "(415) 555-0123", "+14155550123"},
		{"phone leading 1 US", Phone, us, "1-415-555-0123", "+14155550123"},
		{"phone 011 US", Phone, us, "011 44 20 7946 0958", "+442079460958"},
		{"phone 00 no region", Phone, noOpts, "0044 20 7946 0958", "+442079460958"},
		{"phone 00 US", Phone, us, "0044 20 7946 0958", "+442079460958"},
		{"phone 00 GB", Phone, gb, "0044 20 7946 0958", "+442079460958"},
		{"phone national GB", Phone, gb, "020 7946 0958", "+442079460958"},
		{"phone (0) GB", Phone, noOpts, "+44 (0)20 7946 0958", "+442079460958"},
		{"phone whitespace", Phone, noOpts, "\t+44 20 7946 0958\n", "+442079460958"},
		{"phone extension dropped", Phone, noOpts, "+1 415 555 0123 ext. 12", "+14155550123"},
		{"phone canonical", Phone, us, "+14155550123", "+14155550123"},
		{"phone region lower case", Phone, NormalizeOptions{DefaultRegion: "us"}, "4155550123", "+14155550123"},

		// MAID.
		{"maid upper", MAID, noOpts, "6D92078A-8246-4BA4-AE5B-76104861E7DC", "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{"maid lower", MAID, noOpts, "6d92078a-8246-4ba4-ae5b-76104861e7dc", "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{"maid no hyphens", MAID, noOpts, "6d92078a82464ba4ae5b76104861e7dc", "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{"maid no hyphens upper", MAID, noOpts, "6D92078A82464BA4AE5B76104861E7DC", "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{"maid whitespace", MAID, noOpts, " 6d92078a-8246-4ba4-ae5b-76104861e7dc\r\n", "6d92078a-8246-4ba4-ae5b-76104861e7dc"},

		// SHA-256.
		{"sha256 lower", SHA256, noOpts, strings.Repeat("ab", 32), strings.Repeat("ab", 32)},
		{"sha256 upper", SHA256, noOpts, strings.Repeat("AB", 32), strings.Repeat("ab", 32)},
		{"sha256 whitespace", SHA256, noOpts, " " + strings.Repeat("0f", 32) + "\n", strings.Repeat("0f", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustNormalizer(t, tt.typ, tt.opts)
			got, err := n.Canonical(tt.in)
			if err != nil {
				t.Fatalf("Canonical(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := n.Canonical(got)
			if err != nil || again != got {
				t.Errorf("Canonical(%q) = %q, %v; not idempotent", got, again, err)
			}
			d, err := n.Digest(tt.in)
			if err != nil {
				t.Fatalf("Digest(%q): %v", tt.in, err)
			}
			if want := wantDigest(t, tt.typ, got); d != want {
				t.Errorf("Digest(%q) = %x, want %x", tt.in, d, want)
			}
		})
	}
}

// wantDigest is the digest the spec promises for a canonical value.
func wantDigest(tb testing.TB, t IDType, canonical string) [32]byte {
	tb.Helper()
	if t != SHA256 {
		return sha256.Sum256([]byte(canonical))
	}
	var d [32]byte
	b, err := hex.DecodeString(canonical)
	if err != nil || len(b) != len(d) {
		tb.Fatalf("canonical sha256 %q does not decode to 32 bytes: %v", canonical, err)
	}
	copy(d[:], b)
	return d
}

// A party that only has hashed identifiers must match one holding them in
// plaintext.
func TestNormalizePreHashedMatchesPlaintext(t *testing.T) {
	pre := mustNormalizer(t, SHA256, noOpts)
	tests := []struct {
		typ  IDType
		opts NormalizeOptions
		in   string
	}{
		{Email, noOpts, "Alice.Smith@Example.com"},
		{Email, noOpts, "jose\u0301@example.com"},
		{Email, gmail, "John.Smith+promo@googlemail.com"},
		{Phone, us, "(415) 555-0123"},
		{MAID, noOpts, "6D92078A82464BA4AE5B76104861E7DC"},
	}
	for _, tt := range tests {
		n := mustNormalizer(t, tt.typ, tt.opts)
		c, err := n.Canonical(tt.in)
		if err != nil {
			t.Fatalf("Canonical(%q): %v", tt.in, err)
		}
		want, err := n.Digest(tt.in)
		if err != nil {
			t.Fatalf("Digest(%q): %v", tt.in, err)
		}
		sum := sha256.Sum256([]byte(c))
		lower := hex.EncodeToString(sum[:])
		for _, h := range []string{lower, strings.ToUpper(lower), "  " + lower + "\n"} {
			got, err := pre.Digest(h)
			if err != nil {
				t.Fatalf("sha256 Digest of %s %q: %v", tt.typ, tt.in, err)
			}
			if got != want {
				t.Errorf("%s %q: pre-hashed digest %x != plaintext digest %x", tt.typ, tt.in, got, want)
			}
			if c, err := pre.Canonical(h); err != nil || c != lower {
				t.Errorf("sha256 Canonical(%q) = %q, %v; want %q", h, c, err, lower)
			}
		}
	}
}

func TestNormalizeErrors(t *testing.T) {
	tests := []struct {
		name    string
		typ     IDType
		opts    NormalizeOptions
		in      string
		wantErr string
	}{
		{"email blank", Email, noOpts, " \t\n", "email: empty value"},
		{"email missing @", Email, noOpts, "alice.example.com", "email: missing @"},
		{"email two @", Email, noOpts, "alice@home@example.com", "email: more than one @"},
		{"email empty local", Email, noOpts, "@example.com", "email: empty local part"},
		{"email empty domain", Email, noOpts, "alice.smith@", "email: empty domain"},
		{"email inner space", Email, noOpts, "alice smith@example.com", "email: contains whitespace"},
		{"email inner tab", Email, noOpts, "alice@exam\tple.com", "email: contains whitespace"},
		{"email inner nbsp", Email, noOpts, "jos\u00e9@exam\u00a0ple.com", "email: contains whitespace"},
		{"email NUL", Email, noOpts, "alice\x00@example.com", "email: contains a control character"},
		{"email bad utf8", Email, noOpts, "alice\xff@example.com", "email: not valid UTF-8"},
		{"gmail only tag", Email, gmail, "+newsletter@gmail.com", "email: empty local part"},
		{"gmail only dots", Email, gmail, "...@googlemail.com", "email: empty local part"},

		{"phone blank", Phone, us, "   ", "phone: empty value"},
		{"phone no region", Phone, noOpts, "415.555.0123", "phone: no country code and no default region"},
		{"phone placeholder US", Phone, us, "555-555-5555", "phone: not a valid number for region US"},
		{"phone placeholder intl", Phone, us, "+1 555 555 5555", "phone: not a valid number"},
		{"phone short US", Phone, us, "12", "phone: not a valid number for region US"},
		{"phone unknown cc", Phone, noOpts, "+999 1234 5678", "phone: unknown country code"},
		{"phone letters", Phone, us, "not-a-phone", "phone: not a phone number"},
		{"phone too long", Phone, us, strings.Repeat("4155550123", 30), "phone: too long"},

		{"maid blank", MAID, noOpts, "", "maid: empty value"},
		{"maid braces", MAID, noOpts, "{6d92078a-8246-4ba4-ae5b-76104861e7dc}", "maid: not a UUID"},
		{"maid urn", MAID, noOpts, "urn:uuid:6d92078a-8246-4ba4-ae5b-76104861e7dc", "maid: not a UUID"},
		{"maid not hex", MAID, noOpts, "6d92078a-8246-4ba4-ae5b-76104861e7dg", "maid: not a UUID"},
		{"maid hyphen misplaced", MAID, noOpts, "6d92078a8-246-4ba4-ae5b-76104861e7dc", "maid: not a UUID"},
		{"maid short", MAID, noOpts, "6d92078a-8246-4ba4-ae5b", "maid: not a UUID"},
		{"maid zero", MAID, noOpts, "00000000-0000-0000-0000-000000000000", "maid: all-zero ID (limit ad tracking placeholder)"},
		{"maid zero no hyphens", MAID, noOpts, strings.Repeat("0", 32), "maid: all-zero ID (limit ad tracking placeholder)"},

		{"sha256 blank", SHA256, noOpts, "\n", "sha256: empty value"},
		{"sha256 63", SHA256, noOpts, strings.Repeat("a", 63), "sha256: want 64 hex characters, got 63"},
		{"sha256 65", SHA256, noOpts, strings.Repeat("a", 65), "sha256: want 64 hex characters, got 65"},
		{"sha256 not hex", SHA256, noOpts, strings.Repeat("a", 63) + "g", "sha256: not hex"},
		{"sha256 non-ascii", SHA256, noOpts, strings.Repeat("a", 63) + "\u00e9", "sha256: not hex"},
		{"sha256 email", SHA256, noOpts, "alice@example.com", "sha256: want 64 hex characters, got 17"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustNormalizer(t, tt.typ, tt.opts)
			_, err := n.Canonical(tt.in)
			if err == nil {
				t.Fatalf("Canonical(%q) succeeded, want error %q", tt.in, tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("Canonical(%q) error = %q, want %q", tt.in, err, tt.wantErr)
			}
			if v := strings.TrimSpace(tt.in); v != "" && strings.Contains(err.Error(), v) {
				t.Errorf("error %q leaks the input value", err)
			}
			blank := strings.TrimSpace(tt.in) == ""
			if errors.Is(err, ErrEmpty) != blank || errors.Is(err, ErrInvalid) == blank {
				t.Errorf("error %q: errors.Is(ErrEmpty) = %v, errors.Is(ErrInvalid) = %v; blank input = %v",
					err, errors.Is(err, ErrEmpty), errors.Is(err, ErrInvalid), blank)
			}
			if _, derr := n.Digest(tt.in); derr == nil || derr.Error() != err.Error() {
				t.Errorf("Digest(%q) error = %v, want %q", tt.in, derr, err)
			}
		})
	}
}

func TestNewNormalizerErrors(t *testing.T) {
	if _, err := NewNormalizer("ssn", noOpts); err == nil || !strings.Contains(err.Error(), "email, phone, maid, sha256") {
		t.Errorf("unknown type: err = %v, want it to list the valid types", err)
	}
	if _, err := NewNormalizer(Phone, NormalizeOptions{DefaultRegion: "XX"}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("unknown region: err = %v, want a region error", err)
	}
	if _, err := NewNormalizer(Phone, NormalizeOptions{DefaultRegion: "United States"}); err == nil {
		t.Error("region name instead of code: want error")
	}
}

func TestParseIDType(t *testing.T) {
	for in, want := range map[string]IDType{
		"email": Email, "EMAIL": Email, " Phone ": Phone, "MAID": MAID, "Sha256": SHA256,
	} {
		got, err := ParseIDType(in)
		if err != nil || got != want {
			t.Errorf("ParseIDType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ssn", "sha-256", "e-mail"} {
		_, err := ParseIDType(in)
		if err == nil || !strings.Contains(err.Error(), "email, phone, maid, sha256") {
			t.Errorf("ParseIDType(%q) error = %v, want it to list the valid types", in, err)
		}
	}
}

// Run with -race: one Normalizer is shared by many workers.
func TestNormalizeConcurrent(t *testing.T) {
	ns := []*Normalizer{
		mustNormalizer(t, Email, gmail),
		mustNormalizer(t, Phone, us),
		mustNormalizer(t, MAID, noOpts),
	}
	in := []string{"Jo.Hn+x@googlemail.com", "(415) 555-0123", "6D92078A82464BA4AE5B76104861E7DC"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				for i, n := range ns {
					if _, err := n.Digest(in[i]); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"", " ", "@", "a@b", "Alice.Smith+tag@GoogleMail.com", "jose\u0301@example.com",
		"\u212a@\u212a", "A\u030a@x", "\u0130@x", "\u1e9e@x", "\u00df@x", "a@b@c", "a\u00a0b@c",
		"\xff@x", "+1 (415) 555-0123", "415.555.0123", "0044 20 7946 0958", "020 7946 0958",
		"00", "+", "011 44 20 7946 0958", "1-800-FLOWERS", "+44 (0)20 7946 0958 ext 5",
		"6D92078A-8246-4BA4-AE5B-76104861E7DC", "6d92078a82464ba4ae5b76104861e7dc",
		"00000000-0000-0000-0000-000000000000", strings.Repeat("Ab", 32), strings.Repeat("a", 63),
	} {
		f.Add(s)
	}
	type norm struct {
		name string
		n    *Normalizer
	}
	var ns []norm
	for _, c := range []struct {
		t    IDType
		opts NormalizeOptions
	}{
		{Email, noOpts}, {Email, gmail}, {Phone, noOpts}, {Phone, us}, {Phone, gb},
		{Phone, NormalizeOptions{DefaultRegion: "DE"}}, {MAID, noOpts}, {SHA256, noOpts},
	} {
		ns = append(ns, norm{string(c.t) + "/" + c.opts.DefaultRegion, mustNormalizer(f, c.t, c.opts)})
	}
	pre := mustNormalizer(f, SHA256, noOpts)
	f.Fuzz(func(t *testing.T, s string) {
		for _, x := range ns {
			c, err := x.n.Canonical(s)
			d, derr := x.n.Digest(s)
			if err != nil {
				if derr == nil {
					t.Errorf("%s: Canonical(%q) failed (%v) but Digest succeeded", x.name, s, err)
				}
				if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrInvalid) {
					t.Errorf("%s: Canonical(%q) error %v wraps neither ErrEmpty nor ErrInvalid", x.name, s, err)
				}
				continue
			}
			if derr != nil {
				t.Fatalf("%s: Canonical(%q) succeeded but Digest failed: %v", x.name, s, derr)
			}
			c2, err := x.n.Canonical(c)
			if err != nil || c2 != c {
				t.Fatalf("%s: not idempotent: Canonical(%q) = %q, Canonical of that = %q, %v", x.name, s, c, c2, err)
			}
			if want := wantDigest(t, x.n.typ, c); d != want {
				t.Fatalf("%s: Digest(%q) = %x, want %x", x.name, s, d, want)
			}
			if pd, err := pre.Digest(hex.EncodeToString(d[:])); err != nil || pd != d {
				t.Fatalf("%s: pre-hashed form of %q gives %x, %v; want %x", x.name, s, pd, err, d)
			}
		}
	})
}

func BenchmarkNormalizeEmail(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts NormalizeOptions
		in   string
	}{
		{"lower", noOpts, "alice.smith@example.com"},
		{"mixed", noOpts, "Alice.Smith@Example.com"},
		{"unicode", noOpts, "Jose\u0301.Smith@Example.com"},
		{"gmail", gmail, "alice.smith+news@gmail.com"},
	} {
		n := mustNormalizer(b, Email, bc.opts)
		b.Run(bc.name+"/Canonical", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := n.Canonical(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/Digest", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := n.Digest(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
