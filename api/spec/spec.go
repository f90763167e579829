// Package spec embeds Levqor's OpenAPI document, api/openapi.yaml, as JSON
// (openapi.json, written by make generate) and loads it in a fraction of the
// time that parsing the YAML takes: the server routes and validates every
// request by it, so it is loaded at every start.
package spec

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	yaml "go.yaml.in/yaml/v4"
)

//go:generate go run ./internal/tojson ../openapi.yaml openapi.json

//go:embed openapi.json
var document []byte

// Load returns a fresh copy of the spec, its references resolved: what
// openapi3.NewLoader().LoadFromData returns for api/openapi.yaml.
//
// The loader reads JSON as YAML, and most of its time goes to scanning the
// text into YAML nodes. Load builds those nodes from the JSON instead (a few
// times faster) and hands them to the same decoding.
func Load() (*openapi3.T, error) {
	var tree any
	dec := json.NewDecoder(bytes.NewReader(document))
	dec.UseNumber() // a number keeps its text and its kind (integer or not)
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("embedded spec: %w", err)
	}
	doc := &openapi3.T{}
	if err := node(tree).Decode(doc); err != nil {
		return nil, fmt.Errorf("embedded spec: %w", err)
	}
	if err := openapi3.NewLoader().ResolveRefsIn(doc, nil); err != nil {
		return nil, fmt.Errorf("embedded spec: %w", err)
	}
	return doc, nil
}

// node is the YAML node a YAML parser makes of the JSON value v (as decoded
// into an any, numbers as json.Number), an object's members in key order.
func node(v any) *yaml.Node {
	switch v := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: make([]*yaml.Node, 0, 2*len(v))}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, node(v[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: make([]*yaml.Node, len(v))}
		for i, e := range v {
			n.Content[i] = node(e)
		}
		return n
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(v), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(v)}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}
