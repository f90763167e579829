package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/schemaexample"
	"github.com/levqor/levqor/stepinput"
	"github.com/levqor/levqor/workflow"
)

// A dry run (Intake.DryRun, docs/adr/0021-dry-run-and-replay.md) rehearses a job:
// its steps, in the order the graph allows, are decided and their inputs resolved
// against the payload and example outputs of the steps before them, each example
// made from the step's action's output schema (schemaexample). Nothing is called,
// reserved or spent; the job is stored finished, with dry_run set, each step's
// resolved input and example output, so that GET /api/v1/jobs/{id} shows it. What
// would fail when the job runs — a reference the examples cannot resolve, an input
// its action's schema refuses, a condition or for_each that does not evaluate — is
// a 422 listing each problem, and nothing is stored.

// MaxDryRunProblems bounds the problems one dry run reports (a for_each may find
// one per item).
const MaxDryRunProblems = 50

// submitDryRun rehearses j (prepared by Submit) and stores it.
func (s *Service) submitDryRun(ctx context.Context, j Job) (Job, bool, error) {
	if err := s.rehearse(&j, s.now().UTC()); err != nil {
		return Job{}, false, err
	}
	got, _, err := s.store.InsertJob(ctx, j)
	if err != nil {
		return Job{}, false, fmt.Errorf("insert dry run: %w", err)
	}
	return got, true, nil
}

// dryRun is one rehearsal.
type dryRun struct {
	s        *Service
	j        *Job
	g        *workflow.Graph
	now      time.Time
	examples map[string]*schemaexample.Example // by step id: the outputs of the steps that succeeded
	problems []levqor.FieldError
	more     int // problems past MaxDryRunProblems
	size     int // bytes of resolved inputs and outputs so far
}

// rehearse fills j as a dry run at now: each step's status, resolved input and
// example output, its result, and finished. The error lists every problem found.
func (s *Service) rehearse(j *Job, now time.Time) error {
	specs := make([]Step, len(j.Steps))
	for i := range j.Steps {
		specs[i] = j.Steps[i].Step
	}
	g, err := workflow.Parse(specs, "/steps")
	if err != nil {
		return err
	}
	d := &dryRun{s: s, j: j, g: g, now: now, examples: map[string]*schemaexample.Example{}}
	main := len(specs)
	if g.OnFailure >= 0 {
		main = g.OnFailure
	}
	for _, i := range topoOrder(g, main) {
		if d.size > MaxJobOutputBytes {
			break // reported once, below
		}
		d.step(i)
	}
	if g.OnFailure >= 0 && d.size <= MaxJobOutputBytes {
		d.onFailure(g.OnFailure)
	}
	if err := d.err(); err != nil {
		return err
	}
	for i := range main {
		if ex, ok := d.examples[specs[i].ID]; ok {
			j.Steps[i].Output = ex.JSON() // with every part later steps reached into
		}
	}
	j.Result = j.Steps[main-1].Output
	j.Status, j.RunAt, j.StartedAt, j.FinishedAt, j.DryRun = StatusSucceeded, now, &now, &now, true
	return nil
}

// topoOrder lists the first main steps so that each comes after its needs.
func topoOrder(g *workflow.Graph, main int) []int {
	done := make([]bool, main)
	out := make([]int, 0, main)
	var visit func(i int)
	visit = func(i int) {
		if done[i] {
			return
		}
		done[i] = true
		for _, k := range g.Needs[i] {
			visit(k)
		}
		out = append(out, i)
	}
	for i := range main {
		visit(i)
	}
	return out
}

// problem records what would go wrong at pointer (under step i).
func (d *dryRun) problem(i int, field, format string, args ...any) {
	if len(d.problems) >= MaxDryRunProblems {
		d.more++
		return
	}
	at := workflow.Pointer("/steps", d.g.Steps, i)
	if field != "" {
		at += "/" + field
	}
	d.problems = append(d.problems, levqor.FieldError{Pointer: at, Detail: fmt.Sprintf(format, args...)})
}

