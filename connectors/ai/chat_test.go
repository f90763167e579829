package ai_test

import (
	"strings"
	"testing"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
)

// TestChat: a call made for Levqor itself is reserved at its worst case (prompt
// and schema counted, plus max_tokens) and settled to the reported usage like a
// step's; its schema is sent as a response_format, strict only when asked.
func TestChat(t *testing.T) {
	var held float64
	var b *bundle
	b = setup(t, []fakeReply{{Content: `{"ok": true}`, PromptTokens: 90, CompletionTokens: 4, Hook: func() { held = b.budget.ReservedUSD() }}})
	msgs := []ai.Message{{Role: "system", Content: "Answer in JSON."}, {Role: "user", Content: "Is it?"}}
	schema := `{"type": "object", "properties": {"ok": {"type": "boolean"}}}`
	rep, err := b.conn.Chat(t.Context(), b.budget, ai.ChatRequest{Messages: msgs, MaxTokens: 300, Schema: []byte(schema), SchemaName: "answer"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Content != `{"ok": true}` || rep.Model != "gpt-4o-2024-08-06" || rep.Usage.PromptTokens != 90 || !near(rep.CostUSD, cost(90, 4)) {
		t.Fatalf("reply = %+v", rep)
	}
	b.wantSpent(t, cost(90, 4))
	if held <= cost(estimate(t, "gpt-4o", msgs...), 300) {
		t.Errorf("held $%.9f during the call; want more than the messages' worst case (the schema counts too)", held)
	}
	req := b.fake.request(0)
	rf := req.ResponseFormat
	if req.Model != "gpt-4o" || *req.MaxTokens != 300 || rf == nil || rf.JSONSchema.Strict || rf.JSONSchema.Name != "answer" ||
		!strings.Contains(string(rf.JSONSchema.Schema), `"ok":{"type":"boolean"}`) {
		t.Errorf("request = %+v, response_format %+v", req, rf)
	}

	if _, err := b.conn.Chat(t.Context(), b.budget, ai.ChatRequest{Messages: msgs, Schema: []byte(schema), SchemaName: "answer", Strict: true}); err != nil {
		t.Fatal(err)
	}
	if req := b.fake.request(1); !req.ResponseFormat.JSONSchema.Strict || *req.MaxTokens != 500 {
		t.Errorf("strict %v, max_tokens %d; want strict and the default 500", req.ResponseFormat.JSONSchema.Strict, *req.MaxTokens)
	}
}

// TestChatRefused: a call whose worst case does not fit is refused before it is
// made; a model without a price and max_tokens out of bounds are refused too.
func TestChatRefused(t *testing.T) {
	b := setup(t, []fakeReply{{Content: "{}"}})
	tiny, err := budget.NewJobBudget(0.000001)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []ai.Message{{Role: "user", Content: "Hi."}}
	_, err = b.conn.Chat(t.Context(), tiny, ai.ChatRequest{Messages: msgs})
	wantStepError(t, err, ai.CodeBudgetExceeded, false)
	_, err = b.conn.Chat(t.Context(), b.budget, ai.ChatRequest{Model: "unpriced-model", Messages: msgs})
	wantStepError(t, err, ai.CodeUnknownPrice, false)
	_, err = b.conn.Chat(t.Context(), b.budget, ai.ChatRequest{Messages: msgs, MaxTokens: ai.MaxTokensLimit + 1})
	wantStepError(t, err, connectors.CodeInvalidInput, false)
	if b.fake.calls() != 0 {
		t.Errorf("%d calls made; want none", b.fake.calls())
	}
}
