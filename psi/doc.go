// Package psi is cleanroom's private set intersection: the steps that turn
// a customer identifier into something two parties can compare without
// either learning the other's list, and without the server learning any
// identifier at all. It knows nothing of HTTP, storage or the server.
//
// The steps, in the order a party runs them:
//
//   - Normalize (NewNormalizer): email (Unicode NFC, trimmed, lower case,
//     optionally the Gmail dot and plus rule), phone (E.164), mobile
//     advertising ID (canonical UUID) or an already hashed identifier, then
//     the SHA-256 of the normalized form, so a plaintext identifier and its
//     pre-hashed form meet. Errors name the row and never contain the value.
//   - Hash to the curve (NewHasher): RFC 9380
//     curve25519_XMD:SHA-512_ELL2_RO_, with a domain-separation tag naming
//     the project, its version and the identifier kind (DST), tested
//     against every RFC vector in testdata.
//   - Blind (Key.Blind, BlindIDs): an X25519 scalar multiplication with the
//     party's own key, one random key per party per collaboration, kept in
//     a mode-0600 file (GenerateKey, SaveKey, LoadKey). The server only
//     ever holds points blinded this way.
//   - Re-blind (Reblind): each party multiplies the other's points by its
//     own key; the doubly blinded points of a person both parties hold are
//     equal, whichever party blinded first.
//   - Tokenize and intersect (TokenOf, Tokens, Intersect): a truncated,
//     domain-separated hash of the doubly blinded point, compared in an
//     open-addressing table.
//
// Points travel as their 32-byte canonical encoding; DecodePoint rejects
// non-canonical encodings, the identity and low-order points, so a party
// cannot send a point that matches everything or leaks the other's key.
// Scalar multiplication is circl's constant-time X25519; the hash to the
// curve does not depend on secrets.
//
// The streams (BlindIDs, Reblind, Tokens) process any number of items on
// all cores in bounded memory, keep their order and stop on cancel.
//
// Privacy: a party that runs the protocol learns the other party's number
// of distinct points and, through the server, only a noisy cohort size.
// The server colluding with one party can learn which of that party's
// customers are in the intersection; this is stated, not defended.
package psi
