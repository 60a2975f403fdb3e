// Package api is cleanroom's HTTP interface (echo): routes, authentication
// by API key, role and membership checks, errors as
// {"error": {"code", "message"}}, and the OpenAPI document. It calls
// partners, query and audit; no package imports api.
package api
