package wire

import "net/http"

// ErrorBody is the body of every error the API answers (except the
// plain-text refusals of the HTTP server itself, before any route runs):
//
//	{"error": {"code": "not_found", "message": "collaboration c_..."}}
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error says what went wrong. Code is for programs (one of the Code
// constants; the HTTP status follows from it), Message for people: it
// never repeats the code, and never holds a secret or another partner's
// data.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	// Position is, for a query refused for its text (syntax), the byte
	// offset in the SQL where the problem is; left out otherwise.
	Position *int `json:"position,omitempty" schema:"min=0"`
}

// ErrorCode names a kind of failure. Each code has one HTTP status,
// given with it below.
type ErrorCode string

// Codes of every route.
const (
	// CodeInvalid (400): the request is wrong (a field, a parameter, the
	// body); the message says which.
	CodeInvalid ErrorCode = "invalid"
	// CodeInvalidRules (400): a collaboration's rules are out of range or
	// unknown; the message names the rule.
	CodeInvalidRules ErrorCode = "invalid_rules"
	// CodeUnauthorized (401): no API key, or an unknown or revoked one.
	CodeUnauthorized ErrorCode = "unauthorized"
	// CodeForbidden (403): the key's role may not use this route.
	CodeForbidden ErrorCode = "forbidden"
	// CodeNotFound (404): no such thing, or not one the key's partner
	// takes part in (the same answer, so outsiders learn nothing).
	CodeNotFound ErrorCode = "not_found"
	// CodeMethodNotAllowed (405): the path exists, not with this method.
	CodeMethodNotAllowed ErrorCode = "method_not_allowed"
	// CodeConflict (409): the request does not fit the current state
	// (a collaboration not active or deleted, rules changed since).
	CodeConflict ErrorCode = "conflict"
	// CodeStaleMatch (409): the match was voided by a replaced audience
	// or a deletion; start a new one.
	CodeStaleMatch ErrorCode = "stale_match"
	// CodeAwaitingUpload (409): a match needs both parties' audiences.
	CodeAwaitingUpload ErrorCode = "awaiting_upload"
	// CodeLastAdminKey (409): revoking the key would leave its partner
	// without an admin key, which no one (the operator included) could
	// give it back; create another admin key first (keys rotate does).
	CodeLastAdminKey ErrorCode = "last_admin_key"
	// CodeReplaceRequired (409): an upload names a table the partner
	// already has; send replace=true (upload --replace) to replace it.
	CodeReplaceRequired ErrorCode = "replace_required"
	// CodeNotStored (409): a query asked with cached_only has no stored
	// answer (never answered at that epsilon, or the cohort changed
	// since); nothing was spent.
	CodeNotStored ErrorCode = "not_stored"
	// CodeKeyMismatch (409): a match half or an upload comes with another
	// blinding key (by its fingerprint) than the partner's tables; the
	// message names both fingerprints.
	CodeKeyMismatch ErrorCode = "key_mismatch"
	// CodeTooLarge (413): a body over the server's limit.
	CodeTooLarge ErrorCode = "too_large"
	// CodeTooManyUploads (429): the partner has as many uploads in
	// progress, or as many bytes of them spooled, as the server takes at
	// once; retry when one has finished.
	CodeTooManyUploads ErrorCode = "too_many_uploads"
	// CodeUnsupportedMediaType (415): a body in a format the route does
	// not read.
	CodeUnsupportedMediaType ErrorCode = "unsupported_media_type"
	// CodeInternal (500): the server failed; its log says why.
	CodeInternal ErrorCode = "internal"
	// CodeUnavailable (503): the server lacks what this needs (the audit
	// signing key); its operator can fix it.
	CodeUnavailable ErrorCode = "unavailable"
	// CodeInsufficientStorage (507): the server's disk is full (or under
	// its reserve); nothing was changed. Retry once the operator has
	// freed space.
	CodeInsufficientStorage ErrorCode = "insufficient_storage"
)

