package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/workflow"
)

func toAPIJob(j jobs.Job) api.Job {
	out := api.Job{
		Id: j.ID, OwnerId: j.OwnerID, Workflow: j.Workflow, Status: api.JobStatus(j.Status),
		Priority: api.Priority(jobs.PriorityName(j.Priority)), Attempts: j.Attempts, MaxAttempts: j.MaxAttempts,
		TimeoutS: j.TimeoutS, Payload: j.Payload, RunAt: j.RunAt, CostUsd: ptr(j.CostUSD()), CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
		StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, Steps: make([]api.StepState, len(j.Steps)),
		Callbacks: make([]api.CallbackAttempt, len(j.Callbacks)),
	}
	if len(out.Payload) == 0 {
		out.Payload = json.RawMessage("{}")
	}
	if j.Result != nil {
		out.Result = &j.Result
	}
	if j.ErrorCode != "" {
		out.Error = &api.StepError{Code: j.ErrorCode, Message: j.ErrorMessage}
	}
	if j.CallbackURL != "" {
		out.CallbackUrl = &j.CallbackURL
	}
	if len(j.Guardrails) > 0 {
		out.Guardrails = &j.Guardrails
	}
	if j.DryRun {
		out.DryRun = ptr(true)
	}
	out.ReplayOf = nonEmpty(j.ReplayOf)
	for i, st := range j.Steps {
		s := api.StepState{Id: st.ID, Connector: st.Connector, Action: st.Action, Status: api.StepStateStatus(st.Status),
			Attempts: st.Attempts, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, WaitUntil: st.WaitUntil}
		if st.CostUSD > 0 {
			s.CostUsd = ptr(st.CostUSD)
		}
		if len(st.Input) > 0 {
			s.Input = &st.Input
		}
		if st.Output != nil {
			s.Output = &st.Output
		}
		if st.ResolvedInput != nil {
			s.ResolvedInput = &st.ResolvedInput
		}
		if st.Reused {
			s.Reused = ptr(true)
		}
		if st.Error != nil {
			s.Error = &api.StepError{Code: st.Error.Code, Message: st.Error.Message}
		}
		graphState(&s, st)
		out.Steps[i] = s
	}
	for i, c := range j.Callbacks {
		a := api.CallbackAttempt{Attempt: c.Attempt, At: c.At}
		if c.StatusCode != 0 {
			a.StatusCode = &c.StatusCode
		}
		if c.Error != "" {
			a.Error = &c.Error
		}
		out.Callbacks[i] = a
	}
	return out
}

// EncodeJob renders a job as GET /api/v1/jobs/{id} does; completion webhooks send it.
func EncodeJob(j jobs.Job) ([]byte, error) { return json.Marshal(toAPIJob(j)) }

