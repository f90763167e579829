package aitest

// ExactChat, a second fake beside Server, is for budget tests outside connectors/ai
// (server, the scale demo): it bills each call exactly what the ai connector reserves
// for it, so a budget of N calls' cost fits exactly N calls.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors/ai"
)

// ExactChat is the fake: POST /v1/chat/completions with the bearer key, answered with
// "hi" and usage of the prompt tokens the connector counts offline plus the whole
// max_tokens (finish_reason "length"), in the real wire format.
type ExactChat struct {
	Server *httptest.Server
	// Calls counts the calls answered with a completion (billed calls).
	Calls atomic.Int64
}

// NewExactChat starts the fake for apiKey; each answer waits delay first (0: none), as
// a provider takes its time, so calls are in flight together. It stops when t ends.
func NewExactChat(t testing.TB, apiKey string, delay time.Duration) *ExactChat {
	c := &ExactChat{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model     string       `json:"model"`
			Messages  []ai.Message `json:"messages"`
			MaxTokens int64        `json:"max_tokens"`
		}
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions":
			writeError(w, http.StatusNotFound, "invalid_request_error", "", "Unknown request URL: "+r.Method+" "+r.URL.Path)
			return
		case r.Header.Get("Authorization") != "Bearer "+apiKey:
			writeError(w, http.StatusUnauthorized, "invalid_request_error", "", "Incorrect API key provided.")
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
			return
		}
		prompt, err := ai.EstimatePromptTokens(req.Model, req.Messages)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "server_error", "", "tokenizer")
			return
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		c.Calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-exact", "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "length",
				"message": map[string]any{"role": "assistant", "content": "hi", "refusal": nil}}},
			"usage": map[string]any{"prompt_tokens": prompt, "completion_tokens": req.MaxTokens, "total_tokens": prompt + req.MaxTokens},
		})
	}))
	t.Cleanup(c.Server.Close)
	return c
}

// BaseURL is what the ai connector's BaseURL (LEVQOR_AI_BASE_URL) is set to.
func (c *ExactChat) BaseURL() string { return c.Server.URL + "/v1" }

// CallCost is what one call with a single user message prompt and maxTokens costs at
// model's default price when billed as ExactChat bills it: the ai connector's
// reservation for that call.
func CallCost(model, prompt string, maxTokens int64) (budget.Nanos, error) {
	tokens, err := ai.EstimatePromptTokens(model, []ai.Message{{Role: "user", Content: prompt}})
	if err != nil {
		return 0, err
	}
	price, ok := ai.DefaultPrices()[model]
	if !ok {
		return 0, fmt.Errorf("aitest: no default price for %s", model)
	}
	return budget.USDToNanos((float64(tokens)*price.InputPerMillion + float64(maxTokens)*price.OutputPerMillion) / 1e6), nil
}
