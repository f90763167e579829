package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/levqor/levqor/connectors/ai/aitest"
	"github.com/levqor/levqor/planner/planeval"
	"github.com/levqor/levqor/workflow"
)

// The plan-eval scenario's model: the deterministic stand-in unless a real
// OpenAI-compatible endpoint is named.
const (
	planModelURLEnv = "LEVQOR_BENCH_PLAN_MODEL_URL"    // its API root, e.g. https://api.openai.com/v1
	planModelKeyEnv = "LEVQOR_BENCH_PLAN_MODEL_KEY"    // its API key
	planModelEnv    = "LEVQOR_BENCH_PLAN_MODEL"        // the model (default gpt-4o-mini)
	planPricesEnv   = "LEVQOR_BENCH_PLAN_MODEL_PRICES" // a price file (LEVQOR_AI_PRICES) for a model without a built-in price

	planFakeKey      = "sk-levqor-bench-fake-model"
	planDefaultModel = "gpt-4o-mini"
	// planRequestTimeout is longer than a plan may take (planner.MaxDuration).
	planRequestTimeout = 70 * time.Second
	// planFakeNodeF1 and planFakeEdgeF1 are what the stand-in model scores, rounded
	// down (docs/benchmarks.md): it is deterministic, so a lower score is a change in
	// the planner, the set or the scorer, as is a plan that is not valid.
	planFakeNodeF1 = 0.93
	planFakeEdgeF1 = 0.69
)

// planCaseResult is one description's outcome.
type planCaseResult struct {
	ID      string          `json:"id"`
	Status  int             `json:"status"`
	Code    string          `json:"code,omitempty"` // the problem's code when not 200
	Calls   int             `json:"calls"`
	Repairs int             `json:"repairs"`
	CostUSD float64         `json:"cost_usd"`
	Seconds float64         `json:"seconds"`
	Nodes   planeval.Counts `json:"nodes"`
	Edges   planeval.Counts `json:"edges"`
}

// planEvalDetails is the -json detail of plan-eval.
type planEvalDetails struct {
	Model   string           `json:"model"`
	Fake    bool             `json:"fake"`
	Cases   []planCaseResult `json:"cases"`
	Valid   int              `json:"valid"`
	Nodes   planeval.Counts  `json:"nodes"`
	Edges   planeval.Counts  `json:"edges"`
	NodeF1  float64          `json:"node_f1"`
	EdgeF1  float64          `json:"edge_f1"`
	CostUSD float64          `json:"cost_usd"`
}

