// Package client is the Go client of cleanroom's HTTP API, used by the CLI
// and by anyone scripting a clean room from Go.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// Client talks to one server with one API key.
type Client struct {
	BaseURL string
	Key     string
	HTTP    *http.Client
}

// New returns a client for baseURL (e.g. http://localhost:8080).
func New(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Key: key, HTTP: &http.Client{}}
}

// Error is an error the server answered: {"error": {"code", "message",
// "position"?}} with its status. Match it by code, never by its text:
//
//	if errors.Is(err, client.ErrStaleMatch) { ... }
//	if client.CodeOf(err) == wire.CodeBudgetExhausted { ... }
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the API's error code (wire.ErrorCode); empty when the body
	// was not the API's error shape (a proxy's page, say).
	Code wire.ErrorCode
	// Message is for people.
	Message string
	// Position is, for a query refused for its SQL text, the byte offset
	// of the problem; -1 otherwise.
	Position int
}

func (e *Error) Error() string {
	code := string(e.Code)
	if code == "" {
		code = "http"
	}
	return fmt.Sprintf("server: %s (%d %s)", e.Message, e.Status, code)
}

// Is reports whether target is an *Error with the same code and nothing
// else set: the sentinels below, or one made as &Error{Code: ...}.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code && t.Status == 0 && t.Message == ""
}

// Sentinels for errors.Is, one per code the client's callers act on;
// CodeOf gives any error's code.
var (
	ErrInvalid        = &Error{Code: wire.CodeInvalid}
	ErrInvalidRules   = &Error{Code: wire.CodeInvalidRules}
	ErrUnauthorized   = &Error{Code: wire.CodeUnauthorized}
	ErrForbidden      = &Error{Code: wire.CodeForbidden}
	ErrNotFound       = &Error{Code: wire.CodeNotFound}
	ErrConflict       = &Error{Code: wire.CodeConflict}
	ErrStaleMatch     = &Error{Code: wire.CodeStaleMatch}
	ErrAwaitingUpload = &Error{Code: wire.CodeAwaitingUpload}
	ErrLastAdminKey   = &Error{Code: wire.CodeLastAdminKey}
	ErrTooLarge       = &Error{Code: wire.CodeTooLarge}
	// ErrReplaceRequired: the table exists; upload with Replace to replace it.
	ErrReplaceRequired = &Error{Code: wire.CodeReplaceRequired}
	// ErrKeyMismatch: the key is not the one the partner's tables were
	// blinded with; the message names both fingerprints.
	ErrKeyMismatch = &Error{Code: wire.CodeKeyMismatch}
	// ErrNotStored: a query asked with CachedOnly has no stored answer;
	// nothing was spent.
	ErrNotStored = &Error{Code: wire.CodeNotStored}
	// ErrTooManyUploads: the partner's uploads in progress are at the
	// server's bound; retry when one has finished.
	ErrTooManyUploads = &Error{Code: wire.CodeTooManyUploads}
	ErrUnavailable    = &Error{Code: wire.CodeUnavailable}
	// ErrInsufficientStorage: the server's disk is full (or under its
	// reserve); nothing changed, and retrying once space returns works (507).
	ErrInsufficientStorage = &Error{Code: wire.CodeInsufficientStorage}
	// ErrBudgetExhausted and ErrDeltaBudgetExhausted: the partner's
	// epsilon or delta budget cannot cover the query (429).
	ErrBudgetExhausted      = &Error{Code: wire.CodeBudgetExhausted}
	ErrDeltaBudgetExhausted = &Error{Code: wire.CodeDeltaBudgetExhausted}
	// ErrExposureCapExceeded: the charge would take a partner past its
	// cap on its people's exposure across its collaborations (429).
	ErrExposureCapExceeded = &Error{Code: wire.CodeExposureCapExceeded}
)

// CodeOf returns the API error code of err, or "" when err is not an
// error the server answered.
func CodeOf(err error) wire.ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the cleanroom server at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if w, ok := out.(io.Writer); ok {
		_, err := io.Copy(w, resp.Body)
		return err
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func decodeError(resp *http.Response) error {
	var body wire.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err := json.Unmarshal(b, &body); err != nil || body.Error.Code == "" {
		return &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(b)), Position: -1}
	}
	e := &Error{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message, Position: -1}
	if body.Error.Position != nil {
		e.Position = *body.Error.Position
	}
	return e
}

