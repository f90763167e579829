package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/planner"
)

// workflowContract is what PUT /api/v1/workflows/{name} accepts, from the spec: its
// body's schema as JSON Schema (for the model's answer schema), and a check of a
// document against it by the validator and the NUL rule REST requests pass, with
// the REST validator's messages.
func workflowContract(spec *openapi3.T) (planner.Contract, error) {
	so := operationsByID(spec)["putworkflow"]
	if so.op == nil || so.op.RequestBody == nil || so.op.RequestBody.Value == nil {
		return planner.Contract{}, errors.New("the spec has no putWorkflow body")
	}
	media := so.op.RequestBody.Value.Content.Get("application/json")
	if media == nil || media.Schema == nil || media.Schema.Value == nil {
		return planner.Contract{}, errors.New("putWorkflow's body has no JSON schema")
	}
	body := media.Schema.Value
	schema, err := toJSONSchema(body, true)
	if err != nil {
		return planner.Contract{}, fmt.Errorf("putWorkflow body: %w", err)
	}
	check := func(doc any) []levqor.FieldError {
		var out []levqor.FieldError
		if err := body.VisitJSON(doc, openapi3.MultiErrors(), openapi3.VisitAsRequest()); err != nil {
			var me openapi3.MultiError
			if !errors.As(err, &me) {
				me = openapi3.MultiError{err}
			}
			for _, e := range me {
				out = append(out, schemaFieldError("", e))
			}
		}
		for _, p := range nulText(body, doc, "") {
			out = append(out, levqor.FieldError{Pointer: p, Detail: nulDetail})
		}
		return out
	}
	return planner.Contract{Schema: schema, Check: check}, nil
}

// PlanWorkflow implements api.StrictServerInterface.
func (s *handlers) PlanWorkflow(ctx context.Context, req api.PlanWorkflowRequestObject) (api.PlanWorkflowResponseObject, error) {
	if s.planner == nil {
		return nil, levqor.Errorf(levqor.EUnavailable, "Planning is not configured on this server.")
	}
	in := planner.Request{Description: req.Body.Description}
	if c := req.Body.Constraints; c != nil {
		if c.Connectors != nil {
			in.Connectors = *c.Connectors
		}
		in.MaxCostUSD = c.MaxCostUsd
	}
	plan, err := s.planner.Plan(ctx, principalFrom(ctx), in)
	if err != nil {
		return nil, err
	}
	return api.PlanWorkflow200JSONResponse(toAPIPlan(plan)), nil
}

// toAPIPlan is the response: the workflow exactly as PUT takes it (needs only where a
// step does not simply follow the one before, as the model's answer was normalised).
func toAPIPlan(p planner.Plan) api.WorkflowPlan {
	out := api.WorkflowPlan{
		EstimatedCostUsd: p.EstimatedCostUSD,
		Planning:         api.PlanningCall{Model: p.Model, Calls: p.Calls, CostUsd: p.CostUSD},
		Validation: api.PlanValidation{Valid: true, Repairs: p.Repairs, Deferred: append([]string{}, p.Deferred...),
			Repaired: make([]struct {
				Detail  string `json:"detail"`
				Pointer string `json:"pointer"`
			}, len(p.Repaired))},
		Reasons: make([]struct {
			Reason string `json:"reason"`
			Step   string `json:"step"`
		}, len(p.Reasons)),
		Workflow: api.WorkflowPut{Steps: make([]api.StepSpec, len(p.Steps))},
	}
	for i, v := range p.Repaired {
		out.Validation.Repaired[i].Pointer, out.Validation.Repaired[i].Detail = v.Pointer, v.Detail
	}
	for i, r := range p.Reasons {
		out.Reasons[i].Step, out.Reasons[i].Reason = r.Step, r.Reason
	}
	for i, st := range p.Steps {
		out.Workflow.Steps[i] = toAPIStep(st)
	}
	if d := strings.TrimSpace(p.Description); d != "" {
		out.Workflow.Description = &d
	}
	return out
}
