package ai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
)

// chatInput is what complete and extract share. Integers are float64: the schema's
// "integer" admits 1e3.
type chatInput struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages"`
	Prompt      string    `json:"prompt"`
	System      string    `json:"system"`
	Temperature *float64  `json:"temperature"`
	MaxTokens   float64   `json:"max_tokens"`
}

// CompleteOutput is what complete returns.
type CompleteOutput struct {
	Text         string  `json:"text"`
	FinishReason string  `json:"finish_reason"`
	Usage        Usage   `json:"usage"`
	CostUSD      float64 `json:"cost_usd"`
	Model        string  `json:"model"`
}

// ExtractOutput is what extract returns.
type ExtractOutput struct {
	Data    json.RawMessage `json:"data"`
	Usage   Usage           `json:"usage"`
	CostUSD float64         `json:"cost_usd"`
	Model   string          `json:"model"`
	Repairs int             `json:"repairs"`
}

// ClassifyOutput is what classify returns.
type ClassifyOutput struct {
	Label   string  `json:"label"`
	Usage   Usage   `json:"usage"`
	CostUSD float64 `json:"cost_usd"`
	Model   string  `json:"model"`
}

func decode(input json.RawMessage, v any) error {
	if err := json.Unmarshal(input, v); err != nil {
		return &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "input does not match the action's schema", Err: err}
	}
	return nil
}

// priced resolves the model and its price: a step whose cost cannot be bounded fails
// here, before any call.
func (c *Connector) priced(model string) (string, Price, error) {
	if model == "" {
		model = c.defaultModel
	}
	if model == "" {
		return "", Price{}, connectors.Errorf(connectors.CodeInvalidInput, "no model: name one in the step (no default is configured)")
	}
	price, ok := c.prices[model]
	if !ok {
		return "", Price{}, connectors.Errorf(CodeUnknownPrice, "model %q has no price, so its cost cannot be bounded; add it to the price table", model)
	}
	return model, price, nil
}

// budgetOf returns the step's budget; AI steps run only under one.
func budgetOf(ctx context.Context) (budget.Budget, error) {
	b, ok := budget.From(ctx)
	if !ok {
		return nil, connectors.Errorf(CodeNoBudget, "the step has no cost budget; AI steps run only under one")
	}
	return b, nil
}

func (c *Connector) chatRequest(in chatInput) (request, error) {
	model, price, err := c.priced(in.Model)
	if err != nil {
		return request{}, err
	}
	var msgs []Message
	if in.System != "" {
		msgs = append(msgs, Message{Role: "system", Content: in.System})
	}
	if in.Prompt != "" {
		msgs = append(msgs, Message{Role: "user", Content: in.Prompt})
	} else {
		msgs = append(msgs, in.Messages...)
	}
	maxTokens := int64(c.defaultMaxTokens)
	if in.MaxTokens > 0 {
		maxTokens = int64(in.MaxTokens)
	}
	return request{model: model, price: price, messages: msgs, maxTokens: maxTokens, temperature: in.Temperature}, nil
}

// extractInput is extract's input.
type extractInput struct {
	chatInput
	Schema     json.RawMessage `json:"schema"`
	MaxRepairs *float64        `json:"max_repairs"`
}

// extractRequest is an extract step's first call.
func (c *Connector) extractRequest(in extractInput) (request, error) {
	req, err := c.chatRequest(in.chatInput)
	if err != nil {
		return request{}, err
	}
	var compacted bytes.Buffer
	if err := json.Compact(&compacted, in.Schema); err != nil {
		return request{}, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "schema is not JSON", Err: err}
	}
	req.format = &jsonFormat{name: "extract", schema: compacted.Bytes(), strict: true}
	return req, nil
}

// classifyInput is classify's input.
type classifyInput struct {
	Model        string   `json:"model"`
	Labels       []string `json:"labels"`
	Text         string   `json:"text"`
	Instructions string   `json:"instructions"`
	MaxTokens    float64  `json:"max_tokens"`
}

// classifyRequest is a classify step's call.
func (c *Connector) classifyRequest(in classifyInput) (request, error) {
	model, price, err := c.priced(in.Model)
	if err != nil {
		return request{}, err
	}
	labels, _ := json.Marshal(in.Labels)
	schema, _ := json.Marshal(map[string]any{
		"type":                 "object",
		"properties":           map[string]any{"label": map[string]any{"type": "string", "enum": in.Labels}},
		"required":             []string{"label"},
		"additionalProperties": false,
	})
	system := "Classify the user's text. Answer with a JSON object {\"label\": L} where L is exactly one of these labels: " + string(labels) + "."
	if in.Instructions != "" {
		system += "\n\n" + in.Instructions
	}
	maxTokens := int64(defaultClassifyMaxTokens)
	if in.MaxTokens > 0 {
		maxTokens = int64(in.MaxTokens)
	}
	zero := 0.0
	return request{
		model: model, price: price, maxTokens: maxTokens, temperature: &zero,
		messages: []Message{{Role: "system", Content: system}, {Role: "user", Content: in.Text}},
		format:   &jsonFormat{name: "classification", schema: schema, strict: true},
	}, nil
}

