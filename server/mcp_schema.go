package server

import (
	"fmt"
	"maps"
	"slices"

	"github.com/getkin/kin-openapi/openapi3"
)

// maxSchemaDepth bounds the conversion of a spec schema to JSON Schema: the spec
// has no recursive schemas, and one added by mistake must stop start-up rather
// than loop.
const maxSchemaDepth = 32

// jsonSchemaDialect is the JSON Schema version MCP tool schemas are written in.
const jsonSchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// toJSONSchema converts a resolved OpenAPI 3.0 schema into a self-contained JSON
// Schema (draft 2020-12) document: references are inlined, `nullable` becomes a
// type that admits null, boolean exclusive bounds become numbers, and the
// properties a request must not send (readOnly) or a response never carries
// (writeOnly) are left out. MCP clients in several languages validate tool
// schemas strictly, and neither `$ref` into a document they do not have nor the
// OpenAPI-only `nullable` survives that.
func toJSONSchema(s *openapi3.Schema, request bool) (map[string]any, error) {
	return convertSchema(s, request, 0)
}

func convertSchema(s *openapi3.Schema, request bool, depth int) (map[string]any, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("schema nested deeper than %d levels (recursive?)", maxSchemaDepth)
	}
	if s == nil {
		return map[string]any{}, nil
	}
	sub := func(ref *openapi3.SchemaRef) (map[string]any, error) {
		if ref == nil || ref.Value == nil {
			if ref != nil && ref.Ref != "" {
				return nil, fmt.Errorf("unresolved reference %s", ref.Ref)
			}
			return map[string]any{}, nil
		}
		return convertSchema(ref.Value, request, depth+1)
	}
	subs := func(refs openapi3.SchemaRefs) ([]any, error) {
		out := make([]any, 0, len(refs))
		for _, r := range refs {
			c, err := sub(r)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	}

	out := map[string]any{}
	types := s.Type.Slice()
	if len(types) > 0 {
		if s.Nullable && !slices.Contains(types, "null") {
			types = append(slices.Clone(types), "null")
		}
		if len(types) == 1 {
			out["type"] = types[0]
		} else {
			out["type"] = types
		}
	}
	for key, v := range map[string]string{"title": s.Title, "description": s.Description, "format": s.Format, "pattern": s.Pattern} {
		if v != "" {
			out[key] = v
		}
	}
	if len(s.Enum) > 0 {
		enum := slices.Clone(s.Enum)
		if s.Nullable && !slices.Contains(enum, any(nil)) {
			enum = append(enum, nil)
		}
		out["enum"] = enum
	}
	if s.Default != nil {
		out["default"] = s.Default
	}
	if s.Example != nil {
		out["examples"] = []any{s.Example}
	}
	if s.Min != nil {
		out["minimum"] = *s.Min
		if b := s.ExclusiveMin.Bool; b != nil && *b {
			delete(out, "minimum")
			out["exclusiveMinimum"] = *s.Min
		}
	}
	if s.Max != nil {
		out["maximum"] = *s.Max
		if b := s.ExclusiveMax.Bool; b != nil && *b {
			delete(out, "maximum")
			out["exclusiveMaximum"] = *s.Max
		}
	}
	if v := s.ExclusiveMin.Value; v != nil {
		out["exclusiveMinimum"] = *v
	}
	if v := s.ExclusiveMax.Value; v != nil {
		out["exclusiveMaximum"] = *v
	}
	if s.MultipleOf != nil {
		out["multipleOf"] = *s.MultipleOf
	}
	if s.MinLength > 0 {
		out["minLength"] = s.MinLength
	}
	if s.MaxLength != nil {
		out["maxLength"] = *s.MaxLength
	}
	if s.MinItems > 0 {
		out["minItems"] = s.MinItems
	}
	if s.MaxItems != nil {
		out["maxItems"] = *s.MaxItems
	}
	if s.UniqueItems {
		out["uniqueItems"] = true
	}
	if s.MinProps > 0 {
		out["minProperties"] = s.MinProps
	}
	if s.MaxProps != nil {
		out["maxProperties"] = *s.MaxProps
	}
	if s.Items != nil {
		items, err := sub(s.Items)
		if err != nil {
			return nil, fmt.Errorf("items: %w", err)
		}
		out["items"] = items
	}
	if len(s.Properties) > 0 {
		props := map[string]any{}
		for _, name := range slices.Sorted(maps.Keys(s.Properties)) {
			ref := s.Properties[name]
			if ref != nil && ref.Value != nil && ((request && ref.Value.ReadOnly) || (!request && ref.Value.WriteOnly)) {
				continue
			}
			p, err := sub(ref)
			if err != nil {
				return nil, fmt.Errorf("property %s: %w", name, err)
			}
			props[name] = p
		}
		out["properties"] = props
	}
	if len(s.Required) > 0 {
		out["required"] = slices.Clone(s.Required)
	}
	switch ap := s.AdditionalProperties; {
	case ap.Has != nil:
		out["additionalProperties"] = *ap.Has
	case ap.Schema != nil:
		a, err := sub(ap.Schema)
		if err != nil {
			return nil, fmt.Errorf("additionalProperties: %w", err)
		}
		out["additionalProperties"] = a
	}
	for key, refs := range map[string]openapi3.SchemaRefs{"oneOf": s.OneOf, "anyOf": s.AnyOf, "allOf": s.AllOf} {
		if len(refs) == 0 {
			continue
		}
		list, err := subs(refs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out[key] = list
	}
	if s.Not != nil {
		n, err := sub(s.Not)
		if err != nil {
			return nil, fmt.Errorf("not: %w", err)
		}
		out["not"] = n
	}
	// nullable beside a composition and no type of its own (`nullable: true, allOf:
	// [$ref]`): the composition alone would refuse null, so offer null beside it.
	if s.Nullable && len(types) == 0 && (out["oneOf"] != nil || out["anyOf"] != nil || out["allOf"] != nil) {
		inner := map[string]any{}
		for _, key := range []string{"oneOf", "anyOf", "allOf", "not"} {
			if v, ok := out[key]; ok {
				inner[key] = v
				delete(out, key)
			}
		}
		out["anyOf"] = []any{map[string]any{"type": "null"}, inner}
	}
	return out, nil
}
