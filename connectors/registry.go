package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// CatalogueEntry is one connector and its actions, as the API lists them.
type CatalogueEntry struct {
	Connector        string   `json:"connector"`
	CredentialFields []string `json:"credential_fields,omitempty"`
	// CredentialHeaders: a connection holds headers of the owner's choosing (HeaderCredentialed).
	CredentialHeaders bool     `json:"credential_headers,omitempty"`
	Actions           []Action `json:"actions"`
}

// Registry holds the connectors a worker can run. It is immutable once built and safe
// for concurrent use.
type Registry struct {
	connectors map[string]*registered
	catalogue  []CatalogueEntry
}

type registered struct {
	conn    Connector
	inputs  map[string]*schema         // input schemas, by action name
	outputs map[string]json.RawMessage // output schemas, by action name
}

// schema is an action's JSON Schema, compiled when it is first needed: compiling
// every input and output schema of the built-in connectors took ~8 ms of CPU at
// start-up, for actions a server may never run (ADR 0026).
type schema struct {
	raw      json.RawMessage
	compiled func() (*jsonschema.Schema, error) // once
}

func newSchema(connector, action string, raw json.RawMessage) *schema {
	return &schema{raw: raw, compiled: sync.OnceValues(func() (*jsonschema.Schema, error) {
		sch, err := compileSchema(connector, action, raw)
		if err != nil {
			return nil, fmt.Errorf("connectors: %s.%s schema: %w", connector, action, err)
		}
		return sch, nil
	})}
}

// NewRegistry registers the connectors. It fails on an empty or duplicate connector
// or action name and on a schema that is not a JSON object. Schemas are compiled when
// an action is first validated or run; Compile compiles them all at once, as the
// tests of the registry the binary builds do, so a schema that does not compile (a
// programming error) is found there rather than at start-up.
func NewRegistry(cs ...Connector) (*Registry, error) {
	r := &Registry{connectors: map[string]*registered{}}
	for _, c := range cs {
		name := c.Name()
		if name == "" {
			return nil, errors.New("connectors: a connector has an empty name")
		}
		if _, dup := r.connectors[name]; dup {
			return nil, fmt.Errorf("connectors: connector %q registered twice", name)
		}
		reg := &registered{conn: c, inputs: map[string]*schema{}, outputs: map[string]json.RawMessage{}}
		actions := slices.Clone(c.Actions())
		for _, a := range actions {
			if a.Name == "" {
				return nil, fmt.Errorf("connectors: connector %q has an action with an empty name", name)
			}
			if _, dup := reg.inputs[a.Name]; dup {
				return nil, fmt.Errorf("connectors: connector %q declares action %q twice", name, a.Name)
			}
			if !isObject(a.InputSchema) {
				return nil, fmt.Errorf("connectors: %s.%s input schema is not a JSON object", name, a.Name)
			}
			if len(a.OutputSchema) > 0 {
				if !isObject(a.OutputSchema) {
					return nil, fmt.Errorf("connectors: %s.%s output schema is not a JSON object", name, a.Name)
				}
				reg.outputs[a.Name] = a.OutputSchema
			}
			reg.inputs[a.Name] = newSchema(name, a.Name, a.InputSchema)
		}
		slices.SortFunc(actions, func(a, b Action) int { return strings.Compare(a.Name, b.Name) })
		r.connectors[name] = reg
		entry := CatalogueEntry{Connector: name, Actions: actions}
		if cc, ok := c.(Credentialed); ok {
			entry.CredentialFields = slices.Clone(cc.CredentialFields())
		}
		if hc, ok := c.(HeaderCredentialed); ok {
			entry.CredentialHeaders = hc.CredentialHeaders()
		}
		r.catalogue = append(r.catalogue, entry)
	}
	slices.SortFunc(r.catalogue, func(a, b CatalogueEntry) int { return strings.Compare(a.Connector, b.Connector) })
	return r, nil
}

// Get returns the connector registered under name.
func (r *Registry) Get(name string) (Connector, bool) {
	reg, ok := r.connectors[name]
	if !ok {
		return nil, false
	}
	return reg.conn, true
}

