package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/connectors/httpcall"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// vendor is a fake outside JSON API that http.request steps call: GET /items
// lists two items, POST /notify answers {"ok": true} — or 400 while failing is
// set, a final failure — and every request is counted by path, with the last
// body each path received.
type vendor struct {
	*httptest.Server
	failing atomic.Bool
	mu      sync.Mutex
	hits    map[string]int
	bodies  map[string]string
}

func newVendor(t *testing.T) *vendor {
	v := &vendor{hits: map[string]int{}, bodies: map[string]string{}}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		v.mu.Lock()
		v.hits[r.URL.Path]++
		v.bodies[r.URL.Path] = body.String()
		v.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/items":
			_, _ = w.Write([]byte(`{"items": [{"id": "a", "title": "First"}, {"id": "b", "title": "Second"}], "count": 2}`))
		case r.URL.Path == "/notify" && v.failing.Load():
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error": "refused"}`))
		default:
			_, _ = w.Write([]byte(`{"ok": true}`))
		}
	}))
	t.Cleanup(v.Close)
	return v
}

// calls is how many requests path received, and the last one's body.
func (v *vendor) calls(path string) (int, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.hits[path], v.bodies[path]
}

// total is how many requests the fake received in all.
func (v *vendor) total() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, h := range v.hits {
		n += h
	}
	return n
}

// withFullEngine runs a job engine over o.Store with the core, http (loopback
// allowed) and ai connectors (the fake chat at chatURL) and owner budgets (10 USD a
// day unless a test sets an owner's limits), as main wires them.
func withFullEngine(t *testing.T, chatURL string) func(*testOptions) {
	return func(o *testOptions) {
		guard, err := outbound.NewGuard([]string{"127.0.0.0/8"})
		if err != nil {
			t.Fatal(err)
		}
		creds := credentials.NewService(o.Store, testSecretKey, nil)
		conn, err := ai.New(ai.Config{BaseURL: chatURL + "/v1", APIKey: "sk-test", DefaultModel: "gpt-4o-mini", MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		reg, err := connectors.NewRegistry(core.New(), httpcall.New(guard).WithCredentials(creds), conn)
		if err != nil {
			t.Fatal(err)
		}
		o.Budgets = budget.NewService(o.Store, budget.Limits{Daily: budget.USDToNanos(10), Monthly: budget.USDToNanos(200)})
		e := startEngine(t, jobs.Config{
			Store: o.Store, Registry: reg, Guard: guard, ShutdownTimeout: 5 * time.Second,
			Worker:            jobs.WorkerOptions{Concurrency: 8, Lease: 3 * time.Second, Poll: 50 * time.Millisecond, RescueAtStart: true, RetryBase: 50 * time.Millisecond},
			CallbackRetryBase: 50 * time.Millisecond,
			Budgets:           o.Budgets, Encode: server.EncodeJob, Sealer: creds, Logger: o.Logger,
		})
		o.Jobs, o.Hub = e.Service, e.Hub
	}
}

// engines are the stores the tests that run on both engines open (PostgreSQL's is
// skipped without LEVQOR_TEST_POSTGRES_URL).
var engines = []struct {
	name string
	open func(testing.TB) store.Store
}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}}

// counter is a local server counting the requests it gets (a webhook receiver).
func counter(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	return srv, &n
}

// dryRun posts body as a dry run and requires 200 with the rehearsed job.
func (b *bundle) dryRun(t *testing.T, key string, body map[string]any, idem string) client.Job {
	t.Helper()
	body["dry_run"] = true
	resp, data := b.intake(t, key, body, idem)
	d := decode[client.JobDryRun](t, resp, data, http.StatusOK)
	j := d.Job
	if loc := resp.Header.Get("Location"); loc != "/api/v1/jobs/"+j.Id || d.JobId != j.Id || !d.DryRun || string(d.Status) != string(j.Status) || d.Workflow != j.Workflow {
		t.Errorf("dry run answered Location %q, job_id %s, dry_run %v, status %s; the job is %s", loc, d.JobId, d.DryRun, d.Status, j.Id)
	}
	return j
}

