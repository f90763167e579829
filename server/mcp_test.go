package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/connectors/ai/aitest"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store/storetest"
)

// keyHeader sends an API key on every request of an MCP client, in the header a
// client is configured with (Authorization: Bearer, or X-Api-Key).
type keyHeader struct {
	base        http.RoundTripper
	name, value string
	host        string // the Host header, when not the server's address
}

func (k keyHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(k.name, k.value)
	if k.host != "" {
		r.Host = k.host
	}
	return k.base.RoundTrip(r)
}

// mcpSession connects the SDK's own client to the server's /mcp with key sent as
// a bearer token (bearer false: in X-Api-Key); every response still passes the
// spec-validating transport.
func (b *bundle) mcpSession(t *testing.T, key string, bearer bool) (*mcp.ClientSession, error) {
	t.Helper()
	h := keyHeader{base: b.HTTP.Transport, name: "X-Api-Key", value: key}
	if bearer {
		h.name, h.value = "Authorization", "Bearer "+key
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "levqor-test", Version: "1"}, nil)
	s, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: b.URL + "/mcp", HTTPClient: &http.Client{Transport: h, Timeout: 30 * time.Second}, MaxRetries: -1,
	}, nil)
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

func (b *bundle) mustMCP(t *testing.T, key string) *mcp.ClientSession {
	t.Helper()
	s, err := b.mcpSession(t, key, true)
	if err != nil {
		t.Fatalf("connect to /mcp: %v", err)
	}
	return s
}

// callTool calls a tool and returns its structured content as JSON, and whether
// the result is a tool error.
func callTool(t *testing.T, s *mcp.ClientSession, name string, args any) (map[string]any, bool) {
	t.Helper()
	res, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatalf("%s: structured content: %v", name, err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: structured content is not an object: %s", name, raw)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: %d content items, want the JSON as one text item", name, len(res.Content))
	}
	if text, ok := res.Content[0].(*mcp.TextContent); !ok || !sameJSON(t, jsonValue(t, text.Text), out) {
		t.Errorf("%s: text content does not carry the structured content", name)
	}
	return out, res.IsError
}

// toolOK calls a tool that must succeed.
func toolOK(t *testing.T, s *mcp.ClientSession, name string, args any) map[string]any {
	t.Helper()
	out, isErr := callTool(t, s, name, args)
	if isErr {
		t.Fatalf("%s(%v) failed: %v", name, args, out)
	}
	return out
}

// toolProblem calls a tool that must be refused and returns the problem's code and status.
func toolProblem(t *testing.T, s *mcp.ClientSession, name string, args any) (string, float64) {
	t.Helper()
	out, isErr := callTool(t, s, name, args)
	if !isErr {
		t.Fatalf("%s(%v) succeeded, want a tool error: %v", name, args, out)
	}
	code, _ := out["code"].(string)
	status, _ := out["status"].(float64)
	if code == "" || !strings.HasPrefix(out["type"].(string), "https://levqor.ai/problems/") || out["instance"] != "/mcp" {
		t.Errorf("%s: error content is not a problem document: %v", name, out)
	}
	return code, status
}

