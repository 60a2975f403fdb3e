package api

// The OpenAPI document (GET /openapi.json) is built once, when the server
// is made, from the route table (routes.go) and the Go types the handlers
// decode and answer (package wire, and the audit types): one contract,
// which cannot drift from what runs.
//
// Why kin-openapi: it is the most used and best kept OpenAPI library for
// Go, covers 3.0 to 3.2, and one dependency serves three purposes: its
// openapi3 model writes the document, openapi3gen makes the schemas from
// the same Go types by reflection (so a field added to a wire type is in
// the document at once), and openapi3filter lets the tests validate every
// response the end-to-end tests receive against the served document.
// Describing the schemas by hand beside the types would be a second copy
// to keep in step; generating Go from a hand-written document would move
// the source of truth out of the code the server and client share. Where
// reflection cannot know (which fields a request may leave out, the
// values of a string type, raw JSON whose type is elsewhere) the wire
// types say so in struct tags named schema, read by customize.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/wire"
)

// openAPI serves the document.
func (s *Server) openAPI(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, s.spec)
}

// openAPIDocumentSchema is what the document says of itself.
var openAPIDocumentSchema = openapi3.NewObjectSchema().
	WithProperty("openapi", openapi3.NewStringSchema()).
	WithProperty("info", openapi3.NewObjectSchema()).
	WithProperty("paths", openapi3.NewObjectSchema()).
	WithRequired([]string{"openapi", "info", "paths"})

const (
	apiTitle       = "cleanroom"
	apiVersion     = "v1"
	apiDescription = `A self-hosted data clean room: two partners match their customers by private set intersection and ask differentially private aggregate questions of the result.

Authentication: every route but the operational ones (health, readiness, metrics, this document, the audit public key) needs an API key, sent as ` + "`Authorization: Bearer crk_...`" + `.

Roles: the operator's admin key (written to the data directory on first start) creates partners, each with its first admin key, and nothing else among keys. A partner's ` + "`admin`" + ` manages its own keys and collaborations, ` + "`engineer`" + ` uploads, matches and deletes, ` + "`analyst`" + ` queries, ` + "`auditor`" + ` reads the audit log. Each operation names the roles it allows in its description and in ` + "`x-roles`" + `, and whether its path must name the key's own partner or a collaboration of it in ` + "`x-scope`" + `. No key: 401. A partner's key on a path naming another partner, or a collaboration its partner is not part of: 404, before any role check. A role the operation does not allow: 403.

Errors: every error is ` + "`{\"error\": {\"code\", \"message\", \"position\"?}}`" + ` (components/schemas/ErrorBody). The code is for programs, and each code has one status; the message is for people and never repeats the code; position, for a query refused for its SQL text, is the byte offset of the problem. Each operation lists the codes it may answer under each status.`
)

var tagDocs = []struct{ name, doc string }{
	{"partners", "Partners, created by the operator's admin."},
	{"keys", "A partner's API keys, managed by its own admin only."},
	{"collaborations", "Collaborations between two partners, and the rules both approved."},
	{"audiences", "Each party's audience of blinded identifiers and attributes."},
	{"matches", "The private set intersection protocol, one half per party."},
	{"deletions", "Deleting people, audiences and collaborations, with signed receipts."},
	{"transparency", "Access requests and the transparency report."},
	{"queries", "Differentially private aggregate queries, and the privacy budgets they spend."},
	{"audit", "The hash-chained, signed audit log."},
	{"operations", "Health, readiness, metrics and this document: no key needed."},
}

var pathParamDocs = map[string]string{
	"pid": "A partner ID (p_...): the key's own partner.",
	"kid": "A key ID (k_...) of that partner.",
	"cid": "A collaboration ID (c_...) of the key's partner.",
	"aid": "An audience ID (a_...) of the key's partner.",
	"mid": "A match ID (m_...) of the collaboration.",
}

var echoParam = regexp.MustCompile(`:(\w+)`)

// oasPath writes an echo path in OpenAPI's syntax: /v1/x/:id is /v1/x/{id}.
func oasPath(p string) string { return echoParam.ReplaceAllString(p, "{$1}") }

