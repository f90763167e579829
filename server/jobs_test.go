package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/jobs"
)

// tenant is an owner with an API key that may read and write jobs.
type tenant struct{ owner, key string }

// newTenant creates a user and a jobs:read+jobs:write key for it (the bundle must
// be set up withAdmin).
func (b *bundle) newTenant(t *testing.T, email string) tenant {
	t.Helper()
	u := b.createUser(t, email)
	k := b.createKey(t, u.Id, "jobs:read", "jobs:write")
	return tenant{owner: u.Id, key: k.Key}
}

// withEngine builds the job engine itself, with an outbound guard exempting
// exactly allow, wires its attempt counter into /api/v1/admin/status and hands it to the test.
func withEngine(t *testing.T, allow []string, got **jobs.Engine) func(*testOptions) {
	return func(o *testOptions) {
		e := newEngineAllowing(t, o.Store, o.Logger, allow)
		o.Jobs, o.Hub, o.Finished = e.Service, e.Hub, e.Finished
		if got != nil {
			*got = e
		}
	}
}

// apiKey sends key in X-Api-Key on a generated-client request.
func apiKey(key string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-Api-Key", key)
		return nil
	}
}

// step is one step of a job or workflow body.
func step(id, connector, action string, input any) map[string]any {
	s := map[string]any{"id": id, "connector": connector, "action": action}
	if input != nil {
		s["input"] = input
	}
	return s
}

// echoJob is the smallest job that runs: one core.echo step.
func echoJob(workflow string) map[string]any {
	return map[string]any{"workflow": workflow, "payload": map[string]any{},
		"steps": []any{step("e", "core", "echo", map[string]any{"ok": true})}}
}