// stepOf returns the job's step with the id.
func stepOf(t *testing.T, j client.Job, id string) client.StepState {
	t.Helper()
	for _, s := range j.Steps {
		if s.Id == id {
			return s
		}
	}
	t.Fatalf("job %s has no step %q", j.Id, id)
	return client.StepState{}
}

// TestDryRun, on both engines: a graph workflow with every feature — an http call,
// references into its open JSON body, a condition, an AI step, a for_each, a wait,
// a callback and an on_failure step — is rehearsed: each step shows what it would
// have received, resolved against the examples; nothing is called, reserved,
// spent, queued or delivered; the job reads back through GET, takes no
// idempotency key, cannot be replayed, and a saved workflow rehearses by name.
func TestDryRun(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			api := newVendor(t)
			chat, chatCalls := fakeChat(t, 10, 5)
			hook, hookHits := counter(t)
			b := setup(t, func(o *testOptions) { o.Store = eng.open(t) }, withFullEngine(t, chat.URL), withAdmin)
			ten := b.newTenant(t, "rehearse@example.com")
			// A budget nothing fits: a dry run neither checks nor reserves it.
			tiny := budget.Limits{Daily: 1, Monthly: 1}
			if err := b.Store.SetOwnerLimits(t.Context(), ten.owner, &tiny, time.Now()); err != nil {
				t.Fatal(err)
			}
			body := map[string]any{"workflow": "triage", "payload": map[string]any{"q": "kale"}, "callback_url": hook.URL + "/done",
				"steps": []any{
					step("fetch", "http", "request", map[string]any{"url": api.URL + "/items?q={{payload.q}}"}),
					step("pick", "core", "echo", map[string]any{"first": "{{steps.fetch.output.json.items.0.title}}", "status": "{{steps.fetch.output.status}}"}),
					withFields(step("ask", "ai", "classify", map[string]any{"labels": []string{"urgent", "later"}, "text": "{{steps.pick.output.first}}"}),
						map[string]any{"if": "steps.fetch.output.status == 200"}),
					withFields(step("each", "core", "echo", map[string]any{"id": "{{item.id}}", "at": "{{index}}"}),
						map[string]any{"needs": []string{"fetch"}, "for_each": "{{steps.fetch.output.json.items}}"}),
					withFields(step("pause", "core", "wait", map[string]any{"for": "1h"}), map[string]any{"needs": []string{"pick"}}),
					withFields(step("notify", "http", "request", map[string]any{"method": "POST", "url": api.URL + "/notify",
						"json": map[string]any{"label": "{{steps.ask.output.label}}", "ids": "{{steps.each.output}}"}}),
						map[string]any{"needs": []string{"ask", "each", "pause"}}),
				},
				"on_failure": step("sorry", "core", "echo", map[string]any{"status": "{{steps.fetch.output.status}}"}),
			}
			before := time.Now()
			j := b.dryRun(t, ten.key, body, "dry-1")
			if j.DryRun == nil || !*j.DryRun || j.Status != "succeeded" || j.ReplayOf != nil || j.FinishedAt == nil {
				t.Fatalf("dry run: dry_run %v, status %s, finished %v", j.DryRun, j.Status, j.FinishedAt)
			}
			for id, want := range map[string]string{
				"fetch":  `{"url": "` + api.URL + `/items?q=kale"}`,
				"pick":   `{"first": "example", "status": 200}`,
				"ask":    `{"labels": ["urgent", "later"], "text": "example"}`,
				"each":   `[{"id": "example", "at": 0}]`,
				"pause":  `{"for": "1h"}`,
				"notify": `{"method": "POST", "url": "` + api.URL + `/notify", "json": {"label": "urgent", "ids": [{"id": "example", "at": 0}]}}`,
				"sorry":  `{"status": 200}`,
			} {
				s := stepOf(t, j, id)
				if s.ResolvedInput == nil || !sameJSON(t, *s.ResolvedInput, want) {
					t.Errorf("step %s resolved_input = %s, want %s", id, mustJSON(t, s.ResolvedInput), want)
				}
				if s.Attempts != 0 || s.CostUsd != nil {
					t.Errorf("step %s: attempts %d, cost %v; a dry run runs nothing", id, s.Attempts, s.CostUsd)
				}
			}
			for id, want := range map[string]string{
				"fetch": `{"status": 200, "headers": {}, "json": {"items": [{"id": "example", "title": "example"}]}, "text": "example"}`,
				"ask":   `{"label": "urgent", "usage": {"prompt_tokens": 0, "completion_tokens": 0}, "cost_usd": 0, "model": "example"}`,
				"each":  `[{"id": "example", "at": 0}]`,
			} {
				if s := stepOf(t, j, id); s.Status != "succeeded" || s.Output == nil || !sameJSON(t, *s.Output, want) {
					t.Errorf("step %s: %s, output %s; want succeeded with %s", id, s.Status, mustJSON(t, s.Output), want)
				}
			}
			if s := stepOf(t, j, "sorry"); s.Status != "pending" || s.OnFailure == nil || s.Output != nil {
				t.Errorf("the on_failure step: %s, output %v; it does not run in a dry run that succeeds", s.Status, s.Output)
			}
			var waited struct {
				WaitedUntil time.Time `json:"waited_until"`
			}
			if s := stepOf(t, j, "pause"); s.Output == nil || json.Unmarshal(*s.Output, &waited) != nil ||
				waited.WaitedUntil.Before(before.Add(time.Hour-time.Second)) || waited.WaitedUntil.After(time.Now().Add(time.Hour)) {
				t.Errorf("pause output = %v, want the hour it would have waited until", mustJSON(t, s.Output))
			}
			if s := stepOf(t, j, "each"); s.Iterations == nil || len(*s.Iterations) != 1 || (*s.Iterations)[0].Status != "succeeded" {
				t.Errorf("each iterations = %v", mustJSON(t, s.Iterations))
			}
			if j.Result == nil || !sameJSON(t, *j.Result, *stepOf(t, j, "notify").Output) {
				t.Errorf("result %v, want the last step's example output", mustJSON(t, j.Result))
			}

			// Stored, readable, listed — and never run or delivered.
			got := b.getJob(t, ten.key, j.Id)
			if !sameJSON(t, got, j) {
				t.Errorf("GET the dry run = %s\nintake answered %s", mustJSON(t, got), mustJSON(t, j))
			}
			if ids := b.jobIDs(t, ten.key); len(ids) != 1 || ids[0] != j.Id {
				t.Errorf("jobs listed %v, want the dry run", ids)
			}
			time.Sleep(500 * time.Millisecond) // time for a worker or the webhook dispatcher to pick it up, if they would
			if got := b.getJob(t, ten.key, j.Id); got.Status != "succeeded" || got.Attempts != 0 || len(got.Callbacks) != 0 {
				t.Errorf("after a while: %s, %d attempts, %d callbacks", got.Status, got.Attempts, len(got.Callbacks))
			}
			if api.total() != 0 || chatCalls.Load() != 0 || hookHits.Load() != 0 {
				t.Errorf("calls: vendor %d, chat %d, webhook %d; a dry run makes none", api.total(), chatCalls.Load(), hookHits.Load())
			}
			day, month, err := b.Store.OwnerUsage(t.Context(), ten.owner, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if day.Spent != 0 || day.Reserved != 0 || month.Spent != 0 || month.Reserved != 0 {
				t.Errorf("budget after a dry run: day %+v, month %+v; want untouched", day, month)
			}

			// The key was not taken: the real run may use it with its own body.
			resp, data := b.intake(t, ten.key, echoJob("real"), "dry-1")
			decode[client.JobAccepted](t, resp, data, http.StatusAccepted)
			// A dry run is not replayed.
			resp, data = b.do(t, "POST", "/api/v1/jobs/"+j.Id+"/replay", hdr(ten.key, "application/json"), strings.NewReader(`{}`))
			if p := problemOf(t, resp, data); resp.StatusCode != http.StatusConflict || p.Code != "conflict" {
				t.Errorf("replay of a dry run: %d %s, want 409 conflict", resp.StatusCode, data)
			}

			// A saved workflow, by name.
			resp, data = b.do(t, "PUT", "/api/v1/workflows/greet", hdr(ten.key, "application/json"), strings.NewReader(mustJSON(t, map[string]any{
				"steps": []any{step("hi", "core", "echo", map[string]any{"to": "{{payload.name}}"}), step("bye", "core", "echo", map[string]any{"said": "{{steps.hi.output.to}}"})}})))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("save workflow: %d %s", resp.StatusCode, data)
			}
			saved := b.dryRun(t, ten.key, map[string]any{"workflow": "greet", "payload": map[string]any{"name": "Zoë"}}, "")
			if s := stepOf(t, saved, "bye"); s.ResolvedInput == nil || !sameJSON(t, *s.ResolvedInput, `{"said": "Zoë"}`) || saved.Workflow != "greet" {
				t.Errorf("dry run of a saved workflow: bye received %s", mustJSON(t, s.ResolvedInput))
			}
		})
	}
}

