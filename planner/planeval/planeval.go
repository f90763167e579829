// Package planeval measures the planner: a set of plain-language descriptions, each
// with the connector actions and dependencies a good workflow for it has, and the
// node and edge F1 scores TaskBench reports for task graphs (Shen et al., 2023,
// "TaskBench: Benchmarking Large Language Models for Task Automation").
package planeval

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/levqor/levqor/workflow"
)

// Case is one description and the graph a good plan for it has.
type Case struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Graph
}

// Graph is a task graph as TaskBench scores it: nodes are labels ("connector.action",
// a set: a label twice is one node) and edges are pairs of labels, (from, to) for a
// step and a step it needs.
type Graph struct {
	Nodes []string    `json:"nodes"`
	Edges [][2]string `json:"edges"`
}

//go:embed cases.json
var casesJSON []byte

// Cases returns the evaluation set.
func Cases() ([]Case, error) {
	var cs []Case
	if err := json.Unmarshal(casesJSON, &cs); err != nil {
		return nil, fmt.Errorf("planeval: cases.json: %w", err)
	}
	for _, c := range cs {
		if c.ID == "" || c.Description == "" || len(c.Nodes) == 0 {
			return nil, fmt.Errorf("planeval: case %q has no id, description or nodes", c.ID)
		}
		for _, e := range c.Edges {
			if !slices.Contains(c.Nodes, e[0]) || !slices.Contains(c.Nodes, e[1]) {
				return nil, fmt.Errorf("planeval: case %q: edge %v joins a label that is not a node", c.ID, e)
			}
		}
	}
	return cs, nil
}

// GraphOf is a workflow's task graph: each step's label, and an edge from each step
// it needs (given or by default the step before) to it.
func GraphOf(steps []workflow.Step) (Graph, error) {
	g, err := workflow.Parse(steps, "/steps")
	if err != nil {
		return Graph{}, err
	}
	label := func(i int) string { return steps[i].Connector + "." + steps[i].Action }
	var out Graph
	for i := range steps {
		out.Nodes = append(out.Nodes, label(i))
	}
	for _, e := range g.Edges() {
		out.Edges = append(out.Edges, [2]string{label(e[0]), label(e[1])})
	}
	return out, nil
}

// Counts are true positives, false positives and false negatives, summed over the
// cases scored (micro averaging, as TaskBench's precision_recall_fscore_support over
// the flattened samples).
type Counts struct {
	TP, FP, FN int
}

// Add returns c and o summed.
func (c Counts) Add(o Counts) Counts { return Counts{c.TP + o.TP, c.FP + o.FP, c.FN + o.FN} }

// Empty reports whether there was nothing to find and nothing found.
func (c Counts) Empty() bool { return c.TP+c.FP+c.FN == 0 }

// Precision is TP / (TP + FP), 0 when nothing was found.
func (c Counts) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }

// Recall is TP / (TP + FN), 0 when nothing was to be found.
func (c Counts) Recall() float64 { return ratio(c.TP, c.TP+c.FN) }

// F1 is the harmonic mean of precision and recall, 0 when both are (scikit-learn's
// zero_division=0, which TaskBench's scores use).
func (c Counts) F1() float64 {
	p, r := c.Precision(), c.Recall()
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// NodeCounts compares the node sets of want and got.
func NodeCounts(want, got Graph) Counts { return compare(set(want.Nodes), set(got.Nodes)) }

// EdgeCounts compares the edge sets of want and got.
func EdgeCounts(want, got Graph) Counts { return compare(set(want.Edges), set(got.Edges)) }

func set[T comparable](xs []T) map[T]bool {
	m := make(map[T]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// compare counts, over the union of want and got, what both hold (TP), only got
// holds (FP) and only want holds (FN).
func compare[T comparable](want, got map[T]bool) Counts {
	var c Counts
	for x := range got {
		if want[x] {
			c.TP++
		} else {
			c.FP++
		}
	}
	for x := range want {
		if !got[x] {
			c.FN++
		}
	}
	return c
}

// Score is one case's node and edge counts.
type Score struct {
	Nodes, Edges Counts
}

// Add returns s and o summed.
func (s Score) Add(o Score) Score { return Score{s.Nodes.Add(o.Nodes), s.Edges.Add(o.Edges)} }

// ScoreOf scores a plan's graph against a case's; a case with no plan (nil steps,
// the planner's 422) scores its graph as found by nothing.
func ScoreOf(want Graph, steps []workflow.Step) (Score, error) {
	var got Graph
	if steps != nil {
		var err error
		if got, err = GraphOf(steps); err != nil {
			return Score{}, errors.Join(errors.New("planeval: the plan is not a valid graph"), err)
		}
	}
	return Score{Nodes: NodeCounts(want, got), Edges: EdgeCounts(want, got)}, nil
}
