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
	for name, rule := range map[string]func(*openapi3.T) []string{
		"basics": lintOperationBasics, "default": lintDefaultProblem, "errors": lintErrorResponses,
		"scopes": lintScopes, "closed": lintClosedBodies, "bounded": lintBounded,
	} {
		if bad := rule(spec); len(bad) == 0 {
			t.Errorf("rule %s found nothing wrong in a broken spec", name)
		}
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

func lintClosedBodies(spec *openapi3.T) (bad []string) {
	for where, s := range requestSchemas(spec) {
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
