package schemaexample_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/schemaexample"
)

func same(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("example is not JSON: %s", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %s", want)
	}
	return reflect.DeepEqual(g, w)
}

// validate fails the test unless doc matches schema (draft 2020-12, formats asserted).
func validate(t *testing.T, schema, doc json.RawMessage) {
	t.Helper()
	if err := connectortest.MatchSchema(schema, doc); err != nil {
		t.Errorf("example %s does not match %s: %v", doc, schema, err)
	}
}

// TestNew: the example of each schema, and that it is valid against the schema.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name, schema, want string
		invalid            bool // the example cannot satisfy the schema (a pattern it does not know)
	}{
		{"object with every declared property", `{"type": "object", "additionalProperties": false, "required": ["a"],
			"properties": {"a": {"type": "string"}, "n": {"type": "integer", "minimum": 5}, "b": {"type": "boolean"},
			"e": {"enum": ["x", "y"]}, "c": {"const": 7}, "d": {"type": "string", "format": "date-time"},
			"arr": {"type": "array", "items": {"type": "integer"}}, "z": {"type": "null"}}}`,
			`{"a": "example", "n": 5, "b": false, "e": "x", "c": 7, "d": "2025-01-01T00:00:00Z", "arr": [0], "z": null}`, false},
		{"required member not declared takes additionalProperties", `{"type": "object", "required": ["k"], "additionalProperties": {"type": "integer"}}`,
			`{"k": 0}`, false},
		{"minItems", `{"type": "array", "minItems": 3, "items": {"type": "string", "format": "email"}}`,
			`["user@example.com", "user@example.com", "user@example.com"]`, false},
		{"maxItems 0", `{"type": "array", "maxItems": 0}`, `[]`, false},
		{"minItems capped", `{"type": "array", "minItems": 100000, "items": {"type": "boolean"}}`,
			`[` + strings.TrimSuffix(strings.Repeat("false,", schemaexample.MaxItems), ",") + `]`, true},
		{"prefixItems", `{"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "items": false}`, `[0, "example"]`, false},
		{"string lengths", `{"type": "object", "properties": {"long": {"type": "string", "minLength": 10}, "short": {"type": "string", "maxLength": 3}}}`,
			`{"long": "examplexxx", "short": "exa"}`, false},
		{"integer bounds", `{"type": "object", "properties": {"ex": {"type": "integer", "exclusiveMinimum": 0}, "neg": {"type": "integer", "maximum": -2},
			"big": {"type": "integer", "minimum": 10, "maximum": 20}}}`, `{"ex": 1, "neg": -2, "big": 10}`, false},
		{"number bounds", `{"type": "object", "properties": {"x": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}, "y": {"type": "number", "minimum": 2.5}}}`,
			`{"x": 0.5, "y": 2.5}`, false},
		{"nullable takes the other type", `{"type": ["null", "string"]}`, `"example"`, false},
		{"null only", `{"type": "null"}`, `null`, false},
		{"examples, then default", `{"type": "object", "properties": {"s": {"type": "integer", "examples": [200], "default": 5}, "d": {"type": "integer", "default": 5}}}`,
			`{"s": 200, "d": 5}`, false},
		{"anyOf takes its first branch", `{"anyOf": [{"type": "integer", "minimum": 3}, {"type": "string"}]}`, `3`, false},
		{"a typed object keeps its own members beside anyOf", `{"type": "object", "properties": {"text": {"type": "string"}}, "anyOf": [{"required": ["text"]}]}`,
			`{"text": "example"}`, false},
		{"allOf merged", `{"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}, {"properties": {"b": {"type": "boolean"}}}]}`,
			`{"a": 0, "b": false}`, false},
		{"$ref into $defs", `{"$defs": {"item": {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}}},
			"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}}}`,
			`{"items": [{"id": "00000000-0000-4000-8000-000000000000"}]}`, false},
		{"any value", `{"description": "whatever"}`, `"example"`, false},
		{"true", `true`, `"example"`, false},
		{"recursive $ref stops", `{"type": "object", "properties": {"next": {"$ref": "#"}}}`, ``, false},
		{"pattern not known", `{"type": "string", "pattern": "^[0-9]+$"}`, `"example"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := schemaexample.New(json.RawMessage(tc.schema))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got := ex.JSON()
			if tc.want != "" && !same(t, got, tc.want) {
				t.Errorf("example = %s, want %s", got, tc.want)
			}
			if tc.want == "" && strings.Count(string(got), `"next"`) != schemaexample.MaxDepth+1 {
				t.Errorf("recursive schema: %d levels, want %d: %.200s", strings.Count(string(got), `"next"`), schemaexample.MaxDepth+1, got)
			}
			if !tc.invalid && tc.want != "" {
				validate(t, json.RawMessage(tc.schema), got)
			}
		})
	}
}

// TestNewRefuses: what is not a schema is an error, not an example.
func TestNewRefuses(t *testing.T) {
	for _, s := range []string{``, `nope`, `[1]`, `"string"`, `{} {}`, `{"a":`, `{"const": "` + strings.Repeat("x", schemaexample.MaxSchemaBytes) + `"}`} {
		if ex, err := schemaexample.New(json.RawMessage(s)); err == nil {
			t.Errorf("New(%.40q) = %s, want an error", s, ex.JSON())
		}
	}
}

// TestBounded: a schema cannot make an example larger than MaxBytes (give or
// take one value), however many times it names a large value.
func TestBounded(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	schema := fmt.Sprintf(`{"$defs": {"big": {"const": %q}}, "type": "array", "minItems": 16,
		"items": {"type": "array", "minItems": 16, "items": {"$ref": "#/$defs/big"}}}`, big)
	ex, err := schemaexample.New(json.RawMessage(schema))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ex.JSON()); n > schemaexample.MaxBytes+len(big)+64<<10 {
		t.Errorf("example of %d bytes, want about %d at most", n, schemaexample.MaxBytes)
	}
	// 16^4 values asked for: the example stops at MaxNodes (and the arrays being filled then).
	wide := `{"type": "array", "minItems": 16, "items": {"type": "array", "minItems": 16, "items": {"type": "array", "minItems": 16,
		"items": {"type": "array", "minItems": 16, "items": {"type": "integer"}}}}}`
	ex, err = schemaexample.New(json.RawMessage(wide))
	if err != nil {
		t.Fatal(err)
	}
	var nodes int
	var count func(v any)
	count = func(v any) {
		nodes++
		if a, ok := v.([]any); ok {
			for _, e := range a {
				count(e)
			}
		}
		if m, ok := v.(map[string]any); ok {
			for _, e := range m {
				count(e)
			}
		}
	}
	var v any
	_ = json.Unmarshal(ex.JSON(), &v)
	if count(v); nodes > schemaexample.MaxNodes+schemaexample.MaxItems*4 || nodes < schemaexample.MaxNodes {
		t.Errorf("%d values, want about %d", nodes, schemaexample.MaxNodes)
	}
}

// TestReach: a path the schema allows is added to the example; one it rules out
// is an error naming why, and leaves the example as it was.
func TestReach(t *testing.T) {
	const http = `{"type": "object", "additionalProperties": false, "required": ["status", "headers"],
		"properties": {"status": {"type": "integer", "examples": [200]}, "headers": {"type": "object", "additionalProperties": {"type": "string"}},
		"json": {"description": "any JSON"}, "list": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {"id": {"type": "string"}}}}}}`
	for _, tc := range []struct {
		name, schema string
		path         []string
		want         string // the example after Reach, or the error's text
		fails        bool
	}{
		{"declared member", http, []string{"status"}, `{"status": 200, "headers": {}, "json": "example", "list": [{"id": "example"}]}`, false},
		{"into an open value", http, []string{"json", "items", "0", "title"},
			`{"status": 200, "headers": {}, "json": {"items": [{"title": "example"}]}, "list": [{"id": "example"}]}`, false},
		{"a header", http, []string{"headers", "content-type"},
			`{"status": 200, "headers": {"content-type": "example"}, "json": "example", "list": [{"id": "example"}]}`, false},
		{"a further item", http, []string{"list", "2", "id"},
			`{"status": 200, "headers": {}, "json": "example", "list": [{"id": "example"}, {"id": "example"}, {"id": "example"}]}`, false},
		{"an undeclared member", http, []string{"body"}, `has no member "body" (it has headers, json, list, status)`, true},
		{"past maxItems", http, []string{"list", "3"}, `list: is an array of at most 3 items; it has no item 3`, true},
		{"not an index", http, []string{"list", "first"}, `list: is an array; "first" is not an index`, true},
		{"into a number", http, []string{"status", "code"}, `status: is a number; it has no member "code"`, true},
		{"past MaxIndex", `{"type": "array"}`, []string{"1000"}, `is an array of at most 1000 items; it has no item 1000`, true},
		{"const is exact", `{"const": {"a": {"b": 1}}}`, []string{"a", "c"}, `a: has no member "c"`, true},
		{"const member", `{"const": {"a": {"b": 1}}}`, []string{"a", "b"}, `{"a": {"b": 1}}`, false},
		{"patternProperties", `{"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": false}`,
			[]string{"x-count"}, `{"x-count": 0}`, false},
		{"pattern refuses others", `{"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": false}`,
			[]string{"y"}, `has no member "y"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := schemaexample.New(json.RawMessage(tc.schema))
			if err != nil {
				t.Fatal(err)
			}
			before := string(ex.JSON())
			err = ex.Reach(tc.path)
			if tc.fails {
				if err == nil || err.Error() != tc.want {
					t.Fatalf("Reach(%v) = %v, want the error %q", tc.path, err, tc.want)
				}
				if string(ex.JSON()) != before {
					t.Errorf("a failed Reach changed the example: %s, was %s", ex.JSON(), before)
				}
				return
			}
			if err != nil {
				t.Fatalf("Reach(%v): %v", tc.path, err)
			}
			if !same(t, ex.JSON(), tc.want) {
				t.Errorf("after Reach(%v): %s, want %s", tc.path, ex.JSON(), tc.want)
			}
		})
	}
}

