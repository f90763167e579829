package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/workflow"
)

// A replay (docs/adr/0021-dry-run-and-replay.md) is a new job, linked to a finished
// one by ReplayOf, that runs its recorded steps again with its payload (or another).
// Replayed from a step, the steps before it — its ancestors in the graph — keep the
// outcome the original recorded (Reused) and are not run.

// Bounds of a bulk replay (ReplayMany, POST /api/v1/jobs/replay).
const (
	MaxBulkReplay     = 1000 // jobs one call replays at most
	DefaultBulkReplay = 100  // when the call sets no limit
	// bulkReplayChunk bounds how many replays are stored in one transaction; a
	// chunk also ends once its jobs' stored size passes MaxListPageBytes.
	bulkReplayChunk = 100
)

// bulkReplayScope is the idempotency scope of the replays ReplayMany makes, keyed
// by the original's id: concurrent calls replay each job once.
const bulkReplayScope = "bulk-replay"

// Replay asks for a replay of a job.
type Replay struct {
	FromStep string          // "": every step runs again
	Payload  json.RawMessage // nil: the original's
	// IdempotencyKey, when set, makes the replay idempotent per API key; BodyHash
	// (the job's id with the request body) tells a repeat from another request.
	IdempotencyKey string
	BodyHash       string
}

// Replay stores a replay of job id, visible to p. It reports created=false when an
// idempotency key repeats an earlier replay (whose job it returns). Errors:
// levqor.ENotFound (no such job for p), levqor.EConflict (not finished, or a dry
// run), levqor.EUnprocessable (from_step, or the job's steps no longer valid),
// levqor.EInvalid (payload), levqor.EBudgetExceeded.
func (s *Service) Replay(ctx context.Context, p keys.Principal, id string, r Replay) (Job, bool, error) {
	orig, err := s.visible(ctx, p, id)
	if err != nil {
		return Job{}, false, err
	}
	j, _, err := s.replayOf(ctx, p, orig, r, 0)
	if err != nil {
		return Job{}, false, err
	}
	return s.enqueue(ctx, j)
}

// replayOf builds a replay of orig for p, not yet stored, and returns its AI worst
// case (the steps that run again), which must fit the budget with aiBefore.
func (s *Service) replayOf(ctx context.Context, p keys.Principal, orig Job, r Replay, aiBefore budget.Nanos) (Job, budget.Nanos, error) {
	if orig.DryRun {
		return Job{}, 0, levqor.Errorf(levqor.EConflict, "The job is a dry run: its outputs are examples. Submit it again without dry_run.")
	}
	if !Terminal(orig.Status) {
		return Job{}, 0, levqor.Errorf(levqor.EConflict, "The job has not finished (it is %s); replay it once it has, or cancel it first.", orig.Status)
	}
	payload := orig.Payload
	if r.Payload != nil {
		if len(r.Payload) > MaxPayloadBytes {
			return Job{}, 0, invalid("/payload", "payload is larger than %d bytes serialised.", MaxPayloadBytes)
		}
		payload = r.Payload
	}
	specs := make([]Step, len(orig.Steps))
	for i, st := range orig.Steps {
		specs[i] = st.Step
	}
	if err := s.ValidateSteps(specs, "/steps"); err != nil {
		return Job{}, 0, levqor.Errorf(levqor.EUnprocessable, "The job's steps are no longer valid, so it cannot be replayed: %s", levqor.ErrorMessage(err))
	}
	reuse, err := reusedSteps(orig, specs, r.FromStep)
	if err != nil {
		return Job{}, 0, err
	}
	var run []Step // the steps that run again: their AI calls must fit the budget
	for i, st := range specs {
		if !reuse[i] {
			run = append(run, st)
		}
	}
	need, err := s.fitBudget(ctx, orig.OwnerID, run, aiBefore)
	if err != nil {
		return Job{}, 0, err
	}
	if err := s.checkCallback(orig.CallbackURL); err != nil {
		return Job{}, 0, err
	}
	now := s.now().UTC()
	j := Job{
		ID: levqor.NewID("job"), OwnerID: orig.OwnerID, Workflow: orig.Workflow, Status: StatusQueued, Priority: orig.Priority,
		RunAt: now, MaxAttempts: orig.MaxAttempts, TimeoutS: orig.TimeoutS, Payload: payload, Guardrails: orig.Guardrails,
		CallbackURL: orig.CallbackURL, CreatedAt: now, UpdatedAt: now, ReplayOf: orig.ID,
		Steps: make([]StepState, len(specs)),
	}
	for i, st := range specs {
		j.Steps[i] = StepState{Step: st, Status: StepPending}
		if reuse[i] {
			was := orig.Steps[i]
			j.Steps[i].Status, j.Steps[i].Output, j.Steps[i].Reused = was.Status, was.Output, true
		}
	}
	if r.IdempotencyKey != "" {
		j.IdemScope, j.IdemKey, j.IdemHash = idemScope(p), r.IdempotencyKey, r.BodyHash
	}
	return j, need, nil
}

