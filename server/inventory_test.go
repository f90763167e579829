package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// inventoryMethods are the methods the route inventory tries on every path.
var inventoryMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// TestRouteInventory proves the router serves exactly the spec's operations: each
// operation is routed to a handler, and every other method on a spec path is 405
// with an Allow header naming exactly the spec's methods. It reads the spec at run
// time, so it covers routes as they are added.
func TestRouteInventory(t *testing.T) {
	b := setup(t)
	spec := loadSpec(t)
	paths := spec.Paths.InMatchingOrder()
	if len(paths) == 0 {
		t.Fatal("the spec has no paths")
	}
	for _, path := range paths {
		item := spec.Paths.Value(path)
		concrete := concretePath(t, path, item)
		var allowed []string
		for m := range item.Operations() {
			allowed = append(allowed, m)
		}
		for _, method := range inventoryMethods {
			op := item.GetOperation(method)
			t.Run(method+" "+path, func(t *testing.T) {
				resp, body := b.do(t, method, concrete, nil, nil)
				if op != nil {
					if miss := routerMiss(resp, body); miss != "" {
						t.Fatalf("%s %s (%s) is in the spec, but the router answers %s", method, concrete, op.OperationID, miss)
					}
					return
				}
				if resp.StatusCode != http.StatusMethodNotAllowed {
					t.Fatalf("%s %s is not in the spec, yet it answers %d: %.300s", method, concrete, resp.StatusCode, body)
				}
				if method != http.MethodHead {
					if p := problemOf(t, resp, body); string(p.Code) != "method_not_allowed" {
						t.Errorf("405 problem code %q", p.Code)
					}
				}
				got := strings.Split(resp.Header.Get("Allow"), ", ")
				if !sameSet(got, allowed) {
					t.Errorf("Allow %q, want exactly the spec's methods %v", resp.Header.Get("Allow"), sorted(allowed))
				}
			})
		}
	}
}

// routerMiss describes a response that is the router's own 404 or 405 (the
// request never reached an operation), or "" for any other response.
func routerMiss(resp *http.Response, body []byte) string {
	switch resp.StatusCode {
	case http.StatusMethodNotAllowed:
		return "405 " + resp.Header.Get("Allow")
	case http.StatusNotFound:
		if resp.Request.Method == http.MethodHead {
			return "404 (HEAD: no body to tell a handler's 404 from the router's)"
		}
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Sprintf("404 with a body that is not a problem: %.200s", body)
		}
		if p.Code == "not_found" && strings.HasPrefix(p.Detail, "No such route") {
			return "404 " + p.Detail
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	return slices.Equal(sorted(a), sorted(b))
}

// concretePath fills each {param} of a spec path with a value its schema accepts,
// so the request reaches the operation rather than failing validation.
func concretePath(t *testing.T, path string, item *openapi3.PathItem) string {
	t.Helper()
	params := map[string]*openapi3.Parameter{}
	add := func(ps openapi3.Parameters) {
		for _, ref := range ps {
			if p := ref.Value; p != nil && p.In == openapi3.ParameterInPath {
				params[p.Name] = p
			}
		}
	}
	add(item.Parameters)
	for _, op := range item.Operations() {
		add(op.Parameters)
	}
	out := path
	for name, p := range params {
		v := sampleValue(t, p)
		out = strings.ReplaceAll(out, "{"+name+"}", v)
	}
	if strings.ContainsAny(out, "{}") {
		t.Fatalf("%s: a path parameter is not declared in the spec", path)
	}
	return out
}

// sampleValue returns a value the parameter's schema accepts: its example or
// default if it has one, else the first of a few plausible candidates that
// validates. A new parameter shape that none fits fails here, asking for an example.
func sampleValue(t *testing.T, p *openapi3.Parameter) string {
	t.Helper()
	if p.Schema == nil || p.Schema.Value == nil {
		t.Fatalf("path parameter %s has no schema", p.Name)
	}
	s := p.Schema.Value
	var candidates []any
	for _, v := range []any{p.Example, s.Example, s.Default} {
		if v != nil {
			candidates = append(candidates, v)
		}
	}
	candidates = append(candidates, s.Enum...)
	candidates = append(candidates,
		"a", "abc", "sample.js", "018f2b6e-7c1a-7d3e-9f00-0123456789ab", "usr_01hzy3b5m9k2qv8x7w6t5r4s3p",
		"key_01hzy3b5m9k2qv8x7w6t5r4s3p", "job_01hzy3b5m9k2qv8x7w6t5r4s3p", "2024-01-02", "user@example.com",
		float64(1), float64(42), true)
	if s.Min != nil {
		candidates = append(candidates, *s.Min)
	}
	for _, c := range candidates {
		if err := s.VisitJSON(c); err == nil {
			return fmt.Sprint(c)
		}
	}
	t.Fatalf("no sample value fits path parameter %s (schema %+v): give it an example in the spec", p.Name, s)
	return ""
}

// TestNearMissRoutes checks that paths resembling real routes are not served:
// each is a 404 problem, never a redirect, a 200 or a plain-text error.
func TestNearMissRoutes(t *testing.T) {
	b := setup(t)
	spec := loadSpec(t)
	near := []string{
		"/docs/", "/openapi.yml", "/openapi", "/swagger.json", "/.env", "/.git/config", "/admin", "/api", "/api/",
		"/api/v1", "/api/v1/", "/health/x", "/healthz", "/HEALTH", "/Health", "/Docs", "/index.html", "/favicon.ico",
		"/docs/..%2f..%2fetc%2fpasswd", "/docs/..%2F..%2Fserver.go", "/docs/%2e%2e/%2e%2e/etc/passwd",
		"/docs/../openapi.json", "/./health", "//health", "/health/.", "/health%2f", "/health;x", "/docs/swagger-ui.css/",
	}
	// Variants of each spec path, kept only when no spec path matches them (for
	// /api/v1/keys, "/x" appended is /api/v1/keys/{id}: a real route, not a near miss).
	spec.Servers = nil
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range spec.Paths.InMatchingOrder() {
		p := concretePath(t, path, spec.Paths.Value(path))
		if p == "/" {
			continue
		}
		for _, v := range []string{p + "/", strings.ToUpper(p), "/api" + p, "/api/v1" + p, p + "/x", p + ".bak"} {
			req, err := http.NewRequest(http.MethodGet, v, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := router.FindRoute(req); errors.Is(err, routers.ErrPathNotFound) {
				near = append(near, v)
			}
		}
	}
	seen := map[string]bool{}
	sort.Strings(near)
	for _, path := range near {
		if seen[path] {
			continue
		}
		seen[path] = true
		t.Run(path, func(t *testing.T) {
			resp, body := b.do(t, http.MethodGet, path, nil, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET %s: %d (Location %q), want 404: %.200s", path, resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if p := problemOf(t, resp, body); string(p.Code) != "not_found" {
				t.Errorf("GET %s: problem code %q, want not_found", path, p.Code)
			}
		})
	}
}
