package ai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Usage is what the provider reports a call (or, summed, a step) consumed.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

func (u *Usage) add(o Usage) {
	u.PromptTokens += o.PromptTokens
	u.CompletionTokens += o.CompletionTokens
}

// request is one provider call.
type request struct {
	model       string
	price       Price
	messages    []Message
	maxTokens   int64
	temperature *float64
	format      *jsonFormat // nil: plain text
}

// jsonFormat asks for a reply matching schema (response_format json_schema). strict asks
// the provider to enforce it, which OpenAI does only for a subset of JSON Schema.
type jsonFormat struct {
	name   string
	schema json.RawMessage
	strict bool
}

// worstCase counts the request's prompt tokens offline and prices them with max_tokens
// of output: the most the call can cost.
func worstCase(req request) (promptTokens int64, usd float64, err error) {
	promptTokens, err = EstimatePromptTokens(req.model, req.messages)
	if err != nil {
		return 0, 0, fmt.Errorf("count prompt tokens: %w", err)
	}
	if req.format != nil {
		// The provider puts the schema into the prompt in its own rendering; its compact
		// JSON is a close stand-in.
		n, err := countTokens(req.model, string(req.format.schema))
		if err != nil {
			return 0, 0, fmt.Errorf("count schema tokens: %w", err)
		}
		promptTokens += n
	}
	return promptTokens, req.price.cost(promptTokens, req.maxTokens), nil
}

// reply is one successful provider call.
type reply struct {
	content      string
	finishReason string
	model        string
	usage        Usage
	cost         float64 // what was settled against the budget
}

// call makes one provider call under a reservation: it estimates the worst case (prompt
// tokens counted offline plus max_tokens of output), reserves it, calls, and settles to
// the provider's reported usage. The SDK's retries happen inside the one reservation and
// are settled once. Whatever the outcome, the reservation is settled before call returns.
func (c *Connector) call(ctx context.Context, b budget.Budget, req request) (reply, error) {
	promptTokens, worst, err := worstCase(req)
	if err != nil {
		return reply{}, err
	}
	res, err := budget.Reserve(ctx, b, req.model, worst)
	if err != nil {
		return reply{}, reserveError(ctx, err)
	}

	completion, callErr := c.chat.New(ctx, c.params(req))

	// Settling must happen even if the step's context is done: the money may be spent.
	settleCtx := context.WithoutCancel(ctx)
	// Reported usage is charged only as far as the request could have produced it.
	honest := func(u Usage) Usage {
		if err := checkUsage(u, req); err != nil {
			c.implausibleUsage(ctx, req, u, err)
			return Usage{PromptTokens: promptTokens, CompletionTokens: req.maxTokens} // the reservation
		}
		return u
	}
	if callErr != nil {
		billed := req.price.cost(promptTokens, 0) // a failed call may still have read the prompt
		if u, ok := usageFromError(callErr); ok {
			u = honest(u)
			billed = req.price.cost(u.PromptTokens, u.CompletionTokens)
		}
		if err := b.Settle(settleCtx, res, billed); err != nil {
			return reply{}, settleError(err)
		}
		return reply{}, c.providerError(ctx, callErr)
	}

	rep := reply{model: completion.Model}
	if rep.model == "" {
		rep.model = req.model
	}
	if len(completion.Choices) > 0 {
		ch := completion.Choices[0]
		rep.content, rep.finishReason = ch.Message.Content, ch.FinishReason
	}
	if completion.JSON.Usage.Valid() {
		rep.usage = honest(Usage{PromptTokens: completion.Usage.PromptTokens, CompletionTokens: completion.Usage.CompletionTokens})
	} else {
		// Some compatible servers leave usage out; charge the estimate and the reply's length.
		n, err := countTokens(req.model, rep.content)
		if err != nil {
			n = req.maxTokens
		}
		rep.usage = honest(Usage{PromptTokens: promptTokens, CompletionTokens: n})
	}
	rep.cost = req.price.cost(rep.usage.PromptTokens, rep.usage.CompletionTokens)
	if err := b.Settle(settleCtx, res, rep.cost); err != nil {
		return reply{}, settleError(err)
	}

	switch {
	case len(completion.Choices) == 0:
		return rep, &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true,
			Message: "the provider's reply has no choices"}
	case completion.Choices[0].Message.Refusal != "":
		// The refusal's text is model output and stays out of the message.
		return rep, connectors.Errorf(CodeRefusedByModel, "model %s declined to answer", req.model)
	}
	return rep, nil
}