// bodyBytes is body as request bytes: strings and []byte as they are, anything else as JSON.
func bodyBytes(t testing.TB, body any) []byte {
	t.Helper()
	switch v := body.(type) {
	case string:
		return []byte(v)
	case []byte:
		return v
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// intake posts body to /api/v1/intake with key, and an Idempotency-Key when idem is set.
func (b *bundle) intake(t *testing.T, key string, body any, idem string) (*http.Response, []byte) {
	t.Helper()
	h := hdr(key, "application/json")
	if idem != "" {
		h.Set("Idempotency-Key", idem)
	}
	return b.do(t, "POST", "/api/v1/intake", h, bytes.NewReader(bodyBytes(t, body)))
}

// tryIntake is intake for goroutines other than the test's: it reports instead of failing.
func (b *bundle) tryIntake(ctx context.Context, key string, body []byte, idem string) (int, client.JobAccepted, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", b.URL+"/api/v1/intake", bytes.NewReader(body))
	if err != nil {
		return 0, client.JobAccepted{}, err
	}
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Content-Type", "application/json")
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		return 0, client.JobAccepted{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, client.JobAccepted{}, err
	}
	var acc client.JobAccepted
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(data, &acc); err != nil {
			return resp.StatusCode, acc, err
		}
	}
	return resp.StatusCode, acc, nil
}

// submit posts a job and requires 202 with a Location naming it.
func (b *bundle) submit(t *testing.T, key string, body any) client.JobAccepted {
	t.Helper()
	resp, data := b.intake(t, key, body, "")
	acc := decode[client.JobAccepted](t, resp, data, http.StatusAccepted)
	if loc := resp.Header.Get("Location"); loc != "/api/v1/jobs/"+acc.JobId {
		t.Fatalf("Location %q, want /api/v1/jobs/%s", loc, acc.JobId)
	}
	return acc
}

// jobIDs lists the ids of the jobs key may see (up to 200, newest first).
func (b *bundle) jobIDs(t *testing.T, key string) []string {
	t.Helper()
	limit := 200
	resp, err := b.Client.ListJobsWithResponse(t.Context(), &client.ListJobsParams{Limit: &limit}, apiKey(key))
	if err != nil || resp.JSON200 == nil {
		t.Fatalf("list jobs: %v %+v", err, resp)
	}
	var ids []string
	for _, j := range resp.JSON200.Data {
		ids = append(ids, j.Id)
	}
	return ids
}

// getJob reads a job through the generated client and requires 200.
func (b *bundle) getJob(t *testing.T, key, id string) client.Job {
	t.Helper()
	resp, err := b.Client.GetJobWithResponse(t.Context(), id, apiKey(key))
	if err != nil {
		t.Fatalf("GET job %s: %v", id, err)
	}
	if resp.JSON200 == nil {
		t.Fatalf("GET job %s: %d %s", id, resp.StatusCode(), resp.Body)
	}
	return *resp.JSON200
}

// waitJob polls a job until done reports true, failing the test with the last
// state seen when within passes first.
func (b *bundle) waitJob(t *testing.T, key, id string, within time.Duration, what string, done func(client.Job) bool) client.Job {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		j := b.getJob(t, key, id)
		if done(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: not %s within %s; last seen %s", id, what, within, mustJSON(t, j))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStatus waits until a job has status.
func (b *bundle) waitStatus(t *testing.T, key, id, status string, within time.Duration) client.Job {
	t.Helper()
	return b.waitJob(t, key, id, within, status, func(j client.Job) bool { return string(j.Status) == status })
}

// jsonValue decodes JSON (bytes, a RawMessage or anything marshalable) into plain
// Go values, so that documents compare by meaning rather than by spelling.
func jsonValue(t testing.TB, v any) any {
	t.Helper()
	var raw []byte
	switch x := v.(type) {
	case []byte:
		raw = x
	case json.RawMessage:
		raw = x
	case *json.RawMessage:
		if x == nil {
			return nil
		}
		raw = *x
	default:
		raw = bodyBytes(t, v)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("not JSON: %v: %s", err, raw)
	}
	return out
}

func sameJSON(t testing.TB, got, want any) bool {
	t.Helper()
	return reflect.DeepEqual(jsonValue(t, got), jsonValue(t, want))
}

func TestIntakeRunsJob(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "runner@example.com")

	payload := map[string]any{"a": map[string]any{"b": 42, "obj": map[string]any{"x": []any{1, 2}}}, "name": "Ada", "ms": 10}
	body := map[string]any{
		"workflow": "refs",
		"payload":  payload,
		"steps": []any{
			// Whole-value references keep the type; references inside text are interpolated.
			step("s1", "core", "echo", map[string]any{"n": "{{payload.a.b}}", "o": "{{payload.a.obj}}", "text": "hi {{payload.name}}, n={{ payload.a.b }}"}),
			// A number from the payload satisfies the sleep schema's "integer".
			step("s2", "core", "sleep", map[string]any{"ms": "{{payload.ms}}"}),
			step("s3", "core", "echo", map[string]any{"from": "{{steps.s1.output.n}}", "deep": "{{steps.s1.output.o.x.1}}", "slept": "{{steps.s2.output.slept_ms}}", "said": "{{steps.s1.output.text}}!"}),
		},
	}
	before := time.Now()
	resp, data := b.intake(t, ten.key, body, "")
	acc := decode[client.JobAccepted](t, resp, data, http.StatusAccepted)
	if loc := resp.Header.Get("Location"); loc != "/api/v1/jobs/"+acc.JobId {
		t.Errorf("Location %q, want /api/v1/jobs/%s", loc, acc.JobId)
	}
	if !strings.HasPrefix(acc.JobId, "job_") || !dueNow(string(acc.Status)) || acc.Workflow != "refs" {
		t.Errorf("accepted %s, want a job_ id, status queued or running, workflow refs", data)
	}
	if acc.CreatedAt.Before(before.Add(-time.Second)) || acc.CreatedAt.After(time.Now().Add(time.Second)) || acc.RunAt.Before(acc.CreatedAt) {
		t.Errorf("created_at %v run_at %v, want about now (request at %v)", acc.CreatedAt, acc.RunAt, before)
	}

	j := b.waitStatus(t, ten.key, acc.JobId, "succeeded", 10*time.Second)
	wantOut := map[string]any{
		"s1": map[string]any{"n": 42, "o": map[string]any{"x": []any{1, 2}}, "text": "hi Ada, n=42"},
		"s2": map[string]any{"slept_ms": 10},
		"s3": map[string]any{"from": 42, "deep": 2, "slept": 10, "said": "hi Ada, n=42!"},
	}
	if len(j.Steps) != 3 {
		t.Fatalf("steps %s, want 3", mustJSON(t, j.Steps))
	}
	for i, st := range j.Steps {
		if st.Id != fmt.Sprintf("s%d", i+1) || st.Status != "succeeded" || st.Attempts != 1 {
			t.Errorf("step %d: id %q status %q attempts %d, want s%d succeeded once", i, st.Id, st.Status, st.Attempts, i+1)
		}
		if st.Output == nil || !sameJSON(t, st.Output, wantOut[st.Id]) {
			t.Errorf("step %s output %s, want %s", st.Id, mustJSON(t, st.Output), mustJSON(t, wantOut[st.Id]))
		}
		if st.StartedAt == nil || st.FinishedAt == nil || st.FinishedAt.Before(*st.StartedAt) {
			t.Errorf("step %s started_at %v finished_at %v, want both, in order", st.Id, st.StartedAt, st.FinishedAt)
		}
		if i > 0 && j.Steps[i-1].FinishedAt != nil && st.StartedAt != nil && st.StartedAt.Before(*j.Steps[i-1].FinishedAt) {
			t.Errorf("step %s started before step %s finished", st.Id, j.Steps[i-1].Id)
		}
	}
	if s2 := j.Steps[1]; s2.StartedAt != nil && s2.FinishedAt != nil && s2.FinishedAt.Sub(*s2.StartedAt) < 10*time.Millisecond {
		t.Errorf("core.sleep 10 ms took %v", s2.FinishedAt.Sub(*s2.StartedAt))
	}
	if j.Result == nil || !sameJSON(t, j.Result, wantOut["s3"]) {
		t.Errorf("result %s, want the last step's output %s", mustJSON(t, j.Result), mustJSON(t, wantOut["s3"]))
	}
	if j.Attempts != 1 || j.Error != nil || j.StartedAt == nil || j.FinishedAt == nil || j.OwnerId != ten.owner {
		t.Errorf("job attempts %d error %v started %v finished %v owner %q", j.Attempts, j.Error, j.StartedAt, j.FinishedAt, j.OwnerId)
	}
	if !sameJSON(t, j.Payload, payload) || string(j.Priority) != "normal" || j.MaxAttempts != jobs.DefaultMaxAttempts || j.TimeoutS != jobs.DefaultTimeoutS {
		t.Errorf("payload %s priority %s max_attempts %d timeout_s %d", j.Payload, j.Priority, j.MaxAttempts, j.TimeoutS)
	}
}

func TestIntakeUnresolvableReference(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "refs@example.com")
	cases := []struct {
		name  string
		input map[string]any
		ref   string
	}{
		{"missing payload key", map[string]any{"v": "{{payload.user.email}}"}, "payload.user.email"},
		{"index past the end", map[string]any{"v": "{{payload.list.5}}"}, "payload.list.5"},
		{"missing output key inside text", map[string]any{"v": "id={{steps.first.output.nope}}"}, "steps.first.output.nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acc := b.submit(t, ten.key, map[string]any{
				"workflow": "broken-ref",
				"payload":  map[string]any{"list": []any{1, 2}},
				"steps": []any{
					step("first", "core", "echo", map[string]any{"ok": true}),
					step("second", "core", "echo", tc.input),
				},
			})
			j := b.waitStatus(t, ten.key, acc.JobId, "failed", 10*time.Second)
			st := j.Steps[1]
			if st.Status != "failed" || st.Error == nil || st.Error.Code != "invalid_reference" || !strings.Contains(st.Error.Message, "{{"+tc.ref+"}}") {
				t.Fatalf("step second %s, want failed with invalid_reference naming {{%s}}", mustJSON(t, st), tc.ref)
			}
			if j.Error == nil || j.Error.Code != "invalid_reference" || !strings.Contains(j.Error.Message, tc.ref) || !strings.Contains(j.Error.Message, `"second"`) {
				t.Errorf("job error %s, want invalid_reference naming step second and %s", mustJSON(t, j.Error), tc.ref)
			}
			// A bad reference cannot heal: the job is not retried.
			if j.Attempts != 1 || st.Attempts != 1 || j.Steps[0].Status != "succeeded" || j.Result != nil {
				t.Errorf("attempts %d, step attempts %d, first step %q, result %v", j.Attempts, st.Attempts, j.Steps[0].Status, j.Result)
			}
		})
	}
}

