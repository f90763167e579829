package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/billing/billingtest"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// batchItem is one item of a batch body: a job with an optional idempotency key.
func batchItem(key string, job map[string]any) map[string]any {
	it := map[string]any{"job": job}
	if key != "" {
		it["idempotency_key"] = key
	}
	return it
}

// batch posts items to POST /api/v1/intake/batch and decodes the 200.
func (b *bundle) batch(t *testing.T, key string, items []map[string]any) client.JobBatchResult {
	t.Helper()
	resp, data := b.do(t, "POST", "/api/v1/intake/batch", hdr(key, "application/json"), bytes.NewReader(bodyBytes(t, map[string]any{"jobs": items})))
	return decode[client.JobBatchResult](t, resp, data, http.StatusOK)
}

// Batch intake on both engines: per-item results in request order (new 202, repeat
// 200, refused 4xx with its problem and pointers into the batch), idempotency keys
// within one batch and across batches, accepted jobs run, and the batch is bounded
// (1,001 items is 400) and refuses hostile bodies with 4xx, never 5xx.
func TestIntakeBatch(t *testing.T) {
	for engine, open := range map[string]func(testing.TB) store.Store{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(o *testOptions) { o.Store = open(t) }, withAdmin)
			ann := b.newTenant(t, "ann@example.com")

			other := echoJob("batch.v1")
			other["payload"] = map[string]any{"n": 2}
			items := []map[string]any{
				batchItem("k-a", echoJob("batch.v1")),                                          // 0: new
				batchItem("", map[string]any{"workflow": "nope", "payload": map[string]any{}}), // 1: no such workflow
				batchItem("", map[string]any{"workflow": "bad.v1", "payload": map[string]any{},
					"steps": []any{step("x", "core", "no_such_action", nil)}}), // 2: invalid steps
				batchItem("", echoJob("batch.v1")),    // 3: new, no key
				batchItem("k-a", echoJob("batch.v1")), // 4: repeat of 0 in the same batch
				batchItem("k-a", other),               // 5: same key, other job
				batchItem("", map[string]any{"workflow": "bad.v1", "payload": map[string]any{},
					"steps": []any{step("x", "core", "no_such_action", nil)}}), // 6: invalid steps again
			}
			res := b.batch(t, ann.key, items)
			wantStatus := []int{202, 404, 400, 202, 200, 422, 400}
			if len(res.Results) != len(items) {
				t.Fatalf("%d results for %d items", len(res.Results), len(items))
			}
			for i, r := range res.Results {
				if r.Status != wantStatus[i] {
					t.Errorf("item %d: status %d, want %d (%+v)", i, r.Status, wantStatus[i], r.Problem)
				}
				if (r.Job != nil) == (r.Problem != nil) {
					t.Errorf("item %d: want exactly one of job and problem, got job=%v problem=%v", i, r.Job, r.Problem)
				}
				if r.Problem != nil && r.Problem.Status != r.Status {
					t.Errorf("item %d: problem status %d, result status %d", i, r.Problem.Status, r.Status)
				}
			}
			if res.Accepted != 3 || res.Failed != 4 {
				t.Errorf("accepted=%d failed=%d, want 3 and 4", res.Accepted, res.Failed)
			}
			if p := res.Results[2].Problem; p == nil || p.Errors == nil || len(*p.Errors) == 0 || !strings.HasPrefix((*p.Errors)[0].Pointer, "/jobs/2/job/steps") {
				t.Errorf("item 2: problem pointers should point into /jobs/2/job/steps: %+v", p)
			}
			first := res.Results[0].Job
			if first == nil || res.Results[4].Job == nil || res.Results[4].Job.JobId != first.JobId {
				t.Fatalf("item 4 should repeat item 0's job: %+v / %+v", res.Results[4].Job, first)
			}
			if res.Results[3].Job.JobId == first.JobId {
				t.Errorf("items 0 and 3 share a job id")
			}
			if got := b.jobIDs(t, ann.key); len(got) != 2 {
				t.Errorf("ann has %d jobs, want 2: %v", len(got), got)
			}
			b.waitStatus(t, ann.key, first.JobId, "succeeded", 15*time.Second)
			b.waitStatus(t, ann.key, res.Results[3].Job.JobId, "succeeded", 15*time.Second)

			// The same batch again: the keyed items repeat the first batch's job (or are
			// 422 for the other job), the unkeyed one is a new job.
			again := b.batch(t, ann.key, items)
			for i, want := range []int{200, 404, 400, 202, 200, 422, 400} {
				if again.Results[i].Status != want {
					t.Errorf("again, item %d: status %d, want %d", i, again.Results[i].Status, want)
				}
			}
			if j := again.Results[0].Job; j == nil || j.JobId != first.JobId {
				t.Errorf("again, item 0: %+v, want job %s", j, first.JobId)
			}
			// A key is scoped to the API key: another tenant's "k-a" is its own job.
			bob := b.newTenant(t, "bob@example.com")
			if r := b.batch(t, bob.key, items[:1]).Results[0]; r.Status != 202 || r.Job.JobId == first.JobId {
				t.Errorf("bob's k-a: %d %+v", r.Status, r.Job)
			}

			// Bounds and hostile bodies: 4xx problem+json, never 5xx, nothing stored.
			many := make([]map[string]any, 1001)
			for i := range many {
				many[i] = batchItem("", map[string]any{"workflow": "w", "payload": map[string]any{}})
			}
			readOnly := b.createKey(t, ann.owner, "jobs:read").Key
			before := len(b.jobIDs(t, ann.key))
			for _, c := range []struct {
				name   string
				key    string
				body   string
				status int
			}{
				{"1001 items", ann.key, string(bodyBytes(t, map[string]any{"jobs": many})), 400},
				{"no items", ann.key, `{"jobs": []}`, 400},
				{"not JSON", ann.key, `{"jobs": [`, 400},
				{"jobs not an array", ann.key, `{"jobs": {"job": {}}}`, 400},
				{"null item", ann.key, `{"jobs": [null]}`, 400},
				{"unknown item field", ann.key, `{"jobs": [{"job": {"workflow": "w", "payload": {}}, "priority": "high"}]}`, 400},
				{"item without job", ann.key, `{"jobs": [{"idempotency_key": "x"}]}`, 400},
				{"bad idempotency key", ann.key, `{"jobs": [{"idempotency_key": "a b", "job": {"workflow": "w", "payload": {}}}]}`, 400},
				{"deep nesting", ann.key, `{"jobs": [{"job": {"workflow": "w", "payload": {"a":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}}]}`, 400},
				{"over the body limit", ann.key, `{"jobs": [{"job": {"workflow": "w", "payload": {"a": "` + strings.Repeat("x", 600<<10) + `"}}}]}`, 413},
				{"no key", "", `{"jobs": [{"job": {"workflow": "w", "payload": {}}}]}`, 401},
				{"read-only key", readOnly, `{"jobs": [{"job": {"workflow": "w", "payload": {}}}]}`, 403},
			} {
				resp, data := b.do(t, "POST", "/api/v1/intake/batch", hdr(c.key, "application/json"), strings.NewReader(c.body))
				if resp.StatusCode != c.status {
					t.Errorf("%s: status %d, want %d; body %.300s", c.name, resp.StatusCode, c.status, data)
					continue
				}
				problemOf(t, resp, data)
			}
			if after := len(b.jobIDs(t, ann.key)); after != before {
				t.Errorf("refused batches stored jobs: %d → %d", before, after)
			}
		})
	}
}