// withFields adds fields (needs, if, for_each…) to a step.
func withFields(s map[string]any, fields map[string]any) map[string]any {
	for k, v := range fields {
		s[k] = v
	}
	return s
}

// TestDryRunProblems: what would fail when the job runs is a 422 naming each
// problem at its step's field — a reference the output schema rules out, a
// condition over it, a resolved input its action refuses, a payload reference
// that is not there, a wait that cannot be waited — and nothing is stored or
// called. The batch endpoint refuses dry runs in their slots.
func TestDryRunProblems(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			api := newVendor(t)
			b := setup(t, func(o *testOptions) { o.Store = eng.open(t) }, withEngine(t, []string{"127.0.0.0/8"}, nil), withAdmin)
			ten := b.newTenant(t, "problems@example.com")
			fetch := step("fetch", "http", "request", map[string]any{"url": api.URL + "/items"})
			for _, tc := range []struct {
				name    string
				payload map[string]any
				steps   []any
				want    map[string]string // pointer → a part of its detail
			}{
				{"a member the output schema rules out", nil,
					[]any{fetch, step("use", "core", "echo", map[string]any{"b": "{{steps.fetch.output.body}}"})},
					map[string]string{"/steps/1/input": `has no member "body"`}},
				{"a condition over it", nil,
					[]any{fetch, withFields(step("use", "core", "echo", nil), map[string]any{"if": `steps.fetch.output.headers["x"] == "y" && steps.fetch.output.nope == 1`})},
					map[string]string{"/steps/1/if": `has no member "nope"`}},
				{"a resolved input the action refuses", map[string]any{"ms": "soon"},
					[]any{step("nap", "core", "sleep", map[string]any{"ms": "{{payload.ms}}"})},
					map[string]string{"/steps/0/input": "at /ms"}},
				{"a payload reference that is not there", map[string]any{},
					[]any{step("e", "core", "echo", map[string]any{"x": "{{payload.missing}}"})},
					map[string]string{"/steps/0/input": "missing"}},
				{"a wait that cannot be waited", map[string]any{"d": "soon"},
					[]any{step("w", "core", "wait", map[string]any{"for": "{{payload.d}}"})},
					map[string]string{"/steps/0/input": "duration"}},
				{"several at once", map[string]any{},
					[]any{fetch, step("a", "core", "echo", map[string]any{"x": "{{steps.fetch.output.status.code}}"}),
						step("b", "core", "echo", map[string]any{"y": "{{payload.nope}}"})},
					map[string]string{"/steps/1/input": "is a number", "/steps/2/input": "nope"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					payload := tc.payload
					if payload == nil {
						payload = map[string]any{}
					}
					body := map[string]any{"workflow": "bad", "payload": payload, "steps": tc.steps, "dry_run": true}
					resp, data := b.intake(t, ten.key, body, "")
					p := problemOf(t, resp, data)
					if resp.StatusCode != http.StatusUnprocessableEntity || p.Code != "unprocessable" {
						t.Fatalf("%d %s, want 422 unprocessable", resp.StatusCode, data)
					}
					if p.Errors == nil || len(*p.Errors) != len(tc.want) {
						t.Fatalf("errors %s, want %d", mustJSON(t, p.Errors), len(tc.want))
					}
					for _, e := range *p.Errors {
						if want, ok := tc.want[e.Pointer]; !ok || !strings.Contains(e.Detail, want) {
							t.Errorf("error at %s: %q; want one of %v", e.Pointer, e.Detail, tc.want)
						}
					}
				})
			}
			if ids := b.jobIDs(t, ten.key); len(ids) != 0 {
				t.Errorf("refused dry runs stored %v", ids)
			}
			if api.total() != 0 {
				t.Errorf("the vendor got %d calls", api.total())
			}

			// A batch takes no dry run: that item is refused, the others go on.
			dry := echoJob("dry")
			dry["dry_run"] = true
			res := b.batch(t, ten.key, []map[string]any{batchItem("", dry), batchItem("", echoJob("real"))})
			if len(res.Results) != 2 || res.Results[0].Status != 422 || res.Results[0].Problem == nil || res.Results[1].Status != 202 {
				t.Fatalf("batch with a dry run: %s", mustJSON(t, res))
			}
			if errs := res.Results[0].Problem.Errors; errs == nil || (*errs)[0].Pointer != "/jobs/0/job/dry_run" {
				t.Errorf("the dry run's problem points at %s, want /jobs/0/job/dry_run", mustJSON(t, errs))
			}
		})
	}
}