func TestIntakeWorkflowByName(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "wf@example.com")
	other := b.newTenant(t, "wf-other@example.com")

	steps := []any{
		step("greet", "core", "echo", map[string]any{"hello": "{{payload.who}}"}),
		step("shout", "core", "echo", map[string]any{"msg": "HELLO {{steps.greet.output.hello}}"}),
	}
	resp, data := b.do(t, "PUT", "/api/v1/workflows/greet.v1", hdr(ten.key, "application/json"), jsonBody(t, map[string]any{"description": "says hello", "steps": steps}))
	wf := decode[client.Workflow](t, resp, data, http.StatusOK)
	if wf.Name != "greet.v1" || len(wf.Steps) != 2 || deref(wf.Description) != "says hello" {
		t.Fatalf("PUT workflow: %s", data)
	}
	got, err := b.Client.GetWorkflowWithResponse(t.Context(), "greet.v1", nil, apiKey(ten.key))
	if err != nil || got.JSON200 == nil || len(got.JSON200.Steps) != 2 || got.JSON200.Steps[1].Id != "shout" {
		t.Fatalf("GET workflow: %v %+v", err, got)
	}

	acc := b.submit(t, ten.key, map[string]any{"workflow": "greet.v1", "payload": map[string]any{"who": "Grace"}})
	if acc.Workflow != "greet.v1" || !dueNow(string(acc.Status)) {
		t.Errorf("accepted %+v", acc)
	}
	j := b.waitStatus(t, ten.key, acc.JobId, "succeeded", 10*time.Second)
	if len(j.Steps) != 2 || j.Steps[0].Id != "greet" || j.Steps[1].Id != "shout" || j.Workflow != "greet.v1" {
		t.Fatalf("job steps %s, want the workflow's", mustJSON(t, j.Steps))
	}
	if !sameJSON(t, j.Result, map[string]any{"msg": "HELLO Grace"}) {
		t.Errorf("result %s", mustJSON(t, j.Result))
	}

	// Workflows belong to their owner: another owner, or a name never saved, is 404.
	for _, tc := range []struct{ name, key, workflow string }{
		{"unknown name", ten.key, "nope"},
		{"another owner's workflow", other.key, "greet.v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := b.intake(t, tc.key, map[string]any{"workflow": tc.workflow, "payload": map[string]any{}}, "")
			p := problemOf(t, resp, data)
			if resp.StatusCode != http.StatusNotFound || p.Code != "not_found" || !strings.Contains(deref(p.Detail), tc.workflow) {
				t.Errorf("intake of %q: %d %s, want 404 not_found naming it", tc.workflow, resp.StatusCode, data)
			}
		})
	}
}

func TestIntakeRunAtSchedules(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "later@example.com")

	runAt := time.Now().Add(1500 * time.Millisecond).UTC().Truncate(time.Millisecond)
	body := echoJob("later")
	body["run_at"] = runAt.Format(time.RFC3339Nano)
	acc := b.submit(t, ten.key, body)
	if acc.Status != "scheduled" || !acc.RunAt.Equal(runAt) {
		t.Fatalf("accepted status %q run_at %v, want scheduled at %v", acc.Status, acc.RunAt, runAt)
	}
	if j := b.getJob(t, ten.key, acc.JobId); j.Status != "scheduled" || j.Attempts != 0 || j.StartedAt != nil {
		t.Fatalf("before run_at: status %q attempts %d started_at %v, want scheduled and untouched", j.Status, j.Attempts, j.StartedAt)
	}
	j := b.waitStatus(t, ten.key, acc.JobId, "succeeded", 10*time.Second)
	if j.StartedAt == nil || j.StartedAt.Before(runAt) {
		t.Errorf("started_at %v, want at or after run_at %v", j.StartedAt, runAt)
	}

	// A run_at in the past is simply due now.
	past := echoJob("past")
	past["run_at"] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if acc := b.submit(t, ten.key, past); !dueNow(string(acc.Status)) {
		t.Errorf("run_at in the past: status %q, want queued or running", acc.Status)
	}
}

// TestJobPriorityHighFirst fills every worker slot with long sleeps, queues a low
// then a high priority job, and frees exactly one slot by canceling one sleeper:
// the worker must claim the high priority job into it, although the low one waited
// longer. The order does not depend on timing.
func TestJobPriorityHighFirst(t *testing.T) {
	t.Parallel()
	var engine *jobs.Engine
	b := setup(t, withAdmin, withEngine(t, []string{"127.0.0.0/8"}, &engine))
	ten := b.newTenant(t, "prio@example.com")

	const slots = 8 // newEngine's Concurrency
	sleeper := map[string]any{"workflow": "sleeper", "payload": map[string]any{},
		"steps": []any{step("z", "core", "sleep", map[string]any{"ms": 30000})}}
	var blockers []string
	for range slots {
		blockers = append(blockers, b.submit(t, ten.key, sleeper).JobId)
	}
	// Canceled through the hub at the end (t.Context is gone by then), so the
	// engine does not wait out the sleeps when it stops.
	t.Cleanup(func() {
		for _, id := range blockers {
			engine.Hub.Cancel(id)
		}
	})
	for _, id := range blockers {
		b.waitStatus(t, ten.key, id, "running", 10*time.Second)
	}

	low := echoJob("low")
	low["priority"] = "low"
	high := echoJob("high")
	high["priority"] = "high"
	lowID := b.submit(t, ten.key, low).JobId
	highID := b.submit(t, ten.key, high).JobId
	for _, id := range []string{lowID, highID} {
		if j := b.getJob(t, ten.key, id); j.Status != "queued" {
			t.Fatalf("job %s is %s while every slot is busy; the test assumes %d slots", id, j.Status, slots)
		}
	}

	resp, err := b.Client.CancelJobWithResponse(t.Context(), blockers[0], apiKey(ten.key))
	if err != nil || resp.JSON200 == nil {
		t.Fatalf("cancel a sleeper: %v %+v", err, resp)
	}
	h := b.waitStatus(t, ten.key, highID, "succeeded", 10*time.Second)
	l := b.waitStatus(t, ten.key, lowID, "succeeded", 10*time.Second)
	if string(h.Priority) != "high" || string(l.Priority) != "low" {
		t.Errorf("priorities %q and %q", h.Priority, l.Priority)
	}
	// The one free slot went to the high priority job; the low one got the slot
	// only once the high one had finished with it.
	if h.FinishedAt == nil || l.StartedAt == nil || l.StartedAt.Before(*h.FinishedAt) {
		t.Errorf("high ran %v–%v, low started %v: want low to start after high finished", h.StartedAt, h.FinishedAt, l.StartedAt)
	}
}

func TestIntakeBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, func(o *testOptions) { o.MaxBodyBytes = 1 << 20 })
	ten := b.newTenant(t, "bad@example.com")

	valid := func(change func(m map[string]any)) map[string]any {
		m := map[string]any{"workflow": "w", "payload": map[string]any{"a": 1},
			"steps": []any{step("one", "core", "echo", map[string]any{"x": 1})}}
		change(m)
		return m
	}
	withSteps := func(steps ...any) map[string]any {
		return valid(func(m map[string]any) { m["steps"] = append([]any{}, steps...) }) // [] when none, never null
	}
	set := func(k string, v any) map[string]any { return valid(func(m map[string]any) { m[k] = v }) }
	many := make([]any, jobs.MaxSteps+1)
	for i := range many {
		many[i] = step(fmt.Sprintf("s%d", i), "core", "echo", nil)
	}

	cases := []struct {
		name    string
		body    any
		idem    string
		status  int
		code    string
		pointer string // an errors[] pointer the problem must carry ("" when none is required)
		detail  string // text the problem's detail or errors must contain
	}{
		{"missing workflow", valid(func(m map[string]any) { delete(m, "workflow") }), "", 400, "invalid", "/workflow", "missing"},
		{"missing payload", valid(func(m map[string]any) { delete(m, "payload") }), "", 400, "invalid", "/payload", "missing"},
		{"workflow pattern", set("workflow", "has space"), "", 400, "invalid", "/workflow", "May contain only letters, digits and the characters . _ -"},
		{"workflow empty", set("workflow", ""), "", 400, "invalid", "/workflow", "Must be at least 1 character long."},
		{"workflow too long", set("workflow", strings.Repeat("w", 129)), "", 400, "invalid", "/workflow", "Must be at most 128 characters long."},
		{"payload array", set("payload", []any{1}), "", 400, "invalid", "/payload", "object"},
		{"payload string", set("payload", "x"), "", 400, "invalid", "/payload", "object"},
		{"payload null", set("payload", nil), "", 400, "invalid", "/payload", ""},
		{"payload over 200 KiB", set("payload", map[string]any{"big": strings.Repeat("a", jobs.MaxPayloadBytes)}), "", 400, "invalid", "/payload", "larger than"},
		{"steps empty", withSteps(), "", 400, "invalid", "/steps", "Must have at least 1 item."},
		{"steps null", set("steps", nil), "", 400, "invalid", "/steps", "Must not be null."},
		{"51 steps", withSteps(many...), "", 400, "invalid", "/steps", "Must have at most 50 items."},
		{"duplicate step ids", withSteps(step("a", "core", "echo", nil), step("a", "core", "echo", nil)), "", 400, "invalid", "/steps/1/id", `"a" is used twice`},
		{"unknown connector", withSteps(step("a", "nope", "echo", nil)), "", 400, "invalid", "/steps/0", `unknown connector "nope"`},
		{"unknown action", withSteps(step("a", "core", "fly", nil)), "", 400, "invalid", "/steps/0", `no action "fly"`},
		{"unknown connector, input with a reference", withSteps(step("a", "nope", "echo", map[string]any{"v": "{{payload.n}}"})), "", 400, "invalid", "/steps/0", `unknown connector "nope"`},
		{"unknown action, input with a reference", withSteps(step("a", "core", "fly", map[string]any{"v": "{{payload.n}}"})), "", 400, "invalid", "/steps/0", `connector "core" has no action "fly"`},
		{"literal input breaks the schema", withSteps(step("a", "core", "sleep", map[string]any{"ms": 70000})), "", 400, "invalid", "/steps/0", "/ms: maximum"},
		{"literal input of a later step", withSteps(step("a", "core", "echo", nil), step("b", "core", "sleep", map[string]any{"ms": "soon"})), "", 400, "invalid", "/steps/1", "/ms"},
		{"reference to a later step", withSteps(step("a", "core", "echo", map[string]any{"v": "{{steps.b.output.x}}"}), step("b", "core", "echo", nil)), "", 422, "unprocessable", "/steps/0/input", `step "b"`},
		{"reference to itself", withSteps(step("a", "core", "echo", map[string]any{"v": "{{steps.a.output}}"})), "", 422, "unprocessable", "/steps/0/input", `its own output`},
		{"malformed reference", withSteps(step("a", "core", "echo", map[string]any{"v": "{{steps.a}}"})), "", 400, "invalid", "/steps/0/input", "steps.<id>.output"},
		{"unknown field in a step", withSteps(map[string]any{"id": "a", "connector": "core", "action": "echo", "retries": 3}), "", 400, "invalid", "/steps/0/retries", "unsupported"},
		{"bad step id", withSteps(step("a b", "core", "echo", nil)), "", 400, "invalid", "/steps/0/id", "May contain only letters, digits and the characters _ -"},
		{"priority urgent", set("priority", "urgent"), "", 400, "invalid", "/priority", "Must be one of: low, normal, high."},
		{"max_attempts 0", set("max_attempts", 0), "", 400, "invalid", "/max_attempts", "at least 1"},
		{"max_attempts 26", set("max_attempts", 26), "", 400, "invalid", "/max_attempts", "at most 25"},
		{"timeout_s 0", set("timeout_s", 0), "", 400, "invalid", "/timeout_s", "at least 1"},
		{"timeout_s 3601", set("timeout_s", 3601), "", 400, "invalid", "/timeout_s", "at most 3600"},
		{"run_at not a time", set("run_at", "tomorrow"), "", 400, "invalid", "/run_at", "date-time"},
		{"callback_url ftp (short)", set("callback_url", "ftp://x"), "", 400, "invalid", "/callback_url", "Must be at least 8 characters long."},
		{"callback_url ftp", set("callback_url", "ftp://hooks.example/x"), "", 400, "invalid", "/callback_url", `scheme "ftp"`},
		{"callback_url plain http to a public host", set("callback_url", "http://public.example"), "", 400, "invalid", "/callback_url", "plain http"},
		{"callback_url with credentials", set("callback_url", "https://u:p@hooks.example/x"), "", 400, "invalid", "/callback_url", "credentials"},
		{"callback_url private IP", set("callback_url", "https://10.1.2.3/x"), "", 400, "invalid", "/callback_url", "private"},
		{"callback_url metadata IP", set("callback_url", "https://169.254.169.254/x"), "", 400, "invalid", "/callback_url", "metadata"},
		{"unknown top-level field", set("color", "red"), "", 400, "invalid", "/color", "unsupported"},
		{"guardrails unknown field", set("guardrails", map[string]any{"max_tokens": 5}), "", 400, "invalid", "/guardrails/max_tokens", "unsupported"},
		{"not JSON", `{"workflow":`, "", 400, "invalid", "", "not well-formed JSON"},
		{"Idempotency-Key too long", valid(func(map[string]any) {}), strings.Repeat("k", 256), 400, "invalid", "header.Idempotency-Key", "Must be at most 255 characters long."},
		{"Idempotency-Key with a space", valid(func(map[string]any) {}), "two words", 400, "invalid", "header.Idempotency-Key", "May contain only visible ASCII characters (no spaces)."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := b.intake(t, ten.key, tc.body, tc.idem)
			if resp.StatusCode >= 500 {
				t.Fatalf("%d %s: a bad request must never be a server error", resp.StatusCode, data)
			}
			p := problemOf(t, resp, data)
			if resp.StatusCode != tc.status || string(p.Code) != tc.code {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, data, tc.status, tc.code)
			}
			var pointers []string
			text := deref(p.Detail)
			if p.Errors != nil {
				for _, e := range *p.Errors {
					pointers = append(pointers, e.Pointer)
					text += "\n" + e.Detail
				}
			}
			if tc.pointer != "" && !slices.Contains(pointers, tc.pointer) {
				t.Errorf("pointers %q, want %q; body %s", pointers, tc.pointer, data)
			}
			if tc.detail != "" && !strings.Contains(text, tc.detail) {
				t.Errorf("problem %s does not mention %q", data, tc.detail)
			}
		})
	}
	// Nothing above was stored.
	if ids := b.jobIDs(t, ten.key); len(ids) != 0 {
		t.Errorf("jobs stored by bad intakes: %q", ids)
	}
	// The valid body itself is accepted: the failures above are the changes'.
	if acc := b.submit(t, ten.key, valid(func(map[string]any) {})); !dueNow(string(acc.Status)) {
		t.Errorf("valid body: %+v", acc)
	}
}

func TestIntakeIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "idem@example.com")
	second := b.createKey(t, ten.owner, "jobs:read", "jobs:write").Key

	body := bodyBytes(t, echoJob("idem"))
	const n = 20
	type result struct {
		status int
		acc    client.JobAccepted
		err    error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, acc, err := b.tryIntake(t.Context(), ten.key, body, "order-7731")
			results[i] = result{status, acc, err}
		}()
	}
	close(start)
	wg.Wait()
	id := ""
	for i, r := range results {
		if r.err != nil || r.status != http.StatusAccepted {
			t.Fatalf("request %d: %d %v, want 202", i, r.status, r.err)
		}
		if id == "" {
			id = r.acc.JobId
		}
		if r.acc.JobId != id {
			t.Errorf("request %d: job %s, request 0 got %s", i, r.acc.JobId, id)
		}
	}
	if ids := b.jobIDs(t, ten.key); !slices.Equal(ids, []string{id}) {
		t.Fatalf("after %d identical intakes the owner has jobs %q, want exactly %s", n, ids, id)
	}

	// The job runs once; a repeat after it finished still answers with it.
	b.waitStatus(t, ten.key, id, "succeeded", 10*time.Second)
	resp, data := b.intake(t, ten.key, body, "order-7731")
	if again := decode[client.JobAccepted](t, resp, data, http.StatusAccepted); again.JobId != id || again.Status != "succeeded" {
		t.Errorf("repeat after the run: %s, want job %s as it is now", data, id)
	}

	// The same key with another body is refused, and stores nothing.
	resp, data = b.intake(t, ten.key, echoJob("idem-other"), "order-7731")
	if p := problemOf(t, resp, data); resp.StatusCode != http.StatusUnprocessableEntity || p.Code != "unprocessable" {
		t.Errorf("same key, other body: %d %s, want 422 unprocessable", resp.StatusCode, data)
	}

	// Keys are scoped to the API key: another key of the same owner gets its own job.
	resp, data = b.intake(t, second, body, "order-7731")
	other := decode[client.JobAccepted](t, resp, data, http.StatusAccepted)
	if other.JobId == id {
		t.Errorf("another API key with the same Idempotency-Key got job %s too", id)
	}
	// And without a key every submission is a job of its own.
	a, c := b.submit(t, ten.key, echoJob("idem")), b.submit(t, ten.key, echoJob("idem"))
	if a.JobId == c.JobId {
		t.Errorf("two intakes without Idempotency-Key share job %s", a.JobId)
	}
	if ids := b.jobIDs(t, ten.key); len(ids) != 4 {
		t.Errorf("owner's jobs %q, want 4", ids)
	}
}

func TestCancelJob(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "cancel@example.com")
	other := b.newTenant(t, "cancel-other@example.com")

	cancel := func(t *testing.T, key, id string) *client.CancelJobResponse {
		t.Helper()
		resp, err := b.Client.CancelJobWithResponse(t.Context(), id, apiKey(key))
		if err != nil {
			t.Fatalf("cancel %s: %v", id, err)
		}
		return resp
	}

	t.Run("scheduled job is canceled at once", func(t *testing.T) {
		body := echoJob("later")
		body["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		acc := b.submit(t, ten.key, body)
		if acc.Status != "scheduled" {
			t.Fatalf("status %q, want scheduled", acc.Status)
		}
		resp := cancel(t, ten.key, acc.JobId)
		if resp.JSON200 == nil || resp.JSON200.Status != "canceled" || resp.JSON200.FinishedAt == nil || resp.JSON200.Error == nil || resp.JSON200.Error.Code != "canceled" {
			t.Fatalf("cancel answered %d %s, want the job canceled", resp.StatusCode(), resp.Body)
		}
		if j := b.getJob(t, ten.key, acc.JobId); j.Status != "canceled" || j.Attempts != 0 {
			t.Errorf("after cancel: status %q attempts %d", j.Status, j.Attempts)
		}
	})

	t.Run("running job stops within 2 s", func(t *testing.T) {
		acc := b.submit(t, ten.key, map[string]any{"workflow": "long", "payload": map[string]any{},
			"steps": []any{step("nap", "core", "sleep", map[string]any{"ms": 30000}), step("after", "core", "echo", nil)}})
		b.waitStatus(t, ten.key, acc.JobId, "running", 10*time.Second)
		asked := time.Now()
		resp := cancel(t, ten.key, acc.JobId)
		if resp.JSON200 == nil || (resp.JSON200.Status != "running" && resp.JSON200.Status != "canceled") {
			t.Fatalf("cancel answered %d %s", resp.StatusCode(), resp.Body)
		}
		j := b.waitStatus(t, ten.key, acc.JobId, "canceled", 2*time.Second)
		t.Logf("canceled %v after the request", time.Since(asked))
		if nap := j.Steps[0]; nap.Status != "canceled" || nap.Error == nil || nap.Error.Code != "canceled" || nap.FinishedAt == nil {
			t.Errorf("sleeping step %s, want canceled", mustJSON(t, nap))
		}
		if j.Steps[1].Status != "pending" || j.Steps[1].Attempts != 0 {
			t.Errorf("step after the canceled one %s, want never run", mustJSON(t, j.Steps[1]))
		}
		if j.Error == nil || j.Error.Code != "canceled" || j.FinishedAt == nil || j.Result != nil {
			t.Errorf("job error %s finished_at %v result %v", mustJSON(t, j.Error), j.FinishedAt, j.Result)
		}
		if st := j.Steps[0].StartedAt; st == nil || j.FinishedAt == nil || j.FinishedAt.Sub(*st) > 10*time.Second {
			t.Errorf("the sleep ran from %v to %v: it was not interrupted", st, j.FinishedAt)
		}
	})

	t.Run("finished job is a conflict", func(t *testing.T) {
		acc := b.submit(t, ten.key, echoJob("done"))
		b.waitStatus(t, ten.key, acc.JobId, "succeeded", 10*time.Second)
		resp := cancel(t, ten.key, acc.JobId)
		if resp.ApplicationproblemJSON409 == nil || resp.ApplicationproblemJSON409.Code != "conflict" || !strings.Contains(deref(resp.ApplicationproblemJSON409.Detail), "succeeded") {
			t.Fatalf("cancel of a succeeded job: %d %s, want 409 conflict", resp.StatusCode(), resp.Body)
		}
		if j := b.getJob(t, ten.key, acc.JobId); j.Status != "succeeded" {
			t.Errorf("status after refused cancel: %q", j.Status)
		}
	})

	t.Run("another owner's job is not found", func(t *testing.T) {
		body := echoJob("mine")
		body["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		acc := b.submit(t, ten.key, body)
		resp := cancel(t, other.key, acc.JobId)
		if resp.ApplicationproblemJSON404 == nil || resp.ApplicationproblemJSON404.Code != "not_found" {
			t.Fatalf("cancel by another owner: %d %s, want 404", resp.StatusCode(), resp.Body)
		}
		got, err := b.Client.GetJobWithResponse(t.Context(), acc.JobId, apiKey(other.key))
		if err != nil || got.StatusCode() != http.StatusNotFound {
			t.Errorf("GET by another owner: %v %d", err, got.StatusCode())
		}
		if j := b.getJob(t, ten.key, acc.JobId); j.Status != "scheduled" {
			t.Errorf("the owner's job is %q after another owner's cancel, want scheduled", j.Status)
		}
		// The admin may cancel anyone's job.
		if resp := cancel(t, adminKey, acc.JobId); resp.JSON200 == nil || resp.JSON200.Status != "canceled" {
			t.Errorf("admin cancel: %d %s", resp.StatusCode(), resp.Body)
		}
	})

	t.Run("unknown job is not found", func(t *testing.T) {
		if resp := cancel(t, ten.key, "job_0missing"); resp.StatusCode() != http.StatusNotFound {
			t.Errorf("cancel unknown: %d %s", resp.StatusCode(), resp.Body)
		}
	})
}

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event string
	data      string
}