// A full batch of 1,000 jobs is accepted whole, within the default body limit.
func TestIntakeBatchFull(t *testing.T) {
	b := setup(t, withAdmin)
	ann := b.newTenant(t, "ann@example.com")
	items := make([]map[string]any, 1000)
	for i := range items {
		items[i] = batchItem(fmt.Sprintf("full-%d", i), echoJob("full.v1"))
	}
	res := b.batch(t, ann.key, items)
	if res.Accepted != 1000 || res.Failed != 0 {
		t.Fatalf("accepted=%d failed=%d, want 1000 and 0", res.Accepted, res.Failed)
	}
	seen := map[string]bool{}
	for i, r := range res.Results {
		if r.Status != 202 || r.Job == nil || seen[r.Job.JobId] {
			t.Fatalf("item %d: %d %+v", i, r.Status, r.Job)
		}
		seen[r.Job.JobId] = true
	}
}

// The plan's jobs per minute counts every job of a batch (free plan: 10): a batch of
// 8 passes, a batch of 3 more is refused whole with 429 and stores nothing, while
// the per-key limit counts each batch request once.
func TestIntakeBatchPlanLimit(t *testing.T) {
	base := billingtest.StripeMock(t)
	b := setup(t, withBilling(t, storetest.OpenSQLite, base), withAdmin, func(o *testOptions) {
		o.Limits = &server.Limits{Store: memory.NewStore(), IP: limiter.Rate{Period: time.Minute, Limit: 1000},
			Global: limiter.Rate{Period: time.Minute, Limit: 1000}, Key: limiter.Rate{Period: time.Minute, Limit: 1000}}
	})
	u := b.createUser(t, "batch-plan@example.com")
	key := b.createKey(t, u.Id, "jobs:read", "jobs:write", "users:write").Key
	if resp, body := b.do(t, "POST", "/api/v1/billing/checkout", hdr(key, "application/json"), jsonBody(t, map[string]any{"plan": "pro_monthly"})); resp.StatusCode != 200 {
		t.Fatalf("checkout: %d %s", resp.StatusCode, body)
	}
	items := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = batchItem("", echoJob("plan.v1"))
		}
		return out
	}
	resp, data := b.do(t, "POST", "/api/v1/intake/batch", hdr(key, "application/json"), bytes.NewReader(bodyBytes(t, map[string]any{"jobs": items(8)})))
	if res := decode[client.JobBatchResult](t, resp, data, http.StatusOK); res.Accepted != 8 {
		t.Fatalf("batch of 8 on the free plan: accepted %d", res.Accepted)
	}
	resp, data = b.do(t, "POST", "/api/v1/intake/batch", hdr(key, "application/json"), bytes.NewReader(bodyBytes(t, map[string]any{"jobs": items(3)})))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("batch of 3 past the plan: %d (Retry-After %q) %s; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
	problemOf(t, resp, data)
	if n := len(b.jobIDs(t, key)); n != 8 {
		t.Errorf("%d jobs stored, want the first batch's 8", n)
	}
}