func (c *Client) json(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	return c.do(ctx, method, path, body, ct, out)
}

// CreatedPartner is a new partner with its first admin key's secret.
type CreatedPartner = wire.CreatedPartner

// CreatePartner needs the operator's admin key.
func (c *Client) CreatePartner(ctx context.Context, name string) (CreatedPartner, error) {
	var out CreatedPartner
	return out, c.json(ctx, "POST", "/v1/partners", wire.CreatePartnerRequest{Name: name}, &out)
}

// ListPartners lists partners (id and name), for proposing collaborations.
func (c *Client) ListPartners(ctx context.Context) ([]wire.Partner, error) {
	var out wire.PartnerList
	return out.Partners, c.json(ctx, "GET", "/v1/partners", nil, &out)
}

// CreatedKey is a new API key and its secret, shown once.
type CreatedKey = wire.CreatedKey

// CreateKey adds a key with a role to the caller's own partner (an admin
// key of that partner; the operator's key may not).
func (c *Client) CreateKey(ctx context.Context, partnerID, role, label string) (CreatedKey, error) {
	var out CreatedKey
	return out, c.json(ctx, "POST", "/v1/partners/"+url.PathEscape(partnerID)+"/keys", wire.CreateKeyRequest{Role: wire.Role(role), Label: label}, &out)
}

// ListKeys lists the caller's own partner's keys.
func (c *Client) ListKeys(ctx context.Context, partnerID string) ([]wire.Key, error) {
	var out wire.KeyList
	return out.Keys, c.json(ctx, "GET", "/v1/partners/"+url.PathEscape(partnerID)+"/keys", nil, &out)
}

// RevokeKey revokes a key of the caller's own partner.
func (c *Client) RevokeKey(ctx context.Context, partnerID, keyID string) (wire.Key, error) {
	var out wire.Key
	return out, c.json(ctx, "DELETE", "/v1/partners/"+url.PathEscape(partnerID)+"/keys/"+url.PathEscape(keyID), nil, &out)
}

// Propose proposes a collaboration with another partner; rules is JSON
// over the defaults (nil for all defaults).
func (c *Client) Propose(ctx context.Context, name, partnerID string, rules json.RawMessage) (wire.Collaboration, error) {
	var out wire.Collaboration
	return out, c.json(ctx, "POST", "/v1/collaborations", wire.ProposeRequest{Name: name, Partner: partnerID, Rules: rules}, &out)
}

// Approve approves a collaboration's current rules (version 0: whatever
// they are now).
func (c *Client) Approve(ctx context.Context, collabID string, rulesVersion int) (wire.Collaboration, error) {
	var out wire.Collaboration
	return out, c.json(ctx, "POST", "/v1/collaborations/"+url.PathEscape(collabID)+"/approve", wire.ApproveRequest{RulesVersion: rulesVersion}, &out)
}

// ChangeRules proposes new rules; the other partner must approve again.
func (c *Client) ChangeRules(ctx context.Context, collabID string, rules json.RawMessage) (wire.Collaboration, error) {
	var out wire.Collaboration
	return out, c.do(ctx, "PUT", "/v1/collaborations/"+url.PathEscape(collabID)+"/rules", bytes.NewReader(rules), "application/json", &out)
}

// Collaboration returns one collaboration.
func (c *Client) Collaboration(ctx context.Context, collabID string) (wire.Collaboration, error) {
	var out wire.Collaboration
	return out, c.json(ctx, "GET", "/v1/collaborations/"+url.PathEscape(collabID), nil, &out)
}

// Collaborations lists the caller's collaborations.
func (c *Client) Collaborations(ctx context.Context) ([]wire.Collaboration, error) {
	var out wire.CollaborationList
	return out.Collaborations, c.json(ctx, "GET", "/v1/collaborations", nil, &out)
}

