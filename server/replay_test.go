package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/gen/client"
)

// replay posts body (nil: none) to POST /api/v1/jobs/{id}/replay with key and an
// Idempotency-Key when idem is set.
func (b *bundle) replay(t *testing.T, key, id string, body any, idem string) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{"X-Api-Key": {key}}
	var r *bytes.Reader
	if body != nil {
		h.Set("Content-Type", "application/json")
		r = bytes.NewReader(bodyBytes(t, body))
	}
	if idem != "" {
		h.Set("Idempotency-Key", idem)
	}
	if r == nil {
		return b.do(t, "POST", "/api/v1/jobs/"+id+"/replay", h, nil)
	}
	return b.do(t, "POST", "/api/v1/jobs/"+id+"/replay", h, r)
}

// mustReplay replays a job and requires 202 with the replay, linked and located.
func (b *bundle) mustReplay(t *testing.T, key, id string, body any) client.Job {
	t.Helper()
	resp, data := b.replay(t, key, id, body, "")
	j := decode[client.Job](t, resp, data, http.StatusAccepted)
	if j.ReplayOf == nil || *j.ReplayOf != id || resp.Header.Get("Location") != "/api/v1/jobs/"+j.Id || j.Id == id {
		t.Fatalf("replay of %s: replay_of %v, Location %q, id %s", id, j.ReplayOf, resp.Header.Get("Location"), j.Id)
	}
	return j
}

// reused lists the ids of the job's steps marked reused.
func reused(j client.Job) []string {
	var out []string
	for _, s := range j.Steps {
		if s.Reused != nil && *s.Reused {
			out = append(out, s.Id)
		}
	}
	return out
}

// syncJob is a job that fetches items, picks the first title and posts it (with
// the payload's who) to the vendor's /notify.
func syncJob(api *vendor, who string) map[string]any {
	return map[string]any{"workflow": "sync", "payload": map[string]any{"who": who}, "steps": []any{
		step("fetch", "http", "request", map[string]any{"url": api.URL + "/items"}),
		step("pick", "core", "echo", map[string]any{"title": "{{steps.fetch.output.json.items.0.title}}"}),
		step("notify", "http", "request", map[string]any{"method": "POST", "url": api.URL + "/notify",
			"json": map[string]any{"title": "{{steps.pick.output.title}}", "who": "{{payload.who}}"}}),
	}}
}