// TestDryRunHostile: malformed dry-run requests are 4xx problems, never 5xx.
func TestDryRunHostile(t *testing.T) {
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "hostile@example.com")
	for name, body := range map[string]string{
		"dry_run not a boolean": `{"workflow": "w", "payload": {}, "dry_run": "yes", "steps": [{"id": "e", "connector": "core", "action": "echo"}]}`,
		"dry_run null":          `{"workflow": "w", "payload": {}, "dry_run": null, "steps": [{"id": "e", "connector": "core", "action": "echo"}]}`,
		"unknown workflow":      `{"workflow": "nope", "payload": {}, "dry_run": true}`,
		"steps invalid":         `{"workflow": "w", "payload": {}, "dry_run": true, "steps": [{"id": "e", "connector": "core", "action": "nope"}]}`,
		"a reference cycle":     `{"workflow": "w", "payload": {}, "dry_run": true, "steps": [{"id": "a", "connector": "core", "action": "echo", "needs": ["b"]}, {"id": "b", "connector": "core", "action": "echo", "needs": ["a"]}]}`,
		"a for_each of more than 1000 items": `{"workflow": "w", "payload": {"list": [` + strings.TrimSuffix(strings.Repeat("0,", 1001), ",") + `]}, "dry_run": true,
			"steps": [{"id": "a", "connector": "core", "action": "echo", "for_each": "{{payload.list}}"}]}`,
		"an if that is not CEL": `{"workflow": "w", "payload": {}, "dry_run": true, "steps": [{"id": "e", "connector": "core", "action": "echo", "if": "(("}]}`,
		"NUL in a step id":      `{"workflow": "w", "payload": {}, "dry_run": true, "steps": [{"id": "e\u0000", "connector": "core", "action": "echo"}]}`,
		"not JSON":              `{"workflow": "w", "payload": {}, "dry_run": tru`,
	} {
		resp, data := b.intake(t, ten.key, body, "")
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s: %d %.300s, want 4xx", name, resp.StatusCode, data)
			continue
		}
		problemOf(t, resp, data)
	}
	if ids := b.jobIDs(t, ten.key); len(ids) != 0 {
		t.Errorf("hostile dry runs stored %v", ids)
	}
}
