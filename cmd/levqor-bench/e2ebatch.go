package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

const (
	// e2eBatchTarget is the end-to-end target on SQLite through batches (issue 18).
	e2eBatchTarget = 10000.0
	// e2eBatchSize is how many jobs each POST /api/v1/intake/batch carries by default.
	e2eBatchSize = 100
)

// batchRequest is POST /api/v1/intake/batch of n copies of intakeBody. An
// answer counts when it is 200 and refused none of them.
func batchRequest(n int) loadRequest {
	items := make([]string, n)
	for i := range items {
		items[i] = `{"job":` + intakeBody + `}`
	}
	return loadRequest{
		method: http.MethodPost,
		path:   "/api/v1/intake/batch",
		header: http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {benchAdminKey}},
		body:   []byte(`{"jobs":[` + strings.Join(items, ",") + `]}`),
		status: http.StatusOK,
		want:   []byte(`"failed":0`), contains: true,
	}
}

// e2eBatchDetails is the -json detail of e2e-batch: both runs of the same bench
// invocation, and the ratio of their completion rates.
type e2eBatchDetails struct {
	Single    e2eResult `json:"single"`
	Batch     e2eResult `json:"batch"`
	BatchSize int       `json:"batch_size"`
	Ratio     float64   `json:"ratio"` // batch completed/s over single completed/s
	// ThroughRatio compares the runs' window jobs from first intake to last
	// succeeded: when batches accept jobs faster than the workers run them, the
	// window's completion rate understates what the batches carried through.
	ThroughRatio float64 `json:"through_ratio"`
}

// runE2EBatch runs e2e on SQLite twice in one invocation, a fresh levqor each
// time: through single intakes (the baseline, as e2e), then through batches of
// o.batchSize jobs; the same window, workers and connections.
func runE2EBatch(ctx context.Context, o options) (outcome, error) {
	var out outcome
	d := e2eBatchDetails{BatchSize: o.batchSize}
	out.Details = &d
	var err error
	fmt.Fprintln(o.out, "single intakes:")
	if d.Single, err = runE2EOn(ctx, o, "sqlite", intakeRequest(), 1, nil); err != nil {
		return out, fmt.Errorf("sqlite, single: %w", err)
	}
	fmt.Fprintf(o.out, "batches of %d:\n", o.batchSize)
	if d.Batch, err = runE2EOn(ctx, o, "sqlite", batchRequest(o.batchSize), o.batchSize, nil); err != nil {
		return out, fmt.Errorf("sqlite, batches: %w", err)
	}
	if d.Single.CompletedPerS > 0 {
		d.Ratio = d.Batch.CompletedPerS / d.Single.CompletedPerS
	}
	if d.Single.ThroughPerS > 0 {
		d.ThroughRatio = d.Batch.ThroughPerS / d.Single.ThroughPerS
	}
	fmt.Fprintf(o.out, "ratio     batches: %.2f× the completed jobs/s of single intakes in the window, %.2f× intake to last succeeded; %.2f× the accepted jobs/s\n",
		d.Ratio, d.ThroughRatio, d.Batch.AcceptedPerS/max(d.Single.AcceptedPerS, 1))
	out.Checks = []check{
		atLeast("e2e sqlite jobs/s through batches", d.Batch.CompletedPerS, "jobs/s", e2eBatchTarget),
		atMost("e2e sqlite batch jobs failed or lost", float64(d.Batch.lost()), "jobs", 0),
	}
	return out, nil
}
