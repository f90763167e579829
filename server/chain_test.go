package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/connectors/slack"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/client"
)

const chainSlackToken = "xoxb-chain-7f3a9c2e51d84b60"

// TestJobChainsAIToSlack runs a whole job through real connectors and fake vendors
// speaking their wire formats: ai.complete writes a summary, slack.post_message posts
// it through a step reference, with the owner's Slack token from the connections API.
// The token reaches Slack and nowhere else: not the job record, not the logs.
func TestJobChainsAIToSlack(t *testing.T) {
	t.Parallel()
	const summary = "Deploy 42 finished: all checks green."
	chat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer sk-chain" {
			http.Error(w, `{"error":{"message":"bad request","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-chain", "object": "chat.completion", "created": time.Now().Unix(), "model": "gpt-4o-mini",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": summary, "refusal": nil}}},
			"usage": map[string]any{"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23},
		})
	}))
	t.Cleanup(chat.Close)

	var posts atomic.Int64
	slackAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || r.URL.Path != "/api/chat.postMessage" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if r.PostForm.Get("token") != chainSlackToken && r.Header.Get("Authorization") != "Bearer "+chainSlackToken {
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			return
		}
		if r.PostForm.Get("channel") != "C0CHAIN" || r.PostForm.Get("text") != summary {
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_arguments"}`))
			return
		}
		posts.Add(1)
		_, _ = w.Write([]byte(`{"ok":true,"channel":"C0CHAIN","ts":"1764115200.000100","message":{"type":"message","text":"` + summary + `"}}`))
	}))
	t.Cleanup(slackAPI.Close)

	b := setup(t, withAdmin, func(o *testOptions) {
		creds := credentials.NewService(o.Store, testSecretKey, nil)
		aiConn, err := ai.New(ai.Config{BaseURL: chat.URL + "/v1", APIKey: "sk-chain", DefaultModel: "gpt-4o-mini", MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		slackConn, err := slack.New(slack.Config{BaseURL: slackAPI.URL + "/api/", Credentials: creds})
		if err != nil {
			t.Fatal(err)
		}
		e := newEngineWith(t, o.Store, o.Logger, []string{"127.0.0.0/8"}, aiConn, slackConn)
		o.Credentials, o.Jobs, o.Hub = creds, e.Service, e.Hub
	})
	ten := b.newTenant(t, "chain@example.com")
	resp, body := b.putConn(t, ten.key, "slack", map[string]any{"secrets": map[string]string{"token": chainSlackToken}})
	decode[client.Connection](t, resp, body, http.StatusOK)

	job := map[string]any{"workflow": "deploy-digest", "payload": map[string]any{}, "steps": []any{
		step("ask", "ai", "complete", map[string]any{"prompt": "Summarise deploy 42.", "max_tokens": 40}),
		step("post", "slack", "post_message", map[string]any{"channel": "C0CHAIN", "text": "{{steps.ask.output.text}}"}),
	}}
	resp, body = b.intake(t, ten.key, job, "")
	acc := decode[client.JobAccepted](t, resp, body, http.StatusAccepted)
	j := b.waitStatus(t, ten.key, acc.JobId, "succeeded", 20*time.Second)
	if posts.Load() != 1 {
		t.Errorf("Slack got %d posts, want 1", posts.Load())
	}
	if j.CostUsd == nil || *j.CostUsd <= 0 || len(j.Steps) != 2 || j.Steps[0].CostUsd == nil || *j.Steps[0].CostUsd != *j.CostUsd {
		t.Errorf("costs: job %v, steps %+v", j.CostUsd, j.Steps)
	}
	resp, record := b.do(t, "GET", "/api/v1/jobs/"+acc.JobId, hdr(ten.key, ""), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(record), "1764115200.000100") {
		t.Fatalf("job record %d: %s", resp.StatusCode, record)
	}
	for where, text := range map[string]string{"the job record": string(record), "the logs": b.Logs()} {
		if strings.Contains(text, chainSlackToken) || strings.Contains(text, "sk-chain") {
			t.Errorf("%s holds a secret", where)
		}
	}
}
