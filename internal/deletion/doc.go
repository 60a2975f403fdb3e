// Package deletion is what follows a person, or a party's data, out of
// the clean room: deletions of identifiers, opt-outs, the deletion of an
// audience or a whole collaboration, expiry at the end of an audience's
// retention, each with a signed receipt and an audit entry, and access
// requests (what the room holds for one person).
//
// It decides who may delete what and writes the receipts; the statements
// that drop or delete rows of audiences, matches and cohorts are package
// cohort's (Service.ForgetPeople, DropAudience, DropAudiences,
// DropMatches), run in the transaction a deletion opens.
//
// Callers may rely on this: every request is one transaction, so a
// deletion, its receipt and its audit entry commit together or not at
// all; a deletion runs the same statements, and bumps every cohort's
// revision, whether or not anyone matched; and a receipt, an access
// request's answer and the private part of their audit entries count only
// the requesting partner's own data (see package cohort's doc).
//
// # Files
//
//	service.go  the Service, its clock and signer
//	delete.go   deletions, opt-outs, expiry and their signed receipts
//	access.go   access requests
package deletion
