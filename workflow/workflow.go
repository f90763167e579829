// Package workflow is Levqor's workflow language: a workflow's steps as a graph
// (needs), the references between them, their `if` and `for_each` expressions (CEL)
// and the rules a workflow must follow to be accepted. Intake, saved workflows and
// the job engine all read workflows through it; the engine only schedules what the
// Graph decides.
package workflow

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/stepinput"
)

// Limits of the language, documented in docs/workflows.md and the API spec.
const (
	// MaxForEachItems bounds the items of one for_each: a step runs at most this many
	// times in a job attempt. The job-size bounds (jobs.MaxJobOutputBytes) apply to the
	// array of outputs as a whole on top of this.
	MaxForEachItems = 1000
	// MaxExpressionLen bounds the source of an `if` or `for_each` expression.
	MaxExpressionLen = 2000
	// MaxExpressionCost is cel-go's cost limit for one evaluation of an expression:
	// enough for comparisons and a comprehension over MaxForEachItems items, far from
	// what would hold a worker (an evaluation crossing it fails the step).
	MaxExpressionCost = 100_000
	// MaxItemConcurrency bounds a for_each step's max_concurrency.
	MaxItemConcurrency = 64
	// MaxRetryAttempts bounds a step's retry.attempts (tries in one job attempt).
	MaxRetryAttempts = 10
	// MaxRetryBackoffS bounds a step's retry.backoff_s (the first wait, doubling).
	MaxRetryBackoffS = 600
)

// Step statuses the language reads and decides (the job engine keeps the others).
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
)

// Step is one step of a workflow: a connector's action with its input, in which
// "{{payload.…}}", "{{steps.<id>.output.…}}" and, in a for_each step, "{{item…}}" and
// "{{index}}" strings are references.
type Step struct {
	ID        string          `json:"id"`
	Connector string          `json:"connector"`
	Action    string          `json:"action"`
	Input     json.RawMessage `json:"input,omitempty"`
	// Needs lists the steps that must end before this one; nil means the step before
	// it (none for the first), an empty list means none.
	Needs *[]string `json:"needs,omitempty"`
	// If is a CEL condition; false skips the step.
	If string `json:"if,omitempty"`
	// ForEach is a reference ("{{steps.list.output.items}}") or a CEL expression
	// giving an array: the step runs once per item.
	ForEach        string `json:"for_each,omitempty"`
	MaxConcurrency int    `json:"max_concurrency,omitempty"` // for_each items run at once (0: the job's concurrency)
	Retry          *Retry `json:"retry,omitempty"`
	// ContinueOnError lets the job go on when the step fails for good: its
	// dependents run and see its status "failed".
	ContinueOnError bool `json:"continue_on_error,omitempty"`
	// OnFailure marks the workflow's on_failure step, kept last in the step list:
	// it runs once, when the job fails for good, and never otherwise.
	OnFailure bool `json:"on_failure,omitempty"`
}

// Retry is a step's own retry policy: up to Attempts tries within one job attempt,
// waiting BackoffS seconds before the second, doubling after.
type Retry struct {
	Attempts int     `json:"attempts"`
	BackoffS float64 `json:"backoff_s,omitempty"`
}

// Linear reports whether steps use none of the graph's features: each runs after
// the one before, once, with the job's retry policy. The engine runs such
// workflows as a plain sequence.
func Linear(steps []Step) bool {
	for _, st := range steps {
		if st.Needs != nil || st.If != "" || st.ForEach != "" || st.Retry != nil || st.ContinueOnError || st.OnFailure {
			return false
		}
	}
	return true
}

// Graph is a validated workflow: its steps, what each needs, and its compiled
// expressions. It is safe for concurrent use.
type Graph struct {
	Steps []Step
	// Needs[i] are the indexes of the steps step i waits for.
	Needs [][]int
	// OnFailure is the index of the on_failure step, or -1.
	OnFailure int

	ancestors [][]bool   // ancestors[i][j]: step j runs before step i on every path
	refs      [][]string // refs[i]: the references in step i's input (stepinput.Refs)
	reads     [][]Read   // reads[i]: what step i's expressions read in outputs
	cond      []cel.Program
	each      []cel.Program // nil for a for_each that is a reference (eachRef)
	eachRef   []string
}