// reusedSteps says which steps of a replay of orig from step from keep the
// original's outcome: from's ancestors (workflow.Graph.Ancestor: the steps it
// needs, and theirs) that the original recorded as succeeded or skipped. Without
// from, none. from must name a step of the job other than its on_failure step.
func reusedSteps(orig Job, specs []Step, from string) ([]bool, error) {
	reuse := make([]bool, len(specs))
	if from == "" {
		return reuse, nil
	}
	at := -1
	for i, st := range specs {
		if st.ID == from && !st.OnFailure {
			at = i
		}
	}
	if at < 0 {
		return nil, refuse("/from_step", "The job has no step %q to replay from.", from)
	}
	g, err := workflow.Parse(specs, "/steps")
	if err != nil { // ValidateSteps passed
		return nil, err
	}
	for k, st := range orig.Steps {
		reuse[k] = k != at && g.Ancestor(at, k) && (st.Status == StepSucceeded || st.Status == StepSkipped)
	}
	return reuse, nil
}

// BulkReplay selects the jobs ReplayMany replays: finished jobs of one Status
// (StatusFailed when ""), optionally of one workflow and created in [After,
// Before), at most Limit (1 to MaxBulkReplay; 0: DefaultBulkReplay), each from
// FromStep ("": from the start).
type BulkReplay struct {
	Status, Workflow string
	After, Before    *time.Time
	Limit            int
	FromStep         string
}

// Replayed is one result of ReplayMany: the original's id and its replay
// (Inserted false: a concurrent call made it), or Err, the client error that
// refused it.
type Replayed struct {
	Of       string
	Job      Job
	Inserted bool
	Err      error
}

// ReplayMany replays p's finished jobs that q selects, oldest first, that are not
// dry runs and have no replay yet; more reports that others match. admit is called
// once with the number of jobs selected, before any is replayed (the plan's jobs per
// minute): its error refuses the whole call. Each job is replayed as Replay would
// (its owner's AI budget checked cumulatively over the call) or refused in its slot;
// replays are stored in chunks, so that memory stays bounded however large the jobs.
func (s *Service) ReplayMany(ctx context.Context, p keys.Principal, q BulkReplay, admit func(n int) error) (out []Replayed, more bool, err error) {
	if q.Limit == 0 {
		q.Limit = DefaultBulkReplay
	}
	if q.Limit < 0 || q.Limit > MaxBulkReplay {
		return nil, false, invalid("/limit", "limit is 1 to %d.", MaxBulkReplay)
	}
	if q.Status == "" {
		q.Status = StatusFailed
	}
	if !Terminal(q.Status) {
		return nil, false, invalid("/status", "Only finished jobs (succeeded, failed, canceled) can be replayed.")
	}
	f := ListFilter{AllOwners: p.Admin(), OwnerID: p.OwnerID, Status: q.Status, Workflow: q.Workflow, Limit: q.Limit + 1}
	if q.After != nil {
		f.CreatedAfter = q.After.UTC()
	}
	if q.Before != nil {
		f.CreatedBefore = q.Before.UTC()
	}
	ids, err := s.store.ReplayCandidates(ctx, f)
	if err != nil {
		return nil, false, err
	}
	if more = len(ids) > q.Limit; more {
		ids = ids[:q.Limit]
	}
	if len(ids) == 0 {
		return nil, more, nil
	}
	if err := admit(len(ids)); err != nil {
		return nil, false, err
	}
	out = make([]Replayed, len(ids))
	need := map[string]budget.Nanos{} // the AI worst case accepted so far, by owner
	var chunk []Job
	var at []int // the slot of chunk[k]
	var size int64
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		stored, err := s.insertJobs(ctx, chunk)
		if err != nil {
			return fmt.Errorf("insert replays: %w", err)
		}
		for k, r := range stored {
			out[at[k]].Job, out[at[k]].Inserted = r.Job, r.Inserted
		}
		chunk, at, size = chunk[:0], at[:0], 0
		return nil
	}
	for i, id := range ids {
		out[i].Of = id
		orig, err := s.store.GetJob(ctx, id)
		if err == nil {
			var j Job
			var n budget.Nanos
			if j, n, err = s.replayOf(ctx, p, orig, Replay{FromStep: q.FromStep}, need[orig.OwnerID]); err == nil {
				need[orig.OwnerID] += n
				j.IdemScope, j.IdemKey, j.IdemHash = bulkReplayScope, orig.ID, bulkReplayScope
				chunk, at = append(chunk, j), append(at, i)
				size += orig.StoredBytes
			}
		}
		if err != nil {
			if !isClientError(err) && levqor.ErrorCode(err) != levqor.EConflict {
				return nil, false, err
			}
			out[i].Err = err // deleted, finished no more, or refused
			continue
		}
		if len(chunk) >= bulkReplayChunk || size >= MaxListPageBytes {
			if err := flush(); err != nil {
				return nil, false, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, false, err
	}
	return out, more, nil
}