// buildSpec makes the document from the table.
func buildSpec(table []route) ([]byte, error) {
	g := newSchemaGen(table)
	doc := &openapi3.T{
		OpenAPI: "3.1.0",
		Info:    &openapi3.Info{Title: apiTitle, Version: apiVersion, Description: apiDescription},
		Servers: openapi3.Servers{{URL: "/", Description: "The server this document was read from."}},
		Paths:   openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: openapi3.Schemas{},
			SecuritySchemes: openapi3.SecuritySchemes{"bearer": &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
				Type: "http", Scheme: "bearer", BearerFormat: "crk_<key id>.<secret>",
				Description: "An API key: the operator's admin key, or a partner's key with a role.",
			}}},
		},
		Security: openapi3.SecurityRequirements{{"bearer": []string{}}},
	}
	for _, t := range tagDocs {
		doc.Tags = append(doc.Tags, &openapi3.Tag{Name: t.name, Description: t.doc})
	}
	g.components = doc.Components.Schemas
	errorBody, err := g.ref(wire.ErrorBody{})
	if err != nil {
		return nil, err
	}
	for i := range table {
		op, err := g.operation(&table[i], errorBody)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", table[i].method, table[i].path, err)
		}
		doc.AddOperation(oasPath(table[i].path), table[i].method, op)
	}
	if g.err != nil {
		return nil, g.err
	}
	for _, s := range doc.Components.Schemas {
		to31(s)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range op.Parameters {
				to31(p.Value.Schema)
			}
			if op.RequestBody != nil {
				for _, mt := range op.RequestBody.Value.Content {
					to31(mt.Schema)
				}
			}
			for _, r := range op.Responses.Map() {
				for _, mt := range r.Value.Content {
					to31(mt.Schema)
				}
			}
		}
	}
	return json.Marshal(doc)
}

// operation describes one route.
func (g *schemaGen) operation(r *route, errorBody *openapi3.SchemaRef) (*openapi3.Operation, error) {
	op := openapi3.NewOperation()
	op.OperationID, op.Summary, op.Tags = r.id, r.summary, []string{r.tag}
	op.Description = strings.TrimSpace(r.doc + "\n\n" + r.access())
	names := make([]string, len(r.allow))
	for i, a := range r.allow {
		names[i] = string(a)
	}
	op.Extensions = map[string]any{"x-roles": names, "x-scope": r.scope.String()}
	if r.allow == nil {
		op.Security = &openapi3.SecurityRequirements{}
	} else {
		op.Security = &openapi3.SecurityRequirements{{"bearer": []string{}}}
	}
	for _, m := range echoParam.FindAllStringSubmatch(r.path, -1) {
		p := openapi3.NewPathParameter(m[1]).WithSchema(openapi3.NewStringSchema())
		p.Description = pathParamDocs[m[1]]
		op.AddParameter(p)
	}
	for _, q := range r.params {
		p := openapi3.NewQueryParameter(q.name).WithSchema(q.schema)
		p.Description = q.doc
		op.AddParameter(p)
	}
	if r.in != nil {
		content, err := g.content(r.in)
		if err != nil {
			return nil, err
		}
		rb := openapi3.NewRequestBody().WithContent(content).WithRequired(!r.in.optional)
		op.RequestBody = &openapi3.RequestBodyRef{Value: rb}
	}
	op.Responses = openapi3.NewResponses()
	for _, out := range r.out {
		content, err := g.content(&out.body)
		if err != nil {
			return nil, err
		}
		resp := openapi3.NewResponse().WithDescription(out.doc).WithContent(content)
		if len(out.headers) > 0 {
			resp.Headers = openapi3.Headers{}
			for _, h := range out.headers {
				resp.Headers[h.name] = &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
					Description: h.doc, Schema: openapi3.NewStringSchema().NewRef()}}}
			}
		}
		op.Responses.Set(strconv.Itoa(out.status), &openapi3.ResponseRef{Value: resp})
	}
	byStatus := map[int][]wire.ErrorCode{}
	for _, code := range r.errorCodes() {
		byStatus[code.Status()] = append(byStatus[code.Status()], code)
	}
	for status, codes := range byStatus {
		op.Responses.Set(strconv.Itoa(status), &openapi3.ResponseRef{Value: errorResponse(status, codes, errorBody)})
	}
	if !slices.ContainsFunc(r.errorCodes(), func(c wire.ErrorCode) bool { return c.Status() < http.StatusInternalServerError }) {
		// A route that refuses nothing itself still has the HTTP server's
		// own refusals, before any route runs.
		op.Responses.Set("4XX", &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription("The HTTP server refused the request before any route ran: a malformed request, or headers over its limit (431). A plain-text body, not the error shape.").
			WithContent(openapi3.NewContentWithSchema(openapi3.NewStringSchema(), []string{mtText}))})
	}
	return op, nil
}