func (d *dryRun) err() error {
	if d.size > MaxJobOutputBytes {
		msg := fmt.Sprintf("The dry run's resolved inputs and example outputs would be larger than %d bytes, more than a job may store.", MaxJobOutputBytes)
		return &levqor.Error{Code: levqor.EUnprocessable, Message: msg, Fields: []levqor.FieldError{{Pointer: "/steps", Detail: msg}}}
	}
	if len(d.problems) == 0 {
		return nil
	}
	msg := d.problems[0].Detail
	if n := len(d.problems) + d.more; n > 1 {
		msg = fmt.Sprintf("The dry run found %d problems; each is listed in errors", n)
		if d.more > 0 {
			msg += fmt.Sprintf(" (the first %d)", len(d.problems))
		}
		msg += "."
	}
	return &levqor.Error{Code: levqor.EUnprocessable, Message: msg, Fields: d.problems}
}

// env is what step i's expressions read: the payload and its ancestors, those that
// succeeded with their example outputs.
func (d *dryRun) env(i int) workflow.Env {
	env := workflow.Env{Payload: d.j.Payload, Steps: map[string]workflow.Result{}}
	for k, st := range d.j.Steps {
		if k == i || !d.g.Ancestor(i, k) {
			continue
		}
		switch st.Status {
		case StepSucceeded:
			env.Steps[st.ID] = workflow.Result{Status: st.Status, Output: d.examples[st.ID].JSON()}
		case StepSkipped:
			env.Steps[st.ID] = workflow.Result{Status: st.Status}
		}
	}
	return env
}

// reach makes the example output of step id hold path, reporting at step i's
// field when the output schema rules it out. It reports whether it could.
func (d *dryRun) reach(i int, field, ref, id string, path []string) bool {
	ex, ok := d.examples[id]
	if !ok {
		return true // skipped, or not an ancestor: resolving says why
	}
	if err := ex.Reach(path); err != nil {
		d.problem(i, field, "Reference %s: the output of step %q (an example made from its action's output schema) %s.", ref, id, err.Error())
		return false
	}
	return true
}

// step rehearses main step i, whose needs have been rehearsed.
func (d *dryRun) step(i int) {
	spec, st := d.g.Steps[i], &d.j.Steps[i]
	st.StartedAt, st.FinishedAt = &d.now, &d.now
	if spec.If == "" && d.needSkipped(i) {
		st.Status = StepSkipped
		return
	}
	reached := true
	for _, r := range d.g.Reads(i) {
		if !r.Item {
			reached = d.reach(i, r.In, "steps."+r.Step+".output", r.Step, r.Path) && reached
		}
	}
	st.Status = StepSucceeded
	if !reached { // reported; its dependents are still rehearsed against its example
		d.examples[spec.ID] = d.example(i, spec.Input)
		return
	}
	if spec.ForEach != "" {
		d.shapeItems(i)
	}
	env := d.env(i)
	if spec.ForEach != "" {
		d.forEach(i, env)
		return
	}
	ok, err := d.g.Cond(i, env)
	if err != nil {
		d.problem(i, "if", "The condition cannot be evaluated against the example outputs: %s", err.Error())
	}
	if err == nil && !ok {
		st.Status = StepSkipped
		return
	}
	resolved := d.resolve(i, nil, 0)
	st.ResolvedInput = resolved
	d.examples[spec.ID] = d.example(i, resolved)
}

