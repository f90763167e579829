package ai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
)

// ChatRequest is one provider call that Levqor makes for itself rather than for a job
// step: the planner's (POST /api/v1/plan).
type ChatRequest struct {
	Model     string    // "" means the connector's default model
	Messages  []Message // roles system, user or assistant
	MaxTokens int64     // 0 means the connector's default; at most MaxTokensLimit
	// Schema, when set, asks for a reply matching it (response_format json_schema,
	// named SchemaName). Strict asks the provider to enforce it, which OpenAI does only
	// for a subset of JSON Schema; otherwise the schema guides the model and the
	// caller checks the reply.
	Schema      json.RawMessage
	SchemaName  string
	Strict      bool
	Temperature *float64
}

// ChatReply is a provider call's answer and what it cost.
type ChatReply struct {
	Content      string
	FinishReason string // "length" when max_tokens cut the reply
	Model        string // as the provider named it
	Usage        Usage
	CostUSD      float64 // what was settled against the budget
}

// Chat makes one provider call reserved against b at its worst case (prompt and
// schema tokens counted offline plus max_tokens of output) and settled to the
// provider's reported usage, exactly as an AI step's call is. Errors are
// *connectors.StepError values with this package's codes and those of package
// connectors (budget_exceeded when the reservation is refused, before any call). The
// reply carries the call's cost even with an error, when the call was made.
func (c *Connector) Chat(ctx context.Context, b budget.Budget, in ChatRequest) (ChatReply, error) {
	model, price, err := c.priced(in.Model)
	if err != nil {
		return ChatReply{}, err
	}
	maxTokens := in.MaxTokens
	if maxTokens == 0 {
		maxTokens = int64(c.defaultMaxTokens)
	}
	if maxTokens < 1 || maxTokens > MaxTokensLimit {
		return ChatReply{}, connectors.Errorf(connectors.CodeInvalidInput, "max_tokens must be between 1 and %d", MaxTokensLimit)
	}
	req := request{model: model, price: price, messages: in.Messages, maxTokens: maxTokens, temperature: in.Temperature}
	if len(in.Schema) > 0 {
		var compacted bytes.Buffer
		if err := json.Compact(&compacted, in.Schema); err != nil {
			return ChatReply{}, fmt.Errorf("ai: chat schema is not JSON: %w", err)
		}
		req.format = &jsonFormat{name: in.SchemaName, schema: compacted.Bytes(), strict: in.Strict}
	}
	rep, err := c.call(ctx, b, req)
	return ChatReply{Content: rep.content, FinishReason: rep.finishReason, Model: rep.model, Usage: rep.usage, CostUSD: rep.cost}, err
}
