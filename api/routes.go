package api

import (
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/wire"
)

// route is one route of the API, and its contract: the table registers
// the handlers, behind guard's access check, and makes the OpenAPI
// document (GET /openapi.json), so the two cannot drift apart.
type route struct {
	method, path string // path in echo's syntax: /v1/collaborations/:cid
	id           string // the operationId
	tag          string
	summary      string
	doc          string // more than the summary, when there is more to say

	// allow lists the roles that may call the route; nil makes it public
	// (no key). scope names what the path points at that the caller's
	// partner must take part in.
	allow []role
	scope scope

	handler echo.HandlerFunc

	in     *body            // the request body, if any
	out    []reply          // the answers of a success
	params []param          // query parameters
	codes  []wire.ErrorCode // errors of the handler itself, beyond guard's (401, 403, 404) and the body's (400, 413)
}

// writes reports whether the route changes what the server stores (every
// method but GET, and the preview, which only reads): under the disk's
// reserve (Config.MinFreeBytes) it answers 507, and reads go on.
func (r *route) writes() bool { return r.method != "GET" && r.id != "previewQuery" }

// body is what a route reads or answers: media types, and for JSON the Go
// value whose type is the schema (or an *openapi3.Schema; nil for bytes
// of the media type).
type body struct {
	types    []string
	schema   any
	optional bool
}

// reply is one success answer.
type reply struct {
	status  int
	doc     string
	body    body
	headers []header
}

type header struct{ name, doc string }

type param struct {
	name, doc string
	schema    *openapi3.Schema
}

// Media types.
const (
	mtJSON    = "application/json"
	mtArrow   = "application/vnd.apache.arrow.stream"
	mtParquet = "application/vnd.apache.parquet"
	mtNDJSON  = "application/x-ndjson"
	mtCSV     = "text/csv"
	mtText    = "text/plain"
)

func jsonBody(v any) *body { return &body{types: []string{mtJSON}, schema: v} }
func jsonReply(v any) body { return body{types: []string{mtJSON}, schema: v} }
func ok(status int, doc string, b body) []reply {
	return []reply{{status: status, doc: doc, body: b}}
}

// answerHeaders are the privacy cost of a CSV or Arrow answer, which
// have no JSON fields to carry it.
var answerHeaders = []header{
	{"Cleanroom-Epsilon", "the answer's epsilon (charged unless Cleanroom-Cached is true)"},
	{"Cleanroom-Delta", "the answer's delta (charged unless cached)"},
	{"Cleanroom-Budget-Remaining", "what the partner has left of epsilon_budget this period"},
	{"Cleanroom-Delta-Remaining", "what the partner has left of delta_budget this period"},
	{"Cleanroom-Collaboration-Epsilon-Spent", "the collaboration's total epsilon spent, both partners, matches included"},
	{"Cleanroom-Collaboration-Delta-Spent", "the collaboration's total delta spent"},
	{"Cleanroom-Cached", "true when the stored answer was returned at no cost"},
}

// identifiersKeyParam is the key_fingerprint of a deletion, an opt-out
// or an access request.
func identifiersKeyParam() param {
	return param{"key_fingerprint", "The fingerprint of the key that blinded the identifiers (psi.Key.Fingerprint). A key other than the one the partner's tables were uploaded with " +
		"is refused (409, key_mismatch) and nothing is done or logged: its points would find no one. Left out, it is not checked.", fingerprintSchema()}
}

// fingerprintSchema is a blinding key's fingerprint (psi.Key.Fingerprint).
func fingerprintSchema() *openapi3.Schema {
	return openapi3.NewStringSchema().WithPattern("^[0-9a-f]{64}$")
}