// readSSE parses a text/event-stream (the WHATWG wire format: fields "id", "event",
// "data" — joined by newlines when repeated —, comments starting with ":", an
// optional space after the colon, events ended by a blank line, and LF, CRLF or CR
// line ends) until the stream ends.
func readSSE(r io.Reader) ([]sseEvent, error) {
	br := bufio.NewReader(r)
	var out []sseEvent
	var cur sseEvent
	var data []string
	hasData := false
	for {
		line, err := br.ReadString('\n')
		if err != nil && line == "" {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if hasData {
				if cur.event == "" {
					cur.event = "message"
				}
				cur.data = strings.Join(data, "\n")
				out = append(out, cur)
			}
			cur, data, hasData = sseEvent{id: cur.id}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			cur.event = value
		case "data":
			data, hasData = append(data, value), true
		case "id":
			cur.id = value
		}
	}
}

// TestEventsWireParser checks readSSE itself, which TestJobEvents relies on.
func TestEventsWireParser(t *testing.T) {
	in := ": hello\r\nid: 1\r\nevent: a\r\ndata: x\r\ndata:y\r\n\r\ndata: plain\n\nevent: ignored-without-data\n\nid: 9\nevent: b\ndata: {\"k\":1}\n\n"
	got, err := readSSE(strings.NewReader(in))
	want := []sseEvent{{"1", "a", "x\ny"}, {"1", "message", "plain"}, {"9", "b", `{"k":1}`}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("readSSE = %+v, %v; want %+v", got, err, want)
	}
}

// streamEvents reads a job's whole event stream with a plain client (the validating
// transport would buffer it), checking the status and media type.
func (b *bundle) streamEvents(t *testing.T, key, id string) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", b.URL+"/api/v1/jobs/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatalf("GET events: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET events: %d %s", resp.StatusCode, body)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", resp.Header.Get("Content-Type"))
	}
	events, err := readSSE(resp.Body)
	if err != nil {
		t.Fatalf("read the stream (it must end by itself after the job ends): %v; events so far %+v", err, events)
	}
	return events
}

func TestJobEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "events@example.com")
	other := b.newTenant(t, "events-other@example.com")

	// Scheduled a moment ahead, so the stream sees the job before it runs.
	body := map[string]any{"workflow": "two-steps", "payload": map[string]any{"v": "x"},
		"run_at": time.Now().Add(700 * time.Millisecond).UTC().Format(time.RFC3339Nano),
		"steps":  []any{step("nap", "core", "sleep", map[string]any{"ms": 300}), step("say", "core", "echo", map[string]any{"v": "{{payload.v}}"})}}
	acc := b.submit(t, ten.key, body)

	type statusData struct {
		JobID    string `json:"job_id"`
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
	}
	type stepData struct {
		JobID string           `json:"job_id"`
		Step  client.StepState `json:"step"`
	}
	check := func(t *testing.T, events []sseEvent, wantStatuses []string) {
		t.Helper()
		if len(events) == 0 || events[len(events)-1].event != "end" {
			t.Fatalf("events %+v, want the last to be end", events)
		}
		var statuses, steps []string
		// Each event moves the client to a new state, which its id names (resuming
		// from it is TestEventsResume's).
		ids := map[string]bool{}
		for i, ev := range events {
			if ev.id == "" || ids[ev.id] {
				t.Errorf("event %d id %q, want a fresh id on every event", i, ev.id)
			}
			ids[ev.id] = true
			switch ev.event {
			case "status":
				var d statusData
				if err := json.Unmarshal([]byte(ev.data), &d); err != nil || d.JobID != acc.JobId {
					t.Errorf("status event %q: %v", ev.data, err)
				}
				statuses = append(statuses, d.Status)
			case "step":
				var d stepData
				if err := json.Unmarshal([]byte(ev.data), &d); err != nil || d.JobID != acc.JobId {
					t.Errorf("step event %q: %v", ev.data, err)
				}
				steps = append(steps, d.Step.Id+":"+string(d.Step.Status))
			case "end":
				if i != len(events)-1 {
					t.Errorf("end is event %d of %d", i, len(events))
				}
			default:
				t.Errorf("unexpected event %q", ev.event)
			}
		}
		if !slices.Equal(statuses, wantStatuses) {
			t.Errorf("status events %q, want %q", statuses, wantStatuses)
		}
		if want := []string{"nap:succeeded", "say:succeeded"}; !slices.Equal(steps, want) {
			t.Errorf("step events %q, want %q", steps, want)
		}
		var end client.Job
		if err := json.Unmarshal([]byte(events[len(events)-1].data), &end); err != nil {
			t.Fatalf("end event: %v", err)
		}
		if end.Id != acc.JobId || end.Status != "succeeded" || !sameJSON(t, end.Result, map[string]any{"v": "x"}) || len(end.Steps) != 2 {
			t.Errorf("end event job %s", events[len(events)-1].data)
		}
	}

	t.Run("live", func(t *testing.T) {
		check(t, b.streamEvents(t, ten.key, acc.JobId), []string{"scheduled", "running", "succeeded"})
	})
	t.Run("after the end", func(t *testing.T) {
		// The job has ended: the stream replays its state and closes at once.
		check(t, b.streamEvents(t, ten.key, acc.JobId), []string{"succeeded"})
	})
	t.Run("another owner", func(t *testing.T) {
		resp, data := b.do(t, "GET", "/api/v1/jobs/"+acc.JobId+"/events", hdr(other.key, ""), nil)
		if p := problemOf(t, resp, data); resp.StatusCode != http.StatusNotFound || p.Code != "not_found" {
			t.Errorf("events of another owner's job: %d %s", resp.StatusCode, data)
		}
	})
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	a := b.newTenant(t, "list-a@example.com")
	bb := b.newTenant(t, "list-b@example.com")

	later := func(workflow string) map[string]any {
		m := echoJob(workflow)
		m["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		return m
	}
	var alpha, beta, mine, theirs []string
	for range 4 {
		alpha = append(alpha, b.submit(t, a.key, echoJob("alpha")).JobId)
	}
	for range 3 {
		beta = append(beta, b.submit(t, a.key, later("beta")).JobId)
	}
	mine = append(append(mine, alpha...), beta...)
	for range 2 {
		theirs = append(theirs, b.submit(t, bb.key, echoJob("alpha")).JobId)
	}
	adminJob := b.submit(t, adminKey, later("admin")).JobId
	for _, id := range alpha {
		b.waitStatus(t, a.key, id, "succeeded", 10*time.Second)
	}

	list := func(t *testing.T, key string, p client.ListJobsParams) client.JobList {
		t.Helper()
		resp, err := b.Client.ListJobsWithResponse(t.Context(), &p, apiKey(key))
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("list jobs: %v %+v", err, resp)
		}
		return *resp.JSON200
	}
	ids := func(l client.JobList) []string {
		var out []string
		for _, j := range l.Data {
			out = append(out, j.Id)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...[]string) []string {
		out := slices.Concat(s...)
		slices.Sort(out)
		return out
	}
	ptr := func(s string) *string { return &s }
	status := func(s string) *client.JobStatus { v := client.JobStatus(s); return &v }

	t.Run("filters and owners", func(t *testing.T) {
		cases := []struct {
			name string
			key  string
			p    client.ListJobsParams
			want []string
		}{
			{"owner sees only its own", a.key, client.ListJobsParams{}, sorted(mine)},
			{"other owner sees only its own", bb.key, client.ListJobsParams{}, sorted(theirs)},
			{"admin sees everyone's", adminKey, client.ListJobsParams{}, sorted(mine, theirs, []string{adminJob})},
			{"status succeeded", a.key, client.ListJobsParams{Status: status("succeeded")}, sorted(alpha)},
			{"status scheduled", a.key, client.ListJobsParams{Status: status("scheduled")}, sorted(beta)},
			{"status failed", a.key, client.ListJobsParams{Status: status("failed")}, nil},
			{"workflow beta", a.key, client.ListJobsParams{Workflow: ptr("beta")}, sorted(beta)},
			{"workflow alpha, admin", adminKey, client.ListJobsParams{Workflow: ptr("alpha")}, sorted(alpha, theirs)},
			{"workflow and status", a.key, client.ListJobsParams{Workflow: ptr("alpha"), Status: status("scheduled")}, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := list(t, tc.key, tc.p)
				if !slices.Equal(ids(got), tc.want) || got.NextCursor != nil {
					t.Errorf("got %q (next %v), want %q", ids(got), got.NextCursor, tc.want)
				}
				for i := 1; i < len(got.Data); i++ {
					if got.Data[i].CreatedAt.After(got.Data[i-1].CreatedAt) {
						t.Errorf("not newest first at %d", i)
					}
				}
			})
		}
	})

	t.Run("pages under concurrent inserts", func(t *testing.T) {
		// Another goroutine adds a job of the same owner between every two pages:
		// they are newer than the walk's position, so no page may show them, and no
		// job may be skipped or repeated.
		insert, inserted := make(chan struct{}), make(chan error)
		newBody := bodyBytes(t, later("gamma"))
		go func() {
			for range insert {
				status, _, err := b.tryIntake(context.Background(), a.key, newBody, "")
				if err == nil && status != http.StatusAccepted {
					err = fmt.Errorf("intake: %d", status)
				}
				inserted <- err
			}
		}()
		defer close(insert)

		var walked []string
		var pages []int
		p := client.ListJobsParams{Limit: new(int)}
		*p.Limit = 3
		var last time.Time
		for range 10 {
			page := list(t, a.key, p)
			pages = append(pages, len(page.Data))
			for _, j := range page.Data {
				if j.Workflow == "gamma" {
					t.Errorf("page shows job %s inserted after the walk began", j.Id)
				}
				if !last.IsZero() && j.CreatedAt.After(last) {
					t.Errorf("job %s is newer than the one before it", j.Id)
				}
				last = j.CreatedAt
				walked = append(walked, j.Id)
			}
			insert <- struct{}{}
			if err := <-inserted; err != nil {
				t.Fatal(err)
			}
			if page.NextCursor == nil {
				break
			}
			p.Cursor = page.NextCursor
		}
		if !slices.Equal(pages, []int{3, 3, 1}) {
			t.Errorf("page sizes %v, want [3 3 1]", pages)
		}
		got := slices.Clone(walked)
		slices.Sort(got)
		if !slices.Equal(got, sorted(mine)) {
			t.Errorf("walked %q, want each of %q exactly once", walked, sorted(mine))
		}
		if n := len(list(t, a.key, client.ListJobsParams{Workflow: ptr("gamma")}).Data); n != len(pages) {
			t.Errorf("%d gamma jobs stored, want %d (one per page)", n, len(pages))
		}
	})

	t.Run("bad cursor", func(t *testing.T) {
		for _, cursor := range []string{"abc", "bm90LWpzb24", "e30", "not%20base64!"} {
			resp, data := b.do(t, "GET", "/api/v1/jobs?limit=3&cursor="+cursor, hdr(a.key, ""), nil)
			p := problemOf(t, resp, data)
			if resp.StatusCode != http.StatusBadRequest || p.Code != "invalid" {
				t.Errorf("cursor %q: %d %s, want 400 invalid", cursor, resp.StatusCode, data)
			}
		}
	})
}

