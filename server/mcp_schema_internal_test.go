package server

import (
	"encoding/json"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestToJSONSchema: the OpenAPI 3.0 constructs JSON Schema 2020-12 spells
// differently are translated, references are inlined, and readOnly members leave
// request schemas.
func TestToJSONSchema(t *testing.T) {
	const doc = `{
	  "openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {},
	  "components": {"schemas": {
	    "Err": {"type": "object", "properties": {"code": {"type": "string"}}},
	    "T": {"type": "object", "additionalProperties": false, "required": ["n"], "properties": {
	      "n": {"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 10},
	      "s": {"type": "string", "nullable": true, "enum": ["a", "b"]},
	      "e": {"nullable": true, "allOf": [{"$ref": "#/components/schemas/Err"}]},
	      "any": {"nullable": true},
	      "ro": {"type": "string", "readOnly": true},
	      "m": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Err"}}
	    }}
	  }}
	}`
	spec, err := openapi3.NewLoader().LoadFromData([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	schema := spec.Components.Schemas["T"].Value
	for _, request := range []bool{true, false} {
		got, err := toJSONSchema(schema, request)
		if err != nil {
			t.Fatal(err)
		}
		roDrop := `,"ro":{"type":"string"}`
		if request {
			roDrop = ``
		}
		want := `{"additionalProperties":false,"properties":{` +
			`"any":{},` +
			`"e":{"anyOf":[{"type":"null"},{"allOf":[{"properties":{"code":{"type":"string"}},"type":"object"}]}]},` +
			`"m":{"additionalProperties":{"properties":{"code":{"type":"string"}},"type":"object"},"type":"object"},` +
			`"n":{"exclusiveMinimum":0,"maximum":10,"type":"integer"}` + roDrop + `,` +
			`"s":{"enum":["a","b",null],"type":["string","null"]}` +
			`},"required":["n"],"type":"object"}`
		if b, _ := json.Marshal(got); string(b) != want {
			t.Errorf("request=%v:\n got %s\nwant %s", request, b, want)
		}
	}
}

// TestToJSONSchemaRecursive: a recursive schema stops start-up instead of looping.
func TestToJSONSchemaRecursive(t *testing.T) {
	s := openapi3.NewObjectSchema()
	s.Properties = openapi3.Schemas{"self": openapi3.NewSchemaRef("", s)}
	if _, err := toJSONSchema(s, false); err == nil {
		t.Fatal("a recursive schema converted without error")
	}
}