// Audiences returns each partner's current tables in a collaboration;
// sizes and content hashes are the caller's own partner's only (every
// partner's for the operator).
func (c *Client) Audiences(ctx context.Context, collabID string) (wire.AudienceList, error) {
	var out wire.AudienceList
	return out, c.json(ctx, "GET", "/v1/collaborations/"+url.PathEscape(collabID)+"/audiences", nil, &out)
}

// Schema lists each party's tables in a collaboration (uploaded, or
// declared by the rules) with their columns as queries and rules name
// them, their types and roles.
func (c *Client) Schema(ctx context.Context, collabID string) (wire.Schema, error) {
	var out wire.Schema
	return out, c.json(ctx, "GET", "/v1/collaborations/"+url.PathEscape(collabID)+"/schema", nil, &out)
}

// Upload sends an audience as an Arrow IPC stream read from body.
func (c *Client) Upload(ctx context.Context, collabID string, body io.Reader) (wire.Audience, error) {
	return c.UploadRetained(ctx, collabID, body, 0)
}

// UploadRetained is Upload with a retention period: the server deletes the
// audience (with a receipt) once it is that old. 0 keeps it until deleted.
func (c *Client) UploadRetained(ctx context.Context, collabID string, body io.Reader, retention time.Duration) (wire.Audience, error) {
	return c.UploadTable(ctx, collabID, body, UploadOptions{Retention: retention})
}

// UploadOptions are the choices of UploadTable.
type UploadOptions struct {
	// Table names the party's table; "" is wire.DefaultTable. An upload
	// replaces the party's table of the same name, and only it.
	Table string
	// Retention > 0: the server deletes the table (with a receipt) once
	// it is that old.
	Retention time.Duration
	// Key is the key that blinded the points: its fingerprint (never the
	// key) goes with the upload, so that a match half with another key
	// is refused. Nil states none.
	Key *psi.Key
	// Replace must be set to replace a table the party already has
	// (else ErrReplaceRequired, and nothing changes).
	Replace bool
	// DryRun checks the upload as the server would store it, and stores
	// nothing: the answer has the rows, people and columns, DryRun set
	// and no ID.
	DryRun bool
	// Parquet: body is a Parquet file rather than an Arrow IPC stream.
	Parquet bool
}

// UploadTable uploads one of the party's tables, an Arrow IPC stream (or
// Parquet file) in the upload format.
func (c *Client) UploadTable(ctx context.Context, collabID string, body io.Reader, o UploadOptions) (wire.Audience, error) {
	q := url.Values{}
	if o.Table != "" {
		q.Set("table", o.Table)
	}
	if o.Retention > 0 {
		q.Set("retention", o.Retention.String())
	}
	if o.Key != nil {
		q.Set("key_fingerprint", o.Key.Fingerprint())
	}
	if o.Replace {
		q.Set("replace", "true")
	}
	if o.DryRun {
		q.Set("dry_run", "true")
	}
	path := "/v1/collaborations/" + url.PathEscape(collabID) + "/audiences"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	ct := "application/vnd.apache.arrow.stream"
	if o.Parquet {
		ct = "application/vnd.apache.parquet"
	}
	var out wire.Audience
	return out, c.do(ctx, "POST", path, body, ct, &out)
}

// UploadParquet sends an audience as a Parquet file in the upload format.
func (c *Client) UploadParquet(ctx context.Context, collabID string, body io.Reader) (wire.Audience, error) {
	return c.UploadTable(ctx, collabID, body, UploadOptions{Parquet: true})
}

// StartMatch starts (or joins the running) match.
func (c *Client) StartMatch(ctx context.Context, collabID string) (wire.Match, error) {
	return c.startMatch(ctx, collabID, nil)
}

// startMatch is StartMatch; with key, the server refuses the start when
// the key is not the one the party's tables were uploaded with.
func (c *Client) startMatch(ctx context.Context, collabID string, key *psi.Key) (wire.Match, error) {
	path := "/v1/collaborations/" + url.PathEscape(collabID) + "/matches"
	if key != nil {
		path += "?key_fingerprint=" + key.Fingerprint()
	}
	var out wire.Match
	return out, c.json(ctx, "POST", path, nil, &out)
}