// TestExact: a list of examples (a for_each's outputs) reaches into its items'
// open parts but not past its length, and null items have nothing in them.
func TestExact(t *testing.T) {
	a, _ := schemaexample.New(json.RawMessage(`{"type": "object", "properties": {"body": {}}}`))
	b, _ := schemaexample.New(json.RawMessage(`{"const": {"n": 1}}`))
	list := schemaexample.Exact([]*schemaexample.Example{a, nil, b})
	if !same(t, list.JSON(), `[{"body": "example"}, null, {"n": 1}]`) {
		t.Fatalf("Exact = %s", list.JSON())
	}
	if err := list.Reach([]string{"0", "body", "x"}); err != nil {
		t.Fatalf("into item 0's open body: %v", err)
	}
	if !same(t, list.JSON(), `[{"body": {"x": "example"}}, null, {"n": 1}]`) || !same(t, a.JSON(), `{"body": {"x": "example"}}`) {
		t.Errorf("after Reach: list %s, item %s", list.JSON(), a.JSON())
	}
	for _, path := range [][]string{{"3"}, {"1", "x"}, {"2", "m"}} {
		if err := list.Reach(path); err == nil {
			t.Errorf("Reach(%v) = nil, want an error", path)
		}
	}
}

// TestFit: a value the schema leaves open takes the shape a step's input needs
// there; a declared one does not change.
func TestFit(t *testing.T) {
	ex, _ := schemaexample.New(json.RawMessage(`{"type": "object", "properties": {"json": {}, "status": {"type": "integer"}}}`))
	if err := ex.Reach([]string{"json", "count"}); err != nil {
		t.Fatal(err)
	}
	if !ex.Fit([]string{"json", "count"}, json.RawMessage(`{"type": "integer", "minimum": 1}`)) {
		t.Fatal("Fit into an open value: false")
	}
	if ex.Fit([]string{"status"}, json.RawMessage(`{"type": "string"}`)) {
		t.Error("Fit changed a declared value")
	}
	if ex.Fit([]string{"missing"}, json.RawMessage(`{"type": "string"}`)) {
		t.Error("Fit of a path not in the example: true")
	}
	if !same(t, ex.JSON(), `{"json": {"count": 1}, "status": 0}`) {
		t.Errorf("after Fit: %s", ex.JSON())
	}
}