// TestReplay, on both engines: a failed job replayed from the start runs every
// step again; replayed from its last step with another payload, the steps before
// it keep the original's outputs (not run: the vendor sees no new fetch) and the
// one step runs with the new payload. In a graph, "before" is the step's
// ancestors. Idempotency keys, another owner's job (404), an unfinished job (409)
// and a step the job lacks (422) behave as documented.
func TestReplay(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			api := newVendor(t)
			b := setup(t, func(o *testOptions) { o.Store = eng.open(t) }, withEngine(t, []string{"127.0.0.0/8"}, nil), withAdmin)
			ann := b.newTenant(t, "ann@example.com")
			bob := b.newTenant(t, "bob@example.com")

			api.failing.Store(true)
			orig := b.submit(t, ann.key, syncJob(api, "ann"))
			failed := b.waitStatus(t, ann.key, orig.JobId, "failed", 10*time.Second)
			if n, _ := api.calls("/items"); n != 1 {
				t.Fatalf("the original fetched %d times", n)
			}
			api.failing.Store(false)

			// From the start (no body at all): every step runs again.
			all := b.mustReplay(t, ann.key, orig.JobId, nil)
			if len(reused(all)) != 0 || !dueNow(string(all.Status)) || all.Workflow != "sync" || !sameJSON(t, all.Payload, failed.Payload) {
				t.Errorf("replay from the start: reused %v, status %s, payload %s", reused(all), all.Status, mustJSON(t, all.Payload))
			}
			b.waitStatus(t, ann.key, all.Id, "succeeded", 10*time.Second)
			if n, _ := api.calls("/items"); n != 2 {
				t.Errorf("after a replay from the start the vendor was fetched %d times, want 2", n)
			}
			if n, body := api.calls("/notify"); n != 2 || !sameJSON(t, body, `{"title": "First", "who": "ann"}`) {
				t.Errorf("notify: %d calls, last %s", n, body)
			}

			// From the last step, with another payload: fetch and pick are reused.
			last := b.mustReplay(t, ann.key, orig.JobId, map[string]any{"from_step": "notify", "payload": map[string]any{"who": "bob"}})
			if got := reused(last); strings.Join(got, ",") != "fetch,pick" {
				t.Errorf("reused %v, want fetch and pick", got)
			}
			for _, id := range []string{"fetch", "pick"} {
				was, now := stepOf(t, failed, id), stepOf(t, last, id)
				if now.Status != "succeeded" || now.Output == nil || !sameJSON(t, *now.Output, *was.Output) || now.Attempts != 0 || now.CostUsd != nil {
					t.Errorf("reused %s: %s, output %s, attempts %d; want the original's output %s", id, now.Status, mustJSON(t, now.Output), now.Attempts, *was.Output)
				}
			}
			done := b.waitStatus(t, ann.key, last.Id, "succeeded", 10*time.Second)
			if n, _ := api.calls("/items"); n != 2 {
				t.Errorf("a replay from notify fetched again: %d fetches, want 2", n)
			}
			if n, body := api.calls("/notify"); n != 3 || !sameJSON(t, body, `{"title": "First", "who": "bob"}`) {
				t.Errorf("notify: %d calls, last %s; want the reused title and the new payload", n, body)
			}
			if got := reused(done); strings.Join(got, ",") != "fetch,pick" || stepOf(t, done, "notify").Attempts != 1 {
				t.Errorf("after the run: reused %v, notify attempts %d", got, stepOf(t, done, "notify").Attempts)
			}

			// Idempotency: the same key and body is the same replay (200); another
			// body, or another job with the same body, is 422.
			resp, data := b.replay(t, ann.key, orig.JobId, map[string]any{"from_step": "pick"}, "replay-1")
			first := decode[client.Job](t, resp, data, http.StatusAccepted)
			resp, data = b.replay(t, ann.key, orig.JobId, map[string]any{"from_step": "pick"}, "replay-1")
			if again := decode[client.Job](t, resp, data, http.StatusOK); again.Id != first.Id || resp.Header.Get("Location") != "/api/v1/jobs/"+first.Id {
				t.Errorf("repeat with the key: job %s, want %s", again.Id, first.Id)
			}
			for name, tc := range map[string]struct {
				id   string
				body any
			}{"another body": {orig.JobId, map[string]any{"from_step": "notify"}}, "another job": {all.Id, map[string]any{"from_step": "pick"}}} {
				resp, data := b.replay(t, ann.key, tc.id, tc.body, "replay-1")
				if p := problemOf(t, resp, data); resp.StatusCode != http.StatusUnprocessableEntity || p.Code != "unprocessable" {
					t.Errorf("key reused with %s: %d %s", name, resp.StatusCode, data)
				}
			}

			// Another owner's job is not found; an unfinished one is a conflict; a
			// step the job does not have is unprocessable.
			resp, data = b.replay(t, bob.key, orig.JobId, nil, "")
			if p := problemOf(t, resp, data); resp.StatusCode != http.StatusNotFound || p.Code != "not_found" {
				t.Errorf("bob replays ann's job: %d %s", resp.StatusCode, data)
			}
			later := echoJob("later")
			later["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			sched := b.submit(t, ann.key, later)
			resp, data = b.replay(t, ann.key, sched.JobId, nil, "")
			if p := problemOf(t, resp, data); resp.StatusCode != http.StatusConflict || p.Code != "conflict" {
				t.Errorf("replay of a scheduled job: %d %s", resp.StatusCode, data)
			}
			resp, data = b.replay(t, ann.key, orig.JobId, map[string]any{"from_step": "nope"}, "")
			if p := problemOf(t, resp, data); resp.StatusCode != http.StatusUnprocessableEntity || p.Errors == nil || (*p.Errors)[0].Pointer != "/from_step" {
				t.Errorf("from a step the job lacks: %d %s", resp.StatusCode, data)
			}
			// The admin's replay of ann's job is ann's.
			resp, data = b.replay(t, adminKey, orig.JobId, map[string]any{"from_step": "notify"}, "")
			if j := decode[client.Job](t, resp, data, http.StatusAccepted); j.OwnerId != ann.owner {
				t.Errorf("the admin's replay belongs to %q, want %q", j.OwnerId, ann.owner)
			}

			// The graph: "before" is the ancestors. a → b → d and c → d.
			graph := map[string]any{"workflow": "g", "payload": map[string]any{}, "steps": []any{
				step("a", "core", "echo", map[string]any{"v": 1}),
				step("b", "core", "echo", map[string]any{"v": "{{steps.a.output.v}}"}),
				withFields(step("c", "core", "echo", map[string]any{"v": 3}), map[string]any{"needs": []string{}}),
				withFields(step("d", "core", "echo", map[string]any{"b": "{{steps.b.output.v}}", "c": "{{steps.c.output.v}}"}), map[string]any{"needs": []string{"b", "c"}}),
			}}
			g := b.submit(t, ann.key, graph)
			b.waitStatus(t, ann.key, g.JobId, "succeeded", 10*time.Second)
			for from, want := range map[string]string{"d": "a,b,c", "b": "a", "c": "", "a": ""} {
				r := b.mustReplay(t, ann.key, g.JobId, map[string]any{"from_step": from})
				if got := strings.Join(reused(r), ","); got != want {
					t.Errorf("graph replay from %s: reused %q, want %q", from, got, want)
				}
				if d := b.waitStatus(t, ann.key, r.Id, "succeeded", 10*time.Second); !sameJSON(t, *d.Result, `{"b": 1, "c": 3}`) {
					t.Errorf("graph replay from %s: result %s", from, mustJSON(t, d.Result))
				}
			}
		})
	}
}