// TestMCPTools drives every tool with the SDK's own client, as an agent would:
// connectors, a workflow saved, listed and read, a job run, listed, read and
// canceled, and usage — each answering what the REST operation answers.
func TestMCPTools(t *testing.T) {
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "agent@example.com")
	s := b.mustMCP(t, ten.key)

	tools, err := s.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	want := []string{"cancel_job", "get_job", "get_usage", "get_workflow", "list_connectors", "list_jobs", "list_workflows", "plan_workflow", "replay_job", "run_workflow", "save_workflow"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools = %v, want %v", names, want)
	}

	cat := toolOK(t, s, "list_connectors", nil)
	if data, _ := cat["data"].([]any); len(data) == 0 || !strings.Contains(mustJSON(t, cat), `"name":"echo"`) {
		t.Errorf("list_connectors: %v", cat)
	}

	wf := toolOK(t, s, "save_workflow", map[string]any{"name": "greet", "description": "Say hi.",
		"steps": []any{step("e", "core", "echo", map[string]any{"hi": "there"})}})
	if wf["name"] != "greet" || wf["description"] != "Say hi." {
		t.Errorf("save_workflow: %v", wf)
	}
	if got := toolOK(t, s, "get_workflow", map[string]any{"name": "greet"}); got["name"] != "greet" {
		t.Errorf("get_workflow: %v", got)
	}
	if list := toolOK(t, s, "list_workflows", map[string]any{}); len(list["data"].([]any)) != 1 {
		t.Errorf("list_workflows: %v", list)
	}

	acc := toolOK(t, s, "run_workflow", map[string]any{"workflow": "greet", "payload": map[string]any{"n": 1}})
	id, _ := acc["job_id"].(string)
	if id == "" || acc["workflow"] != "greet" {
		t.Fatalf("run_workflow: %v", acc)
	}
	// The job is the REST API's job: the same record, read over REST.
	if j := b.waitStatus(t, ten.key, id, "succeeded", 10*time.Second); j.Workflow != "greet" {
		t.Fatalf("job over REST: %+v", j)
	}
	if j := toolOK(t, s, "get_job", map[string]any{"id": id}); j["status"] != "succeeded" || j["id"] != id {
		t.Errorf("get_job: %v", j)
	}
	list := toolOK(t, s, "list_jobs", map[string]any{"status": "succeeded", "limit": 10})
	if data, _ := list["data"].([]any); len(data) != 1 {
		t.Errorf("list_jobs: %v", list)
	}
	code, status := toolProblem(t, s, "cancel_job", map[string]any{"id": id})
	if code != "conflict" || status != 409 {
		t.Errorf("cancel_job of a finished job: %s %v, want conflict 409", code, status)
	}
	later := toolOK(t, s, "run_workflow", map[string]any{"workflow": "greet", "payload": map[string]any{},
		"run_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	if c := toolOK(t, s, "cancel_job", map[string]any{"id": later["job_id"]}); c["status"] != "canceled" {
		t.Errorf("cancel_job: %v", c)
	}
	// An idempotency key makes a retried run_workflow return the first job; the
	// same key with other arguments is refused, as on REST intake.
	retry := map[string]any{"workflow": "greet", "payload": map[string]any{"n": 2}, "idempotency_key": "agent-retry-1"}
	first := toolOK(t, s, "run_workflow", retry)
	if again := toolOK(t, s, "run_workflow", retry); again["job_id"] != first["job_id"] {
		t.Errorf("run_workflow retried with its idempotency key: job %v, then %v", first["job_id"], again["job_id"])
	}
	retry["payload"] = map[string]any{"n": 3}
	if code, status := toolProblem(t, s, "run_workflow", retry); code != "unprocessable" || status != 422 {
		t.Errorf("idempotency key reused with other arguments: %s %v, want unprocessable 422", code, status)
	}
	if u := toolOK(t, s, "get_usage", nil); u["owner_id"] != ten.owner {
		t.Errorf("get_usage: %v", u)
	}

	// Arguments are validated as the REST route validates its request.
	code, status = toolProblem(t, s, "list_jobs", map[string]any{"limit": 500})
	if code != "invalid" || status != 400 {
		t.Errorf("list_jobs limit 500: %s %v, want invalid 400", code, status)
	}
	if code, _ := toolProblem(t, s, "save_workflow", map[string]any{"name": "x", "steps": []any{}, "extra": 1}); code != "invalid" {
		t.Errorf("save_workflow with an unknown member: %s, want invalid", code)
	}
	if code, _ := toolProblem(t, s, "save_workflow", map[string]any{"name": "nul", "description": "a\u0000b",
		"steps": []any{step("e", "core", "echo", nil)}}); code != "invalid" {
		t.Errorf("save_workflow with NUL in its description: %s, want invalid", code)
	}
	// A workflow the service refuses: the tool's problem is the REST route's.
	bad := map[string]any{"steps": []any{step("e", "nope", "nothing", nil)}}
	resp, body := b.do(t, "PUT", "/api/v1/workflows/bad", hdr(ten.key, "application/json"), strings.NewReader(mustJSON(t, bad)))
	rest := problemOf(t, resp, body)
	bad["name"] = "bad"
	code, status = toolProblem(t, s, "save_workflow", bad)
	if code != string(rest.Code) || int(status) != resp.StatusCode || resp.StatusCode < 400 {
		t.Errorf("save_workflow with an unknown connector: %s %v, REST answered %s %d", code, status, rest.Code, resp.StatusCode)
	}
}