// EstimateUSD is the worst-case cost of the step's first provider call (prompt tokens
// counted offline plus max_tokens of output) for an input that passed the action's
// schema. References ({{…}}) count as their placeholder text. It implements
// connectors.Estimator, so that intake can refuse a job that cannot fit its owner's budget.
func (c *Connector) EstimateUSD(action string, input json.RawMessage) (float64, error) {
	var req request
	var err error
	switch action {
	case actionComplete:
		var in chatInput
		if err = decode(input, &in); err == nil {
			req, err = c.chatRequest(in)
		}
	case actionExtract:
		var in extractInput
		if err = decode(input, &in); err == nil {
			req, err = c.extractRequest(in)
		}
	case actionClassify:
		var in classifyInput
		if err = decode(input, &in); err == nil {
			req, err = c.classifyRequest(in)
		}
	default:
		return 0, connectors.Errorf(connectors.CodeUnknownAction, "connector %q has no action %q", Name, action)
	}
	if err != nil {
		return 0, err
	}
	_, worst, err := worstCase(req)
	return worst, err
}

func (c *Connector) complete(ctx context.Context, input json.RawMessage) (any, error) {
	var in chatInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	req, err := c.chatRequest(in)
	if err != nil {
		return nil, err
	}
	b, err := budgetOf(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := c.call(ctx, b, req)
	if err != nil {
		return nil, err
	}
	return CompleteOutput{Text: rep.content, FinishReason: rep.finishReason, Usage: rep.usage, CostUSD: rep.cost, Model: rep.model}, nil
}

func (c *Connector) extract(ctx context.Context, input json.RawMessage) (any, error) {
	var in extractInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	sch, err := compileOutputSchema(in.Schema)
	if err != nil {
		return nil, err
	}
	repairs := defaultRepairs
	if in.MaxRepairs != nil {
		repairs = int(*in.MaxRepairs)
	}
	req, err := c.extractRequest(in)
	if err != nil {
		return nil, err
	}
	b, err := budgetOf(ctx)
	if err != nil {
		return nil, err
	}

	var out ExtractOutput
	for attempt := 0; ; attempt++ {
		rep, err := c.call(ctx, b, req)
		out.Usage.add(rep.usage)
		out.CostUSD += rep.cost
		if err != nil {
			return nil, err
		}
		out.Model = rep.model
		data, problems := checkJSON(sch, rep.content, rep.finishReason)
		if len(problems) == 0 {
			out.Data, out.Repairs = data, attempt
			return out, nil
		}
		if attempt >= repairs {
			return nil, connectors.Errorf(connectors.CodeInvalidOutput,
				"the model's reply did not match the schema after %d attempt(s): %s", attempt+1, summarize(problems))
		}
		req.messages = append(slices.Clip(req.messages),
			Message{Role: "assistant", Content: rep.content},
			Message{Role: "user", Content: "Your reply does not match the required JSON Schema:\n- " +
				strings.Join(problems, "\n- ") + "\nReply again with only the corrected JSON."})
	}
}

func (c *Connector) classify(ctx context.Context, input json.RawMessage) (any, error) {
	var in classifyInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	req, err := c.classifyRequest(in)
	if err != nil {
		return nil, err
	}
	b, err := budgetOf(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := c.call(ctx, b, req)
	if err != nil {
		return nil, err
	}
	var got struct {
		Label *string `json:"label"`
	}
	if err := json.Unmarshal([]byte(StripFence(rep.content)), &got); err != nil || got.Label == nil {
		return nil, connectors.Errorf(connectors.CodeInvalidOutput, "the model's reply is not a JSON object with a label%s", cutOff(rep.finishReason))
	}
	if !slices.Contains(in.Labels, *got.Label) {
		// The model's label is not quoted: it is model output, and could be anything.
		return nil, connectors.Errorf(connectors.CodeInvalidOutput, "the model answered with a label that is not one of labels")
	}
	return ClassifyOutput{Label: *got.Label, Usage: rep.usage, CostUSD: rep.cost, Model: rep.model}, nil
}

func cutOff(finishReason string) string {
	if finishReason == "length" {
		return " (it was cut off at max_tokens)"
	}
	return ""
}

// StripFence removes a Markdown code fence around a reply, which models outside strict
// structured-output mode often add.
func StripFence(s string) string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "```") || !strings.HasSuffix(t, "```") || len(t) < 6 {
		return s
	}
	t = strings.TrimSuffix(strings.TrimPrefix(t, "```"), "```")
	if i := strings.IndexByte(t, '\n'); i >= 0 && !strings.ContainsAny(t[:i], "{[\"") {
		t = t[i+1:] // the info string, e.g. "json"
	}
	return t
}

// checkJSON parses a reply and validates it against sch. It returns the compact JSON, or
// the problems found, each naming a JSON pointer and a rule.
func checkJSON(sch *jsonschema.Schema, content, finishReason string) (json.RawMessage, []string) {
	text := StripFence(content)
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, []string{"at (root): the reply is not valid JSON" + cutOff(finishReason)}
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, []string{"at (root): the reply could not be validated"}
		}
		return nil, connectors.Violations(ve)
	}
	var compacted bytes.Buffer
	if err := json.Compact(&compacted, []byte(text)); err != nil {
		return nil, []string{"at (root): the reply is not valid JSON"}
	}
	return compacted.Bytes(), nil
}

const maxReported = 5

func summarize(problems []string) string {
	if len(problems) <= maxReported {
		return strings.Join(problems, "; ")
	}
	return strings.Join(problems[:maxReported], "; ") + fmt.Sprintf(" (and %d more)", len(problems)-maxReported)
}

// noLoader refuses every $ref to a resource outside the schema: a step's schema must be
// self-contained, and compiling it must never touch the network or the disk.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema loading is disabled (%s)", url)
}

func compileOutputSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "schema is not JSON", Err: err}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	const loc = "levqor:///connectors/ai/extract/output.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "schema is not a valid JSON Schema", Err: err}
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "schema is not a valid JSON Schema (it must be self-contained: no remote $ref)", Err: err}
	}
	return sch, nil
}