// flaky is an upstream on 127.0.0.1 that answers each request with the next
// status of a script (the last one repeating), and counts the requests.
type flaky struct {
	*httptest.Server
	hits atomic.Int32
}

func newFlaky(t *testing.T, script ...int) *flaky {
	t.Helper()
	f := &flaky{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.hits.Add(1))
		code := script[min(n, len(script))-1]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"call":%d}`, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func TestJobRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "retry@example.com")

	cases := []struct {
		name        string
		script      []int
		maxAttempts int // 0: the default (3)
		status      string
		attempts    int
		errCode     string
	}{
		{"500 twice then 200 succeeds on the third attempt", []int{500, 500, 200}, 0, "succeeded", 3, ""},
		{"always 500 fails when attempts run out", []int{500}, 2, "failed", 2, "upstream_error"},
		{"404 fails at once", []int{404}, 0, "failed", 1, "upstream_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newFlaky(t, tc.script...)
			body := map[string]any{"workflow": "retry", "payload": map[string]any{"n": 1},
				"steps": []any{
					step("before", "core", "echo", map[string]any{"n": "{{payload.n}}"}),
					step("call", "http", "request", map[string]any{"url": up.URL + "/thing", "timeout_ms": 5000}),
				}}
			if tc.maxAttempts > 0 {
				body["max_attempts"] = tc.maxAttempts
			}
			acc := b.submit(t, ten.key, body)
			j := b.waitJob(t, ten.key, acc.JobId, 10*time.Second, tc.status, func(j client.Job) bool { return string(j.Status) == tc.status })

			if j.Attempts != tc.attempts || int(up.hits.Load()) != tc.attempts {
				t.Errorf("job attempts %d, upstream calls %d; want %d", j.Attempts, up.hits.Load(), tc.attempts)
			}
			before, call := j.Steps[0], j.Steps[1]
			// A step that succeeded is never run again.
			if before.Status != "succeeded" || before.Attempts != 1 {
				t.Errorf("echo step before the call: %s, want succeeded once", mustJSON(t, before))
			}
			if call.Attempts != tc.attempts {
				t.Errorf("call step attempts %d, want %d", call.Attempts, tc.attempts)
			}
			if tc.status == "succeeded" {
				want := map[string]any{"status": 200, "json": map[string]any{"call": tc.attempts}}
				if got, _ := jsonValue(t, j.Result).(map[string]any); got == nil || !sameJSON(t, map[string]any{"status": got["status"], "json": got["json"]}, want) {
					t.Errorf("result %s, want the third call's answer", mustJSON(t, j.Result))
				}
				if call.Status != "succeeded" || call.Error != nil || j.Error != nil {
					t.Errorf("call step %s, job error %s", mustJSON(t, call), mustJSON(t, j.Error))
				}
				return
			}
			if call.Status != "failed" || call.Error == nil || call.Error.Code != tc.errCode {
				t.Errorf("call step %s, want failed with %s", mustJSON(t, call), tc.errCode)
			}
			if j.Error == nil || j.Error.Code != tc.errCode || !strings.Contains(j.Error.Message, strconv.Itoa(tc.script[len(tc.script)-1])) {
				t.Errorf("job error %s, want %s naming the status", mustJSON(t, j.Error), tc.errCode)
			}
			if j.Result != nil || j.FinishedAt == nil {
				t.Errorf("result %v finished_at %v", j.Result, j.FinishedAt)
			}
		})
	}
}

func TestStatusQueueDepthJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withEngine(t, []string{"127.0.0.0/8"}, nil))
	ten := b.newTenant(t, "depth@example.com")

	status := func(t *testing.T) client.AdminStatus {
		t.Helper()
		resp, err := b.Client.GetAdminStatusWithResponse(t.Context(), func(ctx context.Context, r *http.Request) error {
			r.Header.Set("X-Api-Key", adminKey)
			return nil
		})
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("GET /api/v1/admin/status: %v %+v", err, resp)
		}
		return *resp.JSON200
	}
	before := status(t)
	for _, st := range []string{"queued", "scheduled", "running", "retrying", "succeeded", "failed", "canceled"} {
		if n, ok := before.Queue.Depth[st]; !ok || n != 0 {
			t.Errorf("fresh depth[%s] = %d (present %v), want 0", st, n, ok)
		}
	}
	if before.Queue.FinishedHere == nil || *before.Queue.FinishedHere != 0 || before.Queue.OldestQueuedAgeS != nil {
		t.Errorf("fresh queue %s", mustJSON(t, before.Queue))
	}

	var ok []string
	for range 3 {
		ok = append(ok, b.submit(t, ten.key, echoJob("depth")).JobId)
	}
	bad := b.submit(t, ten.key, map[string]any{"workflow": "depth", "payload": map[string]any{},
		"steps": []any{step("e", "core", "echo", map[string]any{"v": "{{payload.missing}}"})}}).JobId
	later := echoJob("depth")
	later["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	scheduled := b.submit(t, ten.key, later).JobId
	for _, id := range ok {
		b.waitStatus(t, ten.key, id, "succeeded", 10*time.Second)
	}
	b.waitStatus(t, ten.key, bad, "failed", 10*time.Second)

	after := status(t)
	want := map[string]int{"queued": 0, "scheduled": 1, "running": 0, "retrying": 0, "waiting": 0, "succeeded": 3, "failed": 1, "canceled": 0}
	if !reflect.DeepEqual(after.Queue.Depth, want) {
		t.Errorf("depth %v, want %v", after.Queue.Depth, want)
	}
	if after.Queue.FinishedHere == nil || *after.Queue.FinishedHere != 4 {
		t.Errorf("finished_here %v, want 4", after.Queue.FinishedHere)
	}

	if resp, err := b.Client.CancelJobWithResponse(t.Context(), scheduled, apiKey(ten.key)); err != nil || resp.JSON200 == nil {
		t.Fatalf("cancel: %v %+v", err, resp)
	}
	if d := status(t).Queue.Depth; d["scheduled"] != 0 || d["canceled"] != 1 {
		t.Errorf("after cancel depth %v, want scheduled 0 canceled 1", d)
	}
}

// dueNow reports whether an accepted job's status says it is due now: queued, or
// already running when a free worker took it at intake (ADR 0023).
func dueNow(status string) bool { return status == "queued" || status == "running" }
