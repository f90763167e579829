package planner

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/stepinput"
	"github.com/levqor/levqor/workflow"
)

// base is where violations point: the proposed workflow, the response's `workflow`.
const base = "/workflow"

// proposal is an answer that passed every check.
type proposal struct {
	description string
	steps       []workflow.Step
	reasons     []Reason
	costUSD     float64
	deferred    []string
}

// check reads a model's answer and checks it as PUT /api/v1/workflows/{name} would —
// the API's schema (the contract), then the workflow's rules (ValidateSteps) — and
// against the request's constraints. Violations point into the workflow (base/…); an
// error is a fault of the server, not of the answer.
func (p *Planner) check(content, finishReason string, req Request, allowed map[string]bool) (proposal, []levqor.FieldError, error) {
	doc, reasons, vs := parseAnswer(content, finishReason)
	if doc == nil {
		return proposal{}, vs, nil
	}
	for _, v := range p.contract.Check(doc) {
		vs = append(vs, levqor.FieldError{Pointer: base + v.Pointer, Detail: v.Detail})
	}
	if len(vs) > 0 {
		return proposal{}, vs, nil
	}
	var wf struct {
		Description string          `json:"description"`
		Steps       []workflow.Step `json:"steps"`
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return proposal{}, nil, fmt.Errorf("encode the answer again: %w", err)
	}
	if err := json.Unmarshal(raw, &wf); err != nil { // the schema passed: only a number a Go field cannot hold
		return proposal{}, []levqor.FieldError{{Pointer: base, Detail: "A value does not fit its field (a whole number is expected)."}}, nil
	}
	for i, st := range wf.Steps {
		if allowed != nil && !allowed[st.Connector] {
			vs = append(vs, levqor.FieldError{Pointer: fmt.Sprintf("%s/steps/%d/connector", base, i),
				Detail: fmt.Sprintf("Connector %q is not one of the connectors this workflow may use.", st.Connector)})
		}
	}
	if err := p.steps.ValidateSteps(wf.Steps, base+"/steps"); err != nil {
		if levqor.ErrorCode(err) == levqor.EInternal {
			return proposal{}, nil, err
		}
		vs = append(vs, fieldErrors(err, base+"/steps")...)
	}
	cost := p.estimateUSD(wf.Steps)
	if c := req.MaxCostUSD; c != nil && cost > *c {
		vs = append(vs, levqor.FieldError{Pointer: base + "/steps", Detail: fmt.Sprintf(
			"The AI steps may cost up to $%.6f a run (their worst case), more than the $%.6f allowed: use fewer AI steps or smaller max_tokens.", cost, *c)})
	}
	if len(vs) > 0 {
		return proposal{}, vs, nil
	}
	out := proposal{description: wf.Description, steps: wf.Steps, costUSD: cost}
	for i, st := range wf.Steps {
		out.reasons = append(out.reasons, Reason{Step: st.ID, Reason: reasons[i]})
		if refs, _ := stepinput.Refs(inputOf(st)); len(refs) > 0 {
			out.deferred = append(out.deferred, fmt.Sprintf("%s/steps/%d/input", base, i))
		}
	}
	return out, nil, nil
}

// parseAnswer decodes an answer, takes each step's reason out of it and normalises
// what the model may say in more than one way: null or empty optional members, and
// needs that only repeat the default (the step before) are left out, so a plan that
// is a plain sequence stays one. It returns the workflow document and the reasons.
func parseAnswer(content, finishReason string) (map[string]any, []string, []levqor.FieldError) {
	var v any
	if err := json.Unmarshal([]byte(ai.StripFence(content)), &v); err != nil {
		detail := "The answer is not JSON."
		if finishReason == "length" {
			detail = "The answer is not JSON: it was cut off at max_tokens; propose fewer steps or shorter inputs."
		}
		return nil, nil, []levqor.FieldError{{Pointer: base, Detail: detail}}
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, nil, []levqor.FieldError{{Pointer: base, Detail: "The answer is not a JSON object."}}
	}
	dropNulls(doc)
	steps, _ := doc["steps"].([]any)
	var reasons []string
	var vs []levqor.FieldError
	for i, s := range steps {
		st, ok := s.(map[string]any)
		if !ok {
			continue // the contract says what is wrong
		}
		dropNulls(st)
		for _, k := range []string{"if", "for_each"} {
			if t, ok := st[k].(string); ok && strings.TrimSpace(t) == "" {
				delete(st, k)
			}
		}
		if needs, ok := st["needs"].([]any); ok && defaultNeeds(steps, i, needs) {
			delete(st, "needs")
		}
		reason, _ := st["reason"].(string)
		reason = strings.TrimSpace(reason)
		delete(st, "reason")
		switch {
		case reason == "":
			vs = append(vs, levqor.FieldError{Pointer: fmt.Sprintf("%s/steps/%d/reason", base, i), Detail: "Say in one sentence why the step is there."})
		case utf8.RuneCountInString(reason) > MaxReasonChars:
			vs = append(vs, levqor.FieldError{Pointer: fmt.Sprintf("%s/steps/%d/reason", base, i), Detail: fmt.Sprintf("A reason is at most %d characters.", MaxReasonChars)})
		}
		reasons = append(reasons, reason)
	}
	return doc, reasons, vs
}

func dropNulls(m map[string]any) {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
}

// defaultNeeds reports whether needs is what step i needs by default: nothing for
// the first step, the step before for the others.
func defaultNeeds(steps []any, i int, needs []any) bool {
	if i == 0 {
		return len(needs) == 0
	}
	prev, _ := steps[i-1].(map[string]any)
	id, ok := prev["id"].(string)
	return ok && len(needs) == 1 && needs[0] == id
}

// fieldErrors are err's field errors, or its message at pointer.
func fieldErrors(err error, pointer string) []levqor.FieldError {
	var e *levqor.Error
	if errors.As(err, &e) && len(e.Fields) > 0 {
		return e.Fields
	}
	return []levqor.FieldError{{Pointer: pointer, Detail: levqor.ErrorMessage(err)}}
}

func inputOf(st workflow.Step) json.RawMessage {
	if len(st.Input) == 0 {
		return json.RawMessage("{}")
	}
	return st.Input
}

// estimateUSD is what the steps' first provider calls may cost at worst, as intake
// counts it against the owner's budget: a step that cannot be priced counts nothing.
func (p *Planner) estimateUSD(steps []workflow.Step) float64 {
	total := 0.0
	for _, st := range steps {
		usd, err := p.reg.EstimateUSD(st.Connector, st.Action, inputOf(st))
		if err == nil {
			total += usd
		}
	}
	return total
}
