package main

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/levqor/levqor/connectors/ai/aitest"
)

// TestKeywordPlan: the stand-in picks one action per matching rule, in the order
// the keywords appear, each step needing the one before and reading its output.
func TestKeywordPlan(t *testing.T) {
	plan := keywordPlan("Summarise the page at the URL and post it to Slack.")
	steps := plan["steps"].([]any)
	var labels []string
	for _, s := range steps {
		m := s.(map[string]any)
		labels = append(labels, m["connector"].(string)+"."+m["action"].(string))
	}
	if want := []string{"ai.complete", "http.request", "slack.post_message"}; !reflect.DeepEqual(labels, want) {
		t.Fatalf("labels = %v, want %v", labels, want)
	}
	third := steps[2].(map[string]any)
	if !reflect.DeepEqual(third["needs"], []string{"s2"}) || third["input"].(map[string]any)["text"] != "{{steps.s2.output.text}}" {
		t.Errorf("third step = %v", third)
	}
	if first := steps[0].(map[string]any); !reflect.DeepEqual(first["needs"], []string{}) {
		t.Errorf("first step needs %v, want []", first["needs"])
	}
}

// TestKeywordModel: a repair request is answered with the plan of the first user
// message, not of the repair message.
func TestKeywordModel(t *testing.T) {
	req := aitest.Request{Messages: []aitest.Message{{Role: "system", Content: "rules"}, {Role: "user", Content: "Post to Slack."},
		{Role: "assistant", Content: "{}"}, {Role: "user", Content: "Your workflow was refused: echo it."}}}
	rep := keywordModel(1, req)
	var got map[string]any
	if err := json.Unmarshal([]byte(rep.Content), &got); err != nil {
		t.Fatal(err)
	}
	steps := got["steps"].([]any)
	if len(steps) != 1 || steps[0].(map[string]any)["action"] != "post_message" || rep.CompletionTokens <= 0 {
		t.Errorf("answer = %s", rep.Content)
	}
}