// graphState adds a step's graph fields and iterations to its API form.
func graphState(s *api.StepState, st jobs.StepState) {
	if st.Needs != nil {
		s.Needs = st.Needs
	}
	s.If, s.ForEach = nonEmpty(st.If), nonEmpty(st.ForEach)
	if st.ContinueOnError {
		s.ContinueOnError = ptr(true)
	}
	if st.OnFailure {
		s.OnFailure = ptr(true)
	}
	if st.Iterations != nil {
		its := make([]api.StepIteration, len(st.Iterations))
		for k, it := range st.Iterations {
			its[k] = api.StepIteration{Index: it.Index, Status: api.StepIterationStatus(it.Status), Attempts: it.Attempts,
				StartedAt: it.StartedAt, FinishedAt: it.FinishedAt}
			if it.Error != nil {
				its[k].Error = &api.StepError{Code: it.Error.Code, Message: it.Error.Message}
			}
		}
		s.Iterations = &its
	}
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toJobStep(s api.StepSpec) jobs.Step {
	out := jobs.Step{ID: s.Id, Connector: s.Connector, Action: s.Action, Needs: s.Needs}
	if s.Input != nil {
		out.Input = *s.Input
	}
	if s.If != nil {
		out.If = *s.If
	}
	if s.ForEach != nil {
		out.ForEach = *s.ForEach
	}
	if s.MaxConcurrency != nil {
		out.MaxConcurrency = *s.MaxConcurrency
	}
	if s.Retry != nil {
		out.Retry = &jobs.Retry{Attempts: s.Retry.Attempts}
		if s.Retry.BackoffS != nil {
			out.Retry.BackoffS = *s.Retry.BackoffS
		}
	}
	if s.ContinueOnError != nil {
		out.ContinueOnError = *s.ContinueOnError
	}
	return out
}

func toJobSteps(in []api.StepSpec) []jobs.Step {
	out := make([]jobs.Step, len(in))
	for i, s := range in {
		out[i] = toJobStep(s)
	}
	return out
}

func toOnFailure(in *api.OnFailureStep) *jobs.Step {
	if in == nil {
		return nil
	}
	s := toJobStep(*in)
	return &s
}

func toAPIStep(s jobs.Step) api.StepSpec {
	out := api.StepSpec{Id: s.ID, Connector: s.Connector, Action: s.Action, Needs: s.Needs,
		If: nonEmpty(s.If), ForEach: nonEmpty(s.ForEach)}
	if len(s.Input) > 0 {
		in := s.Input
		out.Input = &in
	}
	if s.MaxConcurrency > 0 {
		out.MaxConcurrency = ptr(s.MaxConcurrency)
	}
	if s.Retry != nil {
		out.Retry = &api.StepRetry{Attempts: s.Retry.Attempts}
		if s.Retry.BackoffS > 0 {
			out.Retry.BackoffS = ptr(s.Retry.BackoffS)
		}
	}
	if s.ContinueOnError {
		out.ContinueOnError = ptr(true)
	}
	return out
}

// toAPISteps converts a workflow's stored steps: the steps, each with its needs
// (given, or the step before: the graph made explicit), and its on_failure step.
func toAPISteps(in []jobs.Step) ([]api.StepSpec, *api.OnFailureStep) {
	out := make([]api.StepSpec, 0, len(in))
	var onFailure *api.OnFailureStep
	for i, s := range in {
		if s.OnFailure {
			of := toAPIStep(s)
			onFailure = &of
			continue
		}
		st := toAPIStep(s)
		if st.Needs == nil {
			needs := []string{}
			if i > 0 {
				needs = append(needs, in[i-1].ID)
			}
			st.Needs = &needs
		}
		out = append(out, st)
	}
	return out, onFailure
}

// IntakeJob implements api.StrictServerInterface.
func (s *handlers) IntakeJob(ctx context.Context, req api.IntakeJobRequestObject) (api.IntakeJobResponseObject, error) {
	in, err := toIntake(req.Body)
	if err != nil {
		return nil, err
	}
	if req.Params.IdempotencyKey != nil {
		in.IdempotencyKey = *req.Params.IdempotencyKey
		in.BodyHash = requestBodyHash(ctx)
	}
	if err := s.takePlanIntake(ctx, principalFrom(ctx), 1); err != nil {
		return nil, err
	}
	j, _, err := s.jobs.Submit(ctx, principalFrom(ctx), in)
	if err != nil {
		return nil, err
	}
	loc := "/api/v1/jobs/" + j.ID
	if j.DryRun {
		acc := toJobAccepted(j)
		body := api.JobDryRun{JobId: acc.JobId, Status: acc.Status, Workflow: acc.Workflow, CreatedAt: acc.CreatedAt, RunAt: acc.RunAt,
			DryRun: true, Job: toAPIJob(j)}
		return api.IntakeJob200JSONResponse{Body: body, Headers: api.IntakeJob200ResponseHeaders{Location: &loc}}, nil
	}
	return api.IntakeJob202JSONResponse{
		Body:    toJobAccepted(j),
		Headers: api.IntakeJob202ResponseHeaders{Location: &loc},
	}, nil
}

func toJobAccepted(j jobs.Job) api.JobAccepted {
	return api.JobAccepted{JobId: j.ID, Status: api.JobStatus(j.Status), Workflow: j.Workflow, CreatedAt: j.CreatedAt, RunAt: j.RunAt}
}

// toIntake converts an intake body (of POST /api/v1/intake, or one job of a batch).
func toIntake(b *api.JobIntake) (jobs.Intake, error) {
	in := jobs.Intake{Workflow: b.Workflow, Payload: b.Payload, RunAt: b.RunAt}
	if b.Steps != nil {
		in.Steps = toJobSteps(*b.Steps)
		in.OnFailure = toOnFailure(b.OnFailure)
	} else if b.OnFailure != nil {
		msg := "on_failure comes with steps; a saved workflow carries its own."
		return jobs.Intake{}, &levqor.Error{Code: levqor.EUnprocessable, Message: msg, Fields: []levqor.FieldError{{Pointer: "/on_failure", Detail: msg}}}
	}
	if b.Priority != nil {
		in.Priority = string(*b.Priority)
	}
	if b.MaxAttempts != nil {
		in.MaxAttempts = *b.MaxAttempts
	}
	if b.TimeoutS != nil {
		in.TimeoutS = *b.TimeoutS
	}
	if b.CallbackUrl != nil {
		in.CallbackURL = *b.CallbackUrl
	}
	if b.Guardrails != nil {
		in.Guardrails, _ = json.Marshal(b.Guardrails)
	}
	if b.DryRun != nil {
		in.DryRun = *b.DryRun
	}
	return in, nil
}

// IntakeJobBatch implements api.StrictServerInterface: per-item results (see the
// spec and docs/adr/0019-batch-intake.md). Each job counts once against the plan's
// jobs per minute, refused or not, as single intakes do.
func (s *handlers) IntakeJobBatch(ctx context.Context, req api.IntakeJobBatchRequestObject) (api.IntakeJobBatchResponseObject, error) {
	items := req.Body.Jobs
	if len(items) > jobs.MaxBatch { // the spec says so too; this holds without the validator
		return nil, &levqor.Error{Code: levqor.EInvalid, Message: fmt.Sprintf("A batch has at most %d jobs.", jobs.MaxBatch),
			Fields: []levqor.FieldError{{Pointer: "/jobs", Detail: fmt.Sprintf("at most %d items", jobs.MaxBatch)}}}
	}
	p := principalFrom(ctx)
	if err := s.takePlanIntake(ctx, p, len(items)); err != nil {
		return nil, err
	}
	ins := make([]jobs.Intake, 0, len(items))
	at := make([]int, 0, len(items)) // the slot of ins[k]
	results := make([]api.JobBatchItemResult, len(items))
	for i, it := range items {
		in, err := toIntake(&it.Job)
		if err != nil {
			results[i] = itemProblem(ctx, i, err)
			continue
		}
		if it.IdempotencyKey != nil {
			// The fingerprint of an item is its job as decoded and encoded again: the
			// request's bytes are those of the whole batch.
			raw, err := json.Marshal(it.Job)
			if err != nil {
				return nil, fmt.Errorf("fingerprint job %d: %w", i, err)
			}
			in.IdempotencyKey, in.BodyHash = *it.IdempotencyKey, jobs.HashBody(raw)
		}
		ins, at = append(ins, in), append(at, i)
	}
	done, err := s.jobs.SubmitBatch(ctx, p, ins)
	if err != nil {
		return nil, err
	}
	out := api.JobBatchResult{Results: results}
	for k, d := range done {
		i := at[k]
		switch {
		case d.Err != nil:
			results[i] = itemProblem(ctx, i, d.Err)
		case d.Inserted:
			results[i] = api.JobBatchItemResult{Status: http.StatusAccepted, Job: ptr(toJobAccepted(d.Job))}
		default:
			results[i] = api.JobBatchItemResult{Status: http.StatusOK, Job: ptr(toJobAccepted(d.Job))}
		}
	}
	for _, r := range results {
		if r.Job != nil {
			out.Accepted++
		} else {
			out.Failed++
		}
	}
	return batchResponse(out), nil
}

// batchResponse is the 200 of a batch with a Content-Length: the body is encoded
// whole first anyway, and a client then reads it without chunked decoding.
type batchResponse api.JobBatchResult

func (r batchResponse) VisitIntakeJobBatchResponse(w http.ResponseWriter) error {
	body, err := json.Marshal(api.JobBatchResult(r))
	if err != nil {
		return fmt.Errorf("encode batch result: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return err
}

// itemProblem is the problem of item i of a batch, its pointers made relative to
// the batch's body.
func itemProblem(ctx context.Context, i int, err error) api.JobBatchItemResult {
	prefix := fmt.Sprintf("/jobs/%d/job", i)
	var e *levqor.Error
	if errors.As(err, &e) && len(e.Fields) > 0 {
		c := *e
		c.Fields = make([]levqor.FieldError, len(e.Fields))
		for k, f := range e.Fields {
			c.Fields[k] = levqor.FieldError{Pointer: prefix + f.Pointer, Detail: f.Detail}
		}
		err = &c
	}
	p := problemOf(err, "/api/v1/intake/batch", requestInfoFrom(ctx))
	return api.JobBatchItemResult{Status: p.Status, Problem: &p}
}

// GetJob implements api.StrictServerInterface.
func (s *handlers) GetJob(ctx context.Context, req api.GetJobRequestObject) (api.GetJobResponseObject, error) {
	j, err := s.jobs.Get(ctx, principalFrom(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetJob200JSONResponse(toAPIJob(j)), nil
}

// ListJobs implements api.StrictServerInterface.
func (s *handlers) ListJobs(ctx context.Context, req api.ListJobsRequestObject) (api.ListJobsResponseObject, error) {
	p := req.Params
	q := jobs.ListQuery{CreatedAfter: p.CreatedAfter, CreatedBefore: p.CreatedBefore}
	if p.Status != nil {
		q.Status = string(*p.Status)
	}
	if p.Workflow != nil {
		q.Workflow = *p.Workflow
	}
	if p.Limit != nil {
		q.Limit = *p.Limit
	}
	if p.Cursor != nil {
		q.Cursor = *p.Cursor
	}
	list, next, err := s.jobs.List(ctx, principalFrom(ctx), q)
	if err != nil {
		return nil, err
	}
	out := api.ListJobs200JSONResponse{Data: make([]api.Job, len(list))}
	for i, j := range list {
		out.Data[i] = toAPIJob(j)
	}
	if next != "" {
		out.NextCursor = &next
	}
	return out, nil
}

// CancelJob implements api.StrictServerInterface.
func (s *handlers) CancelJob(ctx context.Context, req api.CancelJobRequestObject) (api.CancelJobResponseObject, error) {
	j, err := s.jobs.Cancel(ctx, principalFrom(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.CancelJob200JSONResponse(toAPIJob(j)), nil
}

// SignalJob implements api.StrictServerInterface.
func (s *handlers) SignalJob(ctx context.Context, req api.SignalJobRequestObject) (api.SignalJobResponseObject, error) {
	var data json.RawMessage
	if req.Body != nil {
		data = json.RawMessage(*req.Body)
	}
	j, err := s.jobs.Signal(ctx, principalFrom(ctx), req.Id, req.Name, data)
	if err != nil {
		return nil, err
	}
	return api.SignalJob200JSONResponse(toAPIJob(j)), nil
}

// PutWorkflow implements api.StrictServerInterface.
func (s *handlers) PutWorkflow(ctx context.Context, req api.PutWorkflowRequestObject) (api.PutWorkflowResponseObject, error) {
	desc := ""
	if req.Body.Description != nil {
		desc = *req.Body.Description
	}
	w, err := s.jobs.PutWorkflow(ctx, principalFrom(ctx), req.Name, desc, toJobSteps(req.Body.Steps), toOnFailure(req.Body.OnFailure))
	if err != nil {
		return nil, err
	}
	return api.PutWorkflow200JSONResponse(toAPIWorkflow(w)), nil
}

func toAPIWorkflow(w jobs.Workflow) api.Workflow {
	steps, onFailure := toAPISteps(w.Steps)
	out := api.Workflow{Name: w.Name, Steps: steps, OnFailure: onFailure, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if w.Description != "" {
		out.Description = &w.Description
	}
	return out
}

// GetWorkflow implements api.StrictServerInterface.
func (s *handlers) GetWorkflow(ctx context.Context, req api.GetWorkflowRequestObject) (api.GetWorkflowResponseObject, error) {
	w, err := s.jobs.GetWorkflow(ctx, principalFrom(ctx), req.Name)
	if err != nil {
		return nil, err
	}
	if f := req.Params.Format; f != nil && *f == api.Mermaid {
		g, err := workflow.Parse(w.Steps, "/steps")
		if err != nil {
			return nil, fmt.Errorf("draw workflow %q: %w", w.Name, err)
		}
		return api.GetWorkflow200TextResponse(g.Mermaid()), nil
	}
	return api.GetWorkflow200JSONResponse(toAPIWorkflow(w)), nil
}

// ListWorkflows implements api.StrictServerInterface.
func (s *handlers) ListWorkflows(ctx context.Context, _ api.ListWorkflowsRequestObject) (api.ListWorkflowsResponseObject, error) {
	list, err := s.jobs.ListWorkflows(ctx, principalFrom(ctx))
	if err != nil {
		return nil, err
	}
	out := api.ListWorkflows200JSONResponse{Data: make([]api.Workflow, len(list))}
	for i, w := range list {
		out.Data[i] = toAPIWorkflow(w)
	}
	return out, nil
}

// DeleteWorkflow implements api.StrictServerInterface.
func (s *handlers) DeleteWorkflow(ctx context.Context, req api.DeleteWorkflowRequestObject) (api.DeleteWorkflowResponseObject, error) {
	if err := s.jobs.DeleteWorkflow(ctx, principalFrom(ctx), req.Name); err != nil {
		return nil, err
	}
	return api.DeleteWorkflow204Response{}, nil
}

// ListConnectors implements api.StrictServerInterface.
func (s *handlers) ListConnectors(ctx context.Context, _ api.ListConnectorsRequestObject) (api.ListConnectorsResponseObject, error) {
	cat := s.jobs.Catalogue()
	out := api.ListConnectors200JSONResponse{}
	for _, c := range cat {
		entry := struct {
			Actions           []api.ConnectorAction `json:"actions"`
			CredentialFields  *[]string             `json:"credential_fields,omitempty"`
			CredentialHeaders *bool                 `json:"credential_headers,omitempty"`
			Name              string                `json:"name"`
		}{Name: c.Connector}
		if len(c.CredentialFields) > 0 {
			entry.CredentialFields = &c.CredentialFields
		}
		if c.CredentialHeaders {
			entry.CredentialHeaders = ptr(true)
		}
		for _, a := range c.Actions {
			action := api.ConnectorAction{Name: a.Name, Description: a.Description, InputSchema: a.InputSchema}
			if len(a.OutputSchema) > 0 {
				action.OutputSchema = &a.OutputSchema
			}
			entry.Actions = append(entry.Actions, action)
		}
		out.Data = append(out.Data, entry)
	}
	return out, nil
}

// GetWebhookSecret implements api.StrictServerInterface.
func (s *handlers) GetWebhookSecret(ctx context.Context, _ api.GetWebhookSecretRequestObject) (api.GetWebhookSecretResponseObject, error) {
	sec, err := s.jobs.WebhookSecret(ctx, principalFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.GetWebhookSecret200JSONResponse{Secret: sec.Secret, CreatedAt: sec.CreatedAt}, nil
}

// RollWebhookSecret implements api.StrictServerInterface.
func (s *handlers) RollWebhookSecret(ctx context.Context, _ api.RollWebhookSecretRequestObject) (api.RollWebhookSecretResponseObject, error) {
	sec, err := s.jobs.RollWebhookSecret(ctx, principalFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.RollWebhookSecret200JSONResponse{Secret: sec.Secret, CreatedAt: sec.CreatedAt}, nil
}
