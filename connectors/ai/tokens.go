package ai

import (
	"fmt"
	"strings"
	"sync"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// Chat framing, as OpenAI's cookbook counts it ("How to count tokens with tiktoken",
// num_tokens_from_messages): every message costs 3 tokens besides its role and content,
// and every reply is primed with 3 more (<|start|>assistant<|message|>).
const (
	tokensPerMessage = 3
	tokensReplyPrime = 3
)

// Split patterns of the two encodings, as in tiktoken's openai_public.py (and
// tiktoken-go's encoding.go). They are repeated here so the encoders can be built from
// the embedded BPE files without tiktoken.SetBpeLoader, which swaps a package-level
// loader for every user of the library in the process.
const (
	o200kPattern = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// The encoders are immutable once built and take a noticeable moment to build (hundreds
// of thousands of BPE ranks), so they are built once per process, on first use, from the
// BPE files embedded in tiktoken-go-loader: counting never touches the network.
var (
	o200k  = sync.OnceValues(func() (*tiktoken.Tiktoken, error) { return newEncoder("o200k_base", o200kPattern) })
	cl100k = sync.OnceValues(func() (*tiktoken.Tiktoken, error) { return newEncoder("cl100k_base", cl100kPattern) })
)

func newEncoder(name, pattern string) (*tiktoken.Tiktoken, error) {
	ranks, err := tiktoken_loader.NewOfflineLoader().LoadTiktokenBpe(name + ".tiktoken")
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	// Only ordinary encoding is used (user text is never read as special tokens), so the
	// special-token table stays empty.
	bpe, err := tiktoken.NewCoreBPE(ranks, map[string]int{}, pattern)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	return tiktoken.NewTiktoken(bpe, &tiktoken.Encoding{Name: name, PatStr: pattern, MergeableRanks: ranks}, map[string]any{}), nil
}

// EncodingFor names the tokenizer used to count model's prompts: o200k_base for the
// GPT-4o, GPT-4.1, GPT-4.5, GPT-5 and o-series families, cl100k_base for everything else
// (GPT-4, GPT-3.5 and, as an approximation, models of other vendors served through an
// OpenAI-compatible endpoint).
func EncodingFor(model string) string {
	m := strings.ToLower(model)
	for _, p := range []string{"gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o"} {
		if strings.HasPrefix(m, p) {
			return "o200k_base"
		}
	}
	return "cl100k_base"
}

func encoderFor(model string) (*tiktoken.Tiktoken, error) {
	if EncodingFor(model) == "o200k_base" {
		return o200k()
	}
	return cl100k()
}

// EstimatePromptTokens counts the prompt tokens a Chat Completions request with msgs
// will be billed for by model, offline, the way OpenAI's cookbook does: the role and
// content of each message, 3 tokens of framing per message and 3 to prime the reply.
func EstimatePromptTokens(model string, msgs []Message) (int64, error) {
	enc, err := encoderFor(model)
	if err != nil {
		return 0, err
	}
	n := int64(tokensReplyPrime)
	for _, m := range msgs {
		n += tokensPerMessage + int64(len(enc.EncodeOrdinary(m.Role))) + int64(len(enc.EncodeOrdinary(m.Content)))
	}
	return n, nil
}

// countTokens counts text alone, with no framing.
func countTokens(model, text string) (int64, error) {
	enc, err := encoderFor(model)
	if err != nil {
		return 0, err
	}
	return int64(len(enc.EncodeOrdinary(text))), nil
}