// TestMCPReplayAndDryRun: replay_job replays a finished job as POST
// /api/v1/jobs/{id}/replay does — from a step, with a payload, linked by
// replay_of, idempotent by key — and refuses what the route refuses with its
// problem: another owner's job, an unfinished one, a key without jobs:write,
// arguments that break the schema. run_workflow with dry_run answers with the
// rehearsed job.
func TestMCPReplayAndDryRun(t *testing.T) {
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "agent@example.com")
	other := b.newTenant(t, "other@example.com")
	u := b.createUser(t, "reader@example.com")
	ro := b.mustMCP(t, b.createKey(t, u.Id, "jobs:read").Key)
	s := b.mustMCP(t, ten.key)

	two := map[string]any{"workflow": "two", "payload": map[string]any{"n": 1}, "steps": []any{
		step("a", "core", "echo", map[string]any{"n": "{{payload.n}}"}),
		step("b", "core", "echo", map[string]any{"a": "{{steps.a.output.n}}", "n": "{{payload.n}}"})}}
	acc := toolOK(t, s, "run_workflow", two)
	id := acc["job_id"].(string)
	b.waitStatus(t, ten.key, id, "succeeded", 10*time.Second)

	r := toolOK(t, s, "replay_job", map[string]any{"id": id, "from_step": "b", "payload": map[string]any{"n": 2}})
	rid, _ := r["id"].(string)
	status, _ := r["status"].(string)
	if r["replay_of"] != id || rid == "" || rid == id || !dueNow(status) {
		t.Fatalf("replay_job: %v", r)
	}
	if steps := r["steps"].([]any); steps[0].(map[string]any)["reused"] != true || steps[1].(map[string]any)["reused"] != nil {
		t.Errorf("replay_job steps: %v, want a reused and b not", steps)
	}
	if j := b.waitStatus(t, ten.key, rid, "succeeded", 10*time.Second); !sameJSON(t, *j.Result, `{"a": 1, "n": 2}`) {
		t.Errorf("the replay over REST: result %s, want the reused a and the new payload", mustJSON(t, j.Result))
	}

	args := map[string]any{"id": id, "idempotency_key": "agent-replay-1"}
	first := toolOK(t, s, "replay_job", args)
	if again := toolOK(t, s, "replay_job", args); again["id"] != first["id"] {
		t.Errorf("replay_job retried with its key: %v, then %v", first["id"], again["id"])
	}
	args["from_step"] = "b"
	if code, status := toolProblem(t, s, "replay_job", args); code != "unprocessable" || status != 422 {
		t.Errorf("the key with other arguments: %s %v", code, status)
	}

	later := echoJob("later")
	later["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	sched := toolOK(t, s, "run_workflow", later)
	for _, tc := range []struct {
		name   string
		s      *mcp.ClientSession
		args   map[string]any
		code   string
		status float64
	}{
		{"another owner's job", b.mustMCP(t, other.key), map[string]any{"id": id}, "not_found", 404},
		{"an unfinished job", s, map[string]any{"id": sched["job_id"]}, "conflict", 409},
		{"a read-only key", ro, map[string]any{"id": id}, "forbidden", 403},
		{"from_step of the wrong type", s, map[string]any{"id": id, "from_step": 7}, "invalid", 400},
		{"a step the job lacks", s, map[string]any{"id": id, "from_step": "zz"}, "unprocessable", 422},
		{"no id", s, map[string]any{"from_step": "b"}, "invalid", 400},
	} {
		if code, status := toolProblem(t, tc.s, "replay_job", tc.args); code != tc.code || status != tc.status {
			t.Errorf("%s: %s %v, want %s %v", tc.name, code, status, tc.code, tc.status)
		}
	}

	dry := toolOK(t, s, "run_workflow", map[string]any{"workflow": "two", "payload": map[string]any{"n": 5}, "dry_run": true, "steps": two["steps"]})
	job, _ := dry["job"].(map[string]any)
	if dry["dry_run"] != true || dry["job_id"] == nil || job["id"] != dry["job_id"] || job["status"] != "succeeded" || !sameJSON(t, job["result"], `{"a": 5, "n": 5}`) {
		t.Errorf("run_workflow with dry_run: %v", dry)
	}
}