// invalid is a rule of the graph a workflow breaks (unknown ids, cycles, references
// to non-ancestors, expressions), at a JSON pointer: levqor.EUnprocessable.
func invalid(pointer, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &levqor.Error{Code: levqor.EUnprocessable, Message: msg, Fields: []levqor.FieldError{{Pointer: pointer, Detail: msg}}}
}

// malformed is a step that cannot be read at all (a repeated id, a reference that
// is not one): levqor.EInvalid, as before the graph existed.
func malformed(pointer, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &levqor.Error{Code: levqor.EInvalid, Message: msg, Fields: []levqor.FieldError{{Pointer: pointer, Detail: msg}}}
}

// Pointer is where step i of steps is in a request whose step list is at base:
// base/i, or /on_failure for the on_failure step.
func Pointer(base string, steps []Step, i int) string {
	if steps[i].OnFailure {
		return "/on_failure"
	}
	return base + "/" + strconv.Itoa(i)
}

// Parse validates steps (the on_failure step, if any, last) as a graph: unique
// ids, needs that name known steps without a cycle, references and expressions
// that read only ancestors, expressions that compile and type-check, and the
// limits above. Errors are levqor.EUnprocessable with JSON pointers under base.
// Connectors, actions and inputs are the caller's to check.
func Parse(steps []Step, base string) (*Graph, error) {
	n := len(steps)
	g := &Graph{Steps: steps, Needs: make([][]int, n), OnFailure: -1, reads: make([][]Read, n), refs: make([][]string, n),
		cond: make([]cel.Program, n), each: make([]cel.Program, n), eachRef: make([]string, n)}
	index := make(map[string]int, n)
	for i, st := range steps {
		at := Pointer(base, steps, i)
		if st.OnFailure {
			if i != n-1 || i == 0 {
				return nil, invalid(at, "The on_failure step comes after at least one step, and there is one.")
			}
			if st.Needs != nil || st.ForEach != "" || st.If != "" {
				return nil, invalid(at, "The on_failure step runs when the job fails; it takes no needs, if or for_each.")
			}
			g.OnFailure = i
		}
		if _, dup := index[st.ID]; dup {
			return nil, malformed(at+"/id", "Step id %q is used twice.", st.ID)
		}
		index[st.ID] = i
		if st.MaxConcurrency < 0 || st.MaxConcurrency > MaxItemConcurrency {
			return nil, invalid(at+"/max_concurrency", "max_concurrency is 1 to %d.", MaxItemConcurrency)
		}
		if st.MaxConcurrency > 0 && st.ForEach == "" {
			return nil, invalid(at+"/max_concurrency", "max_concurrency applies to a for_each step only.")
		}
		if r := st.Retry; r != nil && (r.Attempts < 1 || r.Attempts > MaxRetryAttempts || r.BackoffS < 0 || r.BackoffS > MaxRetryBackoffS) {
			return nil, invalid(at+"/retry", "retry.attempts is 1 to %d and retry.backoff_s 0 to %d.", MaxRetryAttempts, MaxRetryBackoffS)
		}
	}
	// Needs, by index; the default is the step before.
	for i, st := range steps {
		at := Pointer(base, steps, i)
		switch {
		case st.OnFailure:
			// It runs after everything else has ended; it needs nothing in the graph.
		case st.Needs == nil:
			if i > 0 {
				g.Needs[i] = []int{i - 1}
			}
		default:
			for k, id := range *st.Needs {
				j, ok := index[id]
				switch {
				case !ok:
					return nil, invalid(fmt.Sprintf("%s/needs/%d", at, k), "needs names step %q, which this workflow does not have.", id)
				case j == i:
					return nil, invalid(fmt.Sprintf("%s/needs/%d", at, k), "Step %q needs itself.", id)
				case steps[j].OnFailure:
					return nil, invalid(fmt.Sprintf("%s/needs/%d", at, k), "No step may need the on_failure step.")
				case slices.Contains(g.Needs[i], j):
					return nil, invalid(fmt.Sprintf("%s/needs/%d", at, k), "needs names step %q twice.", id)
				}
				g.Needs[i] = append(g.Needs[i], j)
			}
		}
	}
	if err := g.computeAncestors(base); err != nil {
		return nil, err
	}
	for i, st := range steps {
		if err := g.checkStep(i, st, Pointer(base, steps, i), index); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// computeAncestors orders the steps and records each step's ancestors; a cycle is an
// error at the first step found on it.
func (g *Graph) computeAncestors(base string) error {
	n := len(g.Steps)
	g.ancestors = make([][]bool, n)
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]int, n)
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			return invalid(Pointer(base, g.Steps, i)+"/needs", "Step %q is part of a cycle of needs.", g.Steps[i].ID)
		}
		state[i] = visiting
		anc := make([]bool, n)
		for _, j := range g.Needs[i] {
			if err := visit(j); err != nil {
				return err
			}
			anc[j] = true
			for k, a := range g.ancestors[j] {
				anc[k] = anc[k] || a
			}
		}
		if g.Steps[i].OnFailure {
			for k := range anc {
				anc[k] = k != i // every other step has ended when it runs
			}
		}
		g.ancestors[i], state[i] = anc, done
		return nil
	}
	for i := range g.Steps {
		if err := visit(i); err != nil {
			return err
		}
	}
	return nil
}