// Refusals of a query (POST .../queries). Each is logged as
// query.refused with its code.
const (
	// CodeSyntax (400): the SQL does not parse; Position says where.
	CodeSyntax ErrorCode = "syntax"
	// CodeUnsupported (400): a construct outside the SQL subset.
	CodeUnsupported ErrorCode = "unsupported"
	// CodeLimit (400): the query is over a size limit.
	CodeLimit ErrorCode = "limit"
	// CodeEpsilonNotAllowed (400): the epsilon is outside the rules'
	// bounds, or not a whole number of millionths.
	CodeEpsilonNotAllowed ErrorCode = "epsilon_not_allowed"
	// CodeNotReleasable (400): the noise library refused the release's
	// parameters (never because of the data).
	CodeNotReleasable ErrorCode = "not_releasable"
	// CodeNotAllowed (403): a column or aggregate the rules do not allow.
	CodeNotAllowed ErrorCode = "not_allowed"
	// CodeHiddenColumn (403): uid, rowid and columns starting with _.
	CodeHiddenColumn ErrorCode = "hidden_column"
	// CodeNotAQuerier (403): the rules' queriers leave out the key's partner.
	CodeNotAQuerier ErrorCode = "not_a_querier"
	// CodeNoCohort (409): no match has built a cohort yet.
	CodeNoCohort ErrorCode = "no_cohort"
	// CodeCohortTooSmall (409): the cohort's noisy size is under the rule
	// min_cohort_users.
	CodeCohortTooSmall ErrorCode = "cohort_too_small"
	// CodeRulesInvalid (409): the stored rules cannot be counted exactly,
	// or bound a metric beyond MaxMetricBound; change them before querying.
	CodeRulesInvalid ErrorCode = "rules_invalid"
	// CodeBudgetExhausted (429): the epsilon budget cannot cover the query.
	CodeBudgetExhausted ErrorCode = "budget_exhausted"
	// CodeDeltaBudgetExhausted (429): the delta budget cannot cover it.
	CodeDeltaBudgetExhausted ErrorCode = "delta_budget_exhausted"
	// CodeTooManyQueries (429): the key already has as many questions
	// running as one key may; ask again when one has answered.
	CodeTooManyQueries ErrorCode = "too_many_queries"
	// CodeExposureCapExceeded (429): the charge (a query's, or a
	// match's noisy size) would take a partner of the collaboration past
	// its cap on its people's exposure across all its collaborations; the
	// message names that partner. A match refused for it is logged as
	// match.refused.
	CodeExposureCapExceeded ErrorCode = "exposure_cap_exceeded"
)

// ErrorCodes lists every code, in the order above.
var ErrorCodes = []ErrorCode{
	CodeInvalid, CodeInvalidRules, CodeUnauthorized, CodeForbidden, CodeNotFound, CodeMethodNotAllowed,
	CodeConflict, CodeStaleMatch, CodeAwaitingUpload, CodeLastAdminKey, CodeReplaceRequired, CodeKeyMismatch, CodeNotStored, CodeTooLarge, CodeTooManyUploads,
	CodeUnsupportedMediaType, CodeInternal, CodeUnavailable, CodeInsufficientStorage,
	CodeSyntax, CodeUnsupported, CodeLimit, CodeEpsilonNotAllowed, CodeNotReleasable,
	CodeNotAllowed, CodeHiddenColumn, CodeNotAQuerier, CodeNoCohort, CodeCohortTooSmall,
	CodeRulesInvalid, CodeBudgetExhausted, CodeDeltaBudgetExhausted, CodeTooManyQueries, CodeExposureCapExceeded,
}

// Status is the HTTP status the API answers with code: the one mapping
// from codes to statuses, which the server, the client and the OpenAPI
// document share. An unknown code is an internal error's.
func (c ErrorCode) Status() int {
	switch c {
	case CodeInvalid, CodeInvalidRules, CodeSyntax, CodeUnsupported, CodeLimit, CodeEpsilonNotAllowed, CodeNotReleasable:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden, CodeNotAllowed, CodeHiddenColumn, CodeNotAQuerier:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict, CodeStaleMatch, CodeAwaitingUpload, CodeLastAdminKey, CodeReplaceRequired, CodeKeyMismatch, CodeNotStored, CodeNoCohort, CodeCohortTooSmall, CodeRulesInvalid:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case CodeBudgetExhausted, CodeDeltaBudgetExhausted, CodeTooManyQueries, CodeTooManyUploads, CodeExposureCapExceeded:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeInsufficientStorage:
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}
