package ai

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/levqor/levqor/connectors"
)

// Limits on what a step may send.
const (
	MaxContentChars = 100_000 // a prompt, a message's content, a system text, a classify text
	MaxMessages     = 100
	MaxLabels       = 100
)

// chatProperties are the input properties complete and extract share.
func chatProperties(defaultMaxTokens int) string {
	return fmt.Sprintf(`
		"model": {"type": "string", "minLength": 1, "maxLength": 256, "description": "Defaults to the configured model."},
		"messages": {
			"type": "array", "minItems": 1, "maxItems": %[1]d,
			"items": {
				"type": "object",
				"additionalProperties": false,
				"required": ["role", "content"],
				"properties": {
					"role": {"enum": ["system", "user", "assistant"]},
					"content": {"type": "string", "maxLength": %[2]d}
				}
			}
		},
		"prompt": {"type": "string", "minLength": 1, "maxLength": %[2]d, "description": "One user message; send either prompt or messages."},
		"system": {"type": "string", "maxLength": %[2]d, "description": "A system message put before the others."},
		"temperature": {"type": "number", "minimum": 0, "maximum": 2},
		"max_tokens": {"type": "integer", "minimum": 1, "maximum": %[3]d, "default": %[4]d}`,
		MaxMessages, MaxContentChars, MaxTokensLimit, defaultMaxTokens)
}

// promptOrMessages requires exactly one of the two.
const promptOrMessages = `"oneOf": [{"required": ["prompt"]}, {"required": ["messages"]}]`

func actions(defaultMaxTokens int) []connectors.Action {
	chat := chatProperties(defaultMaxTokens)
	complete := `{
		"type": "object",
		"additionalProperties": false,
		"properties": {` + chat + `},
		` + promptOrMessages + `
	}`
	extract := `{
		"type": "object",
		"additionalProperties": false,
		"required": ["schema"],
		"properties": {` + chat + `,
			"schema": {"type": "object", "description": "The JSON Schema the reply must match; it is sent as a strict response_format and checked locally."},
			"max_repairs": {"type": "integer", "minimum": 0, "maximum": ` + fmt.Sprint(MaxRepairs) + `, "default": ` + fmt.Sprint(defaultRepairs) + `}
		},
		` + promptOrMessages + `
	}`
	classify := fmt.Sprintf(`{
		"type": "object",
		"additionalProperties": false,
		"required": ["labels", "text"],
		"properties": {
			"model": {"type": "string", "minLength": 1, "maxLength": 256},
			"labels": {"type": "array", "minItems": 2, "maxItems": %d, "uniqueItems": true,
				"items": {"type": "string", "minLength": 1, "maxLength": 200}},
			"text": {"type": "string", "minLength": 1, "maxLength": %d},
			"instructions": {"type": "string", "maxLength": %d},
			"max_tokens": {"type": "integer", "minimum": 1, "maximum": %d, "default": %d}
		}
	}`, MaxLabels, MaxContentChars, MaxContentChars, MaxTokensLimit, defaultClassifyMaxTokens)

	costNote := " Every provider call is reserved against the job's budget at its worst case and settled to the reported usage."
	return []connectors.Action{
		{
			Name: actionComplete,
			Description: "Sends a prompt or a conversation to a chat model and returns " +
				"{text, finish_reason, usage, cost_usd, model}." + costNote,
			InputSchema:  compact(complete),
			OutputSchema: outputSchema(`"text": {"type": "string"}, "finish_reason": {"type": "string"}`, "text", "finish_reason"),
		},
		{
			Name: actionExtract,
			Description: "Asks a chat model for a JSON value matching schema, validates it, and re-asks with the " +
				"violations up to max_repairs times; returns {data, usage, cost_usd, model, repairs}." + costNote,
			InputSchema: compact(extract),
			// DescribeOutput puts the step's schema in data.
			OutputSchema: outputSchema(extractData(`{"description": "The reply, matching the step's schema."}`), "data", "repairs"),
		},
		{
			Name: actionClassify,
			Description: "Asks a chat model which one of labels fits text; returns " +
				"{label, usage, cost_usd, model}." + costNote,
			InputSchema: compact(classify),
			// DescribeOutput makes label one of the step's labels.
			OutputSchema: outputSchema(`"label": {"type": "string"}`, "label"),
		},
	}
}

// outputSchema is the output schema of an AI action: its own properties (and the
// required ones among them) beside the usage, cost and model every action returns.
func outputSchema(properties string, required ...string) json.RawMessage {
	req, _ := json.Marshal(append(required, "usage", "cost_usd", "model"))
	return compact(`{
		"type": "object",
		"additionalProperties": false,
		"required": ` + string(req) + `,
		"properties": {` + properties + `,
			"usage": {
				"type": "object",
				"additionalProperties": false,
				"required": ["prompt_tokens", "completion_tokens"],
				"properties": {"prompt_tokens": {"type": "integer", "minimum": 0}, "completion_tokens": {"type": "integer", "minimum": 0}}
			},
			"cost_usd": {"type": "number", "minimum": 0},
			"model": {"type": "string"}
		}
	}`)
}

// extractData is extract's data and repairs properties, data described by schema.
func extractData(schema string) string {
	return `"data": ` + schema + `, "repairs": {"type": "integer", "minimum": 0}`
}

// DescribeOutput implements connectors.OutputDescriber: extract's data follows the
// step's schema, and classify's label is one of the step's labels.
func (c *Connector) DescribeOutput(action string, input json.RawMessage) (json.RawMessage, bool) {
	switch action {
	case actionExtract:
		var in struct {
			Schema json.RawMessage `json:"schema"`
		}
		if json.Unmarshal(input, &in) != nil || len(in.Schema) == 0 || !json.Valid(in.Schema) {
			return nil, false
		}
		return outputSchema(extractData(string(in.Schema)), "data", "repairs"), true
	case actionClassify:
		var in struct {
			Labels []string `json:"labels"`
		}
		if json.Unmarshal(input, &in) != nil || len(in.Labels) == 0 {
			return nil, false
		}
		labels, _ := json.Marshal(in.Labels)
		return outputSchema(`"label": {"type": "string", "enum": `+string(labels)+`}`, "label"), true
	}
	return nil, false
}

// compact panics on a schema that is not JSON: they are constants, and the registry's
// tests compile them.
func compact(s string) json.RawMessage {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(fmt.Sprintf("ai: action schema is not JSON: %v\n%s", err, strings.TrimSpace(s)))
	}
	out, _ := json.Marshal(v)
	return out
}