// forEach rehearses for_each step i, once per item of its for_each over the examples.
func (d *dryRun) forEach(i int, env workflow.Env) {
	spec, st := d.g.Steps[i], &d.j.Steps[i]
	items, err := d.g.Items(i, env)
	if err != nil {
		d.problem(i, "for_each", "for_each cannot be evaluated against the example outputs: %s", err.Error())
		d.examples[spec.ID] = schemaexample.Exact(nil)
		return
	}
	if spec.If != "" {
		if env, err = env.Prepare(); err != nil {
			d.problem(i, "if", "%s", err.Error())
		}
	}
	inputs := make([]json.RawMessage, len(items))
	for k := range inputs {
		inputs[k] = json.RawMessage("null")
	}
	outputs := make([]*schemaexample.Example, len(items))
	for k, item := range items {
		if d.size > MaxJobOutputBytes {
			break
		}
		env.Item, env.Index = item, k
		ok, err := d.g.Cond(i, env)
		if err != nil {
			d.problem(i, "if", "Item %d: the condition cannot be evaluated against the example outputs: %s", k, err.Error())
		}
		if err == nil && !ok {
			continue
		}
		inputs[k] = d.resolve(i, item, k)
		outputs[k] = d.example(i, inputs[k])
	}
	st.ResolvedInput, _ = json.Marshal(inputs)
	st.Iterations = make([]Iteration, len(items))
	for k := range items {
		status := StepSucceeded
		if outputs[k] == nil {
			status = StepSkipped
		}
		st.Iterations[k] = Iteration{Index: k, Status: status, StartedAt: &d.now, FinishedAt: &d.now}
	}
	d.examples[spec.ID] = schemaexample.Exact(outputs)
}

// shapeItems makes the list for_each step i takes from an example output (a
// reference such as {{steps.fetch.output.json.items}}) a list of at least one item
// when its schema leaves it open, and its first item hold what the step reads in
// {{item…}} and `item`. Paths an item's schema rules out are left to the items'
// resolution to report, as a run would.
func (d *dryRun) shapeItems(i int) {
	from, ok := d.g.EachFrom(i)
	if !ok {
		return
	}
	ex, ok := d.examples[from.Step]
	if !ok {
		return
	}
	ex.Fit(from.Path, json.RawMessage(`{"type": "array", "minItems": 1}`))
	var paths [][]string
	for _, r := range d.g.Reads(i) {
		if r.Item {
			paths = append(paths, r.Path)
		}
	}
	input := d.g.Steps[i].Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	refs, _ := stepinput.Refs(input)
	for _, ref := range refs {
		if v, path, ok := stepinput.VarPath(ref); ok && v == "item" {
			paths = append(paths, path)
		}
	}
	for _, p := range paths {
		_ = ex.Reach(slices.Concat(from.Path, []string{"0"}, p))
	}
}

// resolve resolves step i's input (item k of a for_each when item is not nil)
// against the payload and the examples, and checks it against the action's input
// schema. A problem is recorded and the input returned as far as it goes.
func (d *dryRun) resolve(i int, item json.RawMessage, k int) json.RawMessage {
	spec := d.g.Steps[i]
	input := spec.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	label := ""
	if item != nil {
		label = fmt.Sprintf("Item %d: ", k)
	}
	refs, err := stepinput.Refs(input)
	if err != nil { // checked at intake
		d.problem(i, "input", "%s%s", label, err.Error())
		return input
	}
	for _, ref := range refs {
		if id, path, ok := stepinput.StepPath(ref); ok && !d.reach(i, "input", "{{"+ref+"}}", id, path) {
			return input
		}
	}
	d.fit(spec, input)
	outputs := map[string]json.RawMessage{}
	for _, ref := range refs {
		if id, ok := stepinput.StepID(ref); ok {
			if ex, ok := d.examples[id]; ok {
				outputs[id] = ex.JSON()
			}
		}
	}
	var resolved json.RawMessage
	if item != nil {
		resolved, err = stepinput.ResolveItem(input, d.j.Payload, outputs, item, k)
	} else {
		resolved, err = stepinput.Resolve(input, d.j.Payload, outputs)
	}
	if err != nil {
		d.problem(i, "input", "%s%s", label, err.Error())
		return input
	}
	d.size += len(resolved)
	if err := d.s.reg.Validate(spec.Connector, spec.Action, resolved); err != nil {
		d.problem(i, "input", "%sThe resolved input would be refused: %s", label, stepMessage(err))
	} else if engineStep(spec) {
		if err := checkWait(spec, resolved, d.now); err != nil {
			d.problem(i, "input", "%s%s", label, err.Error())
		}
	}
	return resolved
}