// The AI budget fit is cumulative within a batch: with room for one and a half
// calls, the first one-call job is accepted and the second refused 402 in its slot,
// while a job without AI steps after them is accepted.
func TestIntakeBatchBudgetIsCumulative(t *testing.T) {
	chat, _ := exactChat(t)
	b := setup(t, withBudgetedEngine(t, storetest.OpenSQLite(t), chat.URL), withAdmin)
	ten := b.newTenant(t, "batch-fit@example.com")
	input := map[string]any{"prompt": "Say hi to the racer.", "max_tokens": 40}
	price := ai.DefaultPrices()["gpt-4o-mini"]
	prompt, err := ai.EstimatePromptTokens("gpt-4o-mini", []ai.Message{{Role: "user", Content: "Say hi to the racer."}})
	if err != nil {
		t.Fatal(err)
	}
	perCall := budget.USDToNanos((float64(prompt)*price.InputPerMillion + 40*price.OutputPerMillion) / 1e6)
	limit := budget.Limits{Daily: perCall * 3 / 2, Monthly: 100 * perCall}
	if err := b.Store.SetOwnerLimits(t.Context(), ten.owner, &limit, time.Now()); err != nil {
		t.Fatal(err)
	}
	one := map[string]any{"workflow": "one", "payload": map[string]any{}, "steps": []any{step("a", "ai", "complete", input)}}
	res := b.batch(t, ten.key, []map[string]any{batchItem("", one), batchItem("", one), batchItem("", echoJob("plain.v1"))})
	for i, want := range []int{202, 402, 202} {
		if res.Results[i].Status != want {
			t.Errorf("item %d: status %d, want %d (%+v)", i, res.Results[i].Status, want, res.Results[i].Problem)
		}
	}
	if p := res.Results[1].Problem; p == nil || p.Code != "budget_exceeded" {
		t.Errorf("item 1: problem %+v, want budget_exceeded", p)
	}
}

// Items naming a saved workflow run its steps (the batch reads it once and shares it).
func TestIntakeBatchSavedWorkflow(t *testing.T) {
	b := setup(t, withAdmin)
	ann := b.newTenant(t, "saved@example.com")
	saveWorkflow(t, b, ann.key)
	items := make([]map[string]any, 3)
	for i := range items {
		items[i] = batchItem("", map[string]any{"workflow": "sync", "payload": map[string]any{"msg": fmt.Sprintf("m%d", i)}})
	}
	res := b.batch(t, ann.key, items)
	if res.Accepted != 3 {
		t.Fatalf("accepted %d of 3: %+v", res.Accepted, res.Results)
	}
	for i, r := range res.Results {
		j := b.waitStatus(t, ann.key, r.Job.JobId, "succeeded", 15*time.Second)
		out, _ := json.Marshal(j.Steps[0].Output)
		if len(j.Steps) != 1 || j.Steps[0].Id != "echo" || !strings.Contains(string(out), fmt.Sprintf(`"m%d"`, i)) {
			t.Errorf("item %d: steps %+v, output %s", i, j.Steps, out)
		}
	}
}
