package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/workflow"
)

// onEngines runs f once on SQLite and once on PostgreSQL (skipped without
// LEVQOR_TEST_POSTGRES_URL), each with a fresh server and store.
func onEngines(t *testing.T, f func(t *testing.T, b *bundle)) {
	for _, e := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			st := e.open(t)
			f(t, setup(t, func(o *testOptions) { o.Store = st }, withAdmin))
		})
	}
}

func graphStep(id, action string, input any, extra map[string]any) map[string]any {
	s := step(id, "core", action, input)
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func stepByID(t *testing.T, j client.Job, id string) client.StepState {
	t.Helper()
	for _, s := range j.Steps {
		if s.Id == id {
			return s
		}
	}
	t.Fatalf("job has no step %q: %s", id, mustJSON(t, j.Steps))
	return client.StepState{}
}

// Independent steps overlap in time; a false `if` skips its step and the dependents
// without an `if` of their own, while a dependent whose `if` reads the skip runs; a
// for_each runs once per item, skipping the items its `if` refuses.
func TestGraphParallelConditionsForEach(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, b *bundle) {
		ten := b.newTenant(t, "graph@example.com")
		none := []string{}
		acc := b.submit(t, ten.key, map[string]any{
			"workflow": "graph",
			"payload":  map[string]any{"flag": false, "items": []any{1, 2, 3}},
			"steps": []any{
				graphStep("a", "sleep", map[string]any{"ms": 400}, map[string]any{"needs": none}),
				graphStep("b", "sleep", map[string]any{"ms": 400}, map[string]any{"needs": none}),
				graphStep("join", "echo", map[string]any{"a": "{{steps.a.output}}", "b": "{{steps.b.output}}"}, map[string]any{"needs": []string{"a", "b"}}),
				graphStep("cond", "echo", map[string]any{"x": 1}, map[string]any{"needs": []string{"join"}, "if": "payload.flag == true"}),
				graphStep("after", "echo", map[string]any{"x": 2}, map[string]any{"needs": []string{"cond"}}),
				graphStep("rescue", "echo", map[string]any{"x": 3}, map[string]any{"needs": []string{"cond"}, "if": `steps.cond.status == "skipped"`}),
				graphStep("each", "echo", map[string]any{"v": "{{item}}", "i": "{{index}}"}, map[string]any{
					"needs": []string{"join"}, "for_each": "{{payload.items}}", "if": "item != 2", "max_concurrency": 2}),
				graphStep("final", "echo", map[string]any{"each": "{{steps.each.output}}"}, map[string]any{
					"needs": []string{"after", "rescue", "each"}, "if": `steps.each.status == "succeeded"`}),
			},
		})
		j := b.waitStatus(t, ten.key, acc.JobId, "succeeded", 20*time.Second)
		a, bb := stepByID(t, j, "a"), stepByID(t, j, "b")
		if a.StartedAt == nil || bb.StartedAt == nil || !a.StartedAt.Before(*bb.FinishedAt) || !bb.StartedAt.Before(*a.FinishedAt) {
			t.Errorf("a %v–%v and b %v–%v do not overlap", a.StartedAt, a.FinishedAt, bb.StartedAt, bb.FinishedAt)
		}
		if join := stepByID(t, j, "join"); join.StartedAt.Before(*a.FinishedAt) || join.StartedAt.Before(*bb.FinishedAt) {
			t.Errorf("join started at %v, before its needs ended", join.StartedAt)
		}
		want := map[string]string{"a": "succeeded", "b": "succeeded", "join": "succeeded", "cond": "skipped", "after": "skipped",
			"rescue": "succeeded", "each": "succeeded", "final": "succeeded"}
		for id, status := range want {
			if got := stepByID(t, j, id); string(got.Status) != status {
				t.Errorf("step %s is %s, want %s", id, got.Status, status)
			}
		}
		each := stepByID(t, j, "each")
		if each.Output == nil || !sameJSON(t, *each.Output, []any{map[string]any{"v": 1, "i": 0}, nil, map[string]any{"v": 3, "i": 2}}) {
			t.Errorf("each output %s", mustJSON(t, each.Output))
		}
		if each.Iterations == nil || len(*each.Iterations) != 3 {
			t.Fatalf("each iterations %s", mustJSON(t, each.Iterations))
		}
		var its []string
		for _, it := range *each.Iterations {
			its = append(its, string(it.Status))
		}
		if strings.Join(its, ",") != "succeeded,skipped,succeeded" {
			t.Errorf("iterations %v", its)
		}
		if !sameJSON(t, j.Result, map[string]any{"each": []any{map[string]any{"v": 1, "i": 0}, nil, map[string]any{"v": 3, "i": 2}}}) {
			t.Errorf("result %s", mustJSON(t, j.Result))
		}
	})
}