// Match returns a match's state.
func (c *Client) Match(ctx context.Context, collabID, matchID string) (wire.Match, error) {
	var out wire.Match
	return out, c.json(ctx, "GET", "/v1/collaborations/"+url.PathEscape(collabID)+"/matches/"+url.PathEscape(matchID), nil, &out)
}

// Points streams the other party's points (Arrow IPC) into w.
func (c *Client) Points(ctx context.Context, collabID, matchID string, w io.Writer) error {
	return c.do(ctx, "GET", "/v1/collaborations/"+url.PathEscape(collabID)+"/matches/"+url.PathEscape(matchID)+"/points", nil, "", w)
}

// PutPoints returns the re-blinded points (Arrow IPC) read from body,
// with the fingerprint of the key that re-blinded them
// (psi.Key.Fingerprint): the server refuses a key other than the one the
// party's tables were uploaded with (ErrKeyMismatch).
func (c *Client) PutPoints(ctx context.Context, collabID, matchID, keyFingerprint string, body io.Reader) (wire.Match, error) {
	var out wire.Match
	return out, c.do(ctx, "PUT", "/v1/collaborations/"+url.PathEscape(collabID)+"/matches/"+url.PathEscape(matchID)+"/points?key_fingerprint="+url.QueryEscape(keyFingerprint), body, "application/vnd.apache.arrow.stream", &out)
}

// Query asks an aggregate question; format is json, csv or arrow. For
// json the answer is decoded into out (a *wire.Answer); for the others the
// body is copied to out (an io.Writer).
func (c *Client) Query(ctx context.Context, collabID, sqlText string, epsilon float64, format string, out any) error {
	return c.Ask(ctx, collabID, wire.Request{SQL: sqlText, Epsilon: epsilon}, format, out)
}

// Ask is Query with a whole request: a template and its parameters
// instead of SQL, say.
func (c *Client) Ask(ctx context.Context, collabID string, req wire.Request, format string, out any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return c.do(ctx, "POST", "/v1/collaborations/"+url.PathEscape(collabID)+"/queries?format="+url.QueryEscape(format), bytes.NewReader(b), "application/json", out)
}

// AskCSV is Ask as CSV, written to out. comments false leaves out the
// lines before the header that state the answer's collaboration, time
// and privacy cost (# epsilon: 0.09), for readers that take no comments.
func (c *Client) AskCSV(ctx context.Context, collabID string, req wire.Request, comments bool, out io.Writer) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return c.do(ctx, "POST", "/v1/collaborations/"+url.PathEscape(collabID)+"/queries?format=csv&comments="+strconv.FormatBool(comments), bytes.NewReader(b), "application/json", out)
}

// Preview says what a question would spend and how precise its answer
// would be, or why it would be refused; it spends nothing.
func (c *Client) Preview(ctx context.Context, collabID, sqlText string, epsilon float64) (wire.Preview, error) {
	var out wire.Preview
	return out, c.json(ctx, "POST", "/v1/collaborations/"+url.PathEscape(collabID)+"/queries/preview", wire.Request{SQL: sqlText, Epsilon: epsilon}, &out)
}

// Budget returns the privacy budgets of a collaboration the key may see.
func (c *Client) Budget(ctx context.Context, collabID string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.json(ctx, "GET", "/v1/collaborations/"+url.PathEscape(collabID)+"/budget", nil, &out)
}

// AuditLog returns audit entries as raw JSON (filters as query values:
// collab, actor, action, since, until, after, before, limit; order=desc
// for newest first, paging back with before = the smallest seq seen).
func (c *Client) AuditLog(ctx context.Context, filter url.Values) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.json(ctx, "GET", "/v1/audit?"+filter.Encode(), nil, &out)
}