// access says who may call the route, for its description.
func (r *route) access() string {
	if r.allow == nil {
		return "Public: no key."
	}
	var who []string
	for _, a := range r.allow {
		if a == roleOperator {
			who = append(who, "the operator's admin key")
		} else {
			who = append(who, "`"+string(a)+"`")
		}
	}
	s := "Roles: " + strings.Join(who, ", ") + "."
	switch r.scope {
	case scopePartner:
		s += " Scope: the path's partner must be the key's own; another partner's key gets 404."
	case scopeCollab:
		s += " Scope: the path's collaboration must be one of the key's partner"
		if r.allows(roleOperator) {
			s += " (any, for the operator)"
		}
		s += "; an outsider's key gets 404."
	}
	return s
}

// errorCodes are the codes the route may answer: guard's, the body's,
// the handler's own, and internal.
func (r *route) errorCodes() []wire.ErrorCode {
	var codes []wire.ErrorCode
	add := func(cs ...wire.ErrorCode) {
		for _, c := range cs {
			if !slices.Contains(codes, c) {
				codes = append(codes, c)
			}
		}
	}
	if r.allow != nil {
		add(wire.CodeUnauthorized)
		if len(r.allow) < len(roles) {
			add(wire.CodeForbidden)
		}
		if r.scope != scopeNone {
			add(wire.CodeNotFound)
		}
		add(wire.CodeInternal)
		if r.writes() {
			add(wire.CodeInsufficientStorage)
		}
	}
	if r.in != nil && slices.Contains(r.in.types, mtJSON) {
		add(wire.CodeInvalid, wire.CodeTooLarge)
	}
	add(r.codes...)
	slices.SortFunc(codes, func(a, b wire.ErrorCode) int {
		return slices.Index(wire.ErrorCodes, a) - slices.Index(wire.ErrorCodes, b)
	})
	return codes
}

// errorResponse is the ErrorBody, its code one of codes.
func errorResponse(status int, codes []wire.ErrorCode, errorBody *openapi3.SchemaRef) *openapi3.Response {
	var doc []string
	enum := make([]any, len(codes))
	for i, c := range codes {
		doc = append(doc, "`"+string(c)+"`")
		enum[i] = string(c)
	}
	codeSchema := openapi3.NewStringSchema().WithEnum(enum...)
	s := &openapi3.Schema{
		AllOf: openapi3.SchemaRefs{errorBody},
		Properties: openapi3.Schemas{"error": openapi3.NewSchemaRef("", &openapi3.Schema{
			Properties: openapi3.Schemas{"code": codeSchema.NewRef()},
		})},
	}
	desc := http.StatusText(status) + ": " + strings.Join(doc, ", ") + "."
	return openapi3.NewResponse().WithDescription(desc).WithJSONSchema(s)
}

// schemaGen makes component schemas from Go types.
type schemaGen struct {
	gen        *openapi3gen.Generator
	components openapi3.Schemas
	requests   map[reflect.Type]bool // request bodies: unknown fields refused
	names      map[string]reflect.Type
	err        error
}

// componentNames name the components whose Go names would say too little
// or clash; every other component is named after its Go type.
var componentNames = map[reflect.Type]string{
	reflect.TypeFor[audit.Entry]():   "AuditEntry",
	reflect.TypeFor[audit.Head]():    "AuditHead",
	reflect.TypeFor[audit.Receipt](): "Receipt",
	reflect.TypeFor[wire.Request]():  "QueryRequest",
	reflect.TypeFor[auditEntries]():  "AuditEntries",
	reflect.TypeFor[signedHead]():    "SignedHead",
	reflect.TypeFor[rulesRequest]():  "RulesRequest",
}