// A for_each of MaxForEachItems items completes within the job's bounds; one more
// item fails the step with invalid_for_each.
func TestGraphForEachMaximum(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, b *bundle) {
		ten := b.newTenant(t, "each@example.com")
		items := make([]int, workflow.MaxForEachItems)
		for i := range items {
			items[i] = i
		}
		job := func(items []int) map[string]any {
			return map[string]any{"workflow": "each", "payload": map[string]any{"items": items},
				"guardrails": map[string]any{"concurrency": 8},
				"steps":      []any{graphStep("each", "echo", map[string]any{"n": "{{item}}"}, map[string]any{"for_each": "payload.items"})}}
		}
		j := b.waitStatus(t, ten.key, b.submit(t, ten.key, job(items)).JobId, "succeeded", 60*time.Second)
		var out []map[string]int
		if err := json.Unmarshal(*j.Steps[0].Output, &out); err != nil || len(out) != workflow.MaxForEachItems || out[999]["n"] != 999 {
			t.Fatalf("output of %d items (%v)", len(out), err)
		}
		j = b.waitStatus(t, ten.key, b.submit(t, ten.key, job(append(items, 1000))).JobId, "failed", 20*time.Second)
		if e := j.Steps[0].Error; e == nil || e.Code != "invalid_for_each" || j.Attempts != 1 {
			t.Fatalf("for_each of %d items: step error %s, attempts %d", workflow.MaxForEachItems+1, mustJSON(t, e), j.Attempts)
		}
	})
}

// continue_on_error lets the job go on past a failed step; a failure that ends the
// job runs the on_failure step once, and a job that succeeds never runs it.
func TestGraphOnFailureContinueOnError(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, b *bundle) {
		ten := b.newTenant(t, "fail@example.com")
		// core.sleep refuses more than 60000 ms: a reference makes the input bad only when the step runs.
		bad := map[string]any{"ms": "{{payload.ms}}"}
		body := func(ms int) map[string]any {
			return map[string]any{"workflow": "fails", "payload": map[string]any{"ms": ms, "tag": "t1"}, "max_attempts": 3,
				"steps": []any{
					graphStep("soft", "sleep", bad, map[string]any{"continue_on_error": true}),
					graphStep("next", "echo", map[string]any{"ok": true}, map[string]any{"if": `steps.soft.status == "failed"`}),
					graphStep("hard", "sleep", bad, nil),
				},
				"on_failure": graphStep("alert", "echo", map[string]any{"tag": "{{payload.tag}}"}, nil)}
		}
		j := b.waitStatus(t, ten.key, b.submit(t, ten.key, body(70000)).JobId, "failed", 20*time.Second)
		for id, status := range map[string]string{"soft": "failed", "next": "succeeded", "hard": "failed", "alert": "succeeded"} {
			if got := stepByID(t, j, id); string(got.Status) != status {
				t.Errorf("step %s is %s, want %s", id, got.Status, status)
			}
		}
		alert := stepByID(t, j, "alert")
		if alert.Attempts != 1 || alert.OnFailure == nil || !*alert.OnFailure || !sameJSON(t, *alert.Output, map[string]any{"tag": "t1"}) {
			t.Errorf("on_failure step %s, want run once", mustJSON(t, alert))
		}
		if j.Error == nil || !strings.Contains(j.Error.Message, `"hard"`) {
			t.Errorf("job error %s, want step hard's", mustJSON(t, j.Error))
		}
		j = b.waitStatus(t, ten.key, b.submit(t, ten.key, body(1)).JobId, "succeeded", 20*time.Second)
		if alert := stepByID(t, j, "alert"); alert.Status != "pending" || alert.Attempts != 0 {
			t.Errorf("on_failure of a job that succeeded: %s", mustJSON(t, alert))
		}
		if next := stepByID(t, j, "next"); next.Status != "skipped" {
			t.Errorf("next is %s, want skipped (soft succeeded)", next.Status)
		}
	})
}

// A step's retry policy tries it again within the attempt, attempts times in all.
func TestGraphStepRetry(t *testing.T) {
	t.Parallel()
	hits := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- struct{}{}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	fake := srv.URL
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "retry@example.com")
	acc := b.submit(t, ten.key, map[string]any{"workflow": "retry", "payload": map[string]any{}, "max_attempts": 1,
		"steps": []any{map[string]any{"id": "call", "connector": "http", "action": "request",
			"input": map[string]any{"method": "GET", "url": fake}, "retry": map[string]any{"attempts": 3, "backoff_s": 0.05}}}})
	j := b.waitStatus(t, ten.key, acc.JobId, "failed", 20*time.Second)
	if len(hits) != 3 || j.Steps[0].Attempts != 3 {
		t.Fatalf("%d calls, step attempts %d; want 3", len(hits), j.Steps[0].Attempts)
	}
}

