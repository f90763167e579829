package ai_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/levqor/levqor/connectors/ai"
)

// TestEstimateMatchesReferenceCounts compares the connector's offline prompt estimate with
// counts recorded in testdata/token_counts.json by testdata/count_tokens.mjs, which uses
// js-tiktoken (a separate JavaScript implementation of tiktoken with its own copy of the
// BPE ranks) and the OpenAI cookbook's chat-format counting.
//
// The estimate follows the same cookbook formula (3 tokens per message, role and content,
// 3 to prime the reply), so for these plain one-message requests it is identical by
// construction, and any difference means the two tokenizer implementations disagree (a
// wrong split pattern, wrong ranks, or the wrong encoding chosen for the model). Where the
// estimate does differ from the reference is elsewhere: for extract and classify it adds
// the tokens of the response_format schema's compact JSON, which the provider renders into
// the prompt in its own undocumented way; and for models served through a compatible
// endpoint with another tokenizer, cl100k_base is only an approximation.
func TestEstimateMatchesReferenceCounts(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "token_counts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Samples []struct {
			File         string `json:"file"`
			Model        string `json:"model"`
			Encoding     string `json:"encoding"`
			PromptTokens int64  `json:"prompt_tokens"`
		} `json:"samples"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Samples) < 6 {
		t.Fatalf("only %d reference samples", len(ref.Samples))
	}
	for _, s := range ref.Samples {
		text, err := os.ReadFile(filepath.Join("testdata", s.File))
		if err != nil {
			t.Fatal(err)
		}
		if got := ai.EncodingFor(s.Model); got != s.Encoding {
			t.Errorf("%s: encoding %s; the reference used %s", s.Model, got, s.Encoding)
		}
		got, err := ai.EstimatePromptTokens(s.Model, []ai.Message{{Role: "user", Content: string(text)}})
		if err != nil {
			t.Fatal(err)
		}
		off := math.Abs(float64(got-s.PromptTokens)) / float64(s.PromptTokens)
		t.Logf("%s / %s: estimate %d, reference %d (%.2f%% off)", s.File, s.Model, got, s.PromptTokens, 100*off)
		if off > 0.10 {
			t.Errorf("%s / %s: estimate %d is more than 10%% from the reference %d", s.File, s.Model, got, s.PromptTokens)
		}
	}
}

// BenchmarkEstimatePromptTokens is the tokenizer's share of each call's overhead, for a
// prompt of a few hundred words.
func BenchmarkEstimatePromptTokens(b *testing.B) {
	text, err := os.ReadFile(filepath.Join("testdata", "english_essay.txt"))
	if err != nil {
		b.Fatal(err)
	}
	msgs := []ai.Message{{Role: "user", Content: string(text)}}
	if _, err := ai.EstimatePromptTokens("gpt-4o", msgs); err != nil { // loads the encoder
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ai.EstimatePromptTokens("gpt-4o", msgs); err != nil {
			b.Fatal(err)
		}
	}
}