// TestMCPPerimeter: the endpoint takes the same keys as REST, in either header;
// a key without a tool's scope is refused by that tool, another owner's job is
// not found, and no key or a bad key gets no session at all.
func TestMCPPerimeter(t *testing.T) {
	b := setup(t, withAdmin)
	owner := b.newTenant(t, "owner@example.com")
	other := b.newTenant(t, "other@example.com")
	u := b.createUser(t, "reader@example.com")
	readOnly := b.createKey(t, u.Id, "jobs:read").Key
	usersOnly := b.createKey(t, u.Id, "users:read").Key

	job := b.submit(t, owner.key, echoJob("mine"))

	// X-Api-Key works as well as Authorization: Bearer.
	viaHeader, err := b.mcpSession(t, owner.key, false)
	if err != nil {
		t.Fatalf("X-Api-Key session: %v", err)
	}
	if j := toolOK(t, viaHeader, "get_job", map[string]any{"id": job.JobId}); j["id"] != job.JobId {
		t.Errorf("owner's get_job: %v", j)
	}

	s := b.mustMCP(t, other.key)
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{{"get_job", map[string]any{"id": job.JobId}}, {"cancel_job", map[string]any{"id": job.JobId}}} {
		if code, status := toolProblem(t, s, tc.tool, tc.args); code != "not_found" || status != 404 {
			t.Errorf("another owner's %s: %s %v, want not_found 404", tc.tool, code, status)
		}
	}
	if list := toolOK(t, s, "list_jobs", nil); len(list["data"].([]any)) != 0 {
		t.Errorf("another owner lists jobs: %v", list)
	}
	if code, _ := toolProblem(t, s, "get_usage", map[string]any{"owner_id": owner.owner}); code != "forbidden" {
		t.Errorf("another owner's usage: %s, want forbidden", code)
	}

	ro := b.mustMCP(t, readOnly)
	if j := toolOK(t, ro, "list_jobs", nil); j["data"] == nil {
		t.Errorf("read-only list_jobs: %v", j)
	}
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{
		{"run_workflow", map[string]any{"workflow": "x", "payload": map[string]any{}, "steps": []any{step("e", "core", "echo", nil)}}},
		{"save_workflow", map[string]any{"name": "x", "steps": []any{step("e", "core", "echo", nil)}}},
		{"cancel_job", map[string]any{"id": job.JobId}},
	} {
		if code, status := toolProblem(t, ro, tc.tool, tc.args); code != "forbidden" || status != 403 {
			t.Errorf("jobs:read key calling %s: %s %v, want forbidden 403", tc.tool, code, status)
		}
	}
	if n := len(b.jobIDs(t, owner.key)); n != 1 {
		t.Errorf("owner has %d jobs after refused calls, want 1", n)
	}

	// The endpoint itself: a key without jobs:read, a wrong key, no key.
	for name, tc := range map[string]struct {
		key    string
		status int
	}{
		"users:read key": {usersOnly, http.StatusForbidden}, "unknown key": {"lvq_live_" + strings.Repeat("A", 43), http.StatusUnauthorized}, "no key": {"", http.StatusUnauthorized},
	} {
		if _, err := b.mcpSession(t, tc.key, tc.key != ""); err == nil || !strings.Contains(err.Error(), http.StatusText(tc.status)) {
			t.Errorf("%s: connecting to /mcp gave %v, want HTTP %d", name, err, tc.status)
		}
	}
	// Behind a reverse proxy on the same machine: a loopback peer, a public Host.
	proxied, err := mcp.NewClient(&mcp.Implementation{Name: "levqor-test", Version: "1"}, nil).Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: b.URL + "/mcp", MaxRetries: -1,
		HTTPClient: &http.Client{Transport: keyHeader{base: b.HTTP.Transport, name: "X-Api-Key", value: owner.key, host: "levqor.example.com"}},
	}, nil)
	if err != nil {
		t.Fatalf("through a local proxy (Host levqor.example.com): %v", err)
	}
	defer proxied.Close()
	if j := toolOK(t, proxied, "get_job", map[string]any{"id": job.JobId}); j["id"] != job.JobId {
		t.Errorf("proxied get_job: %v", j)
	}
	// The REST API still refuses a bearer token: only /mcp accepts that form.
	if resp, _ := b.do(t, "GET", "/api/v1/jobs", http.Header{"Authorization": {"Bearer " + owner.key}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("REST with a bearer token: %d, want 401", resp.StatusCode)
	}
}

