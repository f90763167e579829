package server_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/levqor/levqor/keys"
)

// TestSpecLint is `make lint`'s OpenAPI lint: the spec is valid OpenAPI 3.0, and
// it keeps the house rules that make the API safe to call and to generate from.
// Each rule is a function returning the places that break it.
func TestSpecLint(t *testing.T) {
	spec := loadSpec(t)
	if err := spec.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.yaml is not valid OpenAPI: %v", err)
	}
	rules := map[string]func(*openapi3.T) []string{
		"every operation has an operationId, a summary and one tag": lintOperationBasics,
		"every operation answers errors with a Problem (default)":   lintDefaultProblem,
		"every 4xx/5xx response is problem+json":                    lintErrorResponses,
		"every authenticated operation lists known x-levqor-scopes": lintScopes,
		"request bodies forbid unknown properties":                  lintClosedBodies,
		"request strings and arrays are bounded":                    lintBounded,
		"every operation declares the errors the perimeter sends":   lintPerimeterErrors,
		"every operation that writes declares 507 storage_full":     lintStorageFull,
	}
	names := make([]string, 0, len(rules))
	for name := range rules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if bad := rules[name](spec); len(bad) > 0 {
			t.Errorf("%s — broken at:\n  %s", name, strings.Join(bad, "\n  "))
		}
	}
}

// TestSpecLintRulesCatch proves each rule can fail, on a spec broken on purpose.
func TestSpecLintRulesCatch(t *testing.T) {
	spec := loadSpec(t)
	op := spec.Paths.Find("/api/v1/users").Post
	op.OperationID, op.Summary, op.Tags = "", "", nil
	delete(op.Extensions, "x-levqor-scopes")
	op.Responses.Delete("default")
	op.Responses.Value("400").Value.Content = openapi3.NewContentWithJSONSchema(openapi3.NewStringSchema())
	body := op.RequestBody.Value.Content.Get("application/json").Schema.Value
	body.AdditionalProperties = openapi3.AdditionalProperties{}
	body.Properties["name"].Value.MaxLength = nil
	op.Responses.Delete("401")
	op.Responses.Delete("507")
	for name, rule := range map[string]func(*openapi3.T) []string{
		"basics": lintOperationBasics, "default": lintDefaultProblem, "errors": lintErrorResponses,
		"scopes": lintScopes, "closed": lintClosedBodies, "bounded": lintBounded,
		"perimeter": lintPerimeterErrors, "storage": lintStorageFull,
	} {
		if bad := rule(spec); len(bad) == 0 {
			t.Errorf("rule %s found nothing wrong in a broken spec", name)
		}
	}
}

// TestSpecLintPerimeterErrorsCatch proves each requirement of lintPerimeterErrors
// can fail on its own: one response removed from one operation is reported there.
func TestSpecLintPerimeterErrorsCatch(t *testing.T) {
	for _, tc := range []struct {
		name, path, method, remove, want string
	}{
		{"authenticated without 401", "/api/v1/jobs", "GET", "401", "GET /api/v1/jobs: no 401"},
		{"authenticated without 429", "/api/v1/jobs", "GET", "429", "GET /api/v1/jobs: no 429"},
		{"authenticated without 503", "/api/v1/jobs", "GET", "503", "GET /api/v1/jobs: no 503"},
		{"limited public without 429", "/status", "GET", "429", "GET /status: no 429"},
		{"limited public without 503", "/status", "GET", "503", "GET /status: no 503"},
		{"unlimited public without 500", "/health", "GET", "500", "GET /health: no 500"},
		{"429 without Retry-After", "/api/v1/jobs", "GET", "429 Retry-After", "GET /api/v1/jobs: 429 without Retry-After"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := loadSpec(t)
			if bad := lintPerimeterErrors(spec); len(bad) > 0 {
				t.Fatalf("the spec already breaks the rule: %v", bad)
			}
			op := spec.Paths.Find(tc.path).GetOperation(tc.method)
			if code, ok := strings.CutSuffix(tc.remove, " Retry-After"); ok {
				// The response is shared through components: change a copy.
				r := *op.Responses.Value(code).Value
				r.Headers = nil
				op.Responses.Set(code, &openapi3.ResponseRef{Value: &r})
			} else {
				op.Responses.Delete(tc.remove)
			}
			if bad := lintPerimeterErrors(spec); !slices.Equal(bad, []string{tc.want}) {
				t.Errorf("got %q, want [%q]", bad, tc.want)
			}
		})
	}
}

type operation struct {
	where string
	path  *openapi3.PathItem
	op    *openapi3.Operation
}

func operations(spec *openapi3.T) []operation {
	var out []operation
	for _, path := range spec.Paths.InMatchingOrder() {
		item := spec.Paths.Value(path)
		for method, op := range item.Operations() {
			out = append(out, operation{method + " " + path, item, op})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].where < out[j].where })
	return out
}

func lintOperationBasics(spec *openapi3.T) (bad []string) {
	for _, o := range operations(spec) {
		if o.op.OperationID == "" || o.op.Summary == "" || len(o.op.Tags) != 1 {
			bad = append(bad, o.where)
		}
	}
	return bad
}

func isProblem(r *openapi3.ResponseRef) bool {
	if r == nil || r.Value == nil {
		return false
	}
	mt := r.Value.Content.Get("application/problem+json")
	return mt != nil && mt.Schema != nil && mt.Schema.Ref == "#/components/schemas/Problem"
}

