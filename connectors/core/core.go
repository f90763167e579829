// Package core is the built-in "core" connector: actions that need no outside service,
// for testing workflows and pacing them (echo, sleep), and the steps the job engine
// runs itself (wait, wait_for_signal, approval), declared here for their schemas.
package core

import (
	"context"
	"encoding/json"
	"time"

	"github.com/levqor/levqor/connectors"
)

// Name is the connector's name in steps.
const Name = "core"

// Connector is the core connector. The zero value is ready to use.
type Connector struct{}

// New returns the core connector.
func New() *Connector { return &Connector{} }

var (
	_ connectors.Connector       = (*Connector)(nil)
	_ connectors.OutputDescriber = (*Connector)(nil)
)

// Name implements connectors.Connector.
func (*Connector) Name() string { return Name }

// Actions implements connectors.Connector.
func (*Connector) Actions() []connectors.Action {
	return []connectors.Action{
		{
			Name:        "echo",
			Description: "Returns its input unchanged.",
			InputSchema: json.RawMessage(`{"type": "object", "maxProperties": 64}`),
			// DescribeOutput says more: the output is the input.
			OutputSchema: json.RawMessage(`{"type": "object", "description": "The input, unchanged."}`),
		},
		{
			Name:        "sleep",
			Description: "Waits ms milliseconds (at most 60000), or until the step is canceled.",
			InputSchema: json.RawMessage(`{
				"type": "object",
				"properties": {"ms": {"type": "integer", "minimum": 0, "maximum": 60000}},
				"required": ["ms"],
				"additionalProperties": false
			}`),
			OutputSchema: json.RawMessage(`{
				"type": "object",
				"properties": {"slept_ms": {"type": "integer", "minimum": 0, "maximum": 60000}},
				"required": ["slept_ms"],
				"additionalProperties": false
			}`),
		},
		{
			Name: "wait",
			Description: "Parks the job, holding no worker, for a duration (`for`: \"90s\", \"2h\" or seconds) or " +
				"until a time (`until`: RFC 3339), at most 30 days; the job engine runs it.",
			InputSchema: json.RawMessage(`{
				"type": "object",
				"properties": {"for": {"type": ["string", "number"]}, "until": {"type": "string", "maxLength": 64}},
				"additionalProperties": false
			}`),
			OutputSchema: json.RawMessage(`{
				"type": "object",
				"properties": {"waited_until": {"type": "string", "format": "date-time"}},
				"required": ["waited_until"],
				"additionalProperties": false
			}`),
		},
		{
			Name: "wait_for_signal",
			Description: "Parks the job until POST /api/v1/jobs/{id}/signals/{name} delivers the signal (its data is " +
				"the output) or `timeout` passes (default and most 30 days); `if`, a CEL expression over `signal`, " +
				"refuses deliveries whose data does not meet it; the job engine runs it.",
			InputSchema: json.RawMessage(`{
				"type": "object",
				"properties": {
					"name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._-]+$"},
					"timeout": {"type": ["string", "number"]},
					"if": {"type": "string", "minLength": 1, "maxLength": 2000}
				},
				"required": ["name"],
				"additionalProperties": false
			}`),
			OutputSchema: json.RawMessage(`{"description": "The signal's data: whatever JSON the signal carried."}`),
		},
		{
			Name: "approval",
			Description: "Asks a person to approve or reject: sends `subject` and `message` (which may quote an earlier " +
				"step's output, such as an AI draft) with a single-use, signed link to `to` (an email address) or to the " +
				"Slack `channel` of the owner's connection, and parks the job until the decision comes through the link " +
				"or POST /api/v1/jobs/{id}/approvals/{step_id}, or `timeout` passes (default 72h, at most 30 days). " +
				"Approve: the output records the decision, who and when; reject fails the step. The job engine runs it.",
			InputSchema: json.RawMessage(`{
				"type": "object",
				"properties": {
					"to": {"type": "string", "minLength": 3, "maxLength": 254, "pattern": "^[^@\\s]+@[^@\\s]+$"},
					"channel": {"type": "string", "minLength": 1, "maxLength": 200},
					"connection": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._-]+$"},
					"subject": {"type": "string", "minLength": 1, "maxLength": 200},
					"message": {"type": "string", "maxLength": 20000},
					"timeout": {"type": ["string", "number"]}
				},
				"required": ["subject"],
				"oneOf": [{"required": ["to"]}, {"required": ["channel"]}],
				"additionalProperties": false
			}`),
			OutputSchema: json.RawMessage(`{
				"type": "object",
				"properties": {
					"decision": {"type": "string", "enum": ["approve", "reject"]},
					"approved": {"type": "boolean"},
					"by": {"type": "string", "description": "who decided: the address the link went to, slack:#channel, or empty via the API"},
					"name": {"type": "string", "description": "the name the person typed on the page, if any"},
					"comment": {"type": "string"},
					"via": {"type": "string", "enum": ["email", "slack", "api"]},
					"key_id": {"type": "string", "description": "the API key that decided (via api)"},
					"decided_at": {"type": "string", "format": "date-time"}
				},
				"required": ["decision", "approved", "via", "decided_at"],
				"additionalProperties": false
			}`),
		},
	}
}

// DescribeOutput implements connectors.OutputDescriber: echo returns its input.
func (*Connector) DescribeOutput(action string, input json.RawMessage) (json.RawMessage, bool) {
	if action != "echo" || !json.Valid(input) {
		return nil, false
	}
	schema, err := json.Marshal(map[string]json.RawMessage{"const": input})
	return schema, err == nil
}

// Run implements connectors.Connector.
func (*Connector) Run(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error) {
	switch action {
	case "echo":
		return input, nil
	case "sleep":
		return sleep(ctx, input)
	case "wait", "wait_for_signal", "approval":
		// The job engine runs these (jobs/wait.go): they park the job rather than hold a worker.
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "core.%s runs in the job engine, not per for_each item", action)
	}
	return nil, connectors.Errorf(connectors.CodeUnknownAction, "connector %q has no action %q", Name, action)
}

func sleep(ctx context.Context, input json.RawMessage) (json.RawMessage, error) {
	var in struct {
		// float64, not int: JSON Schema's "integer" accepts 1000.0 and 1e3.
		MS float64 `json:"ms"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "ms must be an integer", Err: err}
	}
	ms := int64(in.MS)
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	return json.Marshal(map[string]int64{"slept_ms": ms})
}
