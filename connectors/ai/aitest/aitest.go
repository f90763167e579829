// Package aitest is a fake OpenAI-compatible Chat Completions API on a loopback port,
// speaking the real wire format (POST {base}/chat/completions with a bearer key, the
// completion object, OpenAI's error objects), for the tests and benchmarks of code
// that calls a model: the ai connector and the planner.
package aitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Reply scripts one response.
type Reply struct {
	Status  int               // 0 means 200
	Header  map[string]string // extra response headers
	Raw     string            // a raw body, sent as is (as application/json)
	ErrType string            // for an error status: the error object's type,
	ErrCode string            // code
	ErrMsg  string            // and message

	Content          string // for a 200: the assistant's content
	Refusal          string
	FinishReason     string // "" means "stop"
	PromptTokens     int64
	CompletionTokens int64
	NoUsage          bool
	Delay            time.Duration
	Hook             func() // runs while the request is being served
}

// Message is one message of a request.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is the part of a Chat Completions request body that tests look at.
type Request struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	ResponseFormat      *ResponseFormat `json:"response_format"`
}

// ResponseFormat is a request's response_format.
type ResponseFormat struct {
	Type       string `json:"type"`
	JSONSchema struct {
		Name   string          `json:"name"`
		Strict bool            `json:"strict"`
		Schema json.RawMessage `json:"schema"`
	} `json:"json_schema"`
}

// LastUser returns the content of the request's last user message, or "".
func (r Request) LastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// Answer decides the reply to request n (counted from 0).
type Answer func(n int, req Request) Reply

// Script answers with replies in order; the last one repeats.
func Script(replies ...Reply) Answer {
	return func(n int, _ Request) Reply { return replies[min(n, len(replies)-1)] }
}

// Server is the fake API. It is safe for concurrent use.
type Server struct {
	// URL is the API root to configure a client with, e.g. http://127.0.0.1:41234/v1.
	URL string

	srv    *httptest.Server
	apiKey string
	answer Answer

	mu       sync.Mutex
	requests []Request
}

// New starts a server that expects the bearer key apiKey and answers with answer.
// Close it when done.
func New(apiKey string, answer Answer) *Server {
	s := &Server{apiKey: apiKey, answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1"
	return s
}

// Close stops the server, waiting for requests in flight.
func (s *Server) Close() { s.srv.Close() }

// Calls reports how many requests reached the model (authenticated and well-formed).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Request returns request i, and false if it was never made.
func (s *Server) Request(i int) (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.requests) {
		return Request{}, false
	}
	return s.requests[i], true
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

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.apiKey {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
			"Incorrect API key provided: "+r.Header.Get("Authorization")+". You can find your API key at https://platform.openai.com/account/api-keys.")
		return
	}
	var req Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return
	}
	s.mu.Lock()
	n := len(s.requests)
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	rep := s.answer(n, req)

	if rep.Hook != nil {
		rep.Hook()
	}
	if rep.Delay > 0 {
		select {
		case <-time.After(rep.Delay):
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	switch {
	case rep.Raw != "":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(max(rep.Status, http.StatusOK))
		_, _ = w.Write([]byte(rep.Raw))
		return
	case rep.Status >= 400:
		writeError(w, rep.Status, rep.ErrType, rep.ErrCode, rep.ErrMsg)
		return
	}
	msg := map[string]any{"role": "assistant", "content": rep.Content, "refusal": nil}
	if rep.Refusal != "" {
		msg["content"], msg["refusal"] = nil, rep.Refusal
	}
	finish := rep.FinishReason
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
	if !rep.NoUsage {
		body["usage"] = map[string]any{
			"prompt_tokens":     rep.PromptTokens,
			"completion_tokens": rep.CompletionTokens,
			"total_tokens":      rep.PromptTokens + rep.CompletionTokens,
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}