// TestMCPBudgetRefusal: run_workflow of an AI job whose worst case exceeds the
// owner's remaining budget is refused at intake, as POST /api/v1/intake is (402
// budget_exceeded), and no job is stored.
func TestMCPBudgetRefusal(t *testing.T) {
	chat, calls := fakeChat(t, 10, 5)
	b := setup(t, withBudgetedEngine(t, storetest.OpenSQLite(t), chat.URL), withAdmin)
	ten := b.newTenant(t, "broke@example.com")
	resp, body := b.do(t, "PUT", "/api/v1/budgets/"+ten.owner, hdr(adminKey, "application/json"), strings.NewReader(`{"daily_usd":0.000001,"monthly_usd":0.000001}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set budget: %d %s", resp.StatusCode, body)
	}
	s := b.mustMCP(t, ten.key)
	code, status := toolProblem(t, s, "run_workflow", map[string]any{"workflow": "ask", "payload": map[string]any{},
		"steps": []any{step("ask", "ai", "complete", map[string]any{"prompt": "Say hello.", "max_tokens": 500})}})
	if code != "budget_exceeded" || status != 402 {
		t.Fatalf("AI job over budget: %s %v, want budget_exceeded 402", code, status)
	}
	if n := len(b.jobIDs(t, ten.key)); n != 0 || calls.Load() != 0 {
		t.Errorf("after the refusal: %d jobs, %d provider calls; want none", n, calls.Load())
	}
	// A job without AI steps still runs.
	toolOK(t, s, "run_workflow", echoJob("free"))
}

// TestMCPPlanWorkflow: plan_workflow answers what POST /api/v1/plan answers — a
// workflow save_workflow takes as it is — and is refused as the route is: without
// jobs:write, with arguments the operation's schema refuses, and (402, before any
// model call) when the owner's budget cannot pay for the planning call.
func TestMCPPlanWorkflow(t *testing.T) {
	b, model := planSetup(t, aitest.Script(reply(goodPlan)))
	ten := b.newTenant(t, "planner@example.com")
	s := b.mustMCP(t, ten.key)

	plan := toolOK(t, s, "plan_workflow", map[string]any{"description": "Summarise https://example.com.", "constraints": map[string]any{"max_cost_usd": 1}})
	wf, _ := plan["workflow"].(map[string]any)
	if steps, _ := wf["steps"].([]any); len(steps) != 3 || plan["validation"].(map[string]any)["valid"] != true || model.Calls() != 1 {
		t.Fatalf("plan_workflow = %v after %d model calls", plan, model.Calls())
	}
	wf["name"] = "planned"
	if saved := toolOK(t, s, "save_workflow", wf); saved["name"] != "planned" {
		t.Errorf("save_workflow of the plan = %v", saved)
	}

	if code, status := toolProblem(t, s, "plan_workflow", map[string]any{"description": ""}); code != "invalid" || status != 400 {
		t.Errorf("empty description: %s %v, want invalid 400", code, status)
	}
	reader := b.createKey(t, ten.owner, "jobs:read")
	if code, _ := toolProblem(t, b.mustMCP(t, reader.Key), "plan_workflow", map[string]any{"description": "x"}); code != "forbidden" {
		t.Errorf("jobs:read key: %s, want forbidden", code)
	}
	resp, body := b.do(t, "PUT", "/api/v1/budgets/"+ten.owner, hdr(adminKey, "application/json"), strings.NewReader(`{"daily_usd":0.000001,"monthly_usd":0.000001}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set budget: %d %s", resp.StatusCode, body)
	}
	if code, status := toolProblem(t, s, "plan_workflow", map[string]any{"description": "Summarise a page."}); code != "budget_exceeded" || status != 402 {
		t.Errorf("over budget: %s %v, want budget_exceeded 402", code, status)
	}
	if model.Calls() != 1 {
		t.Errorf("model calls = %d, want only the first plan's", model.Calls())
	}
}

// TestMCPRateLimit: every MCP request counts against the key's rate limit; once
// it is spent, calls fail with the API's 429 until the window passes.
func TestMCPRateLimit(t *testing.T) {
	const perKey = 6
	b := setup(t, withAdmin, func(o *testOptions) {
		rate := func(n int64) limiter.Rate { return limiter.Rate{Period: time.Minute, Limit: n} }
		o.Limits = &server.Limits{IP: rate(100), Global: rate(1000), Key: rate(perKey), Store: memory.NewStore()}
	})
	ten := b.newTenant(t, "busy@example.com") // the admin key's requests count against the admin key
	s := b.mustMCP(t, ten.key)                // initialize + initialized: 2 requests
	var refused error
	calls := 0
	for range perKey {
		_, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "list_jobs", Arguments: map[string]any{}})
		if err != nil {
			refused = err
			break
		}
		calls++
	}
	if refused == nil || calls >= perKey {
		t.Fatalf("%d calls within a limit of %d per minute, none refused", calls, perKey)
	}
	if !strings.Contains(refused.Error(), "429") && !strings.Contains(strings.ToLower(refused.Error()), "too many requests") {
		t.Errorf("refusal: %v, want the 429 rate limit", refused)
	}
	// Another key has its own budget.
	other := b.newTenant(t, "calm@example.com")
	if _, isErr := callTool(t, b.mustMCP(t, other.key), "list_jobs", nil); isErr {
		t.Error("another key was limited too")
	}
}