func (c *Connector) params(req request) openai.ChatCompletionNewParams {
	msgs := make([]openai.ChatCompletionMessageParamUnion, 0, len(req.messages))
	for _, m := range req.messages {
		switch m.Role {
		case "system":
			msgs = append(msgs, openai.SystemMessage(m.Content))
		case "assistant":
			msgs = append(msgs, openai.AssistantMessage(m.Content))
		default:
			msgs = append(msgs, openai.UserMessage(m.Content))
		}
	}
	p := openai.ChatCompletionNewParams{Model: req.model, Messages: msgs}
	if reasoningModel(req.model) {
		// The o-series refuse max_tokens; their reasoning tokens count as completion tokens
		// and are bounded by max_completion_tokens, so the worst case still holds.
		p.MaxCompletionTokens = openai.Int(req.maxTokens)
	} else {
		p.MaxTokens = openai.Int(req.maxTokens)
	}
	if req.temperature != nil {
		p.Temperature = openai.Float(*req.temperature)
	}
	if req.format != nil {
		p.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
					Name:   req.format.name,
					Strict: openai.Bool(req.format.strict),
					Schema: req.format.schema,
				},
			},
		}
	}
	return p
}

func reasoningModel(model string) bool {
	m := strings.ToLower(model)
	return len(m) > 1 && m[0] == 'o' && m[1] >= '1' && m[1] <= '9'
}

