package api

import (
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

var pathParam = regexp.MustCompile(`:(\w+)`)

// openAPI serves an OpenAPI 3 description of the routes, built from the
// same table that registers them, so the two cannot drift apart.
func (s *Server) openAPI(c echo.Context) error {
	paths := map[string]map[string]any{}
	add := func(method, path, summary, role string, auth bool) {
		p := pathParam.ReplaceAllString("/v1"+path, "{$1}")
		if strings.HasPrefix(path, "/v1") || path == "/healthz" || path == "/readyz" || path == "/metrics" {
			p = path
		}
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{
			"summary":     summary,
			"description": "Role: " + role + ". Errors are {\"error\": {\"code\", \"message\"}}.",
			"responses": map[string]any{
				"default": map[string]any{"description": "see description"},
			},
		}
		var params []map[string]any
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]string{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if auth {
			op["security"] = []map[string][]string{{"apiKey": {}}}
		}
		paths[p][strings.ToLower(method)] = op
	}
	for _, r := range s.table {
		add(r.method, r.path, r.summary, r.role, true)
	}
	add("GET", "/healthz", "Liveness", "none", false)
	add("GET", "/readyz", "Readiness (the database answers)", "none", false)
	add("GET", "/metrics", "Prometheus metrics", "none", false)
	add("GET", "/v1/audit/pubkey", "The server's audit public key", "none", false)
	return c.JSON(200, map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]string{"title": "cleanroom", "version": "v1", "description": "Self-hosted data clean room: private matching and differentially private aggregates. See DESIGN.md."},
		"paths":   paths,
		"components": map[string]any{"securitySchemes": map[string]any{
			"apiKey": map[string]string{"type": "http", "scheme": "bearer", "description": "Authorization: Bearer crk_..."},
		}},
	})
}
