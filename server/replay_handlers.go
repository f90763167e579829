package server

import (
	"context"
	"net/http"

	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/jobs"
)

// ReplayJob implements api.StrictServerInterface: a new job replaying a finished
// one (docs/adr/0021-dry-run-and-replay.md), 202, or 200 for an idempotent repeat.
func (s *handlers) ReplayJob(ctx context.Context, req api.ReplayJobRequestObject) (api.ReplayJobResponseObject, error) {
	r := jobs.Replay{}
	if b := req.Body; b != nil {
		if b.FromStep != nil {
			r.FromStep = *b.FromStep
		}
		if b.Payload != nil {
			r.Payload = *b.Payload
		}
	}
	if req.Params.IdempotencyKey != nil {
		// The job's id is part of the fingerprint: an empty body is the same for
		// every job, and one key must not replay two of them.
		r.IdempotencyKey = *req.Params.IdempotencyKey
		r.BodyHash = jobs.HashBody([]byte("replay " + req.Id + "\n" + requestBodyHash(ctx)))
	}
	p := principalFrom(ctx)
	if err := s.takePlanIntake(ctx, p, 1); err != nil {
		return nil, err
	}
	j, created, err := s.jobs.Replay(ctx, p, req.Id, r)
	if err != nil {
		return nil, err
	}
	loc := "/api/v1/jobs/" + j.ID
	if !created {
		return api.ReplayJob200JSONResponse{Body: toAPIJob(j), Headers: api.ReplayJob200ResponseHeaders{Location: &loc}}, nil
	}
	return api.ReplayJob202JSONResponse{Body: toAPIJob(j), Headers: api.ReplayJob202ResponseHeaders{Location: &loc}}, nil
}

// ReplayJobs implements api.StrictServerInterface: the bulk replay, per-job results.
// Each replay counts against the plan's jobs per minute, as intakes do.
func (s *handlers) ReplayJobs(ctx context.Context, req api.ReplayJobsRequestObject) (api.ReplayJobsResponseObject, error) {
	b := req.Body
	q := jobs.BulkReplay{After: b.CreatedAfter, Before: b.CreatedBefore}
	if b.Status != nil {
		q.Status = string(*b.Status)
	}
	if b.Workflow != nil {
		q.Workflow = *b.Workflow
	}
	if b.Limit != nil {
		q.Limit = *b.Limit
	}
	if b.FromStep != nil {
		q.FromStep = *b.FromStep
	}
	p := principalFrom(ctx)
	done, more, err := s.jobs.ReplayMany(ctx, p, q, func(n int) error { return s.takePlanIntake(ctx, p, n) })
	if err != nil {
		return nil, err
	}
	out := api.ReplayJobs200JSONResponse{More: more, Results: make([]api.JobBulkReplayItem, len(done))} // [] when none, never null
	for i, d := range done {
		item := api.JobBulkReplayItem{ReplayOf: d.Of}
		switch {
		case d.Err != nil:
			pr := problemOf(d.Err, "/api/v1/jobs/replay", requestInfoFrom(ctx))
			item.Status, item.Problem = pr.Status, &pr
			out.Failed++
		default:
			item.Status, item.Job = http.StatusAccepted, ptr(toJobAccepted(d.Job))
			if !d.Inserted {
				item.Status = http.StatusOK
			}
			out.Replayed++
		}
		out.Results[i] = item
	}
	return out, nil
}
