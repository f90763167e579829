package ai_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeReply scripts one response of the fake Chat Completions API.
type fakeReply struct {
	status  int               // 0 means 200
	header  map[string]string // extra response headers
	raw     string            // a raw body, sent as is (with contentType)
	errType string            // for an error status: the error object's type,
	errCode string            // code
	errMsg  string            // and message

	content          string // for a 200: the assistant's content
	refusal          string
	finishReason     string // "" means "stop"
	promptTokens     int64
	completionTokens int64
	noUsage          bool
	delay            time.Duration
	hook             func() // runs while the request is being served
}

// chatRequest is the part of a Chat Completions request body the tests look at.
type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	MaxTokens           *int64   `json:"max_tokens"`
	MaxCompletionTokens *int64   `json:"max_completion_tokens"`
	Temperature         *float64 `json:"temperature"`
	ResponseFormat      *struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Name   string          `json:"name"`
			Strict bool            `json:"strict"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

// fakeProvider speaks the Chat Completions wire format: POST {base}/chat/completions with
// a bearer key, answering with the scripted replies in order (the last one repeats).
type fakeProvider struct {
	t      testing.TB
	srv    *httptest.Server
	apiKey string

	mu       sync.Mutex
	replies  []fakeReply
	requests []chatRequest
}

func newFakeProvider(t testing.TB, apiKey string, replies ...fakeReply) *fakeProvider {
	f := &fakeProvider{t: t, apiKey: apiKey, replies: replies}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeProvider) baseURL() string { return f.srv.URL + "/v1" }

func (f *fakeProvider) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeProvider) request(i int) chatRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.requests) {
		f.t.Fatalf("request %d was never made (%d made)", i, len(f.requests))
	}
	return f.requests[i]
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var c any
	if code != "" {
		c = code
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}})
}

func (f *fakeProvider) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.apiKey {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
			"Incorrect API key provided: "+r.Header.Get("Authorization")+". You can find your API key at https://platform.openai.com/account/api-keys.")
		return
	}
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return
	}
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, req)
	rep := f.replies[min(n, len(f.replies)-1)]
	f.mu.Unlock()

	if rep.hook != nil {
		rep.hook()
	}
	if rep.delay > 0 {
		select {
		case <-time.After(rep.delay):
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	switch {
	case rep.raw != "":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(max(rep.status, http.StatusOK))
		_, _ = w.Write([]byte(rep.raw))
		return
	case rep.status >= 400:
		writeError(w, rep.status, rep.errType, rep.errCode, rep.errMsg)
		return
	}
	msg := map[string]any{"role": "assistant", "content": rep.content, "refusal": nil}
	if rep.refusal != "" {
		msg["content"], msg["refusal"] = nil, rep.refusal
	}
	finish := rep.finishReason
	if finish == "" {
		finish = "stop"
	}
	body := map[string]any{
		"id":      fmt.Sprintf("chatcmpl-%d", n),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   req.Model + "-2024-08-06",
		"choices": []any{map[string]any{"index": 0, "message": msg, "logprobs": nil, "finish_reason": finish}},
	}
	if !rep.noUsage {
		body["usage"] = map[string]any{
			"prompt_tokens":     rep.promptTokens,
			"completion_tokens": rep.completionTokens,
			"total_tokens":      rep.promptTokens + rep.completionTokens,
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}