// TestReplayHostile: malformed, oversized, wrongly typed and hostile replay
// requests are 4xx problems, never 5xx, and store nothing.
func TestReplayHostile(t *testing.T) {
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "hostile@example.com")
	orig := b.submit(t, ten.key, echoJob("e"))
	b.waitStatus(t, ten.key, orig.JobId, "succeeded", 10*time.Second)
	path := "/api/v1/jobs/" + orig.JobId + "/replay"
	for _, tc := range []struct {
		name, path, contentType, body string
		idem                          string
		status                        int
	}{
		{"not JSON", path, "application/json", `{"from_step":`, "", 400},
		{"an array", path, "application/json", `[]`, "", 400},
		{"an unknown member", path, "application/json", `{"from": "e"}`, "", 400},
		{"from_step not a string", path, "application/json", `{"from_step": 1}`, "", 400},
		{"from_step empty", path, "application/json", `{"from_step": ""}`, "", 400},
		{"from_step too long", path, "application/json", `{"from_step": "` + strings.Repeat("e", 65) + `"}`, "", 400},
		{"from_step with a slash", path, "application/json", `{"from_step": "../e"}`, "", 400},
		{"from_step with NUL", path, "application/json", `{"from_step": "e\u0000"}`, "", 400},
		{"payload not an object", path, "application/json", `{"payload": [1]}`, "", 400},
		{"payload too wide", path, "application/json", `{"payload": {` + manyMembers(257) + `}}`, "", 400},
		{"a body too large", path, "application/json", `{"payload": {"x": "` + strings.Repeat("x", 600<<10) + `"}}`, "", 413},
		{"form data", path, "application/x-www-form-urlencoded", `from_step=e`, "", 415},
		{"a bad id", "/api/v1/jobs/NOT-AN-ID/replay", "application/json", `{}`, "", 400},
		{"an unknown job", "/api/v1/jobs/job_0000000000000000000000000/replay", "application/json", `{}`, "", 404},
		{"a bad idempotency key", path, "application/json", `{}`, "with space", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr(ten.key, tc.contentType)
			if tc.idem != "" {
				h.Set("Idempotency-Key", tc.idem)
			}
			resp, data := b.do(t, "POST", tc.path, h, strings.NewReader(tc.body))
			if resp.StatusCode != tc.status {
				t.Errorf("%d %.300s, want %d", resp.StatusCode, data, tc.status)
			}
			problemOf(t, resp, data)
		})
	}
	if ids := b.jobIDs(t, ten.key); len(ids) != 1 {
		t.Errorf("hostile replays stored jobs: %v", ids)
	}
}