// DeleteIDs deletes people, given as points blinded with key (the key the
// party's tables were uploaded with: another one is refused with
// ErrKeyMismatch, nothing done), or opts them out (kept out of later
// uploads too). It returns the receipt. Only key's fingerprint is sent.
func (c *Client) DeleteIDs(ctx context.Context, collabID string, key *psi.Key, pids []psi.Point, optOut bool) (audit.Receipt, error) {
	enc := make([]string, len(pids))
	for i := range pids {
		enc[i] = base64.StdEncoding.EncodeToString(pids[i][:])
	}
	route := "/deletions"
	if optOut {
		route = "/optouts"
	}
	var r audit.Receipt
	return r, c.json(ctx, "POST", "/v1/collaborations/"+url.PathEscape(collabID)+route+keyQuery(key), wire.IdentifiersRequest{PIDs: enc}, &r)
}

// DeleteAudience deletes one of the caller's audiences.
func (c *Client) DeleteAudience(ctx context.Context, collabID, audienceID string) (audit.Receipt, error) {
	var r audit.Receipt
	return r, c.json(ctx, "DELETE", "/v1/collaborations/"+url.PathEscape(collabID)+"/audiences/"+url.PathEscape(audienceID), nil, &r)
}

// DeleteCollaboration deletes a collaboration and all its data.
func (c *Client) DeleteCollaboration(ctx context.Context, collabID string) (audit.Receipt, error) {
	var r audit.Receipt
	return r, c.json(ctx, "DELETE", "/v1/collaborations/"+url.PathEscape(collabID), nil, &r)
}

// AccessRequest asks what the clean room holds for one identifier
// blinded with key (checked as DeleteIDs checks it).
func (c *Client) AccessRequest(ctx context.Context, collabID string, key *psi.Key, pid psi.Point) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.json(ctx, "POST", "/v1/collaborations/"+url.PathEscape(collabID)+"/access-requests"+keyQuery(key),
		wire.AccessRequest{PID: base64.StdEncoding.EncodeToString(pid[:])}, &out)
}

// Receipts lists the deletion receipts of the key's partner in a
// collaboration (every partner's for the operator), each as signed.
func (c *Client) Receipts(ctx context.Context, collabID string) (wire.ReceiptList, error) {
	var out wire.ReceiptList
	return out, c.json(ctx, "GET", "/v1/collaborations/"+url.PathEscape(collabID)+"/receipts", nil, &out)
}

// AccessRequests lists the access requests the key's partner made in a
// collaboration (every partner's for the operator), newest first.
func (c *Client) AccessRequests(ctx context.Context, collabID string) (wire.AccessRequestList, error) {
	var out wire.AccessRequestList
	return out, c.json(ctx, "GET", "/v1/collaborations/"+url.PathEscape(collabID)+"/access-requests", nil, &out)
}

// Report returns a collaboration's transparency report.
func (c *Client) Report(ctx context.Context, collabID string) (wire.Report, error) {
	var out wire.Report
	return out, c.json(ctx, "GET", "/v1/collaborations/"+url.PathEscape(collabID)+"/report", nil, &out)
}

// Me says who the client's key is: its role and partner.
func (c *Client) Me(ctx context.Context) (wire.Me, error) {
	var out wire.Me
	return out, c.json(ctx, "GET", "/v1/me", nil, &out)
}

// QueryHistory returns the analyst key's own queries in a collaboration,
// newest first (limit 0: the server's default).
func (c *Client) QueryHistory(ctx context.Context, collabID string, limit int) (wire.QueryHistory, error) {
	var out wire.QueryHistory
	path := "/v1/collaborations/" + url.PathEscape(collabID) + "/queries"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	return out, c.json(ctx, "GET", path, nil, &out)
}

// PrivacyReport returns a partner's public privacy report for [since,
// until); zero times take the server's defaults (the last year).
func (c *Client) PrivacyReport(ctx context.Context, partnerID string, since, until time.Time) (wire.PrivacyReport, error) {
	var out wire.PrivacyReport
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if !until.IsZero() {
		q.Set("until", until.UTC().Format(time.RFC3339Nano))
	}
	path := "/v1/partners/" + url.PathEscape(partnerID) + "/privacy-report"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return out, c.json(ctx, "GET", path, nil, &out)
}

// ExposureCap returns a partner's cap on its people's exposure across
// all its collaborations, and what counts against it now (any key of
// the partner).
func (c *Client) ExposureCap(ctx context.Context, partnerID string) (wire.ExposureCap, error) {
	var out wire.ExposureCap
	return out, c.json(ctx, "GET", "/v1/partners/"+url.PathEscape(partnerID)+"/exposure-cap", nil, &out)
}

