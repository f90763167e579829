// Package ai is the "ai" connector: chat-model steps (complete, extract, classify) against
// any OpenAI-compatible Chat Completions endpoint, each provider call reserved against the
// job's cost budget before it is made and settled to the provider's reported usage after.
package ai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/levqor/levqor/connectors"
)

// Name is the connector's name in steps.
const Name = "ai"

// The connector's actions.
const (
	actionComplete = "complete"
	actionExtract  = "extract"
	actionClassify = "classify"
)

// Step error codes particular to this connector, besides those of package connectors.
const (
	CodeUnknownPrice   = "unknown_price"    // the model has no price, so its cost cannot be bounded
	CodeNoBudget       = "no_budget"        // the step runs without a budget in its context
	CodeBudgetExceeded = "budget_exceeded"  // the call's worst-case cost does not fit the budget
	CodeBudgetError    = "budget_error"     // the budget failed to reserve or settle
	CodeRefusedByModel = "refused_by_model" // the model declined to answer
)

const (
	// MaxTokensLimit is the largest max_tokens a step may ask for.
	MaxTokensLimit = 32768
	// MaxRepairs is the largest max_repairs an extract step may ask for.
	MaxRepairs = 5

	defaultMaxTokens         = 1024
	defaultRepairs           = 2
	defaultClassifyMaxTokens = 256
	defaultHTTPTimeout       = 5 * time.Minute
	// maxRetryAfter caps the Retry-After hint passed on from a 429.
	maxRetryAfter = connectors.MaxRetryAfter
)

// Config configures the connector. Build it once in main.
type Config struct {
	// BaseURL is the API root the Chat Completions path is joined to, e.g.
	// "https://api.openai.com/v1". Required.
	BaseURL string
	// APIKey is sent as a bearer token. It may be empty for endpoints without auth.
	APIKey string
	// DefaultModel is used when a step names none.
	DefaultModel string
	// DefaultMaxTokens is max_tokens when a complete or extract step gives none; 0 means 1024.
	DefaultMaxTokens int
	// Prices bounds and charges every call; nil means DefaultPrices().
	Prices PriceTable
	// HTTPClient carries the calls; nil means a client with a 5-minute timeout. If the
	// base URL comes from anyone but the operator, pass an outbound.Guard's Client.
	HTTPClient *http.Client
	// MaxRetries is how often the SDK retries a 408, 409, 429, 5xx or connection failure
	// within one call: 0 means the SDK's default (2), a negative number means never.
	MaxRetries int
	// Logger receives warnings about implausible usage reports; nil means slog.Default().
	Logger *slog.Logger
}

// Connector is the ai connector. It is safe for concurrent use.
type Connector struct {
	chat             openai.ChatCompletionService
	apiKey           string // only to scrub it from anything that could reach a message
	defaultModel     string
	defaultMaxTokens int
	prices           PriceTable
	actions          []connectors.Action
	log              *slog.Logger
}

var (
	_ connectors.Connector       = (*Connector)(nil)
	_ connectors.OutputDescriber = (*Connector)(nil)
)

// New returns the ai connector, or an error if cfg is unusable.
func New(cfg Config) (*Connector, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("ai: BaseURL must be an absolute http or https URL")
	}
	if u.User != nil {
		return nil, errors.New("ai: BaseURL must not contain credentials; use APIKey")
	}
	maxTokens := cfg.DefaultMaxTokens
	if maxTokens == 0 {
		maxTokens = defaultMaxTokens
	}
	if maxTokens < 1 || maxTokens > MaxTokensLimit {
		return nil, fmt.Errorf("ai: DefaultMaxTokens must be between 1 and %d", MaxTokensLimit)
	}
	prices := cfg.Prices
	if prices == nil {
		prices = DefaultPrices()
	}
	copied := make(PriceTable, len(prices))
	for model, p := range prices {
		if err := p.validate(model); err != nil {
			return nil, fmt.Errorf("ai: prices: %w", err)
		}
		copied[model] = p
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithHTTPClient(client),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	switch {
	case cfg.MaxRetries < 0:
		opts = append(opts, option.WithMaxRetries(0))
	case cfg.MaxRetries > 0:
		opts = append(opts, option.WithMaxRetries(cfg.MaxRetries))
	}
	return &Connector{
		// The chat service is built directly rather than through openai.NewClient, which
		// would also read OPENAI_* variables (organization, project, extra headers) from
		// the environment: this connector's configuration comes from Config alone.
		chat:             openai.NewChatCompletionService(opts...),
		apiKey:           cfg.APIKey,
		defaultModel:     cfg.DefaultModel,
		defaultMaxTokens: maxTokens,
		prices:           copied,
		actions:          actions(maxTokens),
		log:              log,
	}, nil
}

// Name implements connectors.Connector.
func (*Connector) Name() string { return Name }

// Actions implements connectors.Connector.
func (c *Connector) Actions() []connectors.Action {
	out := make([]connectors.Action, len(c.actions))
	copy(out, c.actions)
	return out
}

// Run implements connectors.Connector.
func (c *Connector) Run(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error) {
	return connectors.Dispatch(ctx, Name, action, input, map[string]connectors.Handler{
		actionComplete: c.complete,
		actionExtract:  c.extract,
		actionClassify: c.classify,
	})
}