func lintDefaultProblem(spec *openapi3.T) (bad []string) {
	for _, o := range operations(spec) {
		if !isProblem(o.op.Responses.Default()) {
			bad = append(bad, o.where)
		}
	}
	return bad
}

func lintErrorResponses(spec *openapi3.T) (bad []string) {
	for _, o := range operations(spec) {
		for code, r := range o.op.Responses.Map() {
			if (strings.HasPrefix(code, "4") || strings.HasPrefix(code, "5")) && !isProblem(r) {
				bad = append(bad, o.where+" "+code)
			}
		}
	}
	return bad
}

func lintScopes(spec *openapi3.T) (bad []string) {
	for _, o := range operations(spec) {
		public := o.op.Security != nil && len(*o.op.Security) == 0
		raw, listed := o.op.Extensions["x-levqor-scopes"].([]any)
		if public {
			if listed {
				bad = append(bad, o.where+": public but lists scopes")
			}
			continue
		}
		if !listed || len(raw) == 0 {
			bad = append(bad, o.where+": no x-levqor-scopes")
		}
		for _, s := range raw {
			if name, _ := s.(string); !slices.Contains(keys.AllScopes, name) {
				bad = append(bad, fmt.Sprintf("%s: unknown scope %v", o.where, s))
			}
		}
	}
	return bad
}

// requestSchemas yields every request body schema with where it is.
func requestSchemas(spec *openapi3.T) map[string]*openapi3.Schema {
	out := map[string]*openapi3.Schema{}
	for _, o := range operations(spec) {
		if o.op.RequestBody == nil || o.op.RequestBody.Value == nil {
			continue
		}
		for ct, mt := range o.op.RequestBody.Value.Content {
			if mt.Schema != nil && mt.Schema.Value != nil {
				out[o.where+" "+ct] = mt.Schema.Value
			}
		}
	}
	return out
}

// foreignBodyExtension marks an operation whose body is another service's format
// (inbound webhooks): it cannot be closed, only bounded (maxProperties, body size).
const foreignBodyExtension = "x-levqor-foreign-body"

func lintClosedBodies(spec *openapi3.T) (bad []string) {
	foreign := map[string]bool{}
	for _, o := range operations(spec) {
		if f, _ := o.op.Extensions[foreignBodyExtension].(bool); f {
			foreign[o.where+" application/json"] = true
		}
	}
	for where, s := range requestSchemas(spec) {
		if foreign[where] {
			continue
		}
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
			bad = append(bad, where)
		}
	}
	return bad
}

// lintBounded walks request schemas: every string has maxLength (or an enum or a
// date-time format), every array maxItems, every free-form object maxProperties.
func lintBounded(spec *openapi3.T) (bad []string) {
	var walk func(where string, s *openapi3.Schema)
	walk = func(where string, s *openapi3.Schema) {
		if s == nil {
			return
		}
		switch {
		case s.Type.Is("string"):
			if s.MaxLength == nil && len(s.Enum) == 0 && s.Format != "date-time" {
				bad = append(bad, where)
			}
		case s.Type.Is("array"):
			if s.MaxItems == nil {
				bad = append(bad, where)
			}
			if s.Items != nil {
				walk(where+"/items", s.Items.Value)
			}
		case s.Type.Is("object"):
			open := s.AdditionalProperties.Has != nil && *s.AdditionalProperties.Has
			if open && s.MaxProps == nil {
				bad = append(bad, where+" (free-form object)")
			}
			for name, p := range s.Properties {
				walk(where+"/"+name, p.Value)
			}
		}
	}
	for where, s := range requestSchemas(spec) {
		walk(where, s)
	}
	sort.Strings(bad)
	return bad
}

// lintPerimeterErrors checks that each operation declares, as Problems, the errors
// the perimeter can send it whatever its handler does: 500 on every operation (a
// panic or an unexpected error); on authenticated ones 401 (no valid key), 429 (the
// key's limit) and 503 (keys or the rate-limit store cannot be checked); on public
// ones that are rate limited (not x-levqor-unlimited) 429 and 503. Every 429, 503
// and 507 declares Retry-After.
func lintPerimeterErrors(spec *openapi3.T) (bad []string) {
	for _, o := range operations(spec) {
		public := o.op.Security != nil && len(*o.op.Security) == 0
		unlimited, _ := o.op.Extensions["x-levqor-unlimited"].(bool)
		want := []string{"500"}
		switch {
		case !public:
			want = append(want, "401", "429", "503")
		case !unlimited:
			want = append(want, "429", "503")
		}
		for _, code := range want {
			if !isProblem(o.op.Responses.Value(code)) {
				bad = append(bad, o.where+": no "+code)
			}
		}
		for _, code := range []string{"429", "503", "507"} {
			if r := o.op.Responses.Value(code); r != nil && (r.Value == nil || r.Value.Headers["Retry-After"] == nil) {
				bad = append(bad, o.where+": "+code+" without Retry-After")
			}
		}
	}
	return bad
}

// lintStorageFull checks that every operation whose method writes declares 507,
// which the server answers when the database's disk is full.
func lintStorageFull(spec *openapi3.T) (bad []string) {
	for _, o := range operations(spec) {
		method, _, _ := strings.Cut(o.where, " ")
		if method != "GET" && method != "HEAD" && !isProblem(o.op.Responses.Value("507")) {
			bad = append(bad, o.where)
		}
	}
	return bad
}
