// Package planner proposes a workflow from a plain-language description: it asks a
// chat model (the ai connector's provider, under the owner's AI budget) for steps in a
// JSON Schema generated from the connector catalogue, checks the answer with the rules
// a saved workflow must follow, and sends the violations back for at most MaxRepairs
// repairs. Nothing it proposes is saved or run.
package planner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/workflow"
)

// Limits of planning, documented in docs/workflows.md and the API spec.
const (
	// MaxDescriptionChars bounds a description (the spec's maxLength says the same).
	MaxDescriptionChars = 4000
	// MaxRepairs is how many times a plan's violations are sent back to the model:
	// a plan takes at most MaxRepairs+1 model calls.
	MaxRepairs = 2
	// MaxTokens is every planning call's max_tokens: its output, and so its worst case.
	MaxTokens = 4096
	// MaxDuration bounds one plan, all its calls together; it is below the HTTP
	// server's write timeout (60 s), so the client always gets an answer.
	MaxDuration = 50 * time.Second
	// DefaultMaxInFlight is how many plans one process makes at once by default; each
	// holds a request and an upstream connection for up to MaxDuration.
	DefaultMaxInFlight = 8
	// MaxReasonChars bounds a step's reason.
	MaxReasonChars = 500
)

// reservationGrace is added to MaxDuration for a planning call's reservation expiry:
// a reservation outlives the call that holds it, so a crash returns the money later.
const reservationGrace = time.Minute

// Model is the chat model plans come from: the ai connector.
type Model interface {
	Chat(ctx context.Context, b budget.Budget, in ai.ChatRequest) (ai.ChatReply, error)
}

// StepValidator checks a step list as saved workflows are checked (jobs.Service).
type StepValidator interface {
	ValidateSteps(steps []workflow.Step, pointer string) error
}

// Config is what a Planner is built from, in main.
type Config struct {
	Model     Model                // required
	ModelName string               // "" means the model's default (LEVQOR_AI_MODEL)
	Registry  *connectors.Registry // the catalogue and the cost estimates (required)
	Steps     StepValidator        // required
	Budgets   *budget.Service      // the owner's AI budget every call is charged to (required)
	// MaxInFlight bounds the plans made at once (0: DefaultMaxInFlight); more are
	// refused as unavailable rather than queued.
	MaxInFlight int
	Timeout     time.Duration // bounds one plan (0: MaxDuration)
	Logger      *slog.Logger  // nil: slog.Default()
}

// Contract is what PUT /api/v1/workflows/{name} accepts, taken from the API spec by
// the server: the planner proposes exactly that.
type Contract struct {
	// Schema is the JSON Schema (2020-12, self-contained) of the request body: the
	// model's answer schema is built from its description and step members.
	Schema map[string]any
	// Check validates a workflow document ({"description", "steps"}) as the API's
	// request validator would, returning each violation with a JSON pointer into it.
	Check func(doc any) []levqor.FieldError
}

// Planner makes plans. It is safe for concurrent use.
type Planner struct {
	model     Model
	modelName string
	reg       *connectors.Registry
	steps     StepValidator
	budgets   *budget.Service
	timeout   time.Duration
	slots     chan struct{}
	log       *slog.Logger
	contract  *Contract
}