// InputRefs lists the references in step i's input, as stepinput.Refs does.
func (g *Graph) InputRefs(i int) []string { return g.refs[i] }

// checkStep checks step i's references and expressions against its ancestors.
func (g *Graph) checkStep(i int, st Step, at string, index map[string]int) error {
	input := st.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	refs, err := stepinput.Refs(input)
	if err != nil {
		return malformed(at+"/input", "%s", err.Error())
	}
	g.refs[i] = refs
	for _, ref := range refs {
		if v, ok := stepinput.Var(ref); ok && st.ForEach == "" {
			return invalid(at+"/input", "Reference {{%s}}: %s is bound only in a for_each step.", ref, v)
		}
		if id, ok := stepinput.StepID(ref); ok {
			if err := g.checkAncestor(i, id, index); err != nil {
				return invalid(at+"/input", "Reference {{%s}}: %s", ref, err.Error())
			}
		}
	}
	if st.If != "" {
		prg, err := g.compile(i, "if", st.If, st.ForEach != "", cel.BoolType, index)
		if err != nil {
			return invalid(at+"/if", "if: %s", err.Error())
		}
		g.cond[i] = prg
	}
	if st.ForEach != "" {
		if ref, ok := wholeRef(st.ForEach); ok {
			if v, isVar := stepinput.Var(ref); isVar {
				return invalid(at+"/for_each", "for_each cannot read %s, its own variable.", v)
			}
			got, err := stepinput.Refs(json.RawMessage(mustJSON(st.ForEach)))
			if err != nil {
				return invalid(at+"/for_each", "%s", err.Error())
			}
			if len(got) != 1 {
				return invalid(at+"/for_each", "for_each is a reference to the payload or a step's output, or a CEL expression.")
			}
			if id, path, ok := stepinput.StepPath(ref); ok {
				if err := g.checkAncestor(i, id, index); err != nil {
					return invalid(at+"/for_each", "Reference {{%s}}: %s", ref, err.Error())
				}
				g.reads[i] = append(g.reads[i], Read{Step: id, Path: path, In: "for_each", each: true})
			}
			g.eachRef[i] = st.ForEach
		} else {
			prg, err := g.compile(i, "for_each", st.ForEach, false, cel.ListType(cel.DynType), index)
			if err != nil {
				return invalid(at+"/for_each", "for_each: %s", err.Error())
			}
			g.each[i] = prg
		}
	}
	return nil
}

// checkAncestor reports why step i may not read step id, or nil when it may.
func (g *Graph) checkAncestor(i int, id string, index map[string]int) error {
	j, ok := index[id]
	switch {
	case !ok:
		return fmt.Errorf("this workflow has no step %q", id)
	case j == i:
		return fmt.Errorf("a step cannot read its own output")
	case !g.ancestors[i][j]:
		return fmt.Errorf("step %q does not run before this one (add it to needs)", id)
	}
	return nil
}

// wholeRef reports whether s is exactly one {{reference}}, and returns its text.
func wholeRef(s string) (string, bool) {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "{{") || !strings.HasSuffix(t, "}}") || strings.Count(t, "{{") != 1 {
		return "", false
	}
	return strings.TrimSpace(t[2 : len(t)-2]), true
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Ancestor reports whether step j runs before step i on every path to it.
func (g *Graph) Ancestor(i, j int) bool { return g.ancestors[i][j] }

// Edges lists the graph's edges as (from, to) step indexes, for drawings.
func (g *Graph) Edges() [][2]int {
	var out [][2]int
	for i, needs := range g.Needs {
		for _, j := range needs {
			out = append(out, [2]int{j, i})
		}
	}
	return out
}
