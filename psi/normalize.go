package psi

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/unicode/norm"
)

// IDType names how identifiers in a column are written.
type IDType string

// The identifier types a column can hold. Both parties must normalize a
// shared identifier with the same type and options, or nothing matches.
const (
	// Email is an email address, matched on its normalized form.
	Email IDType = "email"
	// Phone is a phone number, matched on its E.164 form.
	Phone IDType = "phone"
	// MAID is a mobile advertising ID (IDFA/AAID), a UUID.
	MAID IDType = "maid"
	// SHA256 is an identifier already normalized and hashed elsewhere: the
	// lowercase or uppercase hex SHA-256 (64 hex characters) of its canonical
	// form. It matches the same identifier given in plaintext.
	SHA256 IDType = "sha256"
)

const validIDTypes = "email, phone, maid, sha256"

// ParseIDType parses an ID type name such as "email" or "SHA256",
// ignoring case and surrounding whitespace, so flags and config files can be
// written naturally.
func ParseIDType(s string) (IDType, error) {
	switch t := IDType(strings.ToLower(strings.TrimSpace(s))); t {
	case Email, Phone, MAID, SHA256:
		return t, nil
	}
	// The type name is configuration, not an identifier, so echoing it is safe.
	return "", fmt.Errorf("unknown ID type %q (valid: %s)", s, validIDTypes)
}

// ErrEmpty is wrapped by the error for a value that is blank after trimming
// whitespace. Blank cells are common in exports; callers can test for it with
// errors.Is to skip them rather than count them as bad data.
var ErrEmpty = errors.New("empty value")

// ErrInvalid is wrapped by the error for every non-blank value that cannot be
// normalized, so callers can tell bad data from blanks with errors.Is.
var ErrInvalid = errors.New("invalid identifier")

// normError carries a fixed message and its category. The message names the
// type and the problem but never the value: identifiers are personal data
// and errors end up in logs.
type normError struct {
	msg  string
	kind error
}

func (e *normError) Error() string { return e.msg }
func (e *normError) Unwrap() error { return e.kind }

func invalid(msg string) error { return &normError{msg: msg, kind: ErrInvalid} }
func empty(t IDType) error {
	return &normError{msg: string(t) + ": " + ErrEmpty.Error(), kind: ErrEmpty}
}

// Preallocated so that rejecting a bad row costs no allocation.
var (
	errEmailEmpty     = empty(Email)
	errEmailNoAt      = invalid("email: missing @")
	errEmailManyAt    = invalid("email: more than one @")
	errEmailLocal     = invalid("email: empty local part")
	errEmailDomain    = invalid("email: empty domain")
	errEmailSpace     = invalid("email: contains whitespace")
	errEmailControl   = invalid("email: contains a control character")
	errEmailUTF8      = invalid("email: not valid UTF-8")
	errPhoneEmpty     = empty(Phone)
	errPhoneNoCC      = invalid("phone: no country code and no default region")
	errPhoneBadCC     = invalid("phone: unknown country code")
	errPhoneNotNumber = invalid("phone: not a phone number")
	errPhoneTooShort  = invalid("phone: too short")
	errPhoneTooLong   = invalid("phone: too long")
	errPhoneInvalid   = invalid("phone: not a valid number")
	errMAIDEmpty      = empty(MAID)
	errMAIDNotUUID    = invalid("maid: not a UUID")
	errMAIDZero       = invalid("maid: all-zero ID (limit ad tracking placeholder)")
	errSHA256Empty    = empty(SHA256)
	errSHA256NotHex   = invalid("sha256: not hex")
)

// NormalizeOptions are the choices that change which identifiers match.
// Both parties of a collaboration must use the same options.
type NormalizeOptions struct {
	// GmailRule drops dots and any +suffix from the local part of gmail.com
	// and googlemail.com addresses (and maps googlemail.com to gmail.com),
	// because Gmail delivers all those spellings to one mailbox. Both parties
	// of a collaboration must agree on it.
	GmailRule bool
	// DefaultRegion is the ISO 3166 region (e.g. "US", "GB") for phone
	// numbers written without a leading + country code. Empty: such numbers
	// are an error.
	DefaultRegion string
}

// Normalizer turns identifiers of one IDType into their canonical form and
// digest. It holds no mutable state, so it is safe for concurrent use.
type Normalizer struct {
	typ    IDType
	gmail  bool
	region string // upper case, or empty
	// regionErr is prebuilt because it names the region, and an error on
	// the hot path should not allocate.
	regionErr error
}

