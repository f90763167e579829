package server_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/stepinput"
)

// TestStepInputExpansionBounded: a step input that repeats a reference to a large
// payload value (here ~15 MB once expanded) fails its step invalid_input, naming the
// limit, without retries, instead of making the worker allocate it.
func TestStepInputExpansionBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "bomb@example.com")
	refs := make([]any, 100)
	for i := range refs {
		refs[i] = "{{payload.big}}"
	}
	acc := b.submit(t, ten.key, map[string]any{
		"workflow": "bomb",
		"payload":  map[string]any{"big": strings.Repeat("x", 150<<10)},
		"steps":    []any{step("boom", "core", "echo", map[string]any{"v": refs})},
	})
	j := b.waitStatus(t, ten.key, acc.JobId, "failed", 10*time.Second)
	st := j.Steps[0]
	limit := strconv.Itoa(stepinput.MaxResolvedBytes)
	if st.Status != "failed" || st.Error == nil || st.Error.Code != "invalid_input" || !strings.Contains(st.Error.Message, limit) {
		t.Fatalf("step boom %s, want failed with invalid_input naming the limit %s", mustJSON(t, st), limit)
	}
	if j.Error == nil || j.Error.Code != "invalid_input" || j.Attempts != 1 || st.Output != nil {
		t.Errorf("job error %s after %d attempts, step output %v; want invalid_input after 1 attempt, no output", mustJSON(t, j.Error), j.Attempts, st.Output)
	}
}

// bigEcho is a core.echo step whose output is n copies of the payload's "big" value.
func bigEcho(id string, n int) map[string]any {
	in := map[string]any{}
	for i := range n {
		in["k"+strconv.Itoa(i)] = "{{payload.big}}"
	}
	return step(id, "core", "echo", in)
}

// bigEchoOutput is the output of bigEcho(_, n) over big.
func bigEchoOutput(t *testing.T, big string, n int) []byte {
	out := map[string]string{}
	for i := range n {
		out["k"+strconv.Itoa(i)] = big
	}
	return []byte(mustJSON(t, out))
}

// TestJobOutputsBounded: steps whose outputs are each allowed (under 1 MiB) but
// together would store more than jobs.MaxJobOutputBytes: the step that crosses it
// fails output_too_large, is not retried, and nothing past the bound is stored.
func TestJobOutputsBounded(t *testing.T) {
	t.Parallel()
	// Each step writes the job's growing record (up to 8 MiB); under -race on a loaded
	// machine a 3 s lease was seen to expire between heartbeats, which reruns the job.
	b := setup(t, withAdmin, func(o *testOptions) { o.Lease = 30 * time.Second })
	ten := b.newTenant(t, "outputs@example.com")
	big := strings.Repeat("x", 190<<10)
	const copies, steps = 5, 10
	size := len(bigEchoOutput(t, big, copies))
	var spec []any
	crossing := -1
	for i := range steps {
		spec = append(spec, bigEcho("s"+strconv.Itoa(i), copies))
		stored := (i + 1) * size
		if i == steps-1 {
			stored += size // the last output is the job's result as well
		}
		if crossing < 0 && stored > jobs.MaxJobOutputBytes {
			crossing = i
		}
	}
	if crossing < 1 || crossing == steps-1 {
		t.Fatalf("outputs of %d bytes: step %d crosses the bound; the test wants one in the middle", size, crossing)
	}
	acc := b.submit(t, ten.key, map[string]any{"workflow": "big-outputs", "payload": map[string]any{"big": big}, "max_attempts": 3, "steps": spec})
	j := b.waitStatus(t, ten.key, acc.JobId, "failed", 2*time.Minute)
	stored := 0
	for i, st := range j.Steps {
		switch {
		case i < crossing:
			if st.Status != "succeeded" || st.Output == nil {
				t.Fatalf("step %d: %s, want succeeded with its output (job error %s)", i, st.Status, mustJSON(t, j.Error))
			}
			stored += len(mustJSON(t, st.Output))
		case i == crossing:
			if st.Status != "failed" || st.Error == nil || st.Error.Code != jobs.CodeOutputTooLarge || st.Output != nil ||
				!strings.Contains(st.Error.Message, strconv.Itoa(jobs.MaxJobOutputBytes)) {
				t.Fatalf("step %d: %s, want failed %s naming the bound, without output", i, mustJSON(t, st), jobs.CodeOutputTooLarge)
			}
		default:
			if st.Status != "pending" {
				t.Errorf("step %d after the crossing one: %s, want pending", i, st.Status)
			}
		}
	}
	if j.Error == nil || j.Error.Code != jobs.CodeOutputTooLarge || j.Attempts != 1 || j.Result != nil {
		t.Errorf("job error %s after %d attempts, result set %v; want %s after 1 attempt, no result", mustJSON(t, j.Error), j.Attempts, j.Result != nil, jobs.CodeOutputTooLarge)
	}
	if stored > jobs.MaxJobOutputBytes {
		t.Errorf("the job stores %d bytes of outputs, over %d", stored, jobs.MaxJobOutputBytes)
	}
}

// TestListJobsByteBudget: GET /api/v1/jobs?limit=200 over jobs of ~1.75 MB each returns
// pages that fit jobs.MaxListPageBytes (two jobs), each with a next_cursor, and
// following the cursors returns every job once, newest first.
func TestListJobsByteBudget(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)
	ten := b.newTenant(t, "big-list@example.com")
	big := strings.Repeat("y", 190<<10)
	var want []string
	for range 5 {
		acc := b.submit(t, ten.key, map[string]any{"workflow": "big", "payload": map[string]any{"big": big},
			"steps": []any{bigEcho("e", 4)}})
		b.waitStatus(t, ten.key, acc.JobId, "succeeded", 20*time.Second)
		want = append(want, acc.JobId)
	}
	slices.Reverse(want)

	var got []string
	var pages []int
	p := client.ListJobsParams{Limit: new(int)}
	*p.Limit = 200
	for len(pages) <= len(want) {
		resp, err := b.Client.ListJobsWithResponse(t.Context(), &p, apiKey(ten.key))
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("list jobs: %v %s", err, resp.Body)
		}
		var bytes int
		for _, j := range resp.JSON200.Data {
			got = append(got, j.Id)
			bytes += len(mustJSON(t, j))
		}
		pages = append(pages, len(resp.JSON200.Data))
		if len(resp.JSON200.Data) > 1 && bytes > jobs.MaxListPageBytes {
			t.Errorf("page %d: %d jobs rendering %d bytes, over the budget of %d", len(pages), len(resp.JSON200.Data), bytes, jobs.MaxListPageBytes)
		}
		if resp.JSON200.NextCursor == nil {
			break
		}
		p.Cursor = resp.JSON200.NextCursor
	}
	if !slices.Equal(pages, []int{2, 2, 1}) || !slices.Equal(got, want) {
		t.Errorf("pages of %v jobs walking %q; want [2 2 1] walking each job once, newest first: %q", pages, got, want)
	}
}
