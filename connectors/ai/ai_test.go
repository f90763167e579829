package ai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/connectors/connectortest"
)

const testKey = "sk-test-6f1c2b9e0d7a4c3f8e5b"

// gpt-4o's default price, per million tokens.
const inPrice, outPrice = 2.50, 10.00

type bundle struct {
	fake   *fakeProvider
	conn   *ai.Connector
	reg    *connectors.Registry
	budget *budget.JobBudget
	ctx    context.Context // carries budget
	t      testing.TB      // checks every output against its schema
}

type option func(*ai.Config)

func setup(t *testing.T, replies []fakeReply, opts ...option) *bundle {
	t.Helper()
	fake := newFakeProvider(t, testKey, replies...)
	cfg := ai.Config{BaseURL: fake.baseURL(), APIKey: testKey, DefaultModel: "gpt-4o", DefaultMaxTokens: 500}
	for _, o := range opts {
		o(&cfg)
	}
	conn, err := ai.New(cfg)
	if err != nil {
		t.Fatalf("ai.New: %v", err)
	}
	reg, err := connectors.NewRegistry(conn)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	b, err := budget.NewJobBudget(10)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{fake: fake, conn: conn, reg: reg, budget: b, ctx: budget.WithBudget(context.Background(), b), t: t}
}

func (b *bundle) run(ctx context.Context, action, input string) (map[string]any, error) {
	raw, err := b.reg.Run(ctx, ai.Name, action, json.RawMessage(input))
	if err != nil {
		return nil, err
	}
	connectortest.CheckOutput(b.t, b.reg, ai.Name, action, json.RawMessage(input), raw)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("output is not a JSON object: %w", err)
	}
	return out, nil
}

func cost(prompt, completion int64) float64 {
	return (float64(prompt)*inPrice + float64(completion)*outPrice) / 1e6
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func wantStepError(t *testing.T, err error, code string, retryable bool) *connectors.StepError {
	t.Helper()
	var se *connectors.StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T); want a *StepError %s", err, err, code)
	}
	if se.Code != code || se.Retryable != retryable {
		t.Fatalf("err = %v (retryable %v); want code %s, retryable %v", se, se.Retryable, code, retryable)
	}
	return se
}

func (b *bundle) wantSpent(t *testing.T, want float64) {
	t.Helper()
	if got := b.budget.SpentUSD(); !near(got, want) {
		t.Fatalf("budget spent $%.9f; want $%.9f", got, want)
	}
	if got := b.budget.ReservedUSD(); got != 0 {
		t.Fatalf("budget still holds $%.9f in reservations", got)
	}
}