// manyMembers is n JSON object members, "k0": 1 to "k<n-1>": 1.
func manyMembers(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"k%d": 1`, i)
	}
	return strings.Join(parts, ",")
}

// TestReplayBudget: a replay is an intake — its AI steps that run again must fit
// the owner's budget (402, nothing stored, no provider call), while a replay that
// reuses the AI step's output needs no room and makes no call.
func TestReplayBudget(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			chat, calls := fakeChat(t, 10, 5)
			b := setup(t, func(o *testOptions) { o.Store = eng.open(t) }, withFullEngine(t, chat.URL), withAdmin)
			ten := b.newTenant(t, "spender@example.com")
			job := map[string]any{"workflow": "ask", "payload": map[string]any{}, "steps": []any{
				step("ask", "ai", "complete", map[string]any{"prompt": "Say hello.", "max_tokens": 50}),
				step("keep", "core", "echo", map[string]any{"said": "{{steps.ask.output.text}}"}),
			}}
			orig := b.submit(t, ten.key, job)
			b.waitStatus(t, ten.key, orig.JobId, "succeeded", 10*time.Second)
			if calls.Load() != 1 {
				t.Fatalf("the original made %d provider calls", calls.Load())
			}
			// Now the owner's budget has no room for another call.
			day, _, err := b.Store.OwnerUsage(t.Context(), ten.owner, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			full := budget.Limits{Daily: day.Spent + 1, Monthly: budget.USDToNanos(200)}
			if err := b.Store.SetOwnerLimits(t.Context(), ten.owner, &full, time.Now()); err != nil {
				t.Fatal(err)
			}
			resp, data := b.replay(t, ten.key, orig.JobId, nil, "")
			if p := problemOf(t, resp, data); resp.StatusCode != http.StatusPaymentRequired || p.Code != "budget_exceeded" {
				t.Fatalf("replay over budget: %d %s, want 402 budget_exceeded", resp.StatusCode, data)
			}
			if ids := b.jobIDs(t, ten.key); len(ids) != 1 {
				t.Errorf("a refused replay stored a job: %v", ids)
			}
			r := b.mustReplay(t, ten.key, orig.JobId, map[string]any{"from_step": "keep"})
			done := b.waitStatus(t, ten.key, r.Id, "succeeded", 10*time.Second)
			if calls.Load() != 1 || done.CostUsd == nil || *done.CostUsd != 0 || !sameJSON(t, *done.Result, `{"said": "hello"}`) {
				t.Errorf("replay reusing the AI step: %d calls, cost %v, result %s", calls.Load(), done.CostUsd, mustJSON(t, done.Result))
			}
		})
	}
}

// bulk posts body to POST /api/v1/jobs/replay and decodes the 200.
func (b *bundle) bulk(t *testing.T, key string, body any) client.JobBulkReplayResult {
	t.Helper()
	resp, data := b.do(t, "POST", "/api/v1/jobs/replay", hdr(key, "application/json"), bytes.NewReader(bodyBytes(t, body)))
	return decode[client.JobBulkReplayResult](t, resp, data, http.StatusOK)
}

func replayOfs(r client.JobBulkReplayResult) []string {
	var out []string
	for _, it := range r.Results {
		out = append(out, it.ReplayOf)
	}
	return out
}

// TestBulkReplay, on both engines: failed jobs chosen by filter are replayed,
// oldest first, at most limit per call (more says others match), each once —
// a second call takes the next ones — with per-job results (a job lacking
// from_step is 422 in its slot); dry runs, other owners' jobs and jobs outside
// the time range are not taken; the bound and hostile bodies are 400.
func TestBulkReplay(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			api := newVendor(t)
			b := setup(t, func(o *testOptions) { o.Store = eng.open(t) }, withEngine(t, []string{"127.0.0.0/8"}, nil), withAdmin)
			ann := b.newTenant(t, "ann@example.com")
			bob := b.newTenant(t, "bob@example.com")
			api.failing.Store(true)
			start := time.Now()
			var failed []string
			for i := range 5 {
				j := b.submit(t, ann.key, syncJob(api, "ann"))
				b.waitStatus(t, ann.key, j.JobId, "failed", 10*time.Second)
				failed = append(failed, j.JobId)
				if i == 2 { // another workflow, without a notify step, failing too
					other := map[string]any{"workflow": "other", "payload": map[string]any{}, "steps": []any{
						step("post", "http", "request", map[string]any{"method": "POST", "url": api.URL + "/notify"})}}
					o := b.submit(t, ann.key, other)
					b.waitStatus(t, ann.key, o.JobId, "failed", 10*time.Second)
					failed = append(failed, o.JobId)
				}
			}
			bobs := b.submit(t, bob.key, syncJob(api, "bob"))
			b.waitStatus(t, bob.key, bobs.JobId, "failed", 10*time.Second)
			b.dryRun(t, ann.key, syncJob(api, "dry"), "")
			api.failing.Store(false)
			syncIDs := append(append([]string{}, failed[:3]...), failed[4:]...) // without "other"

			if r := b.bulk(t, ann.key, map[string]any{"created_before": start.UTC().Format(time.RFC3339Nano)}); len(r.Results) != 0 || r.More {
				t.Errorf("before the first job: %s", mustJSON(t, r))
			}
			r := b.bulk(t, ann.key, map[string]any{"workflow": "sync", "limit": 3})
			if got := replayOfs(r); strings.Join(got, ",") != strings.Join(syncIDs[:3], ",") || r.Replayed != 3 || r.Failed != 0 || !r.More {
				t.Fatalf("first call: %s, want %v and more", mustJSON(t, r), syncIDs[:3])
			}
			for _, it := range r.Results {
				if it.Status != http.StatusAccepted || it.Job == nil || it.Problem != nil {
					t.Errorf("item %s: %s", it.ReplayOf, mustJSON(t, it))
				}
			}
			// The rest, from notify: the other workflow's job lacks it (422 in its slot).
			r2 := b.bulk(t, ann.key, map[string]any{"from_step": "notify", "limit": 10})
			want := []string{failed[3], failed[4], failed[5]} // other, then the two sync jobs left
			if got := replayOfs(r2); strings.Join(got, ",") != strings.Join(want, ",") || r2.Replayed != 2 || r2.Failed != 1 || r2.More {
				t.Fatalf("second call: %s, want %v", mustJSON(t, r2), want)
			}
			if it := r2.Results[0]; it.Status != 422 || it.Problem == nil || it.Problem.Code != "unprocessable" {
				t.Errorf("the job without notify: %s", mustJSON(t, it))
			}
			// The other workflow's job is still a candidate; the others are done.
			if r3 := b.bulk(t, ann.key, map[string]any{"workflow": "sync"}); len(r3.Results) != 0 || r3.More {
				t.Errorf("third call: %s, want nothing left", mustJSON(t, r3))
			}
			for _, it := range append(r.Results, r2.Results[1:]...) {
				j := b.waitStatus(t, ann.key, it.Job.JobId, "succeeded", 10*time.Second)
				if j.ReplayOf == nil || *j.ReplayOf != it.ReplayOf {
					t.Errorf("replay %s: replay_of %v, want %s", j.Id, j.ReplayOf, it.ReplayOf)
				}
			}
			if n, _ := api.calls("/items"); n != 6+3 {
				t.Errorf("fetches: %d, want 6 originals + 3 replays from the start (the two from notify reuse it)", n)
			}
			// Bob's job is his: ann's calls never took it.
			if r := b.bulk(t, bob.key, map[string]any{}); strings.Join(replayOfs(r), ",") != bobs.JobId {
				t.Errorf("bob's call: %s", mustJSON(t, r))
			}
			// Any finished status may be asked for: here the replays that succeeded.
			if r := b.bulk(t, ann.key, map[string]any{"status": "succeeded", "created_after": start.UTC().Format(time.RFC3339Nano)}); r.Replayed == 0 {
				t.Errorf("succeeded jobs (the replays) are candidates too: %s", mustJSON(t, r))
			}

			for name, body := range map[string]string{
				"limit past the bound": `{"limit": 1001}`, "limit 0": `{"limit": 0}`, "not a finished status": `{"status": "queued"}`,
				"an unknown member": `{"owner": "x"}`, "a bad time": `{"created_after": "yesterday"}`, "not JSON": `{`,
				"from_step with NUL": `{"from_step": "a\u0000"}`, "workflow too long": `{"workflow": "` + strings.Repeat("w", 129) + `"}`,
			} {
				resp, data := b.do(t, "POST", "/api/v1/jobs/replay", hdr(ann.key, "application/json"), strings.NewReader(body))
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("%s: %d %.200s, want 400", name, resp.StatusCode, data)
				}
				problemOf(t, resp, data)
			}
			for _, tc := range []struct {
				contentType, body string
				status            int
			}{
				{"application/x-www-form-urlencoded", "limit=5", http.StatusUnsupportedMediaType},
				{"application/json", `{"workflow": "` + strings.Repeat("w", 600<<10) + `"}`, http.StatusRequestEntityTooLarge},
			} {
				resp, data := b.do(t, "POST", "/api/v1/jobs/replay", hdr(ann.key, tc.contentType), strings.NewReader(tc.body))
				if resp.StatusCode != tc.status {
					t.Errorf("%s body: %d %.200s, want %d", tc.contentType, resp.StatusCode, data, tc.status)
				}
				problemOf(t, resp, data)
			}
		})
	}
}