func reserveError(ctx context.Context, err error) error {
	var ee *budget.ExceededError
	switch {
	case errors.As(err, &ee):
		return &connectors.StepError{Code: CodeBudgetExceeded, Message: ee.Error(), Err: err}
	case errors.Is(err, budget.ErrExceeded):
		return &connectors.StepError{Code: CodeBudgetExceeded, Message: "the call does not fit the job's budget", Err: err}
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return &connectors.StepError{Code: CodeBudgetError, Retryable: true, Message: "the budget could not reserve the call's cost", Err: err}
}

// settleError fails the step without a retry: the call was made and paid for, and a
// retry would pay again while the books are already wrong.
func settleError(err error) error {
	return &connectors.StepError{Code: CodeBudgetError, Message: "the budget could not settle the call's cost", Err: err}
}

// usageFromError reads a usage object from an error response's body, where a provider
// that billed a failed call may report it (top level or inside "error").
func usageFromError(err error) (Usage, bool) {
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.Response == nil || apiErr.Response.Body == nil {
		return Usage{}, false
	}
	body, rerr := io.ReadAll(io.LimitReader(apiErr.Response.Body, 1<<20))
	if rerr != nil {
		return Usage{}, false
	}
	var doc struct {
		Usage *Usage `json:"usage"`
		Error struct {
			Usage *Usage `json:"usage"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return Usage{}, false
	}
	u := doc.Usage
	if u == nil {
		u = doc.Error.Usage
	}
	if u == nil {
		return Usage{}, false
	}
	return *u, true // checked by the caller, like a success's
}

// Bounds of the prompt a provider can bill for a request (maxPromptTokens), generous
// enough for any chat template and its hidden instructions.
const (
	// messageOverheadTokens is the most a chat template adds per message (role markers,
	// separators); OpenAI's adds 3.
	messageOverheadTokens = 16
	// promptOverheadTokens is what a provider may add to every prompt: reply priming, a
	// default system preamble, the instructions that introduce a response format.
	promptOverheadTokens = 1024
	// schemaTokensPerByte allows a provider to render a response format's schema in a form
	// up to twice as long as the compact JSON it was sent as.
	schemaTokensPerByte = 2
)

// maxPromptTokens is a sound upper bound on the prompt tokens of req. Tokenizers that
// work on bytes (BPE as in tiktoken, SentencePiece with byte fallback) never make more
// tokens of a text than it has bytes; the rest is the framing the constants above bound.
func maxPromptTokens(req request) int64 {
	n := int64(promptOverheadTokens)
	for _, m := range req.messages {
		n += int64(len(m.Role)) + int64(len(m.Content)) + messageOverheadTokens
	}
	if req.format != nil {
		n += schemaTokensPerByte * int64(len(req.format.name)+len(req.format.schema))
	}
	return n
}

// checkUsage says why u is not what req could have consumed: a negative count, more
// prompt tokens than maxPromptTokens, or more completion tokens than max_tokens allows.
func checkUsage(u Usage, req request) error {
	switch {
	case u.PromptTokens < 0 || u.CompletionTokens < 0:
		return errors.New("a negative token count")
	case u.PromptTokens > maxPromptTokens(req):
		return fmt.Errorf("more prompt tokens than the request's %d bytes and framing can make", maxPromptTokens(req)-promptOverheadTokens)
	case u.CompletionTokens > req.maxTokens:
		return fmt.Errorf("more completion tokens than max_tokens %d", req.maxTokens)
	}
	return nil
}

// implausibleUsage logs that the provider reported usage the request could not have
// produced and that the call is charged its reservation instead. The line carries
// counts, the model and the step, never the prompt, the reply or the key.
func (c *Connector) implausibleUsage(ctx context.Context, req request, u Usage, why error) {
	attrs := []any{"model", req.model, "reported_prompt_tokens", u.PromptTokens, "reported_completion_tokens", u.CompletionTokens,
		"max_prompt_tokens", maxPromptTokens(req), "max_tokens", req.maxTokens, "reason", why.Error()}
	if st, ok := connectors.StepFrom(ctx); ok {
		attrs = append(attrs, "job_id", st.JobID, "step", st.StepID)
	}
	c.log.WarnContext(ctx, "ai: the provider reported usage the request cannot have produced; charging the call's reservation", attrs...)
}

// providerError maps a failed call to a *StepError. Messages carry the status and the
// provider's error type and code, never its message (which may quote the API key, as
// OpenAI's 401 does, or the prompt) nor the raw body.
func (c *Connector) providerError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // the registry turns it into timeout or canceled
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		status := apiErr.StatusCode
		detail := c.errorDetail(apiErr)
		switch {
		case status == http.StatusTooManyRequests:
			se := &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
				Message: "the provider responded 429 Too Many Requests" + detail}
			if apiErr.Response != nil {
				se.RetryAfter = retryAfter(apiErr.Response.Header, time.Now())
			}
			return se
		case status >= 500 || status == http.StatusRequestTimeout || status == http.StatusConflict:
			return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
				Message: "the provider responded " + statusText(status) + detail}
		default:
			return &connectors.StepError{Code: connectors.CodeUpstreamError, Err: err,
				Message: "the provider rejected the request: " + statusText(status) + detail}
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &connectors.StepError{Code: connectors.CodeTimeout, Retryable: true, Err: err,
			Message: "the provider did not answer in time"}
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) || !isTransportError(err) {
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
			Message: "the provider's response could not be read as a chat completion"}
	}
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true, Err: err,
		Message: "the request to the provider failed before a response arrived"}
}

// isTransportError reports whether err came from the round trip (the SDK returns those
// wrapped in *url.Error) rather than from reading the response.
func isTransportError(err error) bool {
	var ue interface{ Temporary() bool }
	var opErr *net.OpError
	return errors.As(err, &opErr) || errors.As(err, &ue)
}

// errorDetail renders the provider's error type and code, reduced to identifier
// characters so that nothing but a short code can pass through.
func (c *Connector) errorDetail(e *openai.Error) string {
	var parts []string
	if t := c.identifier(e.Type); t != "" {
		parts = append(parts, "type "+t)
	}
	if code := c.identifier(e.Code); code != "" {
		parts = append(parts, "code "+code)
	}
	if p := c.identifier(e.Param); p != "" {
		parts = append(parts, "param "+p)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func (c *Connector) identifier(s string) string {
	if c.apiKey != "" && strings.Contains(s, c.apiKey) {
		return ""
	}
	if len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.[]", r)) {
			return ""
		}
	}
	return s
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return strconv.Itoa(code)
}

// retryAfter reads the provider's hint: retry-after-ms (OpenAI's), else Retry-After in
// seconds or as an HTTP date; capped at an hour.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			d = time.Duration(min(ms, float64(maxRetryAfter/time.Millisecond)) * float64(time.Millisecond))
		}
	} else if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
			d = time.Duration(min(secs, maxRetryAfter.Seconds()) * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	return max(0, min(d, maxRetryAfter))
}