// enums are the values of the wire's string types.
var enums = map[reflect.Type][]string{
	reflect.TypeFor[wire.Role]():          {string(wire.Admin), string(wire.Engineer), string(wire.Analyst), string(wire.Auditor)},
	reflect.TypeFor[wire.MatchState]():    {string(wire.MatchWaiting), string(wire.MatchDone), string(wire.MatchStale), string(wire.MatchDeleted)},
	reflect.TypeFor[wire.DeletionKind]():  {string(wire.DeleteIdentifiers), string(wire.DeleteOptOut), string(wire.DeleteAudience), string(wire.DeleteCollaboration), string(wire.DeleteExpiry)},
	reflect.TypeFor[wire.Noise]():         {string(wire.NoiseLaplace), string(wire.NoiseGaussian)},
	reflect.TypeFor[wire.BudgetRefresh](): {string(wire.RefreshNone), string(wire.RefreshMonthly)},
	reflect.TypeFor[wire.ErrorCode]():     codeStrings(),
}

func codeStrings() []string {
	out := make([]string, len(wire.ErrorCodes))
	for i, c := range wire.ErrorCodes {
		out[i] = string(c)
	}
	return out
}

func newSchemaGen(table []route) *schemaGen {
	g := &schemaGen{requests: map[reflect.Type]bool{}, names: map[string]reflect.Type{}}
	for _, r := range table {
		if r.in != nil && r.in.schema != nil {
			g.requests[reflect.TypeOf(r.in.schema)] = true
		}
	}
	g.gen = openapi3gen.NewGenerator(
		openapi3gen.CreateComponentSchemas(openapi3gen.ExportComponentSchemasOptions{ExportComponentSchemas: true, ExportTopLevelSchema: true}),
		openapi3gen.CreateTypeNameGenerator(g.typeName),
		openapi3gen.SchemaCustomizer(g.customize),
	)
	return g
}

func (g *schemaGen) typeName(t reflect.Type) string {
	name := componentNames[t]
	if name == "" {
		name = t.Name()
	}
	if prev, ok := g.names[name]; ok && prev != t && g.err == nil {
		g.err = fmt.Errorf("types %s and %s would both be the component %s; name one in componentNames", prev, t, name)
	}
	g.names[name] = t
	return name
}

// ref is the schema of v's type (a component, for a struct), or v itself
// when it is a schema.
func (g *schemaGen) ref(v any) (*openapi3.SchemaRef, error) {
	if s, ok := v.(*openapi3.Schema); ok {
		return s.NewRef(), nil
	}
	return g.gen.NewSchemaRefForValue(v, g.components)
}

func (g *schemaGen) content(b *body) (openapi3.Content, error) {
	content := openapi3.NewContent()
	for _, mt := range b.types {
		m := openapi3.NewMediaType()
		if b.schema != nil && mt == mtJSON {
			ref, err := g.ref(b.schema)
			if err != nil {
				return nil, err
			}
			m.Schema = ref
		}
		content[mt] = m
	}
	return content, nil
}

var jsonMarshalerType = reflect.TypeFor[json.Marshaler]()

// customize adds to each generated schema what reflection cannot know.
// It runs for every schema openapi3gen makes: a field's (with the
// field's tag), and a struct's once, when its component is made.
func (g *schemaGen) customize(_ string, t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
	if vals, ok := enums[t]; ok {
		s.Enum = nil
		for _, v := range vals {
			s.Enum = append(s.Enum, v)
		}
	}
	if t.Kind() == reflect.Array {
		// A fixed-size array, such as a metric's [lower, upper] bounds.
		item := &openapi3.Schema{}
		if k := t.Elem().Kind(); k == reflect.Float64 || k == reflect.Float32 {
			item = openapi3.NewFloat64Schema()
		}
		n := uint64(t.Len())
		s.Type, s.Items, s.MinItems, s.MaxItems = &openapi3.Types{"array"}, item.NewRef(), n, &n
	}
	if t.Kind() != reflect.Struct || s.Properties == nil {
		for _, opt := range tagOptions(tag) {
			k, v, _ := strings.Cut(opt, "=")
			switch k {
			case "enum":
				s.Enum = nil
				for _, e := range strings.Split(v, "|") {
					s.Enum = append(s.Enum, e)
				}
			case "format":
				s.Format = v
			case "min":
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return fmt.Errorf("schema tag %q: %w", opt, err)
				}
				s.Min = &n
			case "ref":
				if s.Extensions == nil {
					s.Extensions = map[string]any{}
				}
				s.Extensions["x-ref"] = v
			case "optional", "nullable":
			default:
				return fmt.Errorf("unknown schema tag option %q", opt)
			}
		}
		return nil
	}
	g.fields(t, s)
	return nil
}