// runPlanEval plans every description of the evaluation set through POST
// /api/v1/plan of a fresh levqor whose planning model is the deterministic stand-in
// (or, with LEVQOR_BENCH_PLAN_MODEL_URL set, a real OpenAI-compatible model), and
// prints each description's and the whole set's node and edge F1 (TaskBench's).
func runPlanEval(ctx context.Context, o options) (outcome, error) {
	cases, err := planeval.Cases()
	if err != nil {
		return outcome{}, err
	}
	url, key, model := os.Getenv(planModelURLEnv), os.Getenv(planModelKeyEnv), os.Getenv(planModelEnv)
	if model == "" {
		model = planDefaultModel
	}
	details := planEvalDetails{Model: model, Fake: url == ""}
	if details.Fake {
		fake := aitest.New(planFakeKey, keywordModel)
		defer fake.Close()
		url, key = fake.URL, planFakeKey
		fmt.Fprintf(o.out, "model: the deterministic stand-in (set %s, %s and %s for a real one)\n", planModelURLEnv, planModelKeyEnv, planModelEnv)
	} else {
		fmt.Fprintf(o.out, "model: %s at %s\n", model, url)
	}
	dir, err := os.MkdirTemp("", "levqor-bench-*")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(dir)
	env := levqorJobsEnv("LEVQOR_AI_BASE_URL="+url, "LEVQOR_AI_API_KEY="+key, "LEVQOR_PLAN_MODEL="+model)
	if prices := os.Getenv(planPricesEnv); prices != "" {
		env = append(env, "LEVQOR_AI_PRICES="+prices)
	}
	var servers []*server
	defer func() { err = errors.Join(err, stopAll(servers)) }()
	lev, err := startReady(ctx, &servers, "/ready", func() (*server, error) { return startLevqor(o.bin, dir, env...) })
	if err != nil {
		return outcome{}, err
	}

	client := &http.Client{Timeout: planRequestTimeout}
	defer client.CloseIdleConnections()
	fmt.Fprintf(o.out, "%-20s %6s %5s %7s %8s %8s %9s\n", "description", "status", "calls", "repairs", "node F1", "edge F1", "seconds")
	for _, c := range cases {
		res, err := planCase(ctx, client, lev.addr, c)
		if err != nil {
			return outcome{Details: details}, fmt.Errorf("%s: %w", c.ID, err)
		}
		details.Cases = append(details.Cases, res)
		details.Nodes, details.Edges = details.Nodes.Add(res.Nodes), details.Edges.Add(res.Edges)
		details.CostUSD += res.CostUSD
		if res.Status == http.StatusOK {
			details.Valid++
		}
		status := fmt.Sprint(res.Status)
		if res.Code != "" {
			status = res.Code
		}
		fmt.Fprintf(o.out, "%-20s %6s %5d %7d %8s %8s %9.2f\n", c.ID, status, res.Calls, res.Repairs, f1(res.Nodes), f1(res.Edges), res.Seconds)
	}
	if details.Valid == 0 && !slices.ContainsFunc(details.Cases, func(r planCaseResult) bool { return r.Code != "unavailable" }) {
		return outcome{Details: details}, errors.New("the planning model was unavailable for every description")
	}
	details.NodeF1, details.EdgeF1 = details.Nodes.F1(), details.Edges.F1()
	fmt.Fprintf(o.out, "overall: %d of %d plans valid; node P %.3f R %.3f F1 %.3f; edge P %.3f R %.3f F1 %.3f; planning cost $%.4f\n",
		details.Valid, len(cases), details.Nodes.Precision(), details.Nodes.Recall(), details.NodeF1,
		details.Edges.Precision(), details.Edges.Recall(), details.EdgeF1, details.CostUSD)
	if err := lev.exitErr(); err != nil {
		return outcome{Details: details}, err
	}
	out := outcome{Details: details}
	if details.Fake {
		out.Checks = []check{
			atLeast("plan-eval stand-in: valid plans", float64(details.Valid), "plans", float64(len(cases))),
			atLeast("plan-eval stand-in: node F1", details.NodeF1, "", planFakeNodeF1),
			atLeast("plan-eval stand-in: edge F1", details.EdgeF1, "", planFakeEdgeF1),
		}
	}
	return out, nil
}

// f1 prints a case's F1, or "-" when there was nothing to find and nothing found.
func f1(c planeval.Counts) string {
	if c.Empty() {
		return "-"
	}
	return fmt.Sprintf("%.2f", c.F1())
}

// planCase plans one description and scores the answer; a plan refused (a problem)
// is scored as no plan. An error is a failure to measure (no answer at all).
func planCase(ctx context.Context, client *http.Client, addr string, c planeval.Case) (planCaseResult, error) {
	res := planCaseResult{ID: c.ID}
	body, err := json.Marshal(map[string]any{"description": c.Description})
	if err != nil {
		return res, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v1/plan", bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", benchAdminKey)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	res.Seconds, res.Status = time.Since(start).Seconds(), resp.StatusCode
	if err != nil {
		return res, err
	}
	var steps []workflow.Step
	if resp.StatusCode == http.StatusOK {
		var p struct {
			Workflow struct {
				Steps []workflow.Step `json:"steps"`
			} `json:"workflow"`
			Validation struct {
				Repairs int `json:"repairs"`
			} `json:"validation"`
			Planning struct {
				Calls   int     `json:"calls"`
				CostUSD float64 `json:"cost_usd"`
			} `json:"planning"`
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return res, fmt.Errorf("plan: %w", err)
		}
		steps, res.Calls, res.Repairs, res.CostUSD = p.Workflow.Steps, p.Planning.Calls, p.Validation.Repairs, p.Planning.CostUSD
	} else {
		var p struct {
			Code string `json:"code"`
		}
		if err := json.Unmarshal(data, &p); err != nil || p.Code == "" {
			return res, fmt.Errorf("status %d: %.300s", resp.StatusCode, data)
		}
		res.Code = p.Code
	}
	s, err := planeval.ScoreOf(c.Graph, steps)
	if err != nil {
		return res, err
	}
	res.Nodes, res.Edges = s.Nodes, s.Edges
	return res, nil
}