// SetExposureCap sets a partner's exposure cap (its admin's key); both
// parts nil remove it.
func (c *Client) SetExposureCap(ctx context.Context, partnerID string, req wire.ExposureCapRequest) (wire.ExposureCap, error) {
	var out wire.ExposureCap
	return out, c.json(ctx, "PUT", "/v1/partners/"+url.PathEscape(partnerID)+"/exposure-cap", req, &out)
}

// SetReportSettings sets what a partner's public privacy report says of
// it (its introduction, privacy contact and opt-out link): an admin key.
func (c *Client) SetReportSettings(ctx context.Context, partnerID string, set wire.ReportSettings) (wire.ReportSettings, error) {
	var out wire.ReportSettings
	return out, c.json(ctx, "PUT", "/v1/partners/"+url.PathEscape(partnerID)+"/report-settings", set, &out)
}

// Reject turns down the pending change of a collaboration's rules, which
// go back to those both last approved; rulesVersion 0 rejects whatever
// is pending.
func (c *Client) Reject(ctx context.Context, collabID string, rulesVersion int) (wire.Collaboration, error) {
	var out wire.Collaboration
	return out, c.json(ctx, "POST", "/v1/collaborations/"+url.PathEscape(collabID)+"/reject", wire.ApproveRequest{RulesVersion: rulesVersion}, &out)
}

// BlindIDs normalizes, hashes and blinds identifiers on this machine the way
// the collaboration's rules say (its id_type and Gmail rule); idType may
// instead be sha256 for pre-hashed values. Errors name the value's position.
func (c *Client) BlindIDs(ctx context.Context, collabID string, key *psi.Key, idType psi.IDType, region string, values []string) ([]psi.Point, error) {
	co, err := c.Collaboration(ctx, collabID)
	if err != nil {
		return nil, err
	}
	kind := psi.IDType(co.Rules.IDType)
	if idType == "" {
		idType = kind
	}
	if idType != kind && idType != psi.SHA256 {
		return nil, fmt.Errorf("the collaboration matches on %s, not %s", kind, idType)
	}
	norm, err := psi.NewNormalizer(idType, psi.NormalizeOptions{GmailRule: co.Rules.GmailRule, DefaultRegion: region})
	if err != nil {
		return nil, err
	}
	h, err := psi.NewHasher(kind)
	if err != nil {
		return nil, err
	}
	var out psi.SliceWriter[psi.Point]
	if err := psi.BlindIDs(ctx, &psi.SliceReader[string]{Items: values}, &out, norm, h, key, psi.Options{}); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Backup streams a backup to w (the operator's key only): a tar of the
// database, the audit signing key when withKeys, and the signed manifest
// last. It holds every partner's data.
func (c *Client) Backup(ctx context.Context, withKeys bool, w io.Writer) error {
	return c.do(ctx, "POST", "/v1/backup?keys="+strconv.FormatBool(withKeys), nil, "", w)
}

// AuditExport streams the log export (NDJSON ending with the signed head).
func (c *Client) AuditExport(ctx context.Context, w io.Writer) error {
	return c.do(ctx, "GET", "/v1/audit/export", nil, "", w)
}

// AuditPublicKey returns the server's audit public key, in text form.
func (c *Client) AuditPublicKey(ctx context.Context) (string, error) {
	var out wire.PublicKey
	return out.PublicKey, c.json(ctx, "GET", "/v1/audit/pubkey", nil, &out)
}

// WaitMatch polls until the match is done or ctx ends.
func (c *Client) WaitMatch(ctx context.Context, collabID, matchID string, every time.Duration) (wire.Match, error) {
	for {
		m, err := c.Match(ctx, collabID, matchID)
		if err != nil || m.State != wire.MatchWaiting {
			return m, err
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(every):
		}
	}
}

// keyQuery is the query string naming key's fingerprint, or "" for nil.
func keyQuery(key *psi.Key) string {
	if key == nil {
		return ""
	}
	return "?key_fingerprint=" + key.Fingerprint()
}
