package connectors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
)

// scripted is a test connector whose single action does what the test case says; it
// stands in for an integration, while the Registry under test is the real one.
type scripted struct {
	name    string
	actions []connectors.Action
	run     func(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error)
	calls   atomic.Int64
}

func (s *scripted) Name() string                 { return s.name }
func (s *scripted) Actions() []connectors.Action { return s.actions }
func (s *scripted) Run(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error) {
	s.calls.Add(1)
	return s.run(ctx, action, input)
}

func action(name, schema string) connectors.Action {
	return connectors.Action{Name: name, Description: name, InputSchema: json.RawMessage(schema)}
}

func newRegistry(t *testing.T, cs ...connectors.Connector) *connectors.Registry {
	t.Helper()
	r, err := connectors.NewRegistry(cs...)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return r
}

func stepError(t *testing.T, err error) *connectors.StepError {
	t.Helper()
	var se *connectors.StepError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *StepError", err, err)
	}
	return se
}

func TestNewRegistryRejects(t *testing.T) {
	ok := func(context.Context, string, json.RawMessage) (json.RawMessage, error) { return nil, nil }
	tests := []struct {
		name string
		cs   []connectors.Connector
		want string
	}{
		{"empty connector name", []connectors.Connector{&scripted{name: "", run: ok}}, "empty name"},
		{"duplicate connector", []connectors.Connector{core.New(), core.New()}, `connector "core" registered twice`},
		{"empty action name", []connectors.Connector{&scripted{name: "x", actions: []connectors.Action{action("", `{}`)}, run: ok}}, "empty name"},
		{"duplicate action", []connectors.Connector{&scripted{name: "x", actions: []connectors.Action{action("a", `{}`), action("a", `{}`)}, run: ok}}, `action "a" twice`},
		{"schema not JSON", []connectors.Connector{&scripted{name: "x", actions: []connectors.Action{action("a", `{`)}, run: ok}}, "x.a input schema"},
		{"schema not an object", []connectors.Connector{&scripted{name: "x", actions: []connectors.Action{action("a", `[]`)}, run: ok}}, "x.a input schema"},
		{"output schema not JSON", []connectors.Connector{&scripted{name: "x", actions: []connectors.Action{{Name: "a", InputSchema: json.RawMessage(`{}`), OutputSchema: json.RawMessage(`{"type"`)}}, run: ok}}, "x.a output schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := connectors.NewRegistry(tt.cs...)
			if err == nil {
				t.Fatalf("NewRegistry = %v, nil; want error containing %q", r, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRegistry error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestSchemasThatDoNotCompile: a registry is built without compiling its schemas;
// Compile finds one that does not compile, and so do Validate and Run of its action,
// while the registry's other actions work.
func TestSchemasThatDoNotCompile(t *testing.T) {
	ok := func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{}`), nil
	}
	tests := []struct {
		name string
		a    connectors.Action
		want string
		runs bool // Validate and Run fail too (an input schema)
	}{
		{"input schema invalid", action("bad", `{"type": 5}`), "x.bad schema", true},
		{"remote $ref not loaded", action("bad", `{"$ref": "https://example.com/s.json"}`), "loading is disabled", true},
		{"output schema invalid", connectors.Action{Name: "bad", InputSchema: json.RawMessage(`{}`), OutputSchema: json.RawMessage(`{"minimum": "1"}`)}, "x.bad.output schema", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := connectors.NewRegistry(&scripted{name: "x", actions: []connectors.Action{action("good", `{}`), tt.a}, run: ok})
			if err != nil {
				t.Fatalf("NewRegistry: %v", err)
			}
			if err := r.Validate("x", "good", json.RawMessage(`{}`)); err != nil {
				t.Fatalf("Validate(good) = %v", err)
			}
			if err := r.Compile(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile = %v, want an error containing %q", err, tt.want)
			}
			verr := r.Validate("x", "bad", json.RawMessage(`{}`))
			_, rerr := r.Run(t.Context(), "x", "bad", json.RawMessage(`{}`))
			for name, err := range map[string]error{"Validate": verr, "Run": rerr} {
				if tt.runs != (err != nil) {
					t.Errorf("%s(bad) = %v; want an error: %v", name, err, tt.runs)
				}
				if err != nil && !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s(bad) = %v, want it to contain %q", name, err, tt.want)
				}
			}
		})
	}
}

func TestCatalogueAndGet(t *testing.T) {
	alpha := &scripted{name: "alpha", actions: []connectors.Action{action("zeta", `{}`), action("beta", `{}`)}}
	r := newRegistry(t, core.New(), alpha)

	cat := r.Catalogue()
	var got []string
	for _, e := range cat {
		for _, a := range e.Actions {
			got = append(got, e.Connector+"."+a.Name)
		}
	}
	want := []string{"alpha.beta", "alpha.zeta", "core.approval", "core.echo", "core.sleep", "core.wait", "core.wait_for_signal"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Catalogue = %v, want %v", got, want)
	}
	cat[0].Actions[0].Name = "mutated"
	if again := r.Catalogue(); again[0].Actions[0].Name != "beta" {
		t.Fatalf("Catalogue shares memory with its caller: got %q after mutation", again[0].Actions[0].Name)
	}

	if c, ok := r.Get("alpha"); !ok || c != connectors.Connector(alpha) {
		t.Fatalf("Get(alpha) = %v, %v", c, ok)
	}
	if c, ok := r.Get("nope"); ok || c != nil {
		t.Fatalf("Get(nope) = %v, %v; want nil, false", c, ok)
	}
}

func TestValidate(t *testing.T) {
	secretive := &scripted{name: "secretive", actions: []connectors.Action{action("a", `{
		"type": "object",
		"properties": {
			"token": {"type": "string", "pattern": "^ok-"},
			"email": {"type": "string", "format": "email"},
			"n": {"type": "integer"}
		}
	}`)}}
	r := newRegistry(t, core.New(), secretive)

	tests := []struct {
		name      string
		connector string
		action    string
		input     string
		wantCode  string   // "" means valid
		wantIn    []string // substrings of the message
		wantNotIn []string
	}{
		{name: "echo object", connector: "core", action: "echo", input: `{"a": [1, 2], "b": null}`},
		{name: "sleep", connector: "core", action: "sleep", input: `{"ms": 250}`},
		{name: "sleep integer as 1e3", connector: "core", action: "sleep", input: `{"ms": 1e3}`},
		{name: "unknown connector", connector: "nope", action: "echo", input: `{}`,
			wantCode: connectors.CodeUnknownConnector, wantIn: []string{`"nope"`}},
		{name: "unknown action", connector: "core", action: "dance", input: `{}`,
			wantCode: connectors.CodeUnknownAction, wantIn: []string{`"dance"`}},
		{name: "not JSON", connector: "core", action: "echo", input: `{"a":`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"not valid JSON"}},
		{name: "trailing data", connector: "core", action: "echo", input: `{} {}`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"not valid JSON"}},
		{name: "empty", connector: "core", action: "echo", input: ``,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"empty"}},
		{name: "echo array", connector: "core", action: "echo", input: `[1]`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at (root): type: got array, want object"}},
		{name: "echo too many properties", connector: "core", action: "echo", input: manyProps(65),
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at (root): maxProperties: got 65, want 64"}},
		{name: "sleep too long", connector: "core", action: "sleep", input: `{"ms": 60001}`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at /ms: maximum: got 60001, want 60000"}},
		{name: "sleep negative", connector: "core", action: "sleep", input: `{"ms": -1}`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at /ms: minimum"}},
		{name: "sleep fraction", connector: "core", action: "sleep", input: `{"ms": 1.5}`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at /ms: type: got number, want integer"}},
		{name: "sleep missing ms", connector: "core", action: "sleep", input: `{}`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at (root): required", "'ms'"}},
		{name: "sleep extra property", connector: "core", action: "sleep", input: `{"ms": 1, "extra": true}`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at (root): additionalProperties", "'extra'"}},
		{name: "several violations listed", connector: "secretive", action: "a", input: `{"n": "x", "token": 1}`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at /n: type", "at /token: type"}},
		{name: "pattern does not echo the value", connector: "secretive", action: "a", input: `{"token": "sk_live_SECRET"}`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at /token: pattern", "^ok-"}, wantNotIn: []string{"SECRET"}},
		{name: "format does not echo the value", connector: "secretive", action: "a", input: `{"email": "SECRET-not-an-email"}`,
			wantCode: connectors.CodeInvalidInput, wantIn: []string{"at /email: format: must be a valid email"}, wantNotIn: []string{"SECRET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Validate(tt.connector, tt.action, json.RawMessage(tt.input))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %s", tt.wantCode)
			}
			se := stepError(t, err)
			if se.Code != tt.wantCode || se.Retryable {
				t.Fatalf("Validate = %q (retryable %v), want code %q, not retryable", se, se.Retryable, tt.wantCode)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(se.Message, s) {
					t.Errorf("message %q does not contain %q", se.Message, s)
				}
			}
			for _, s := range tt.wantNotIn {
				if strings.Contains(se.Error(), s) {
					t.Errorf("message %q leaks %q", se.Error(), s)
				}
			}
		})
	}
	if n := secretive.calls.Load(); n != 0 {
		t.Fatalf("Validate ran the connector %d times", n)
	}
}

func manyProps(n int) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"k%d": %d`, i, i)
	}
	sb.WriteByte('}')
	return sb.String()
}

var errUpstream = errors.New("upstream said: token=SECRET")

func TestRun(t *testing.T) {
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })

	tests := []struct {
		name          string
		run           func(ctx context.Context, action string, input json.RawMessage) (json.RawMessage, error)
		input         string
		timeout       time.Duration // 0: no deadline
		cancel        bool          // cancel the context before running
		wantOut       string
		wantCode      string
		wantRetryable bool
		wantIs        error
		wantCalls     int64
	}{
		{name: "output passes through", input: `{"x": 1}`, wantCalls: 1, wantOut: `{"ok":true}`,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage(`{"ok":true}`), nil
			}},
		{name: "invalid input never runs", input: `{"x": "one"}`, wantCode: connectors.CodeInvalidInput,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage(`{}`), nil
			}},
		{name: "panic", input: `{}`, wantCode: connectors.CodePanic, wantCalls: 1,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				panic("token=SECRET")
			}},
		{name: "nil dereference panic", input: `{}`, wantCode: connectors.CodePanic, wantCalls: 1,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				var m map[string]*int
				return json.RawMessage(fmt.Sprint(*m["x"])), nil
			}},
		{name: "plain error becomes retryable upstream_error", input: `{}`, wantCalls: 1,
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantIs: errUpstream,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage(`{}`), fmt.Errorf("call: %w", errUpstream)
			}},
		{name: "wrapped StepError kept", input: `{}`, wantCalls: 1, wantCode: "custom_code",
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				return nil, fmt.Errorf("wrap: %w", connectors.Errorf("custom_code", "custom message"))
			}},
		{name: "output not JSON", input: `{}`, wantCode: connectors.CodeInvalidOutput, wantCalls: 1,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage(`{"done": tru`), nil
			}},
		{name: "output empty", input: `{}`, wantCode: connectors.CodeInvalidOutput, wantCalls: 1,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				return nil, nil
			}},
		{name: "output at the limit", input: `{}`, wantCalls: 1, wantOut: bigString(connectors.MaxOutputBytes),
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage(bigString(connectors.MaxOutputBytes)), nil
			}},
		{name: "output over the limit", input: `{}`, wantCode: connectors.CodeInvalidOutput, wantCalls: 1,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage(bigString(connectors.MaxOutputBytes + 1)), nil
			}},
		{name: "deadline becomes retryable timeout", input: `{}`, timeout: 20 * time.Millisecond, wantCalls: 1,
			wantCode: connectors.CodeTimeout, wantRetryable: true, wantIs: context.DeadlineExceeded,
			run: func(ctx context.Context, _ string, _ json.RawMessage) (json.RawMessage, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}},
		{name: "connector ignoring its context still times out", input: `{}`, timeout: 20 * time.Millisecond, wantCalls: 1,
			wantCode: connectors.CodeTimeout, wantRetryable: true,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				<-stuck
				return json.RawMessage(`{}`), nil
			}},
		{name: "canceled before start", input: `{}`, cancel: true, wantCode: connectors.CodeCanceled, wantIs: context.Canceled,
			run: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage(`{}`), nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &scripted{name: "test", run: tt.run, actions: []connectors.Action{
				action("act", `{"type": "object", "properties": {"x": {"type": "integer"}}}`),
			}}
			r := newRegistry(t, c)
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			if tt.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				cancel()
			}
			start := time.Now()
			out, err := r.Run(ctx, "test", "act", json.RawMessage(tt.input))
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Run took %v", elapsed)
			}
			if n := c.calls.Load(); n != tt.wantCalls {
				t.Errorf("connector ran %d times, want %d", n, tt.wantCalls)
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Run error = %v", err)
				}
				if string(out) != tt.wantOut {
					t.Fatalf("Run output = %.80q, want %.80q", out, tt.wantOut)
				}
				return
			}
			if out != nil {
				t.Errorf("Run returned output %q alongside an error", out)
			}
			se := stepError(t, err)
			if se.Code != tt.wantCode || se.Retryable != tt.wantRetryable {
				t.Fatalf("Run error = %q (retryable %v), want %q (retryable %v)", se, se.Retryable, tt.wantCode, tt.wantRetryable)
			}
			if strings.Contains(se.Error(), "SECRET") {
				t.Errorf("error text %q leaks a secret", se.Error())
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if se.Code == connectors.CodePanic && (se.Err == nil || !strings.Contains(se.Err.Error(), "registry_test.go")) {
				t.Errorf("panic error keeps no stack for operators: %v", se.Err)
			}
		})
	}
}

func bigString(n int) string { return `"` + strings.Repeat("a", n-2) + `"` }