func tagOptions(tag reflect.StructTag) []string {
	v, ok := tag.Lookup("schema")
	if !ok || v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// fields sets a struct schema's required fields (every field the JSON
// always has: a request's the server needs), nullability (a pointer
// without omitempty can be null; with it, it is left out instead), and,
// for request bodies, that unknown fields are refused.
func (g *schemaGen) fields(t reflect.Type, s *openapi3.Schema) {
	// A type with its own MarshalJSON (audit.Entry: a redacted entry is
	// its place in the chain only) has the fields but none required.
	custom := t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType)
	request := g.requests[t]
	if request {
		s.AdditionalProperties = openapi3.AdditionalProperties{Has: new(bool)}
	}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || name == "" {
			continue
		}
		prop, ok := s.Properties[name]
		if !ok {
			continue
		}
		omitempty := slices.Contains(strings.Split(opts, ","), "omitempty")
		tags := tagOptions(f.Tag)
		optional := omitempty || custom || slices.Contains(tags, "optional") || t == reflect.TypeFor[rulesRequest]()
		if !optional {
			s.Required = append(s.Required, name)
		}
		if f.Type.Kind() == reflect.Pointer || slices.Contains(tags, "nullable") {
			prop = withNull(prop, !omitempty)
		}
		s.Properties[name] = nullElems(prop, f.Type)
	}
}

// withNull makes ref's schema allow null, or not.
func withNull(ref *openapi3.SchemaRef, null bool) *openapi3.SchemaRef {
	// openapi3gen names every schema after its type; only a component's
	// name is a reference in the document.
	if strings.HasPrefix(ref.Ref, "#/") {
		if !null {
			return ref
		}
		return (&openapi3.Schema{AnyOf: openapi3.SchemaRefs{ref, openapi3.NewSchemaRef("", &openapi3.Schema{Type: &openapi3.Types{"null"}})}}).NewRef()
	}
	ref.Value.Nullable = null
	return ref
}

// nullElems lets the items of a list (or values of a map) of pointers be
// null, at any depth.
func nullElems(ref *openapi3.SchemaRef, t reflect.Type) *openapi3.SchemaRef {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if ref == nil || ref.Value == nil {
		return ref
	}
	switch t.Kind() {
	case reflect.Slice:
		if ref.Value.Items != nil {
			ref.Value.Items = nullElems(withNull(ref.Value.Items, t.Elem().Kind() == reflect.Pointer), t.Elem())
		}
	case reflect.Map:
		if ap := ref.Value.AdditionalProperties.Schema; ap != nil {
			ref.Value.AdditionalProperties.Schema = nullElems(withNull(ap, t.Elem().Kind() == reflect.Pointer), t.Elem())
		}
	}
	return ref
}

// to31 rewrites what openapi3gen writes in OpenAPI 3.0's words into 3.1's
// (JSON Schema 2020-12): nullable is a "null" type; and resolves the
// schema tags' ref=Name into references.
func to31(ref *openapi3.SchemaRef) {
	if ref == nil || ref.Value == nil {
		return
	}
	s := ref.Value
	if name, ok := s.Extensions["x-ref"].(string); ok {
		delete(s.Extensions, "x-ref")
		target := openapi3.NewSchemaRef("#/components/schemas/"+name, nil)
		if s.Type.Is("array") {
			s.Items = target
		} else {
			*ref = *target
			return
		}
	}
	if s.Nullable {
		s.Nullable = false
		if s.Type != nil && !s.Type.Includes("null") {
			s.Type.With("null")
		}
	}
	for _, p := range s.Properties {
		to31(p)
	}
	to31(s.Items)
	to31(s.AdditionalProperties.Schema)
	for _, x := range s.AllOf {
		to31(x)
	}
	for _, x := range s.AnyOf {
		to31(x)
	}
	for _, x := range s.OneOf {
		to31(x)
	}
}
