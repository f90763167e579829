package planner

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/levqor/levqor/connectors"
)

// stepMembers are the members of a step the model sets besides connector, action and
// input; their schemas come from the API's step schema, so their limits are the API's.
var stepMembers = []string{"id", "needs", "if", "for_each"}

// answerRequired are the members every step of an answer has: needs too, so that the
// model says what each step waits for instead of leaning on the default.
var answerRequired = []string{"id", "connector", "action", "input", "needs", "reason"}

// reasonSchema is the schema of a step's reason, which only plans have.
var reasonSchema = map[string]any{"type": "string", "minLength": 1, "maxLength": MaxReasonChars,
	"description": "Why the step is there, in one sentence."}

// answerParts are what the answer schema takes from the API's workflow schema.
type answerParts struct {
	description any            // the workflow's description
	steps       map[string]any // the step list's array schema, items aside
	members     map[string]any // stepMembers' schemas
}

// newAnswerSchema reads the parts of the API's workflow schema (a JSON Schema
// object with properties description and steps, whose items have stepMembers).
func newAnswerSchema(workflow map[string]any) (answerParts, error) {
	props, _ := workflow["properties"].(map[string]any)
	steps, _ := props["steps"].(map[string]any)
	items, _ := steps["items"].(map[string]any)
	stepProps, _ := items["properties"].(map[string]any)
	if props["description"] == nil || steps == nil || stepProps == nil {
		return answerParts{}, errors.New("the workflow schema has no description or steps.items.properties")
	}
	parts := answerParts{description: props["description"], steps: map[string]any{}, members: map[string]any{}}
	for k, v := range steps {
		if k != "items" {
			parts.steps[k] = v
		}
	}
	for _, m := range stepMembers {
		s, ok := stepProps[m]
		if !ok {
			return answerParts{}, fmt.Errorf("the step schema has no %q", m)
		}
		parts.members[m] = s
	}
	return parts, nil
}

// AnswerSchema is the JSON Schema the model answers in: a workflow whose steps are
// each one action of cat — its connector and action as constants, its input the
// action's input schema — with the API's limits on ids, needs, if and for_each, and a
// reason. Shared members sit in $defs, so each of the many actions adds only its input.
// workflow is the API's workflow schema (Contract.Schema).
func AnswerSchema(workflow map[string]any, cat []connectors.CatalogueEntry) (json.RawMessage, error) {
	parts, err := newAnswerSchema(workflow)
	if err != nil {
		return nil, err
	}
	defs := map[string]any{"reason": reasonSchema}
	for m, s := range parts.members {
		defs[m] = s
	}
	ref := func(name string) map[string]any { return map[string]any{"$ref": "#/$defs/" + name} }
	var variants []any
	for _, e := range cat {
		for _, a := range e.Actions {
			var input any
			if err := json.Unmarshal(a.InputSchema, &input); err != nil {
				return nil, fmt.Errorf("%s.%s input schema: %w", e.Connector, a.Name, err)
			}
			props := map[string]any{
				"connector": map[string]any{"const": e.Connector},
				"action":    map[string]any{"const": a.Name},
				"input":     input,
				"reason":    ref("reason"),
			}
			for _, m := range stepMembers {
				props[m] = ref(m)
			}
			variants = append(variants, map[string]any{
				"title": e.Connector + "." + a.Name, "type": "object", "additionalProperties": false,
				"properties": props, "required": answerRequired,
			})
		}
	}
	if len(variants) == 0 {
		return nil, errors.New("planner: the catalogue has no actions")
	}
	steps := map[string]any{"items": map[string]any{"anyOf": variants}}
	for k, v := range parts.steps {
		steps[k] = v
	}
	return json.Marshal(map[string]any{
		"type": "object", "additionalProperties": false, "required": []string{"description", "steps"},
		"properties": map[string]any{"description": parts.description, "steps": steps},
		"$defs":      defs,
	})
}