// NewNormalizer returns a Normalizer for identifiers of type t. It fails
// for an unknown type or an unknown DefaultRegion, so configuration
// mistakes surface before any data is read.
func NewNormalizer(t IDType, opts NormalizeOptions) (*Normalizer, error) {
	switch t {
	case Email, Phone, MAID, SHA256:
	default:
		return nil, fmt.Errorf("psi.NewNormalizer: unknown ID type %q (valid: %s)", string(t), validIDTypes)
	}
	n := &Normalizer{typ: t, gmail: opts.GmailRule}
	if r := strings.ToUpper(strings.TrimSpace(opts.DefaultRegion)); r != "" {
		if !phonenumbers.GetSupportedRegions()[r] {
			return nil, fmt.Errorf("psi.NewNormalizer: phone: unknown default region %q (want an ISO 3166 code such as US or GB)", opts.DefaultRegion)
		}
		n.region = r
		n.regionErr = invalid("phone: not a valid number for region " + r)
	}
	return n, nil
}

// Canonical returns the normalized text form (for sha256 input: the
// lowercase hex itself). Canonical is idempotent: normalizing a canonical
// value returns it unchanged.
func (n *Normalizer) Canonical(s string) (string, error) {
	switch n.typ {
	case Email:
		return n.email(s)
	case Phone:
		return n.phone(s)
	case MAID:
		return maid(s)
	default:
		return sha256Hex(s)
	}
}

// Digest returns the SHA-256 of the canonical form, as the 32 raw bytes
// (for sha256 input: the decoded 32 bytes). This is what is hashed to the
// curve, and why a plaintext identifier and its pre-hashed form match.
func (n *Normalizer) Digest(s string) ([32]byte, error) {
	if n.typ == SHA256 {
		// Decode straight from the input: no canonical string needed.
		return sha256Decode(s)
	}
	c, err := n.Canonical(s)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256([]byte(c)), nil
}

// email normalizes an address: trim, NFC, lower case, one '@' with
// non-empty sides, no whitespace or control characters, optionally the Gmail
// rule. It deliberately does not validate the domain further (no label or
// TLD checks, no IDNA/punycode conversion, trailing dots kept): an address
// that is odd but consistent across parties should still match, and one that
// is wrong matches nothing. Quoted local parts are not supported.
func (n *Normalizer) email(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errEmailEmpty
	}
	// One pass over the bytes decides the path: most addresses are
	// already-lowercase ASCII and need no copy at all.
	ascii, upper := true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			ascii = false
		case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			return "", errEmailSpace
		case c < 0x20 || c == 0x7f:
			return "", errEmailControl
		case 'A' <= c && c <= 'Z':
			upper = true
		}
	}
	if !ascii {
		var err error
		if s, err = foldUnicode(s); err != nil {
			return "", err
		}
	} else if upper {
		s = strings.ToLower(s)
	}

	at := strings.IndexByte(s, '@')
	if at < 0 {
		return "", errEmailNoAt
	}
	local, domain := s[:at], s[at+1:]
	if strings.IndexByte(domain, '@') >= 0 {
		return "", errEmailManyAt
	}
	if local == "" {
		return "", errEmailLocal
	}
	if domain == "" {
		return "", errEmailDomain
	}
	if n.gmail && (domain == "gmail.com" || domain == "googlemail.com") {
		return applyGmailRule(s, local, domain)
	}
	return s, nil
}

// foldUnicode is the slow path of email for non-ASCII input. NFC makes
// precomposed and decomposed accents (é vs e+◌́) the same bytes; NFC is
// applied again after lower-casing because lower-casing can leave a string
// that is no longer in NFC, and the result must be a fixed point.
func foldUnicode(s string) (string, error) {
	if !utf8.ValidString(s) {
		// Mangled bytes would be replaced by U+FFFD differently by each
		// party's tooling; refuse rather than guess.
		return "", errEmailUTF8
	}
	s = norm.NFC.String(strings.ToLower(norm.NFC.String(s)))
	for _, r := range s {
		if unicode.IsSpace(r) {
			return "", errEmailSpace
		}
		if unicode.IsControl(r) {
			return "", errEmailControl
		}
	}
	return s, nil
}

// applyGmailRule applies the Gmail rule to an address already split at '@'.
func applyGmailRule(s, local, domain string) (string, error) {
	if i := strings.IndexByte(local, '+'); i >= 0 {
		local = local[:i]
	}
	if domain == "gmail.com" && len(local) == len(s)-len("@gmail.com") && strings.IndexByte(local, '.') < 0 {
		return s, nil // already canonical: no copy
	}
	var b strings.Builder
	b.Grow(len(local) + len("@gmail.com"))
	for i := 0; i < len(local); i++ {
		if local[i] != '.' {
			b.WriteByte(local[i])
		}
	}
	if b.Len() == 0 {
		return "", errEmailLocal
	}
	b.WriteString("@gmail.com")
	return b.String(), nil
}

