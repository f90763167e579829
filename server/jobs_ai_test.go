package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors/ai"
)

// fakeChat is a minimal OpenAI-compatible Chat Completions server: every call
// answers "hello" with the usage given, in the real wire format.
func fakeChat(t *testing.T, promptTokens, completionTokens int) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
			return
		}
		calls.Add(1)
		var req struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": "hello", "refusal": nil}}},
			"usage": map[string]any{"prompt_tokens": promptTokens, "completion_tokens": completionTokens, "total_tokens": promptTokens + completionTokens},
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// TestAIStepCostAndJobBudget: an ai.complete step is charged to the step and the
// job; a job whose guardrails cannot cover the worst case fails budget_exceeded
// without calling the provider.
func TestAIStepCostAndJobBudget(t *testing.T) {
	chat, calls := fakeChat(t, 1000, 40) // usage the request can produce: 40 ≤ max_tokens 50
	conn, err := ai.New(ai.Config{BaseURL: chat.URL + "/v1", APIKey: "sk-test", DefaultModel: "gpt-4o-mini"})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, withAdmin, func(o *testOptions) {
		e := newEngineWith(t, o.Store, o.Logger, []string{"127.0.0.0/8"}, conn)
		o.Jobs, o.Hub = e.Service, e.Hub
	})
	ten := b.newTenant(t, "ai@example.com")
	aiStep := step("ask", "ai", "complete", map[string]any{"prompt": "Say hello.", "max_tokens": 50})

	ok := b.submit(t, ten.key, map[string]any{"workflow": "ai", "payload": map[string]any{}, "steps": []any{aiStep}})
	j := b.waitStatus(t, ten.key, ok.JobId, "succeeded", 10*time.Second)
	price := ai.DefaultPrices()["gpt-4o-mini"]
	want := (1000*price.InputPerMillion + 40*price.OutputPerMillion) / 1e6
	if j.CostUsd == nil || j.Steps[0].CostUsd == nil || abs(*j.CostUsd-want) > 1e-9 || abs(*j.Steps[0].CostUsd-want) > 1e-9 {
		t.Fatalf("cost: job %v step %v, want %v (the provider's reported usage)", j.CostUsd, j.Steps[0].CostUsd, want)
	}
	if calls.Load() != 1 {
		t.Fatalf("provider calls = %d, want 1", calls.Load())
	}

	tight := b.submit(t, ten.key, map[string]any{"workflow": "ai", "payload": map[string]any{}, "steps": []any{aiStep},
		"guardrails": map[string]any{"max_cost_usd": 0.0000001}})
	f := b.waitStatus(t, ten.key, tight.JobId, "failed", 10*time.Second)
	if f.Error == nil || f.Error.Code != ai.CodeBudgetExceeded || f.Attempts != 1 {
		t.Fatalf("tight budget: error %+v attempts %d, want %s after one attempt", f.Error, f.Attempts, ai.CodeBudgetExceeded)
	}
	if calls.Load() != 1 {
		t.Errorf("the provider was called for a job over its budget (%d calls)", calls.Load())
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