// routes is the table: every route the server answers.
func (s *Server) routes() []route {
	memberOrOperator := append(append([]role{}, anyMember...), roleOperator)
	str := openapi3.NewStringSchema
	return []route{
		// Operations: public.
		{method: "GET", path: "/healthz", id: "getHealth", tag: "operations", summary: "Liveness: the process answers",
			handler: s.healthz, out: ok(http.StatusOK, "The server is up.", jsonReply(wire.Health{}))},
		{method: "GET", path: "/readyz", id: "getReadiness", tag: "operations", summary: "Readiness: the database answers",
			handler: s.readyz, out: []reply{
				{status: http.StatusOK, doc: "Ready to serve.", body: jsonReply(wire.Health{})},
				{status: http.StatusServiceUnavailable, doc: "The database does not answer.", body: jsonReply(wire.Health{})},
			}},
		{method: "GET", path: "/metrics", id: "getMetrics", tag: "operations", summary: "Prometheus metrics",
			doc: "Request counts and durations by route and status, and the Go runtime's: never IDs, keys or identifiers. " +
				"For the operator only: a request's exact duration can say how much work another party's data made (a deletion's, a match's), which partners must not read.",
			allow: []role{roleOperator}, handler: s.m.handler(), out: ok(http.StatusOK, "Prometheus text exposition format.", body{types: []string{mtText}})},
		{method: "POST", path: "/v1/backup", id: "takeBackup", tag: "operations", summary: "A consistent snapshot of the whole database, streamed",
			doc: "For the operator only: a tar of the database as one transaction saw it (cleanroom.duckdb), the audit signing key when keys=true (audit-signing.key), " +
				"and last a manifest signed with the audit key (manifest.json: the audit head the snapshot holds, the ledger's totals, every table's rows, the server's version). " +
				"A stream cut short has no manifest. The backup holds every partner's data (blinded points and attributes): keep it as the data directory is kept. " +
				"Logged as backup.taken before any byte is sent. cleanroom backup writes it to a directory and cleanroom restore checks it.",
			allow: []role{roleOperator}, handler: s.backup,
			params: []param{{"keys", "Include the audit signing key (restore then keeps the server's identity: its public key and the heads it signed).", openapi3.NewBoolSchema()}},
			out:    ok(http.StatusOK, "The backup, as a tar stream.", body{types: []string{mtTar}}),
			codes:  []wire.ErrorCode{wire.CodeInvalid, wire.CodeConflict, wire.CodeUnavailable, wire.CodeInsufficientStorage}},
		{method: "GET", path: "/openapi.json", id: "getOpenAPI", tag: "operations", summary: "This document",
			doc:     "The API's contract, made from the same route table and Go types (package wire) the server runs.",
			handler: s.openAPI, out: ok(http.StatusOK, "An OpenAPI 3.1 document.", jsonReply(openAPIDocumentSchema))},
		{method: "GET", path: "/v1/audit/pubkey", id: "getAuditPublicKey", tag: "audit", summary: "The audit signing key",
			doc:     "The public key that signs the audit log's head and deletion receipts, for offline verification (cleanroom audit verify).",
			handler: s.auditPubkey, out: ok(http.StatusOK, "The public key.", jsonReply(wire.PublicKey{})),
			codes: []wire.ErrorCode{wire.CodeUnavailable}},

		{method: "GET", path: "/v1/me", id: "getMe", tag: "partners", summary: "Who the calling key is",
			doc:   "The key's id, label and role, and its partner: what a client (the console) needs to show only what the role may do.",
			allow: memberOrOperator, handler: s.me,
			out: ok(http.StatusOK, "The key.", jsonReply(wire.Me{}))},

		// Partners and keys.
		{method: "POST", path: "/v1/partners", id: "createPartner", tag: "partners", summary: "Create a partner and its first admin key",
			doc:   "The operator's admin creates partners, each with a first admin key whose secret is shown once; every later key of a partner is its own admin's business.",
			allow: []role{roleOperator}, handler: s.createPartner, in: jsonBody(wire.CreatePartnerRequest{}),
			out:   ok(http.StatusCreated, "The partner, its admin key and the key's secret (shown once).", jsonReply(wire.CreatedPartner{})),
			codes: []wire.ErrorCode{wire.CodeConflict}},
		{method: "GET", path: "/v1/partners", id: "listPartners", tag: "partners", summary: "List partners",
			doc:   "Every partner but the operator: their IDs and names, to propose collaborations.",
			allow: []role{roleAdmin, roleOperator}, handler: s.listPartners,
			out: ok(http.StatusOK, "The partners.", jsonReply(wire.PartnerList{}))},
		{method: "POST", path: "/v1/partners/:pid/keys", id: "createKey", tag: "keys", summary: "Create an API key with a role",
			allow: []role{roleAdmin}, scope: scopePartner, handler: s.createKey, in: jsonBody(wire.CreateKeyRequest{}),
			out: ok(http.StatusCreated, "The key and its secret (shown once).", jsonReply(wire.CreatedKey{}))},
		{method: "GET", path: "/v1/partners/:pid/keys", id: "listKeys", tag: "keys", summary: "List the partner's keys",
			allow: []role{roleAdmin}, scope: scopePartner, handler: s.listKeys,
			out: ok(http.StatusOK, "The keys, never their secrets.", jsonReply(wire.KeyList{}))},
		{method: "DELETE", path: "/v1/partners/:pid/keys/:kid", id: "revokeKey", tag: "keys", summary: "Revoke a key",
			doc:   "The key stops working at once. Revoking twice is a no-op. The partner's last admin key cannot be revoked (last_admin_key): create another admin key first.",
			allow: []role{roleAdmin}, scope: scopePartner, handler: s.revokeKey,
			out:   ok(http.StatusOK, "The revoked key.", jsonReply(wire.Key{})),
			codes: []wire.ErrorCode{wire.CodeLastAdminKey}},

		{method: "GET", path: "/v1/partners/:pid/exposure-cap", id: "getExposureCap", tag: "partners", summary: "The partner's cap on its people's exposure",
			doc: "The cap on the epsilon and delta the partner's people may be exposed to across all its collaborations in a period (null: none), " +
				"and what counts against it now: every charge in any of its collaborations, queries and matches, by either partner. Any key of the partner reads it.",
			allow: memberOrOperator, scope: scopePartner, handler: s.exposureCap,
			out: ok(http.StatusOK, "The cap and the total counted against it.", jsonReply(wire.ExposureCap{}))},
		{method: "PUT", path: "/v1/partners/:pid/exposure-cap", id: "setExposureCap", tag: "partners", summary: "Set the partner's cap on its people's exposure",
			doc: "The partner's own admin caps the total epsilon (and delta) its people may be exposed to across all its collaborations, over all time (refresh none, the default) or each calendar month (UTC). " +
				"A query or match whose charge would pass the cap of either partner of its collaboration is refused (exposure_cap_exceeded). Both left out removes the cap. Logged as partner.exposure_cap.",
			allow: []role{roleAdmin}, scope: scopePartner, handler: s.setExposureCap, in: jsonBody(wire.ExposureCapRequest{}),
			out:   ok(http.StatusOK, "The cap as set, and the total counted against it.", jsonReply(wire.ExposureCap{})),
			codes: []wire.ErrorCode{wire.CodeInvalid}},

		// Collaborations.
		{method: "POST", path: "/v1/collaborations", id: "proposeCollaboration", tag: "collaborations", summary: "Propose a collaboration with rules",
			doc:   "The proposer approves at once; the collaboration is active when the other partner approves too.",
			allow: []role{roleAdmin}, handler: s.propose, in: jsonBody(wire.ProposeRequest{}),
			out:   ok(http.StatusCreated, "The proposed collaboration.", jsonReply(wire.Collaboration{})),
			codes: []wire.ErrorCode{wire.CodeInvalidRules}},
		{method: "GET", path: "/v1/collaborations", id: "listCollaborations", tag: "collaborations", summary: "List the caller's collaborations",
			doc:   "The key's partner's collaborations; every one for the operator.",
			allow: memberOrOperator, handler: s.listCollabs,
			out: ok(http.StatusOK, "The collaborations.", jsonReply(wire.CollaborationList{}))},
		{method: "GET", path: "/v1/collaborations/:cid", id: "getCollaboration", tag: "collaborations", summary: "Show a collaboration",
			allow: memberOrOperator, scope: scopeCollab, handler: s.getCollab,
			out: ok(http.StatusOK, "The collaboration.", jsonReply(wire.Collaboration{}))},
		{method: "PUT", path: "/v1/collaborations/:cid/rules", id: "changeRules", tag: "collaborations", summary: "Propose new rules",
			doc:   "The collaboration goes back to proposed, approved by the caller's partner only, until the other approves again.",
			allow: []role{roleAdmin}, scope: scopeCollab, handler: s.changeRules, in: jsonBody(rulesRequest{}),
			out:   ok(http.StatusOK, "The collaboration with its new rules.", jsonReply(wire.Collaboration{})),
			codes: []wire.ErrorCode{wire.CodeInvalidRules, wire.CodeConflict}},
		{method: "POST", path: "/v1/collaborations/:cid/approve", id: "approveCollaboration", tag: "collaborations", summary: "Approve the current rules",
			doc:   "Approving again is a no-op. A rules_version other than the current one is refused (409): the rules changed since they were read.",
			allow: []role{roleAdmin}, scope: scopeCollab, handler: s.approve,
			in:    &body{types: []string{mtJSON}, schema: wire.ApproveRequest{}, optional: true},
			out:   ok(http.StatusOK, "The collaboration.", jsonReply(wire.Collaboration{})),
			codes: []wire.ErrorCode{wire.CodeConflict}},
		{method: "POST", path: "/v1/collaborations/:cid/reject", id: "rejectRulesChange", tag: "collaborations", summary: "Reject a pending change of the rules",
			doc: "The partner asked to approve a change turns it down: the rules both last approved come back as a new version, approved by both, and the collaboration is active again. " +
				"A first proposal has nothing to go back to (409): delete the collaboration to decline it. A rules_version other than the current one is refused (409).",
			allow: []role{roleAdmin}, scope: scopeCollab, handler: s.reject,
			in:    &body{types: []string{mtJSON}, schema: wire.ApproveRequest{}, optional: true},
			out:   ok(http.StatusOK, "The collaboration, active under its earlier rules.", jsonReply(wire.Collaboration{})),
			codes: []wire.ErrorCode{wire.CodeConflict}},
		{method: "DELETE", path: "/v1/collaborations/:cid", id: "deleteCollaboration", tag: "deletions", summary: "Delete the collaboration and all its data",
			doc:   "Both audiences, every match and cohort; final. Answers the caller's signed receipt.",
			allow: []role{roleAdmin}, scope: scopeCollab, handler: s.deleteCollaboration,
			out:   ok(http.StatusOK, "The signed deletion receipt.", jsonReply(audit.Receipt{})),
			codes: []wire.ErrorCode{wire.CodeConflict, wire.CodeUnavailable}},

		// Audiences.
		{method: "POST", path: "/v1/collaborations/:cid/audiences", id: "uploadAudience", tag: "audiences", summary: "Upload one of the partner's tables",
			doc: "An Arrow IPC stream (or Parquet) with a pid column of 32-byte blinded points, an optional consent list of purposes, " +
				"and typed attribute columns: the table named by the table parameter, which the rules must declare (with exactly these columns) " +
				"when they declare tables. All or nothing. A table the partner already has is replaced only with replace=true (else 409, replace_required, " +
				"and nothing changes): that replaces it, and only it, and makes the cohort stale. dry_run=true runs every check and stores nothing (200). " +
				"A partner's uploads in progress are bounded (429, too_many_uploads), and so are the bytes of its Parquet bodies spooled to disk; " +
				"a Parquet body must start with PAR1, checked before anything is written.",
			allow: []role{roleEngineer}, scope: scopeCollab, handler: s.upload,
			in: &body{types: []string{mtArrow, mtParquet, "application/octet-stream", "application/x-parquet"}},
			params: []param{{"table", "The table's name; default audience, a partner's one table where the rules declare none.", str()},
				{"retention", "Delete the table (with a receipt) once it is this old: a Go duration such as 2160h.", str()},
				{"key_fingerprint", "The fingerprint of the blinding key that blinded the points (64 hex digits: a hash of the key's public point, never the key). " +
					"A match half re-blinded with another key is then refused; an upload with another key than the partner's other tables is refused (409, key_mismatch). " +
					"Shown only to the partner's own keys and the operator.", fingerprintSchema()},
				{"replace", "true to replace the partner's table of this name, which deletes it and the matches built from it.", openapi3.NewBoolSchema()},
				{"dry_run", "true to run every check of the upload and answer what would be stored (200, dry_run set, no id), storing and logging nothing.", openapi3.NewBoolSchema()}},
			out: []reply{
				{status: http.StatusCreated, doc: "The stored table.", body: jsonReply(wire.Audience{})},
				{status: http.StatusOK, doc: "A dry run: what would be stored.", body: jsonReply(wire.Audience{})},
			},
			codes: []wire.ErrorCode{wire.CodeInvalid, wire.CodeConflict, wire.CodeReplaceRequired, wire.CodeKeyMismatch, wire.CodeTooLarge, wire.CodeTooManyUploads, wire.CodeUnsupportedMediaType}},
		{method: "GET", path: "/v1/collaborations/:cid/audiences", id: "listAudiences", tag: "audiences", summary: "The current tables",
			doc:   "Of the other partner's tables only their names, when they came, and their columns; sizes and content hashes to their own partner and the operator.",
			allow: memberOrOperator, scope: scopeCollab, handler: s.listAudiences,
			out: ok(http.StatusOK, "Each partner's current tables.", jsonReply(wire.AudienceList{}))},
		{method: "DELETE", path: "/v1/collaborations/:cid/audiences/:aid", id: "deleteAudience", tag: "deletions", summary: "Delete an audience",
			allow: []role{roleEngineer}, scope: scopeCollab, handler: s.deleteAudience,
			out:   ok(http.StatusOK, "The signed deletion receipt.", jsonReply(audit.Receipt{})),
			codes: []wire.ErrorCode{wire.CodeNotFound, wire.CodeConflict, wire.CodeUnavailable}},

		// Matches.
		{method: "POST", path: "/v1/collaborations/:cid/matches", id: "startMatch", tag: "matches", summary: "Start (or join) a match",
			doc:   "Starts a match of both parties' current tables, or joins the one running over them: 201 when it started one, 200 when it joined.",
			allow: []role{roleEngineer}, scope: scopeCollab, handler: s.startMatch,
			params: []param{{"key_fingerprint", "The fingerprint of the key the caller will re-blind with; a key other than its tables' is refused (409, key_mismatch) before the match starts.", fingerprintSchema()}},
			out: []reply{
				{status: http.StatusCreated, doc: "A new match.", body: jsonReply(wire.Match{})},
				{status: http.StatusOK, doc: "The match already running (or done) over the current tables.", body: jsonReply(wire.Match{})},
			},
			codes: []wire.ErrorCode{wire.CodeAwaitingUpload, wire.CodeKeyMismatch, wire.CodeConflict, wire.CodeInvalid, wire.CodeExposureCapExceeded}},
		{method: "GET", path: "/v1/collaborations/:cid/matches/:mid", id: "getMatch", tag: "matches", summary: "A match's state and noisy cohort size",
			allow: memberOrOperator, scope: scopeCollab, handler: s.getMatch,
			out:   ok(http.StatusOK, "The match, from the caller's side.", jsonReply(wire.Match{})),
			codes: []wire.ErrorCode{wire.CodeNotFound}},
		{method: "GET", path: "/v1/collaborations/:cid/matches/:mid/points", id: "getMatchPoints", tag: "matches", summary: "The other party's points to re-blind",
			doc:   "An Arrow IPC stream of one fixed_size_binary(32) column: the other party's points blinded with its key, in order.",
			allow: []role{roleEngineer}, scope: scopeCollab, handler: s.getPoints,
			out:   ok(http.StatusOK, "The points.", body{types: []string{mtArrow}}),
			codes: []wire.ErrorCode{wire.CodeNotFound, wire.CodeStaleMatch, wire.CodeConflict}},
		{method: "PUT", path: "/v1/collaborations/:cid/matches/:mid/points", id: "putMatchPoints", tag: "matches", summary: "The re-blinded points, same order",
			doc: "Sending the same half again is a no-op; a different one is refused (409). key_fingerprint is required: a half re-blinded with another key " +
				"than the caller's tables were uploaded with is refused (409, key_mismatch) before its body is read or anything is charged.",
			allow: []role{roleEngineer}, scope: scopeCollab, handler: s.putPoints,
			params: []param{{"key_fingerprint", "Required: the fingerprint of the key that re-blinded the points (psi.Key.Fingerprint). Tables uploaded without one take the first half's.", fingerprintSchema()}},
			in:     &body{types: []string{mtArrow}},
			out:    ok(http.StatusOK, "The match.", jsonReply(wire.Match{})),
			codes:  []wire.ErrorCode{wire.CodeNotFound, wire.CodeStaleMatch, wire.CodeKeyMismatch, wire.CodeConflict, wire.CodeInvalid, wire.CodeTooLarge, wire.CodeExposureCapExceeded}},

		// Deletions and receipts.
		{method: "POST", path: "/v1/collaborations/:cid/deletions", id: "deleteIdentifiers", tag: "deletions", summary: "Delete people",
			doc:    "People given as points blinded with the caller's key, from its audience, tokens and every cohort. Answers the signed receipt.",
			params: []param{identifiersKeyParam()},
			allow:  []role{roleEngineer}, scope: scopeCollab, handler: s.deleteIDs(false), in: jsonBody(wire.IdentifiersRequest{}),
			out:   ok(http.StatusOK, "The signed deletion receipt.", jsonReply(audit.Receipt{})),
			codes: []wire.ErrorCode{wire.CodeConflict, wire.CodeKeyMismatch, wire.CodeUnavailable}},
		{method: "POST", path: "/v1/collaborations/:cid/optouts", id: "optOut", tag: "deletions", summary: "Opt people out",
			doc:    "Deletes them as .../deletions does, and keeps them out of later uploads and matches.",
			params: []param{identifiersKeyParam()},
			allow:  []role{roleEngineer}, scope: scopeCollab, handler: s.deleteIDs(true), in: jsonBody(wire.IdentifiersRequest{}),
			out:   ok(http.StatusOK, "The signed deletion receipt.", jsonReply(audit.Receipt{})),
			codes: []wire.ErrorCode{wire.CodeConflict, wire.CodeKeyMismatch, wire.CodeUnavailable}},
		{method: "GET", path: "/v1/collaborations/:cid/receipts", id: "listReceipts", tag: "deletions", summary: "Deletion receipts",
			doc:   "The caller's partner's own receipts (every partner's for the operator): a receipt describes its partner's own data.",
			allow: memberOrOperator, scope: scopeCollab, handler: s.listReceipts,
			out: ok(http.StatusOK, "The receipts.", jsonReply(wire.ReceiptList{}))},

		// Transparency.
		{method: "POST", path: "/v1/collaborations/:cid/access-requests", id: "accessRequest", tag: "transparency", summary: "What is held for one person",
			doc:    "Given one identifier blinded with the caller's key: the caller's own rows, consent and opt-out for it. Never whether the person matched.",
			params: []param{identifiersKeyParam()},
			allow:  []role{roleEngineer, roleAdmin}, scope: scopeCollab, handler: s.accessRequest, in: jsonBody(wire.AccessRequest{}),
			out:   ok(http.StatusOK, "What is held.", jsonReply(wire.Access{})),
			codes: []wire.ErrorCode{wire.CodeKeyMismatch}},
		{method: "GET", path: "/v1/collaborations/:cid/access-requests", id: "listAccessRequests", tag: "transparency", summary: "The partner's own access requests",
			doc: "The access requests the caller's partner's keys made in the collaboration (every partner's for the operator), newest first, at most 1,000: " +
				"when, by which key, and how many of the partner's own rows the person had, by table, and whether they had opted out. Never the person, nor whether they matched.",
			allow: []role{roleEngineer, roleAdmin, roleAuditor, roleOperator}, scope: scopeCollab, handler: s.listAccessRequests,
			out: ok(http.StatusOK, "The access requests.", jsonReply(wire.AccessRequestList{}))},
		{method: "GET", path: "/v1/collaborations/:cid/report", id: "getReport", tag: "transparency", summary: "Transparency report",
			allow: memberOrOperator, scope: scopeCollab, handler: s.report,
			out: ok(http.StatusOK, "The report.", jsonReply(wire.Report{}))},

		{method: "GET", path: "/v1/partners/:pid/privacy-report", id: "getPrivacyReport", tag: "transparency", summary: "The partner's public privacy report",
			doc: "What a brand can publish for the people in its data, over a period: the collaborations and purposes its data was used for, the privacy loss they were exposed to, " +
				"and the opt-outs, deletions and expiries honoured with the median time taken. Aggregates of the partner's own use only; nothing about any person or the other partner's data. " +
				"The period is [since, until): collaborations created before its end and not deleted before its start, each with its total spend up to the end.",
			allow: []role{roleAdmin, roleAuditor, roleOperator}, scope: scopePartner, handler: s.privacyReport,
			params: []param{
				{"since", "The period's start (RFC 3339); default a year before until.", str().WithFormat("date-time")},
				{"until", "The period's end (RFC 3339); default now.", str().WithFormat("date-time")},
			},
			out:   ok(http.StatusOK, "The report.", jsonReply(wire.PrivacyReport{})),
			codes: []wire.ErrorCode{wire.CodeInvalid}},
		{method: "PUT", path: "/v1/partners/:pid/report-settings", id: "putReportSettings", tag: "transparency", summary: "Set what the privacy report says of the partner",
			doc: "The partner's introduction (paragraphs separated by newlines, at most 2,000 characters), privacy contact (at most 200) and opt-out link (an https URL, at most 500), " +
				"shown in its public privacy report; each may be empty. Printable text only. Replaces all three; logged.",
			allow: []role{roleAdmin}, scope: scopePartner, handler: s.putReportSettings, in: jsonBody(wire.ReportSettings{}),
			out:   ok(http.StatusOK, "The settings now.", jsonReply(wire.ReportSettings{})),
			codes: []wire.ErrorCode{wire.CodeInvalid}},

		// Queries and budgets.
		{method: "POST", path: "/v1/collaborations/:cid/queries", id: "runQuery", tag: "queries", summary: "Ask an aggregate question",
			doc: "SQL in the subset " + strings.ReplaceAll(wire.QuerySubset, "\n", " ") + "; " +
				"the answer is differentially private and charged to the partner's budget. JSON by default; CSV or Arrow by Accept or ?format=, " +
				"each stating its collaboration, time (answered_at), epsilon, delta, noise and budgets: CSV in # comment lines before the header, Arrow in its schema metadata.",
			allow: []role{roleAnalyst}, scope: scopeCollab, handler: s.runQuery, in: jsonBody(wire.Request{}),
			params: []param{{"format", "The answer's format; overrides Accept.", str().WithEnum("json", "csv", "arrow")},
				{"comments", "CSV: false leaves out the comment lines (# epsilon: 0.09) before the header that state the collaboration, the time and the privacy cost; " +
					"Arrow carries them as schema metadata.", openapi3.NewBoolSchema()}},
			out: []reply{{status: http.StatusOK, doc: "The released answer.", headers: answerHeaders, body: body{
				types: []string{mtJSON, mtCSV, mtArrow}, schema: wire.Answer{}}}},
			codes: []wire.ErrorCode{wire.CodeSyntax, wire.CodeUnsupported, wire.CodeLimit, wire.CodeEpsilonNotAllowed, wire.CodeNotReleasable,
				wire.CodeNotAllowed, wire.CodeHiddenColumn, wire.CodeNotAQuerier, wire.CodeNoCohort, wire.CodeCohortTooSmall, wire.CodeRulesInvalid,
				wire.CodeConflict, wire.CodeNotStored, wire.CodeBudgetExhausted, wire.CodeDeltaBudgetExhausted, wire.CodeTooManyQueries, wire.CodeExposureCapExceeded}},
		{method: "POST", path: "/v1/collaborations/:cid/queries/preview", id: "previewQuery", tag: "queries", summary: "What a question would spend",
			doc: "The epsilon and delta asking the question would spend, each aggregate's expected 95% interval half-width, the budgets left, " +
				"and, when asking would be refused, the refusal. Worked out from the question, the rules and the budgets, never the data; spends nothing, logs nothing.",
			allow: []role{roleAnalyst}, scope: scopeCollab, handler: s.previewQuery, in: jsonBody(wire.Request{}),
			out:   ok(http.StatusOK, "The preview.", jsonReply(wire.Preview{})),
			codes: []wire.ErrorCode{wire.CodeInvalid}},
		{method: "GET", path: "/v1/collaborations/:cid/queries", id: "listQueries", tag: "queries", summary: "The calling analyst's own queries",
			doc:   "The key's own questions in the collaboration, newest first, from the audit log: answered, cached (free) or refused with the reason. Never another key's.",
			allow: []role{roleAnalyst}, scope: scopeCollab, handler: s.queryHistory,
			params: []param{{"limit", "At most this many queries (default 100).", openapi3.NewIntegerSchema().WithMin(1).WithMax(1000)}},
			out:    ok(http.StatusOK, "The queries.", jsonReply(wire.QueryHistory{})),
			codes:  []wire.ErrorCode{wire.CodeInvalid}},
		{method: "GET", path: "/v1/collaborations/:cid/schema", id: "getSchema", tag: "queries", summary: "The tables and columns questions may name",
			doc: "Each party's tables (uploaded, or declared by the rules), each column as queries name it (behind its party's prefix) with its type as uploaded, " +
				"its role (dimension, time or metric, with a metric's per-person bounds; none when the rules allow no use) and whether a cohort is current, so questions can run. " +
				"Names and types only, as GET .../audiences and the rules already tell every member.",
			allow: memberOrOperator, scope: scopeCollab, handler: s.schema,
			out: ok(http.StatusOK, "The schema.", jsonReply(wire.Schema{}))},
		{method: "GET", path: "/v1/collaborations/:cid/budget", id: "getBudget", tag: "queries", summary: "Privacy budget spent and remaining",
			doc:   "Each partner's budgets (an engineer's or analyst's key sees its own partner's), and the collaboration's total spend.",
			allow: memberOrOperator, scope: scopeCollab, handler: s.budget,
			out: ok(http.StatusOK, "The budgets.", jsonReply(wire.BudgetStatus{}))},

		// Audit.
		{method: "GET", path: "/v1/audit", id: "listAuditEntries", tag: "audit", summary: "Audit entries",
			doc: "Entries the key's partner may read (all for the operator), oldest first (newest first with order=desc: page back with before set to the last page's smallest seq, or jump with offset), " +
				"with the total the filters match and the labels of the partner's own keys among the actors. " +
				"JSON; NDJSON with format=ndjson or Accept: application/x-ndjson; CSV of the whole filtered view (or limit entries) with format=csv or Accept: text/csv, " +
				"every cell that a spreadsheet would read as a formula prefixed with an apostrophe. Times are UTC.",
			allow: []role{roleAuditor, roleAdmin, roleOperator}, handler: s.auditLog,
			params: []param{
				{"collab", "Only this collaboration's entries: its id, or its name (any case; every one of the partner's collaborations of that name).", str()},
				{"actor", "Only this actor's entries: a key id, system, or the label of one of the partner's own keys (any case).", str()},
				{"action", "Only entries of this action (query.run), or of the actions it begins at a dot (query: query.run, query.cached, query.refused).", str()},
				{"since", "Entries at or after this time (RFC 3339).", str().WithFormat("date-time")},
				{"until", "Entries before this time (RFC 3339).", str().WithFormat("date-time")},
				{"after", "Entries after this sequence number.", openapi3.NewInt64Schema().WithMin(0)},
				{"before", "Entries before this sequence number.", openapi3.NewInt64Schema().WithMin(1)},
				{"order", "asc (the default): oldest first; desc: newest first.", str().WithEnum("asc", "desc")},
				{"offset", "Skip this many matching entries, to jump to a page.", openapi3.NewIntegerSchema().WithMin(0)},
				{"limit", "At most this many entries (JSON and NDJSON: 1000 unless given; CSV: all unless given).", openapi3.NewIntegerSchema().WithMin(1).WithMax(10000)},
				{"format", "ndjson: one entry per line; csv: a table, with names and labels beside the IDs.", str().WithEnum("json", "ndjson", "csv")},
			},
			out:   ok(http.StatusOK, "The entries.", body{types: []string{mtJSON, mtNDJSON, mtCSV}, schema: auditEntries{}}),
			codes: []wire.ErrorCode{wire.CodeInvalid}},
		{method: "GET", path: "/v1/audit/head", id: "getAuditHead", tag: "audit", summary: "The signed head of the audit chain",
			allow: []role{roleAuditor, roleAdmin, roleOperator}, handler: s.auditHead,
			out:   ok(http.StatusOK, "The head and the key that signed it.", jsonReply(signedHead{})),
			codes: []wire.ErrorCode{wire.CodeUnavailable}},
		{method: "GET", path: "/v1/audit/export", id: "exportAudit", tag: "audit", summary: "Export the log for offline verification",
			doc:   "NDJSON: every entry up to a freshly signed head (other partners' entries redacted to their place in the chain), then a last line {\"head\": ...}.",
			allow: []role{roleAuditor, roleAdmin, roleOperator}, handler: s.auditExport,
			out:   ok(http.StatusOK, "The export.", body{types: []string{mtNDJSON}}),
			codes: []wire.ErrorCode{wire.CodeUnavailable}},
	}
}