// TestSchemaAt: the schema of a part of a value, through members, items and
// composition; false where the schema rules the part out.
func TestSchemaAt(t *testing.T) {
	const schema = `{"type": "object", "additionalProperties": false, "properties": {
		"ms": {"type": "integer", "maximum": 60000},
		"chat_id": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
		"blocks": {"type": "array", "items": {"type": "object", "required": ["type"]}},
		"meta": {"type": "object"}}}`
	for _, tc := range []struct {
		path []string
		want string
		ok   bool
	}{
		{[]string{"ms"}, `{"type": "integer", "maximum": 60000}`, true},
		{[]string{"chat_id"}, `{"type": "integer"}`, true},
		{[]string{"blocks", "0"}, `{"type": "object", "required": ["type"]}`, true},
		{[]string{"meta", "anything"}, `true`, true},
		{[]string{"nope"}, ``, false},
		{nil, ``, true},
	} {
		got, ok := schemaexample.SchemaAt(json.RawMessage(schema), tc.path)
		if ok != tc.ok || (tc.want != "" && !same(t, got, tc.want)) {
			t.Errorf("SchemaAt(%v) = %s, %v; want %s, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzExample: whatever the schema and path, New and Reach return without
// panicking, the example is JSON within its bounds, and a path Reach accepts is
// then in the example.
func FuzzExample(f *testing.F) {
	for _, s := range []string{
		`{"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer", "minimum": 3}}}}`,
		`{"$defs": {"x": {"$ref": "#/$defs/x"}}, "$ref": "#/$defs/x"}`,
		`{"allOf": [{"$ref": "#"}], "properties": {"a": {"const": [1, {"b": null}]}}}`,
		`{"type": ["integer", "null"], "exclusiveMaximum": -1e308, "minimum": 1e400}`,
		`{"anyOf": [], "oneOf": [true], "items": false, "prefixItems": [{"enum": []}]}`,
		`{"type": "string", "minLength": 9e18, "maxLength": -1, "format": "date-time"}`,
		`{"patternProperties": {"(": {}}, "additionalProperties": {"type": "array", "maxItems": 2}}`,
		`true`, `false`,
	} {
		f.Add([]byte(s), "a.0.b")
	}
	f.Fuzz(func(t *testing.T, schema []byte, path string) {
		ex, err := schemaexample.New(schema)
		if err != nil {
			return
		}
		out := ex.JSON()
		if !json.Valid(out) {
			t.Fatalf("example is not JSON: %s", out)
		}
		if len(out) > 2*schemaexample.MaxBytes+len(schema)+1<<10 {
			t.Fatalf("example of %d bytes from a schema of %d", len(out), len(schema))
		}
		if !utf8.ValidString(path) {
			return // references are JSON text, always UTF-8
		}
		segs := strings.Split(path, ".")
		if len(segs) > 8 {
			segs = segs[:8]
		}
		if err := ex.Reach(segs); err != nil {
			return
		}
		var v any
		if err := json.Unmarshal(ex.JSON(), &v); err != nil {
			t.Fatalf("after Reach, not JSON: %v", err)
		}
		for _, s := range segs {
			switch c := v.(type) {
			case map[string]any:
				next, ok := c[s]
				if !ok {
					t.Fatalf("Reach(%q) succeeded but %q is missing from %s", segs, s, ex.JSON())
				}
				v = next
			case []any:
				var i int
				if _, err := fmt.Sscan(s, &i); err != nil || i < 0 || i >= len(c) {
					t.Fatalf("Reach(%q) succeeded but item %q is missing from %s", segs, s, ex.JSON())
				}
				v = c[i]
			default:
				t.Fatalf("Reach(%q) succeeded but stops at %v in %s", segs, v, ex.JSON())
			}
		}
	})
}
