package server_test

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/connectors/ai/aitest"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/connectors/httpcall"
	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/planner"
)

const planKey = "sk-plan-test-0123456789"

// planSetup is a server whose planner asks aitest's fake model (answering with
// answer) through a real ai connector, over an engine with core, http and ai; cfg
// may change the planner's configuration. It returns the bundle and the model.
func planSetup(t *testing.T, answer aitest.Answer, cfg ...func(*planner.Config)) (*bundle, *aitest.Server) {
	t.Helper()
	model := aitest.New(planKey, answer)
	t.Cleanup(model.Close)
	return planSetupWith(t, model.URL, cfg...), model
}

func planSetupWith(t *testing.T, modelURL string, cfg ...func(*planner.Config)) *bundle {
	t.Helper()
	conn, err := ai.New(ai.Config{BaseURL: modelURL, APIKey: planKey, DefaultModel: "gpt-4o-mini", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return setup(t, withAdmin, func(o *testOptions) {
		e := newEngineWith(t, o.Store, o.Logger, []string{"127.0.0.0/8"}, conn)
		o.Jobs, o.Hub = e.Service, e.Hub
		o.Budgets = budget.NewService(o.Store, budget.Limits{Daily: budget.USDToNanos(10), Monthly: budget.USDToNanos(200)})
		// The catalogue and estimates: the engine's connectors, registered again.
		guard, err := outbound.NewGuard([]string{"127.0.0.0/8"})
		if err != nil {
			t.Fatal(err)
		}
		reg, err := connectors.NewRegistry(core.New(), httpcall.New(guard), conn)
		if err != nil {
			t.Fatal(err)
		}
		c := planner.Config{Model: conn, Registry: reg, Steps: e.Service, Budgets: o.Budgets, Logger: o.Logger}
		for _, f := range cfg {
			f(&c)
		}
		if o.Planner, err = planner.New(c); err != nil {
			t.Fatal(err)
		}
	})
}

// goodPlan is an answer the planner accepts: three steps, the second reading the
// first's output, the third reading the second's; needs as a model writes them.
const goodPlan = `{"description": "Fetch a page, summarise it and hand the summary back.", "steps": [
	{"id": "fetch", "connector": "http", "action": "request", "input": {"method": "GET", "url": "{{payload.url}}"}, "needs": [], "reason": "Get the page to summarise."},
	{"id": "summarize", "connector": "ai", "action": "complete", "input": {"prompt": "Summarise: {{steps.fetch.output.text}}", "max_tokens": 200}, "needs": ["fetch"], "reason": "Write the summary."},
	{"id": "notify", "connector": "core", "action": "echo", "input": {"summary": "{{steps.summarize.output.text}}"}, "needs": ["summarize"], "if": null, "reason": "Hand the summary back."}
]}`

// laterRefPlan breaks two rules: step one reads a step that runs after it, and step
// two's id has a space (the API's pattern).
const laterRefPlan = `{"description": "Broken.", "steps": [
	{"id": "summarize", "connector": "ai", "action": "complete", "input": {"prompt": "{{steps.fetch.output.text}}"}, "needs": [], "reason": "Summary."},
	{"id": "fetch page", "connector": "http", "action": "request", "input": {"url": "https://example.com"}, "needs": ["summarize"], "reason": "Page."}
]}`

func reply(content string) aitest.Reply {
	return aitest.Reply{Content: content, PromptTokens: 4000, CompletionTokens: 300}
}

// plan posts body to /api/v1/plan with key.
func (b *bundle) plan(t *testing.T, key string, body any) (*http.Response, []byte) {
	t.Helper()
	return b.do(t, "POST", "/api/v1/plan", hdr(key, "application/json"), jsonBody(t, body))
}

// TestPlanGood: a valid answer comes back as a workflow PUT accepts unchanged (and
// nothing is saved or run), with its reasons, estimate, validation and what the call
// cost, which is charged to the owner; the model was asked once, with the
// description as the user's message and a schema made from the catalogue.
func TestPlanGood(t *testing.T) {
	b, model := planSetup(t, aitest.Script(reply(goodPlan)))
	ten := b.newTenant(t, "plan@example.com")

	resp, body := b.plan(t, ten.key, map[string]any{"description": "  Summarise https://example.com for me.  "})
	p := decode[client.WorkflowPlan](t, resp, body, http.StatusOK)
	if model.Calls() != 1 {
		t.Fatalf("model calls = %d, want 1", model.Calls())
	}
	var ids []string
	for _, st := range p.Workflow.Steps {
		ids = append(ids, st.Id)
	}
	if !slices.Equal(ids, []string{"fetch", "summarize", "notify"}) || p.Workflow.Description == nil {
		t.Fatalf("workflow = %s", body)
	}
	// Needs that only repeat the default (the step before) are left out; the first
	// step's [] too: the plan is a plain sequence, as a person would write it.
	for _, st := range p.Workflow.Steps {
		if st.Needs != nil || st.If != nil {
			t.Errorf("step %s: needs %v, if %v; want both left out", st.Id, st.Needs, st.If)
		}
	}
	if len(p.Reasons) != 3 || p.Reasons[1].Step != "summarize" || p.Reasons[1].Reason != "Write the summary." {
		t.Errorf("reasons = %+v", p.Reasons)
	}
	if !p.Validation.Valid || p.Validation.Repairs != 0 || len(p.Validation.Repaired) != 0 ||
		!slices.Equal(p.Validation.Deferred, []string{"/workflow/steps/0/input", "/workflow/steps/1/input", "/workflow/steps/2/input"}) {
		t.Errorf("validation = %+v", p.Validation)
	}
	// The estimate is the ai step's worst case: its prompt plus 200 tokens of output.
	if p.EstimatedCostUsd <= 200*0.60/1e6 || p.EstimatedCostUsd > 300*0.60/1e6 {
		t.Errorf("estimated_cost_usd = %v, want the ai step's worst case", p.EstimatedCostUsd)
	}
	price := ai.DefaultPrices()["gpt-4o-mini"]
	wantCost := (4000*price.InputPerMillion + 300*price.OutputPerMillion) / 1e6
	if p.Planning.Calls != 1 || p.Planning.Model != "gpt-4o-mini-2024-08-06" || abs(p.Planning.CostUsd-wantCost) > 1e-12 {
		t.Errorf("planning = %+v, want 1 call costing %v", p.Planning, wantCost)
	}

	// The owner paid for the call.
	resp, body = b.do(t, "GET", "/api/v1/usage", hdr(ten.key, ""), nil)
	u := decode[client.Usage](t, resp, body, http.StatusOK)
	if abs(u.Day.SpentUsd-wantCost) > 1e-9 {
		t.Errorf("the owner's spending today = %v, want the planning call's %v", u.Day.SpentUsd, wantCost)
	}

	// What the model was sent: the description (trimmed) as the user's message only,
	// and a response_format schema made from the catalogue, not strict.
	req, _ := model.Request(0)
	if len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[1].Content != "Summarise https://example.com for me." ||
		strings.Contains(req.Messages[0].Content, "example.com") || !strings.Contains(req.Messages[0].Content, "- ai.complete: ") {
		t.Errorf("messages = %+v", req.Messages)
	}
	if req.MaxTokens == nil || *req.MaxTokens != planner.MaxTokens {
		t.Errorf("max_tokens = %v, want %d", req.MaxTokens, planner.MaxTokens)
	}
	rf := req.ResponseFormat
	if rf == nil || rf.Type != "json_schema" || rf.JSONSchema.Strict || rf.JSONSchema.Name != "workflow" {
		t.Fatalf("response_format = %+v", rf)
	}
	for _, want := range []string{`"const":"request"`, `"const":"complete"`, `"const":"echo"`, `"$ref":"#/$defs/id"`, `"pattern":"^[A-Za-z0-9_-]+$"`} {
		if !strings.Contains(string(rf.JSONSchema.Schema), want) {
			t.Errorf("answer schema lacks %s", want)
		}
	}

	// Nothing was saved or run; the workflow is exactly what PUT takes.
	resp, body = b.do(t, "GET", "/api/v1/workflows", hdr(ten.key, ""), nil)
	if l := decode[client.WorkflowList](t, resp, body, http.StatusOK); len(l.Data) != 0 {
		t.Errorf("planning saved workflows: %s", body)
	}
	if ids := b.jobIDs(t, ten.key); len(ids) != 0 {
		t.Errorf("planning ran jobs: %v", ids)
	}
	resp, body = b.do(t, "PUT", "/api/v1/workflows/summary", hdr(ten.key, "application/json"), jsonBody(t, p.Workflow))
	decode[client.Workflow](t, resp, body, http.StatusOK)
}

// TestPlanRepair: an answer that breaks rules is sent back with each violation,
// and the repaired answer is the plan; the violations are reported as repaired.
func TestPlanRepair(t *testing.T) {
	b, model := planSetup(t, aitest.Script(reply(laterRefPlan), reply(goodPlan)))
	ten := b.newTenant(t, "repair@example.com")

	resp, body := b.plan(t, ten.key, map[string]any{"description": "Summarise a page."})
	p := decode[client.WorkflowPlan](t, resp, body, http.StatusOK)
	if model.Calls() != 2 || p.Planning.Calls != 2 || p.Validation.Repairs != 1 {
		t.Fatalf("calls %d, planning %+v, repairs %d; want 2, 2, 1", model.Calls(), p.Planning, p.Validation.Repairs)
	}
	pointers := map[string]bool{}
	for _, v := range p.Validation.Repaired {
		pointers[v.Pointer] = true
	}
	if !pointers["/workflow/steps/1/id"] || len(p.Validation.Repaired) != 1 {
		t.Errorf("repaired = %+v, want the id's pattern (the schema is checked first)", p.Validation.Repaired)
	}
	req, _ := model.Request(1)
	n := len(req.Messages)
	if n != 4 || req.Messages[2].Role != "assistant" || req.Messages[2].Content != laterRefPlan || req.Messages[3].Role != "user" {
		t.Fatalf("repair request messages = %+v", req.Messages)
	}
	if fix := req.Messages[3].Content; !strings.Contains(fix, "- at /steps/1/id: ") || !strings.Contains(fix, "whole corrected JSON object") {
		t.Errorf("repair message = %q, want each violation with its pointer into the answer", fix)
	}
}

// TestPlanRepairGraph: with the shape right, the workflow's own rules (a reference
// to a step that runs later) are what is sent back, with the workflow's pointer.
func TestPlanRepairGraph(t *testing.T) {
	later := strings.Replace(laterRefPlan, `"fetch page"`, `"fetch"`, 1)
	b, model := planSetup(t, aitest.Script(reply(later), reply(goodPlan)))
	ten := b.newTenant(t, "graph@example.com")
	resp, body := b.plan(t, ten.key, map[string]any{"description": "Summarise a page."})
	p := decode[client.WorkflowPlan](t, resp, body, http.StatusOK)
	if len(p.Validation.Repaired) != 1 || p.Validation.Repaired[0].Pointer != "/workflow/steps/0/input" ||
		!strings.Contains(p.Validation.Repaired[0].Detail, "does not run before this one") {
		t.Errorf("repaired = %+v", p.Validation.Repaired)
	}
	req, _ := model.Request(1)
	if fix := req.LastUser(); !strings.Contains(fix, `- at /steps/0/input: Reference {{steps.fetch.output.text}}: step "fetch" does not run before this one`) {
		t.Errorf("repair message = %q", fix)
	}
}

// TestPlanUnrepairable: an answer that stays invalid is a 422 after exactly three
// model calls, listing each violation of the last answer with its pointer.
func TestPlanUnrepairable(t *testing.T) {
	bad := `{"description": "Bad.", "steps": [
		{"id": "a", "connector": "nope", "action": "x", "input": {}, "needs": [], "reason": "?"},
		{"id": "b c", "connector": "core", "action": "echo", "input": {}, "needs": [], "reason": ""}
	]}`
	b, model := planSetup(t, aitest.Script(reply(bad)))
	ten := b.newTenant(t, "bad@example.com")

	resp, body := b.plan(t, ten.key, map[string]any{"description": "Do something impossible."})
	p := problemOf(t, resp, body)
	if resp.StatusCode != http.StatusUnprocessableEntity || p.Code != "unprocessable" || model.Calls() != 3 {
		t.Fatalf("status %d code %s after %d calls; want 422 unprocessable after 3: %s", resp.StatusCode, p.Code, model.Calls(), body)
	}
	got := map[string]bool{}
	for _, e := range *p.Errors {
		got[e.Pointer] = true
	}
	// The reason is the planner's own rule; the id's pattern is the API's; both are listed.
	if !got["/workflow/steps/1/reason"] || !got["/workflow/steps/1/id"] || !strings.Contains(deref(p.Detail), "after 2 repairs") {
		t.Errorf("problem = %s", body)
	}
	// Spending: three calls, charged.
	resp, body = b.do(t, "GET", "/api/v1/usage", hdr(ten.key, ""), nil)
	if u := decode[client.Usage](t, resp, body, http.StatusOK); u.Day.SpentUsd <= 0 {
		t.Errorf("the failed plan's calls were not charged: %s", body)
	}
}

// TestPlanGarbage: an answer that is not JSON is a violation sent back like any
// other, and a 422 naming it when it persists; a cut-off answer says so.
func TestPlanGarbage(t *testing.T) {
	b, model := planSetup(t, aitest.Script(
		aitest.Reply{Content: "Sure! Here is your workflow: step 1, fetch.", PromptTokens: 10, CompletionTokens: 10},
		aitest.Reply{Content: `{"description": "x", "steps": [{"id": "a"`, FinishReason: "length", PromptTokens: 10, CompletionTokens: 10},
		aitest.Reply{Content: `["not", "an", "object"]`, PromptTokens: 10, CompletionTokens: 10},
	))
	ten := b.newTenant(t, "garbage@example.com")
	resp, body := b.plan(t, ten.key, map[string]any{"description": "Anything."})
	p := problemOf(t, resp, body)
	if resp.StatusCode != http.StatusUnprocessableEntity || model.Calls() != 3 || p.Errors == nil || len(*p.Errors) != 1 ||
		(*p.Errors)[0].Pointer != "/workflow" || (*p.Errors)[0].Detail != "The answer is not a JSON object." {
		t.Fatalf("status %d after %d calls: %s", resp.StatusCode, model.Calls(), body)
	}
	r1, _ := model.Request(1)
	r2, _ := model.Request(2)
	if !strings.Contains(r1.LastUser(), "- at (root): The answer is not JSON.") || !strings.Contains(r2.LastUser(), "cut off at max_tokens") {
		t.Errorf("repair messages: %q, %q", r1.LastUser(), r2.LastUser())
	}
	if strings.Contains(string(body), "Sure!") {
		t.Errorf("the problem quotes the model's answer: %s", body)
	}
}

// TestPlanBudgetRefusal: a caller whose owner cannot afford the planning call's
// worst case gets 402 budget_exceeded, and the model is never called.
func TestPlanBudgetRefusal(t *testing.T) {
	b, model := planSetup(t, aitest.Script(reply(goodPlan)))
	ten := b.newTenant(t, "broke@example.com")
	resp, body := b.do(t, "PUT", "/api/v1/budgets/"+ten.owner, hdr(adminKey, "application/json"), strings.NewReader(`{"daily_usd":0.0001,"monthly_usd":5}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set budget: %d %s", resp.StatusCode, body)
	}
	resp, body = b.plan(t, ten.key, map[string]any{"description": "Summarise a page."})
	p := problemOf(t, resp, body)
	if resp.StatusCode != http.StatusPaymentRequired || p.Code != "budget_exceeded" || !strings.Contains(deref(p.Detail), "AI budget") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if model.Calls() != 0 {
		t.Errorf("the model was called %d times for a plan the budget refused", model.Calls())
	}
}

// TestPlanModelDown: a model that answers 5xx, cannot be reached or answers with
// something that is not a chat completion is 503 unavailable — a fault on the
// server's side, said without the provider's words.
func TestPlanModelDown(t *testing.T) {
	for name, rep := range map[string]aitest.Reply{
		"500":      {Status: 500, ErrType: "server_error", ErrMsg: "The server had an error (secret detail)."},
		"not chat": {Raw: `{"id": "x", "choices": [`},
		"401":      {Status: 401, ErrType: "invalid_request_error", ErrCode: "invalid_api_key", ErrMsg: "Incorrect API key provided: sk-plan-test"},
	} {
		t.Run(name, func(t *testing.T) {
			b, _ := planSetup(t, aitest.Script(rep))
			ten := b.newTenant(t, "down@example.com")
			resp, body := b.plan(t, ten.key, map[string]any{"description": "Summarise a page."})
			p := problemOf(t, resp, body)
			if resp.StatusCode != http.StatusServiceUnavailable || p.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if strings.Contains(string(body), "secret detail") || strings.Contains(string(body), planKey) {
				t.Errorf("the problem leaks the provider's answer: %s", body)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		b := planSetupWith(t, "http://"+addr+"/v1")
		ten := b.newTenant(t, "gone@example.com")
		resp, body := b.plan(t, ten.key, map[string]any{"description": "Summarise a page."})
		if p := problemOf(t, resp, body); resp.StatusCode != http.StatusServiceUnavailable || p.Code != "unavailable" {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
}

// TestPlanTimeout: a plan that takes longer than its bound is 503, within it.
func TestPlanTimeout(t *testing.T) {
	b, _ := planSetup(t, aitest.Script(aitest.Reply{Delay: 10 * time.Second, Content: goodPlan}),
		func(c *planner.Config) { c.Timeout = 300 * time.Millisecond })
	ten := b.newTenant(t, "slow@example.com")
	start := time.Now()
	resp, body := b.plan(t, ten.key, map[string]any{"description": "Summarise a page."})
	p := problemOf(t, resp, body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(deref(p.Detail), "longer than 300ms") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the plan took %s; its bound is 300ms", d)
	}
}

// TestPlanInFlightBound: past MaxInFlight plans at once, a plan is refused (503)
// rather than queued; once one ends, planning works again.
func TestPlanInFlightBound(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	b, model := planSetup(t, func(n int, _ aitest.Request) aitest.Reply {
		if n == 0 {
			return aitest.Reply{Content: goodPlan, Hook: func() { <-release }}
		}
		return reply(goodPlan)
	}, func(c *planner.Config) { c.MaxInFlight = 1 })
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	ten := b.newTenant(t, "busy@example.com")

	first := make(chan int, 1)
	go func() {
		resp, _ := b.plan(t, ten.key, map[string]any{"description": "The first."})
		first <- resp.StatusCode
	}()
	deadline := time.Now().Add(5 * time.Second)
	for model.Calls() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := b.plan(t, ten.key, map[string]any{"description": "The second."})
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(deref(p.Detail), "most plans at once (1)") {
		t.Fatalf("second plan: status %d: %s", resp.StatusCode, body)
	}
	once.Do(func() { close(release) })
	if got := <-first; got != http.StatusOK {
		t.Fatalf("first plan: status %d", got)
	}
	resp, body = b.plan(t, ten.key, map[string]any{"description": "The third."})
	decode[client.WorkflowPlan](t, resp, body, http.StatusOK)
}

// TestPlanConstraints: allowed connectors narrow the catalogue the model sees and
// are enforced on its answer; the cost bound is enforced on the estimate.
func TestPlanConstraints(t *testing.T) {
	echoOnly := `{"description": "Echo.", "steps": [{"id": "e", "connector": "core", "action": "echo", "input": {"x": 1}, "needs": [], "reason": "Echo."}]}`
	b, model := planSetup(t, aitest.Script(reply(goodPlan), reply(echoOnly)))
	ten := b.newTenant(t, "constrained@example.com")
	resp, body := b.plan(t, ten.key, map[string]any{"description": "Echo something.", "constraints": map[string]any{"connectors": []string{"core"}}})
	p := decode[client.WorkflowPlan](t, resp, body, http.StatusOK)
	if p.Validation.Repairs != 1 || len(p.Validation.Repaired) != 2 || p.Validation.Repaired[0].Pointer != "/workflow/steps/0/connector" ||
		p.Validation.Repaired[1].Pointer != "/workflow/steps/1/connector" || p.EstimatedCostUsd != 0 {
		t.Errorf("plan = %s", body)
	}
	req, _ := model.Request(0)
	schema := string(req.ResponseFormat.JSONSchema.Schema)
	if !strings.Contains(schema, `"const":"echo"`) || strings.Contains(schema, `"const":"complete"`) || strings.Contains(schema, `"const":"request"`) ||
		strings.Contains(req.Messages[0].Content, "- ai.complete") || !strings.Contains(req.Messages[0].Content, "Use only these connectors: core.") {
		t.Errorf("the model was offered connectors outside the constraint")
	}

	b2, model2 := planSetup(t, aitest.Script(reply(goodPlan)))
	ten2 := b2.newTenant(t, "cheap@example.com")
	resp, body = b2.plan(t, ten2.key, map[string]any{"description": "Summarise.", "constraints": map[string]any{"max_cost_usd": 0}})
	problemOf(t, resp, body)
	if resp.StatusCode != http.StatusUnprocessableEntity || model2.Calls() != 3 || !strings.Contains(string(body), "more than the $0.000000 allowed") {
		t.Errorf("status %d after %d calls: %s", resp.StatusCode, model2.Calls(), body)
	}
}

// TestPlanBadRequests: malformed, missing, wrong-type, oversized and hostile input
// is refused with a 4xx problem before any model call; so is a key without
// jobs:write.
func TestPlanBadRequests(t *testing.T) {
	b, model := planSetup(t, aitest.Script(reply(goodPlan)))
	ten := b.newTenant(t, "hostile@example.com")
	reader := b.createKey(t, ten.owner, "jobs:read")
	long := strings.Repeat("é", planner.MaxDescriptionChars+1)
	for _, c := range []struct {
		name, key, contentType, body string
		status                       int
		pointer                      string
	}{
		{"not JSON", ten.key, "application/json", `{"description": `, 400, ""},
		{"missing description", ten.key, "application/json", `{}`, 400, "/description"},
		{"wrong type", ten.key, "application/json", `{"description": 42}`, 400, "/description"},
		{"empty", ten.key, "application/json", `{"description": ""}`, 400, "/description"},
		{"only spaces", ten.key, "application/json", `{"description": "   \n\t "}`, 400, "/description"},
		{"too long", ten.key, "application/json", `{"description": "` + long + `"}`, 400, "/description"},
		{"NUL", ten.key, "application/json", `{"description": "a\u0000b"}`, 400, "/description"},
		{"unknown member", ten.key, "application/json", `{"description": "x", "model": "gpt-4o"}`, 400, "/model"},
		{"unknown connector", ten.key, "application/json", `{"description": "x", "constraints": {"connectors": ["core", "nope"]}}`, 400, "/constraints/connectors/1"},
		{"bad connector name", ten.key, "application/json", `{"description": "x", "constraints": {"connectors": ["../etc"]}}`, 400, "/constraints/connectors/0"},
		{"negative cost", ten.key, "application/json", `{"description": "x", "constraints": {"max_cost_usd": -1}}`, 400, "/constraints/max_cost_usd"},
		{"text body", ten.key, "text/plain", `describe`, 415, ""},
		{"no key", "", "application/json", `{"description": "x"}`, 401, ""},
		{"read-only key", reader.Key, "application/json", `{"description": "x"}`, 403, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := b.do(t, "POST", "/api/v1/plan", hdr(c.key, c.contentType), strings.NewReader(c.body))
			p := problemOf(t, resp, body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.pointer != "" && (p.Errors == nil || !slices.ContainsFunc(*p.Errors, func(e struct {
				Detail  string `json:"detail"`
				Pointer string `json:"pointer"`
			}) bool {
				return e.Pointer == c.pointer
			})) {
				t.Errorf("errors %s, want pointer %s", body, c.pointer)
			}
		})
	}
	// Oversized: past the body limit.
	big := fmt.Sprintf(`{"description": "%s"}`, strings.Repeat("a", 600<<10))
	resp, body := b.do(t, "POST", "/api/v1/plan", hdr(ten.key, "application/json"), strings.NewReader(big))
	if problemOf(t, resp, body); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d", resp.StatusCode)
	}
	if model.Calls() != 0 {
		t.Errorf("bad requests reached the model %d times", model.Calls())
	}
}

// TestPlanNotConfigured: a server without a planner answers 503.
func TestPlanNotConfigured(t *testing.T) {
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "none@example.com")
	resp, body := b.plan(t, ten.key, map[string]any{"description": "x"})
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusServiceUnavailable || p.Code != "unavailable" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}