// fit shapes the parts of example outputs that their schemas leave open (any
// value) and that spec's input takes whole ("{{steps.x.output.body}}") to what the
// action's input schema asks there, so that an open value does not fail the check
// of the resolved input for want of the right type.
func (d *dryRun) fit(spec Step, input json.RawMessage) {
	schema, err := d.s.reg.InputSchema(spec.Connector, spec.Action)
	if err != nil {
		return
	}
	var doc any
	if json.Unmarshal(input, &doc) != nil {
		return
	}
	wholeRefs(doc, nil, func(at []string, ref string) {
		id, path, ok := stepinput.StepPath(ref)
		if !ok {
			return
		}
		ex, ok := d.examples[id]
		if !ok {
			return
		}
		if sub, ok := schemaexample.SchemaAt(schema, at); ok {
			ex.Fit(path, sub)
		}
	})
}

// wholeRefs calls f with the path (in the input) of every string of v that is one
// reference and nothing else, and that reference.
func wholeRefs(v any, at []string, f func(at []string, ref string)) {
	switch v := v.(type) {
	case string:
		if ref, ok := stepinput.Whole(v); ok {
			f(at, ref)
		}
	case []any:
		for k, e := range v {
			wholeRefs(e, append(slices.Clip(at), strconv.Itoa(k)), f)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) { // sorted: the same input fits the same way
			wholeRefs(v[k], append(slices.Clip(at), k), f)
		}
	}
}

// checkWait checks a resolved core.wait or core.wait_for_signal input as the
// engine reads it when the step runs; the wait itself is not waited.
func checkWait(spec Step, input json.RawMessage, now time.Time) error {
	var in struct {
		For     json.RawMessage `json:"for"`
		Until   string          `json:"until"`
		Timeout json.RawMessage `json:"timeout"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return errors.New("the input is not a JSON object")
	}
	_, err := waitUntil(spec.Action, now, in.For, in.Until, in.Timeout)
	return err
}

// example is the example output of step i for its resolved input: what its
// action's output schema describes for that input; a core.wait step's is the time
// it would wait until.
func (d *dryRun) example(i int, resolved json.RawMessage) *schemaexample.Example {
	spec := d.g.Steps[i]
	schema, err := d.s.reg.OutputSchema(spec.Connector, spec.Action, resolved)
	if err != nil { // checked at intake
		d.problem(i, "", "%s", stepMessage(err))
		schema = json.RawMessage("{}")
	}
	if engineStep(spec) && spec.Action == "wait" {
		var in struct {
			For   json.RawMessage `json:"for"`
			Until string          `json:"until"`
		}
		if json.Unmarshal(resolved, &in) == nil {
			if until, err := waitUntil("wait", d.now, in.For, in.Until, nil); err == nil {
				schema, _ = json.Marshal(map[string]any{"const": map[string]time.Time{"waited_until": until}})
			}
		}
	}
	ex, err := schemaexample.New(schema)
	if err != nil {
		d.problem(i, "", "No example output can be made for %s.%s: %s", spec.Connector, spec.Action, err.Error())
		ex, _ = schemaexample.New(json.RawMessage("{}"))
	}
	d.size += len(ex.JSON())
	return ex
}

// needSkipped reports whether a need of step i was skipped.
func (d *dryRun) needSkipped(i int) bool {
	for _, k := range d.g.Needs[i] {
		if d.j.Steps[k].Status == StepSkipped {
			return true
		}
	}
	return false
}

// onFailure resolves the on_failure step's input against every example: it does
// not run (the rehearsed job succeeds), but its references are checked.
func (d *dryRun) onFailure(i int) {
	d.j.Steps[i].ResolvedInput = d.resolve(i, nil, 0)
}