// Cycles, unknown ids, references to non-ancestors and bad expressions are 422 with
// pointers, at save and at intake.
func TestGraphValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "valid@example.com")
	e := func(id string, extra map[string]any) map[string]any {
		return graphStep(id, "echo", map[string]any{"x": 1}, extra)
	}
	cases := []struct {
		name    string
		steps   []any
		pointer string
	}{
		{"cycle", []any{e("a", map[string]any{"needs": []string{"b"}}), e("b", nil)}, "/steps/0/needs"},
		{"unknown id", []any{e("a", nil), e("b", map[string]any{"needs": []string{"nope"}})}, "/steps/1/needs/0"},
		{"non-ancestor reference", []any{e("a", nil), e("b", map[string]any{"needs": []string{}}),
			graphStep("c", "echo", map[string]any{"v": "{{steps.b.output}}"}, map[string]any{"needs": []string{"a"}})}, "/steps/2/input"},
		{"if does not compile", []any{e("a", map[string]any{"if": "payload.x >"})}, "/steps/0/if"},
		{"if reads a non-ancestor", []any{e("a", nil), e("b", map[string]any{"needs": []string{}, "if": "steps.a.output.x == 1"})}, "/steps/1/if"},
		{"for_each not a list", []any{e("a", map[string]any{"for_each": "1 + 1"})}, "/steps/0/for_each"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := func(resp *http.Response, data []byte) {
				t.Helper()
				if resp.StatusCode != http.StatusUnprocessableEntity {
					t.Fatalf("%d %s, want 422", resp.StatusCode, data)
				}
				p := problemOf(t, resp, data)
				var pointers []string
				if p.Errors != nil {
					for _, e := range *p.Errors {
						pointers = append(pointers, e.Pointer)
					}
				}
				if !slices.Contains(pointers, tc.pointer) {
					t.Errorf("pointers %q, want %q; body %s", pointers, tc.pointer, data)
				}
			}
			check(b.do(t, "PUT", "/api/v1/workflows/bad", hdr(ten.key, "application/json"), jsonBody(t, map[string]any{"steps": tc.steps})))
			check(b.intake(t, ten.key, map[string]any{"workflow": "bad", "payload": map[string]any{}, "steps": tc.steps}, ""))
		})
	}
}

// GET a workflow returns its graph (needs made explicit); ?format=mermaid draws it.
func TestGraphWorkflowMermaid(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "draw@example.com")
	steps := []any{
		step("fetch", "core", "echo", map[string]any{"x": 1}),
		graphStep("left", "echo", map[string]any{"x": 2}, map[string]any{"if": "payload.go"}),
		graphStep("right", "echo", map[string]any{"x": 3}, map[string]any{"needs": []string{"fetch"}}),
	}
	resp, data := b.do(t, "PUT", "/api/v1/workflows/draw", hdr(ten.key, "application/json"), jsonBody(t, map[string]any{
		"steps": steps, "on_failure": step("alert", "core", "echo", map[string]any{"x": 4})}))
	wf := decode[client.Workflow](t, resp, data, http.StatusOK)
	if len(wf.Steps) != 3 || wf.OnFailure == nil || wf.OnFailure.Id != "alert" || wf.Steps[1].Needs == nil || fmt.Sprint(*wf.Steps[1].Needs) != "[fetch]" ||
		wf.Steps[0].Needs == nil || len(*wf.Steps[0].Needs) != 0 {
		t.Fatalf("PUT workflow: %s", data)
	}
	resp, data = b.do(t, "GET", "/api/v1/workflows/draw?format=mermaid", hdr(ten.key, ""), nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("mermaid: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	for _, want := range []string{"flowchart TD", "s0 --> s1", "s0 --> s2", "if payload.go", "class s3 onFailure"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("mermaid lacks %q:\n%s", want, data)
		}
	}
}

// The event stream tells of skipped steps, and its event ids (which resume a
// stream) encode the skipped status.
func TestGraphEventsSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "events@example.com")
	acc := b.submit(t, ten.key, map[string]any{"workflow": "skip", "payload": map[string]any{},
		"steps": []any{step("a", "core", "echo", map[string]any{"x": 1}), graphStep("b", "echo", map[string]any{"x": 2}, map[string]any{"if": "false"})}})
	b.waitStatus(t, ten.key, acc.JobId, "succeeded", 10*time.Second)
	req, err := http.NewRequestWithContext(t.Context(), "GET", b.URL+"/api/v1/jobs/"+acc.JobId+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", ten.key)
	resp, err := http.DefaultClient.Do(req) // a finished job's stream ends after its last event
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d %s %v", resp.StatusCode, data, err)
	}
	var ids []string
	for _, ev := range strings.Split(string(data), "\n\n") {
		if strings.Contains(ev, "event: step") && strings.Contains(ev, `"status":"skipped"`) {
			ids = append(ids, strings.SplitN(strings.TrimPrefix(ev, "id: "), "\n", 2)[0])
		}
	}
	if len(ids) != 1 || !strings.HasSuffix(ids[0], ".s0") {
		t.Fatalf("skipped step events with ids %q, want one ending .s0; stream:\n%s", ids, data)
	}
}