// TestMCPToolSchemas: every tool's input and output schema is a self-contained
// JSON Schema (draft 2020-12) that compiles on its own — no $ref left to resolve,
// no OpenAPI-only nullable — since clients in other languages refuse anything else.
func TestMCPToolSchemas(t *testing.T) {
	b := setup(t, withAdmin)
	s := b.mustMCP(t, b.newTenant(t, "schemas@example.com").key)
	tools, err := s.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) == 0 {
		t.Fatal("no tools")
	}
	for _, tool := range tools.Tools {
		for kind, schema := range map[string]any{"input": tool.InputSchema, "output": tool.OutputSchema} {
			raw := mustJSON(t, schema)
			if strings.Contains(raw, `"$ref"`) || strings.Contains(raw, `"nullable"`) {
				t.Errorf("%s %s schema has $ref or nullable: %.300s", tool.Name, kind, raw)
			}
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			c := jsonschema.NewCompiler()
			c.DefaultDraft(jsonschema.Draft2020)
			c.AssertFormat()
			if err := c.AddResource("mem:///"+tool.Name+"-"+kind+".json", doc); err != nil {
				t.Fatalf("%s %s: %v", tool.Name, kind, err)
			}
			if _, err := c.Compile("mem:///" + tool.Name + "-" + kind + ".json"); err != nil {
				t.Errorf("%s %s schema is not valid JSON Schema 2020-12: %v", tool.Name, kind, err)
			}
			if m, _ := schema.(map[string]any); m["type"] != "object" || m["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("%s %s schema: type %v, $schema %v", tool.Name, kind, m["type"], m["$schema"])
			}
		}
	}
	// The conversion itself: nullable fields of the job admit null in the output schema.
	get := tools.Tools[slices.IndexFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == "get_job" })]
	started := get.OutputSchema.(map[string]any)["properties"].(map[string]any)["started_at"].(map[string]any)
	if !slices.Equal(toStrings(started["type"]), []string{"string", "null"}) {
		t.Errorf("get_job started_at type = %v, want [string null]", started["type"])
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// TestMCPFailedKeysCountOnce: a wrong key on /mcp counts once against the
// caller's IP limit whichever header carries it, although the endpoint accepts
// two schemes — and a good key sent either way does not count at all.
func TestMCPFailedKeysCountOnce(t *testing.T) {
	const perIP = 4
	b := setup(t, withAdmin, func(o *testOptions) {
		rate := func(n int64) limiter.Rate { return limiter.Rate{Period: time.Minute, Limit: n} }
		o.Limits = &server.Limits{IP: rate(perIP), Global: rate(1000), Key: rate(1000), Store: memory.NewStore()}
	})
	good := b.newTenant(t, "good@example.com").key
	wrong := "lvq_live_" + strings.Repeat("B", 43)
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	send := func(h http.Header) int {
		h.Set("Content-Type", "application/json")
		h.Set("Accept", "application/json, text/event-stream")
		resp, _ := b.do(t, "POST", "/mcp", h, strings.NewReader(ping))
		return resp.StatusCode
	}
	for range 3 * perIP { // good keys: never counted against the IP
		if code := send(http.Header{"Authorization": {"Bearer " + good}}); code != http.StatusOK {
			t.Fatalf("ping with a good bearer key: %d", code)
		}
		if code := send(http.Header{"X-Api-Key": {good}}); code != http.StatusOK {
			t.Fatalf("ping with a good X-Api-Key: %d", code)
		}
	}
	var codes []int
	for i := range perIP + 1 {
		h := http.Header{"Authorization": {"Bearer " + wrong}}
		if i%2 == 1 {
			h = http.Header{"X-Api-Key": {wrong}}
		}
		codes = append(codes, send(h))
	}
	want := []int{401, 401, 401, 401, 429}
	if !slices.Equal(codes, want) {
		t.Errorf("wrong keys (bearer, X-Api-Key, …) answered %v, want %v: each counts once", codes, want)
	}
}