// Catalogue lists every connector and its actions, both sorted by name.
// The caller may modify the result.
func (r *Registry) Catalogue() []CatalogueEntry {
	out := make([]CatalogueEntry, len(r.catalogue))
	for i, e := range r.catalogue {
		out[i] = CatalogueEntry{Connector: e.Connector, CredentialFields: slices.Clone(e.CredentialFields),
			CredentialHeaders: e.CredentialHeaders, Actions: slices.Clone(e.Actions)}
	}
	return out
}

// Compile compiles every action's input and output schema that is not compiled yet
// and returns the first that does not compile.
func (r *Registry) Compile() error {
	for _, e := range r.catalogue {
		reg := r.connectors[e.Connector]
		for _, a := range e.Actions {
			if _, err := reg.inputs[a.Name].compiled(); err != nil {
				return err
			}
			if out, ok := reg.outputs[a.Name]; ok {
				if _, err := newSchema(e.Connector, a.Name+".output", out).compiled(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// isObject reports whether raw is a JSON object (a schema's form, before it compiles).
func isObject(raw json.RawMessage) bool {
	var v map[string]json.RawMessage
	return json.Unmarshal(raw, &v) == nil && v != nil
}

func (r *Registry) lookup(connector, action string) (*registered, *schema, error) {
	reg, ok := r.connectors[connector]
	if !ok {
		return nil, nil, Errorf(CodeUnknownConnector, "unknown connector %q", connector)
	}
	sch, ok := reg.inputs[action]
	if !ok {
		return nil, nil, Errorf(CodeUnknownAction, "connector %q has no action %q", connector, action)
	}
	return reg, sch, nil
}

// validate checks input against the action's input schema (validateInput).
func (s *schema) validate(input []byte) error {
	sch, err := s.compiled()
	if err != nil {
		return err
	}
	return validateInput(sch, input)
}

// Validate checks input against the action's schema. It returns nil or a *StepError with
// code unknown_connector, unknown_action or invalid_input (whose message names the JSON
// pointer and the rule of each violation); or, when the action's schema does not
// compile (a programming error that Compile finds in tests), that error.
func (r *Registry) Validate(connector, action string, input json.RawMessage) error {
	_, sch, err := r.lookup(connector, action)
	if err != nil {
		return err
	}
	return sch.validate(input)
}

// InputSecret reports a secret in a step input that is about to be stored: the JSON
// Pointer within the input and a message, or "" (see SecretGuard). Unknown
// connectors and connectors without a SecretGuard report none.
func (r *Registry) InputSecret(connector, action string, input json.RawMessage) (pointer, message string) {
	reg, ok := r.connectors[connector]
	if !ok {
		return "", ""
	}
	if g, ok := reg.conn.(SecretGuard); ok {
		return g.InputSecret(action, input)
	}
	return "", ""
}

// InputSchema is the JSON Schema of the action's input. Errors are those of
// Validate's lookup.
func (r *Registry) InputSchema(connector, action string) (json.RawMessage, error) {
	_, sch, err := r.lookup(connector, action)
	if err != nil {
		return nil, err
	}
	return sch.raw, nil
}

// anyOutput is the output schema of an action that declares none: any JSON.
var anyOutput = json.RawMessage(`{}`)

// OutputSchema is the JSON Schema of what the action returns for input: the
// connector's own description for that input (OutputDescriber), else the action's
// OutputSchema, else {} (any JSON). Errors are those of Validate's lookup.
func (r *Registry) OutputSchema(connector, action string, input json.RawMessage) (json.RawMessage, error) {
	reg, _, err := r.lookup(connector, action)
	if err != nil {
		return nil, err
	}
	if d, ok := reg.conn.(OutputDescriber); ok {
		if s, ok := d.DescribeOutput(action, input); ok {
			return s, nil
		}
	}
	if s, ok := reg.outputs[action]; ok {
		return s, nil
	}
	return anyOutput, nil
}

// Estimator is implemented by connectors whose steps cost money. EstimateUSD is the
// least a step with this input must be able to reserve before its first call; it is
// called with input that passed the action's schema.
type Estimator interface {
	EstimateUSD(action string, input json.RawMessage) (float64, error)
}

// EstimateUSD is the least the step must be able to spend (0 for connectors that cost
// nothing). input must already have passed Validate, as intake's steps have.
func (r *Registry) EstimateUSD(connector, action string, input json.RawMessage) (float64, error) {
	reg, _, err := r.lookup(connector, action)
	if err != nil {
		return 0, err
	}
	est, ok := reg.conn.(Estimator)
	if !ok {
		return 0, nil
	}
	return est.EstimateUSD(action, input)
}

type result struct {
	out json.RawMessage
	err error
}

// Run validates input and runs the action under ctx, whose deadline is the step's
// timeout. It fails closed: every way a step can go wrong ends in a *StepError, and
// output is returned only when the connector reported success with valid JSON of at most
// MaxOutputBytes. Codes: those of Validate, plus timeout (retryable), canceled, panic,
// invalid_output, and whatever the connector's own *StepError says; any other connector
// error becomes a retryable upstream_error.
//
// If the connector does not return once ctx is done, Run returns without it (timeout or
// canceled) and leaves it to finish in the background, so a stuck connector cannot hold
// a worker.
func (r *Registry) Run(ctx context.Context, connector, action string, input json.RawMessage) (json.RawMessage, error) {
	reg, sch, err := r.lookup(connector, action)
	if err != nil {
		return nil, err
	}
	if err := sch.validate(input); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, contextError(ctx, err)
	}

	done := make(chan result, 1) // buffered: an abandoned connector must not block forever
	go func() {
		var res result
		defer func() {
			if p := recover(); p != nil {
				res = result{err: panicError(connector, action, p)}
			}
			done <- res
		}()
		res.out, res.err = reg.conn.Run(ctx, action, input)
	}()

	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		select {
		case res = <-done: // finished just in time: its result stands
		default:
			return nil, contextError(ctx, ctx.Err())
		}
	}
	if res.err != nil {
		return nil, stepError(ctx, connector, action, res.err)
	}
	if len(res.out) > MaxOutputBytes {
		return nil, Errorf(CodeInvalidOutput, "%s.%s produced %d bytes of output; the limit is %d", connector, action, len(res.out), MaxOutputBytes)
	}
	if len(res.out) == 0 || !json.Valid(res.out) {
		return nil, Errorf(CodeInvalidOutput, "%s.%s produced output that is not valid JSON", connector, action)
	}
	return res.out, nil
}

// stepError turns what a connector returned into a *StepError.
func stepError(ctx context.Context, connector, action string, err error) error {
	var se *StepError
	if errors.As(err, &se) {
		if se.Code == "" {
			return &StepError{Code: CodeUpstreamError, Message: se.Message, Retryable: se.Retryable, RetryAfter: se.RetryAfter, Err: se}
		}
		return se
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || ctx.Err() != nil {
		cause := ctx.Err()
		if cause == nil {
			cause = err
		}
		return contextError(ctx, cause)
	}
	// The error's text may hold upstream detail or secrets, so it stays in Err only.
	return &StepError{Code: CodeUpstreamError, Message: fmt.Sprintf("%s.%s failed", connector, action), Retryable: true, Err: err}
}

func contextError(ctx context.Context, err error) *StepError {
	if errors.Is(err, context.Canceled) {
		return &StepError{Code: CodeCanceled, Message: "the step was canceled", Err: err}
	}
	return &StepError{Code: CodeTimeout, Message: "the step timed out", Retryable: true, Err: err}
}

// panicError keeps the stack for operators but not the panic value, which could hold
// anything the connector had in hand; runtime errors (nil dereference, index out of
// range) carry no data and are kept.
func panicError(connector, action string, p any) *StepError {
	detail := fmt.Sprintf("panic of type %T", p)
	if re, ok := p.(runtime.Error); ok {
		detail = "panic: " + re.Error()
	}
	return &StepError{
		Code:    CodePanic,
		Message: fmt.Sprintf("%s.%s crashed", connector, action),
		Err:     fmt.Errorf("%s\n%s", detail, debug.Stack()),
	}
}