func estimate(t *testing.T, model string, msgs ...ai.Message) int64 {
	t.Helper()
	n, err := ai.EstimatePromptTokens(model, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCompleteReservesWorstCaseAndSettlesToUsage(t *testing.T) {
	msgs := []ai.Message{{Role: "system", Content: "Be terse."}, {Role: "user", Content: "Name a prime number."}}
	worst := cost(estimate(t, "gpt-4o", msgs...), 500) // 500: the configured default max_tokens
	var heldDuringCall float64
	var b *bundle
	b = setup(t, []fakeReply{{Content: "7", PromptTokens: 21, CompletionTokens: 1, Hook: func() {
		heldDuringCall = b.budget.ReservedUSD()
	}}})

	input := `{"system": "Be terse.", "prompt": "Name a prime number.", "temperature": 0.2}`
	out, err := b.run(b.ctx, "complete", input)
	if err != nil {
		t.Fatal(err)
	}
	if !near(heldDuringCall, worst) {
		t.Fatalf("reserved $%.9f during the call; want the worst case $%.9f", heldDuringCall, worst)
	}
	// Intake's estimate is the same worst case, computed without a budget or a call.
	if est, err := b.reg.EstimateUSD(ai.Name, "complete", json.RawMessage(input)); err != nil || !near(est, worst) {
		t.Fatalf("EstimateUSD = $%.9f, %v; want the reserved worst case $%.9f", est, err, worst)
	}
	actual := cost(21, 1)
	if actual >= worst {
		t.Fatalf("test is vacuous: actual $%g is not below the reservation $%g", actual, worst)
	}
	b.wantSpent(t, actual)

	if out["text"] != "7" || out["model"] != "gpt-4o-2024-08-06" || out["finish_reason"] != "stop" {
		t.Fatalf("output = %v", out)
	}
	if !near(out["cost_usd"].(float64), actual) {
		t.Fatalf("cost_usd = %v; want %v", out["cost_usd"], actual)
	}
	usage := out["usage"].(map[string]any)
	if usage["prompt_tokens"] != 21.0 || usage["completion_tokens"] != 1.0 {
		t.Fatalf("usage = %v", usage)
	}

	req := b.fake.request(0)
	if req.Model != "gpt-4o" || req.MaxTokens == nil || *req.MaxTokens != 500 || req.Temperature == nil || *req.Temperature != 0.2 {
		t.Fatalf("request = %+v", req)
	}
	if len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[1].Role != "user" || req.Messages[1].Content != "Name a prime number." {
		t.Fatalf("messages = %+v", req.Messages)
	}
	if req.ResponseFormat != nil {
		t.Fatalf("complete sent a response_format: %+v", req.ResponseFormat)
	}
}

func TestCompleteMessagesAndReasoningModel(t *testing.T) {
	b := setup(t, []fakeReply{{Content: "ok", PromptTokens: 30, CompletionTokens: 2}})
	_, err := b.run(b.ctx, "complete", `{"model": "o4-mini", "max_tokens": 64, "messages": [
		{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	req := b.fake.request(0)
	if req.Model != "o4-mini" || len(req.Messages) != 3 || req.Messages[1].Role != "assistant" {
		t.Fatalf("request = %+v", req)
	}
	// o-series models take max_completion_tokens and refuse max_tokens.
	if req.MaxTokens != nil || req.MaxCompletionTokens == nil || *req.MaxCompletionTokens != 64 {
		t.Fatalf("max_tokens = %v, max_completion_tokens = %v", req.MaxTokens, req.MaxCompletionTokens)
	}
	b.wantSpent(t, (30*1.10+2*4.40)/1e6)
}

const personSchema = `{"type": "object", "additionalProperties": false, "required": ["name", "age"],
	"properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}`

func TestExtractFirstTry(t *testing.T) {
	b := setup(t, []fakeReply{{Content: `{"name": "Ada", "age": 36}`, PromptTokens: 80, CompletionTokens: 9}})
	out, err := b.run(b.ctx, "extract", `{"prompt": "Ada Lovelace, 36.", "schema": `+personSchema+`}`)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(out["data"])
	if string(data) != `{"age":36,"name":"Ada"}` || out["repairs"] != 0.0 {
		t.Fatalf("output = %v", out)
	}
	rf := b.fake.request(0).ResponseFormat
	if rf == nil || rf.Type != "json_schema" || !rf.JSONSchema.Strict || rf.JSONSchema.Name == "" {
		t.Fatalf("response_format = %+v", rf)
	}
	var sent, want any
	_ = json.Unmarshal(rf.JSONSchema.Schema, &sent)
	_ = json.Unmarshal([]byte(personSchema), &want)
	if fmt.Sprint(sent) != fmt.Sprint(want) {
		t.Fatalf("schema sent = %s", rf.JSONSchema.Schema)
	}
	b.wantSpent(t, cost(80, 9))
}

func TestExtractRepairedOnReask(t *testing.T) {
	b := setup(t, []fakeReply{
		{Content: `{"name": "Ada", "age": -1}`, PromptTokens: 80, CompletionTokens: 9},
		{Content: "```json\n{\"name\": \"Ada\", \"age\": 36}\n```", PromptTokens: 140, CompletionTokens: 12},
	})
	out, err := b.run(b.ctx, "extract", `{"prompt": "Ada Lovelace, 36.", "schema": `+personSchema+`}`)
	if err != nil {
		t.Fatal(err)
	}
	if b.fake.calls() != 2 || out["repairs"] != 1.0 {
		t.Fatalf("%d calls, output %v; want 2 calls and repairs 1", b.fake.calls(), out)
	}
	if data := out["data"].(map[string]any); data["age"] != 36.0 {
		t.Fatalf("data = %v", data)
	}
	both := cost(80, 9) + cost(140, 12)
	b.wantSpent(t, both)
	if !near(out["cost_usd"].(float64), both) {
		t.Fatalf("cost_usd = %v; want %v (both calls)", out["cost_usd"], both)
	}
	if u := out["usage"].(map[string]any); u["prompt_tokens"] != 220.0 || u["completion_tokens"] != 21.0 {
		t.Fatalf("usage = %v; want the sum of both calls", u)
	}
	re := b.fake.request(1).Messages
	if len(re) != 3 || re[1].Role != "assistant" || re[1].Content != `{"name": "Ada", "age": -1}` ||
		re[2].Role != "user" || !strings.Contains(re[2].Content, "at /age: minimum") {
		t.Fatalf("re-ask messages = %+v", re)
	}
}

func TestExtractNeverRepaired(t *testing.T) {
	b := setup(t, []fakeReply{{Content: `{"name": "Ada"}`, PromptTokens: 80, CompletionTokens: 6}})
	_, err := b.run(b.ctx, "extract", `{"prompt": "Ada Lovelace.", "max_repairs": 1, "schema": `+personSchema+`}`)
	se := wantStepError(t, err, connectors.CodeInvalidOutput, false)
	if !strings.Contains(se.Message, "at (root): required") || !strings.Contains(se.Message, "age") || !strings.Contains(se.Message, "2 attempt") {
		t.Fatalf("message %q does not name the pointer, the rule and the attempts", se.Message)
	}
	if b.fake.calls() != 2 {
		t.Fatalf("%d calls; want max_repairs+1 = 2", b.fake.calls())
	}
	b.wantSpent(t, 2*cost(80, 6))
}

func TestExtractNotJSON(t *testing.T) {
	b := setup(t, []fakeReply{{Content: `Sure! Ada is 36.`, PromptTokens: 80, CompletionTokens: 6}})
	_, err := b.run(b.ctx, "extract", `{"prompt": "Ada.", "max_repairs": 0, "schema": `+personSchema+`}`)
	se := wantStepError(t, err, connectors.CodeInvalidOutput, false)
	if strings.Contains(se.Message, "Ada is 36") || !strings.Contains(se.Message, "not valid JSON") {
		t.Fatalf("message = %q", se.Message)
	}
	if b.fake.calls() != 1 {
		t.Fatalf("%d calls with max_repairs 0", b.fake.calls())
	}
}

func TestClassify(t *testing.T) {
	b := setup(t, []fakeReply{{Content: `{"label": "bug"}`, PromptTokens: 60, CompletionTokens: 5}})
	out, err := b.run(b.ctx, "classify", `{"labels": ["bug", "feature", "question"], "text": "The app crashes on start.", "instructions": "Crashes are bugs."}`)
	if err != nil {
		t.Fatal(err)
	}
	if out["label"] != "bug" {
		t.Fatalf("output = %v", out)
	}
	req := b.fake.request(0)
	if req.ResponseFormat == nil || !strings.Contains(string(req.ResponseFormat.JSONSchema.Schema), `"enum":["bug","feature","question"]`) {
		t.Fatalf("response_format = %+v", req.ResponseFormat)
	}
	if req.Temperature == nil || *req.Temperature != 0 || req.Messages[1].Content != "The app crashes on start." ||
		!strings.Contains(req.Messages[0].Content, "Crashes are bugs.") {
		t.Fatalf("request = %+v", req)
	}
	b.wantSpent(t, cost(60, 5))
}

func TestClassifyLabelOutsideSet(t *testing.T) {
	b := setup(t, []fakeReply{{Content: `{"label": "complaint"}`, PromptTokens: 60, CompletionTokens: 5}})
	_, err := b.run(b.ctx, "classify", `{"labels": ["bug", "feature"], "text": "I hate this."}`)
	se := wantStepError(t, err, connectors.CodeInvalidOutput, false)
	if strings.Contains(se.Message, "complaint") {
		t.Fatalf("message quotes the model's output: %q", se.Message)
	}
	b.wantSpent(t, cost(60, 5))
}

func TestRateLimitedThenSuccessIsChargedOnce(t *testing.T) {
	b := setup(t, []fakeReply{
		{Status: 429, Header: map[string]string{"Retry-After-Ms": "5"}, ErrType: "requests", ErrCode: "rate_limit_exceeded", ErrMsg: "Rate limit reached"},
		{Content: "hi", PromptTokens: 12, CompletionTokens: 1},
	})
	if _, err := b.run(b.ctx, "complete", `{"prompt": "hello"}`); err != nil {
		t.Fatal(err)
	}
	if b.fake.calls() != 2 {
		t.Fatalf("%d requests; want the 429 and its retry", b.fake.calls())
	}
	b.wantSpent(t, cost(12, 1))
}

func TestRateLimitedAfterRetriesIsRetryable(t *testing.T) {
	b := setup(t, []fakeReply{{Status: 429, Header: map[string]string{"Retry-After": "7"},
		ErrType: "requests", ErrCode: "rate_limit_exceeded", ErrMsg: "Rate limit reached for gpt-4o"}},
		func(c *ai.Config) { c.MaxRetries = -1 })
	_, err := b.run(b.ctx, "complete", `{"prompt": "hello"}`)
	se := wantStepError(t, err, connectors.CodeUpstreamError, true)
	if se.RetryAfter != 7*time.Second || !strings.Contains(se.Message, "rate_limit_exceeded") {
		t.Fatalf("err = %v, RetryAfter %v", se, se.RetryAfter)
	}
	if b.fake.calls() != 1 {
		t.Fatalf("%d requests with MaxRetries -1", b.fake.calls())
	}
	// No usage in the error: the estimated input is charged, once.
	b.wantSpent(t, cost(estimate(t, "gpt-4o", ai.Message{Role: "user", Content: "hello"}), 0))
}

func TestServerErrorsPersist(t *testing.T) {
	b := setup(t, []fakeReply{{Status: 500, Header: map[string]string{"Retry-After-Ms": "1"},
		ErrType: "server_error", ErrMsg: "The server had an error while processing your request."}},
		func(c *ai.Config) { c.MaxRetries = 2 })
	_, err := b.run(b.ctx, "complete", `{"prompt": "hello"}`)
	se := wantStepError(t, err, connectors.CodeUpstreamError, true)
	if !strings.Contains(se.Message, "500") || !strings.Contains(se.Message, "server_error") {
		t.Fatalf("message = %q", se.Message)
	}
	if b.fake.calls() != 3 {
		t.Fatalf("%d requests; want 1 + 2 SDK retries", b.fake.calls())
	}
	b.wantSpent(t, cost(estimate(t, "gpt-4o", ai.Message{Role: "user", Content: "hello"}), 0))
}

func TestErrorBodyUsageIsSettled(t *testing.T) {
	b := setup(t, []fakeReply{{Status: 500, Raw: `{"error": {"message": "boom", "type": "server_error", "code": null},
		"usage": {"prompt_tokens": 9, "completion_tokens": 40, "total_tokens": 49}}`}},
		func(c *ai.Config) { c.MaxRetries = -1 })
	_, err := b.run(b.ctx, "complete", `{"prompt": "hello"}`)
	wantStepError(t, err, connectors.CodeUpstreamError, true)
	b.wantSpent(t, cost(9, 40))
}

func TestTimeout(t *testing.T) {
	b := setup(t, []fakeReply{{Delay: 10 * time.Second, Content: "late"}}, func(c *ai.Config) { c.MaxRetries = -1 })
	ctx, cancel := context.WithTimeout(b.ctx, 300*time.Millisecond)
	defer cancel()
	_, err := b.run(ctx, "complete", `{"prompt": "hello"}`)
	wantStepError(t, err, connectors.CodeTimeout, true)
	// The registry returns at the deadline; the connector settles right after.
	deadline := time.Now().Add(5 * time.Second)
	for b.budget.ReservedUSD() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.wantSpent(t, cost(estimate(t, "gpt-4o", ai.Message{Role: "user", Content: "hello"}), 0))
}

func TestInvalidJSONFromProvider(t *testing.T) {
	b := setup(t, []fakeReply{{Raw: `{"id": "chatcmpl-1", "object": "chat.completion", "choices": [`}})
	_, err := b.run(b.ctx, "complete", `{"prompt": "hello"}`)
	se := wantStepError(t, err, connectors.CodeUpstreamError, true)
	if !strings.Contains(se.Message, "could not be read") {
		t.Fatalf("message = %q", se.Message)
	}
	b.wantSpent(t, cost(estimate(t, "gpt-4o", ai.Message{Role: "user", Content: "hello"}), 0))
}

func TestRefusal(t *testing.T) {
	b := setup(t, []fakeReply{{Refusal: "I can't help with that.", PromptTokens: 15, CompletionTokens: 7}})
	_, err := b.run(b.ctx, "complete", `{"prompt": "something bad"}`)
	se := wantStepError(t, err, ai.CodeRefusedByModel, false)
	if strings.Contains(se.Message, "can't help") {
		t.Fatalf("message quotes the Refusal: %q", se.Message)
	}
	b.wantSpent(t, cost(15, 7)) // a refusal is billed like any answer
}

func TestRejectedRequestNamesCodeNotKey(t *testing.T) {
	b := setup(t, []fakeReply{{Content: "never"}}, func(c *ai.Config) { c.APIKey = "sk-wrong-9a8b7c6d5e4f3a2b1c0d" })
	_, err := b.run(b.ctx, "complete", `{"prompt": "hello"}`)
	se := wantStepError(t, err, connectors.CodeUpstreamError, false)
	if !strings.Contains(se.Message, "401") || !strings.Contains(se.Message, "invalid_api_key") || !strings.Contains(se.Message, "invalid_request_error") {
		t.Fatalf("message = %q; want the status, code and type", se.Message)
	}
	// OpenAI's 401 message quotes the key it was sent; none of it may reach an error's text.
	for e := error(se); e != nil; e = errors.Unwrap(e) {
		for _, text := range []string{e.Error(), fmt.Sprintf("%v", e), fmt.Sprintf("%+v", e)} {
			if strings.Contains(text, "sk-wrong") {
				t.Fatalf("an error in the chain (%T) shows the API key: %q", e, text)
			}
		}
	}
}

func TestNothingIsCalledWhenTheCostCannotBeBounded(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ctx   func(*bundle) context.Context
		code  string
	}{
		{"model without a price", `{"model": "mystery-7b", "prompt": "hi"}`, func(b *bundle) context.Context { return b.ctx }, ai.CodeUnknownPrice},
		{"no budget in the context", `{"prompt": "hi"}`, func(*bundle) context.Context { return context.Background() }, ai.CodeNoBudget},
		{"budget too small for max_tokens", `{"prompt": "hi", "max_tokens": 32768}`, func(*bundle) context.Context {
			small, _ := budget.NewJobBudget(0.01) // 32768 output tokens of gpt-4o cost $0.33
			return budget.WithBudget(context.Background(), small)
		}, ai.CodeBudgetExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, []fakeReply{{Content: "should not happen", PromptTokens: 1, CompletionTokens: 1}})
			for _, action := range []string{"complete", "extract", "classify"} {
				input := tt.input
				switch action {
				case "extract":
					input = strings.TrimSuffix(input, "}") + `, "schema": {"type": "object"}}`
				case "classify":
					input = strings.Replace(input, `"prompt": "hi"`, `"text": "hi", "labels": ["a", "b"]`, 1)
				}
				_, err := b.run(tt.ctx(b), action, input)
				se := wantStepError(t, err, tt.code, false)
				if tt.code == ai.CodeBudgetExceeded && !strings.Contains(se.Message, "budget exceeded") {
					t.Fatalf("message = %q", se.Message)
				}
			}
			if n := b.fake.calls(); n != 0 {
				t.Fatalf("the provider was called %d times", n)
			}
			b.wantSpent(t, 0)
		})
	}
}

func TestInputSchema(t *testing.T) {
	b := setup(t, []fakeReply{{Content: "x"}})
	long := strings.Repeat("a", ai.MaxContentChars+1)
	tests := []struct {
		action, input string
		ok            bool
	}{
		{"complete", `{"prompt": "hi"}`, true},
		{"complete", `{"messages": [{"role": "user", "content": "hi"}]}`, true},
		{"complete", `{}`, false},
		{"complete", `{"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}`, false},
		{"complete", `{"messages": [{"role": "tool", "content": "hi"}]}`, false},
		{"complete", `{"prompt": "` + long + `"}`, false},
		{"complete", `{"prompt": "hi", "temperature": 2.5}`, false},
		{"complete", `{"prompt": "hi", "max_tokens": 0}`, false},
		{"complete", `{"prompt": "hi", "max_tokens": 32769}`, false},
		{"extract", `{"prompt": "hi"}`, false},
		{"extract", `{"prompt": "hi", "schema": {"type": "object"}, "max_repairs": 6}`, false},
		{"extract", `{"prompt": "hi", "schema": {"type": "object"}, "max_repairs": 5}`, true},
		{"classify", `{"labels": ["a"], "text": "hi"}`, false},
		{"classify", `{"labels": ["a", "a"], "text": "hi"}`, false},
		{"classify", `{"labels": ["a", "b"], "text": "hi"}`, true},
	}
	for _, tt := range tests {
		err := b.reg.Validate(ai.Name, tt.action, json.RawMessage(tt.input))
		if (err == nil) != tt.ok {
			t.Errorf("%s %.80s: err = %v; want ok %v", tt.action, tt.input, err, tt.ok)
		}
	}
	var defaults map[string]any
	for _, a := range b.conn.Actions() {
		if a.Name == "complete" {
			_ = json.Unmarshal(a.InputSchema, &defaults)
		}
	}
	mt := defaults["properties"].(map[string]any)["max_tokens"].(map[string]any)
	if mt["default"] != 500.0 {
		t.Fatalf("max_tokens default = %v; want the configured 500", mt["default"])
	}
}

func TestExtractRejectsUncompilableSchema(t *testing.T) {
	b := setup(t, []fakeReply{{Content: "{}"}})
	_, err := b.run(b.ctx, "extract", `{"prompt": "hi", "schema": {"$ref": "https://example.com/s.json"}}`)
	wantStepError(t, err, connectors.CodeInvalidInput, false)
	if b.fake.calls() != 0 {
		t.Fatal("the provider was called")
	}
}

func TestLoadPrices(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, path := range []string{
		write("prices.json", `{"gpt-4o": {"input_per_million": 5, "output_per_million": 15}, "llama-3.1-70b": {"input_per_million": 0.9, "output_per_million": 0.9}}`),
		write("prices.yaml", "gpt-4o:\n  input_per_million: 5\n  output_per_million: 15\nllama-3.1-70b:\n  input_per_million: 0.9\n  output_per_million: 0.9\n"),
	} {
		prices, err := ai.LoadPrices(path)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(path), err)
		}
		if prices["gpt-4o"] != (ai.Price{InputPerMillion: 5, OutputPerMillion: 15}) ||
			prices["llama-3.1-70b"] != (ai.Price{InputPerMillion: 0.9, OutputPerMillion: 0.9}) ||
			prices["gpt-4o-mini"] != ai.DefaultPrices()["gpt-4o-mini"] {
			t.Fatalf("%s: prices = %v", filepath.Base(path), prices)
		}
	}
	for name, body := range map[string]string{
		"missing.json":  `{"m": {"input_per_million": 1}}`,
		"negative.yaml": "m:\n  input_per_million: -1\n  output_per_million: 1\n",
		"unknown.json":  `{"m": {"input_per_million": 1, "output_per_million": 1, "cached": 0.5}}`,
		"prices.toml":   `m = 1`,
	} {
		if _, err := ai.LoadPrices(write(name, body)); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []ai.Config{
		{BaseURL: ""},
		{BaseURL: "ftp://example.com"},
		{BaseURL: "https://user:pass@example.com/v1"},
		{BaseURL: "https://example.com/v1", DefaultMaxTokens: 40000},
		{BaseURL: "https://example.com/v1", Prices: ai.PriceTable{"m": {InputPerMillion: math.NaN()}}},
	} {
		if _, err := ai.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