// New returns a Planner; it plans once given the API's contract (WithContract).
func New(cfg Config) (*Planner, error) {
	if cfg.Model == nil || cfg.Registry == nil || cfg.Steps == nil || cfg.Budgets == nil {
		return nil, errors.New("planner: Model, Registry, Steps and Budgets are required")
	}
	n := cfg.MaxInFlight
	if n == 0 {
		n = DefaultMaxInFlight
	}
	if n < 0 {
		return nil, errors.New("planner: MaxInFlight must not be negative")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = MaxDuration
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Planner{model: cfg.Model, modelName: cfg.ModelName, reg: cfg.Registry, steps: cfg.Steps, budgets: cfg.Budgets,
		timeout: timeout, slots: make(chan struct{}, n), log: log}, nil
}

// WithContract returns a Planner that proposes workflows fitting c. It shares p's
// bound on plans in flight.
func (p *Planner) WithContract(c Contract) (*Planner, error) {
	if c.Check == nil {
		return nil, errors.New("planner: the contract has no Check")
	}
	if _, err := newAnswerSchema(c.Schema); err != nil {
		return nil, fmt.Errorf("planner: contract: %w", err)
	}
	copied := *p
	copied.contract = &c
	return &copied, nil
}

// Request is what to plan.
type Request struct {
	Description string
	Connectors  []string // the only connectors the workflow may use; nil: any
	MaxCostUSD  *float64 // the most the workflow's AI steps may cost a run; nil: no bound
}

// Reason is why a step is in the plan.
type Reason struct {
	Step   string
	Reason string
}

// Plan is a valid workflow, proposed and not saved, and how it was made.
type Plan struct {
	Description      string // the workflow's, from the model
	Steps            []workflow.Step
	Reasons          []Reason // in step order
	EstimatedCostUSD float64  // the AI steps' worst-case first calls, summed, as intake counts them
	Repairs          int
	Repaired         []levqor.FieldError // violations of earlier answers, repaired since
	Deferred         []string            // pointers to inputs with references: checked when the step runs
	Model            string              // as the provider named it
	Calls            int
	CostUSD          float64 // what the calls cost the owner
}

// Plan asks the model for a workflow that does what req describes, as principal pr
// (whose owner's AI budget pays). Errors: levqor.EInvalid (the request),
// EBudgetExceeded (a call does not fit the budget; none is made then),
// EUnprocessable (still invalid after MaxRepairs repairs: each violation in Fields,
// or the model declined), EUnavailable (the model cannot be reached or used, the
// plan took longer than the timeout, or too many plans are in flight).
func (p *Planner) Plan(ctx context.Context, pr keys.Principal, req Request) (Plan, error) {
	if p.contract == nil {
		return Plan{}, errors.New("planner: no contract (WithContract)")
	}
	desc, allowed, err := p.checkRequest(req)
	if err != nil {
		return Plan{}, err
	}
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	default:
		return Plan{}, levqor.Errorf(levqor.EUnavailable, "The server is making its most plans at once (%d); retry shortly.", cap(p.slots))
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	limits, err := p.budgets.Limits(ctx, pr.OwnerID)
	if err != nil {
		return Plan{}, fmt.Errorf("read the owner's AI budget: %w", err)
	}
	planID := levqor.NewID("plan")
	owner := p.budgets.Owner(limits, pr.OwnerID, planID, "plan", p.timeout+reservationGrace)

	cat := p.catalogue(allowed)
	schema, err := AnswerSchema(p.contract.Schema, cat)
	if err != nil {
		return Plan{}, err
	}
	msgs := []ai.Message{{Role: "system", Content: systemPrompt(cat, req)}, {Role: "user", Content: desc}}
	var out Plan
	for {
		rep, err := p.model.Chat(ctx, owner, ai.ChatRequest{Model: p.modelName, Messages: msgs, MaxTokens: MaxTokens,
			Schema: schema, SchemaName: "workflow"})
		out.Calls++
		out.CostUSD += rep.CostUSD
		if err != nil {
			return Plan{}, p.modelError(ctx, planID, err)
		}
		out.Model = rep.Model
		prop, violations, err := p.check(rep.Content, rep.FinishReason, req, allowed)
		if err != nil {
			return Plan{}, err
		}
		if len(violations) == 0 {
			out.Description, out.Steps, out.Reasons = prop.description, prop.steps, prop.reasons
			out.EstimatedCostUSD, out.Deferred = prop.costUSD, prop.deferred
			out.Repairs = out.Calls - 1
			return out, nil
		}
		if out.Calls > MaxRepairs {
			return Plan{}, &levqor.Error{Code: levqor.EUnprocessable, Fields: violations,
				Message: fmt.Sprintf("The model's workflow is still invalid after %d repairs (%d calls, $%.6f charged to the AI budget): %s",
					MaxRepairs, out.Calls, out.CostUSD, summary(violations))}
		}
		out.Repaired = append(out.Repaired, violations...)
		msgs = append(slices.Clip(msgs), ai.Message{Role: "assistant", Content: rep.Content},
			ai.Message{Role: "user", Content: repairPrompt(violations)})
	}
}

// checkRequest returns the trimmed description and the allowed connectors (nil: all),
// or an EInvalid error pointing at the field.
func (p *Planner) checkRequest(req Request) (string, map[string]bool, error) {
	desc := strings.TrimSpace(req.Description)
	switch {
	case desc == "":
		return "", nil, invalid("/description", "Describe what the workflow should do.")
	case utf8.RuneCountInString(desc) > MaxDescriptionChars:
		return "", nil, invalid("/description", "The description is longer than %d characters.", MaxDescriptionChars)
	case !utf8.ValidString(desc):
		return "", nil, invalid("/description", "The description is not valid UTF-8.")
	}
	if c := req.MaxCostUSD; c != nil && !(*c >= 0) {
		return "", nil, invalid("/constraints/max_cost_usd", "max_cost_usd is a number of dollars, at least 0.")
	}
	if req.Connectors == nil {
		return desc, nil, nil
	}
	allowed := map[string]bool{}
	for i, name := range req.Connectors {
		if _, ok := p.reg.Get(name); !ok {
			return "", nil, invalid(fmt.Sprintf("/constraints/connectors/%d", i), "There is no connector %q (GET /api/v1/connectors lists them).", name)
		}
		allowed[name] = true
	}
	return desc, allowed, nil
}

func invalid(pointer, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &levqor.Error{Code: levqor.EInvalid, Message: msg, Fields: []levqor.FieldError{{Pointer: pointer, Detail: msg}}}
}

// catalogue is the registry's catalogue, only the allowed connectors when given.
func (p *Planner) catalogue(allowed map[string]bool) []connectors.CatalogueEntry {
	cat := p.reg.Catalogue()
	if allowed == nil {
		return cat
	}
	return slices.DeleteFunc(cat, func(e connectors.CatalogueEntry) bool { return !allowed[e.Connector] })
}

// modelError turns a failed model call into the problem the caller sees.
func (p *Planner) modelError(ctx context.Context, planID string, err error) error {
	var se *connectors.StepError
	if !errors.As(err, &se) {
		if ctx.Err() != nil {
			return p.timedOut(ctx, err)
		}
		return fmt.Errorf("plan %s: model call: %w", planID, err)
	}
	switch se.Code {
	case ai.CodeBudgetExceeded:
		return &levqor.Error{Code: levqor.EBudgetExceeded, Err: err,
			Message: "The planning call does not fit the owner's AI budget: " + strings.TrimPrefix(se.Message, "budget exceeded: ") + "."}
	case ai.CodeRefusedByModel:
		return &levqor.Error{Code: levqor.EUnprocessable, Err: err, Message: "The model declined to plan this description."}
	case ai.CodeBudgetError:
		return &levqor.Error{Code: levqor.EUnavailable, Err: err, Message: "The AI budget could not be checked; retry later."}
	case connectors.CodeTimeout, connectors.CodeCanceled:
		if ctx.Err() != nil {
			return p.timedOut(ctx, err)
		}
	}
	p.log.WarnContext(ctx, "planning model call failed", "plan_id", planID, "error", se.Error())
	return &levqor.Error{Code: levqor.EUnavailable, Err: err,
		Message: fmt.Sprintf("The planning model is unavailable (%s); retry later.", se.Code)}
}

func (p *Planner) timedOut(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &levqor.Error{Code: levqor.EUnavailable, Err: err,
			Message: fmt.Sprintf("Planning took longer than %s; retry later or describe less at once.", p.timeout)}
	}
	return ctx.Err() // the client went away
}