// phone normalizes a number to E.164. It requires
// phonenumbers.IsValidNumber, not just IsPossibleNumber: placeholder numbers
// such as 555-555-5555 are "possible" by length, and if both parties keep
// them they produce false matches. The cost is that numbers in ranges newer
// than the library's metadata are rejected. Extensions are dropped, since
// E.164 has none.
func (n *Normalizer) phone(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errPhoneEmpty
	}
	// "00" is the ITU international prefix and no national number starts
	// with it, so treat it as '+' whatever the default region's own
	// international prefix is (the library only knows the region's one).
	if strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	var num phonenumbers.PhoneNumber
	// KeepRawInput records where the country code came from, which the
	// error message needs.
	if err := phonenumbers.ParseAndKeepRawInputToNumber(s, n.region, &num); err != nil {
		switch err {
		case phonenumbers.ErrInvalidCountryCode:
			if n.region == "" && !strings.ContainsAny(s, "+\uff0b") {
				return "", errPhoneNoCC
			}
			return "", errPhoneBadCC
		case phonenumbers.ErrTooShortNSN, phonenumbers.ErrTooShortAfterIDD:
			return "", errPhoneTooShort
		case phonenumbers.ErrNumTooLong:
			return "", errPhoneTooLong
		default:
			return "", errPhoneNotNumber
		}
	}
	if !phonenumbers.IsValidNumber(&num) {
		if num.GetCountryCodeSource() == phonenumbers.PhoneNumber_FROM_DEFAULT_COUNTRY {
			return "", n.regionErr
		}
		return "", errPhoneInvalid
	}
	return phonenumbers.Format(&num, phonenumbers.E164), nil
}

// maid normalizes a mobile advertising ID to the lowercase hyphenated UUID
// form (8-4-4-4-12). It accepts any case and the 32-hex form without
// hyphens, which is how some ad platforms export them. It rejects braces and
// "urn:uuid:" forms: no mobile OS or ad platform writes IDFAs/AAIDs that
// way, so such a value more likely comes from a wrong column. The UUID
// version is not checked, as platforms differ.
func maid(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errMAIDEmpty
	}
	var out [36]byte
	var nonzero byte
	switch len(s) {
	case 36:
		for i := 0; i < 36; i++ {
			c := s[i]
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if c != '-' {
					return "", errMAIDNotUUID
				}
				out[i] = '-'
				continue
			}
			v, ok := unhex(c)
			if !ok {
				return "", errMAIDNotUUID
			}
			nonzero |= v
			out[i] = lowerHex[v]
		}
		if nonzero != 0 && string(out[:]) == s {
			return s, nil // already canonical: no copy
		}
	case 32:
		j := 0
		for i := 0; i < 32; i++ {
			if j == 8 || j == 13 || j == 18 || j == 23 {
				out[j] = '-'
				j++
			}
			v, ok := unhex(s[i])
			if !ok {
				return "", errMAIDNotUUID
			}
			nonzero |= v
			out[j] = lowerHex[v]
			j++
		}
	default:
		return "", errMAIDNotUUID
	}
	if nonzero == 0 {
		// iOS and Android report all zeros when the user limits ad
		// tracking; every such row would match every other.
		return "", errMAIDZero
	}
	return string(out[:]), nil
}

// sha256Hex validates pre-hashed input and returns it as lowercase hex.
func sha256Hex(s string) (string, error) {
	s, err := sha256Check(s)
	if err != nil {
		return "", err
	}
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'F' {
			return strings.ToLower(s), nil
		}
	}
	return s, nil
}

// sha256Decode validates pre-hashed input and returns the bytes it encodes.
func sha256Decode(s string) ([32]byte, error) {
	var d [32]byte
	s, err := sha256Check(s)
	if err != nil {
		return d, err
	}
	for i := range d {
		hi, _ := unhex(s[2*i])
		lo, _ := unhex(s[2*i+1])
		d[i] = hi<<4 | lo
	}
	return d, nil
}

// sha256Check trims s and checks it is 64 hex digits.
func sha256Check(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errSHA256Empty
	}
	if len(s) != 2*sha256.Size {
		// Count characters, not bytes, so the number matches what the
		// user sees.
		n := utf8.RuneCountInString(s)
		if n == 2*sha256.Size {
			return "", errSHA256NotHex
		}
		return "", invalid(fmt.Sprintf("sha256: want 64 hex characters, got %d", n))
	}
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return "", errSHA256NotHex
		}
	}
	return s, nil
}

const lowerHex = "0123456789abcdef"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
