// Package connectortest holds helpers for connector tests: an in-memory
// connectors.Credentials, a step context, a check that no secret leaks into a step's
// output or error, and a strict decoder for a step's output.
package connectortest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/levqor/levqor/connectors"
)

// Credentials is an in-memory connectors.Credentials: connections by owner, connector
// and name, as the credentials store resolves them. It is safe for concurrent use, and
// its zero value is an empty store.
type Credentials struct {
	mu    sync.Mutex
	conns map[string]map[string]string // "owner/connector/name" -> fields
	err   error                        // if set, every Resolve fails with it
	calls int
}

// NewCredentials returns an empty store.
func NewCredentials() *Credentials {
	return &Credentials{conns: map[string]map[string]string{}}
}

func key(owner, connector, name string) string {
	if name == "" {
		name = "default"
	}
	return owner + "/" + connector + "/" + name
}

// Set stores a copy of fields as the owner's connection name ("" means "default") of
// connector, replacing any there.
func (c *Credentials) Set(owner, connector, name string, fields map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns == nil {
		c.conns = map[string]map[string]string{}
	}
	c.conns[key(owner, connector, name)] = maps.Clone(fields)
}

// Delete removes the owner's connection name ("" means "default") of connector.
func (c *Credentials) Delete(owner, connector, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.conns, key(owner, connector, name))
}

// Fail makes every later Resolve fail with err, as a store that is down does; nil
// restores the stored connections.
func (c *Credentials) Fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

// Calls reports how many times Resolve has been called, failed calls included.
func (c *Credentials) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// Resolve returns a copy of the owner's connection name ("" means "default") of
// connector, connectors.ErrNoCredentials if there is none, or the error set by Fail.
func (c *Credentials) Resolve(_ context.Context, ownerID, connector, name string) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.err != nil {
		return nil, c.err
	}
	fields, ok := c.conns[key(ownerID, connector, name)]
	if !ok {
		return nil, connectors.ErrNoCredentials
	}
	return maps.Clone(fields), nil
}

// StepContext returns a context carrying attempt 1 of step "notify" of job "job_1",
// run for owner.
func StepContext(owner string) context.Context {
	return connectors.WithStep(context.Background(), connectors.Step{JobID: "job_1", StepID: "notify", OwnerID: owner, Attempt: 1})
}

// AssertNoSecrets checks that none of secrets reaches the output, the error's text, or
// the text of any error in its chain.
func AssertNoSecrets(t testing.TB, secrets []string, out json.RawMessage, err error) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(string(out), s) {
			t.Errorf("output %s contains a secret", out)
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), s) || strings.Contains(fmt.Sprintf("%+v", e), s) {
				t.Errorf("error %q (%T) contains a secret", e, e)
			}
		}
	}
}

// DecodeStrict fails the test if err is not nil, and otherwise decodes out into a T,
// failing the test if out holds a field T does not.
func DecodeStrict[T any](t *testing.T, out json.RawMessage, err error) T {
	t.Helper()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var v T
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	return v
}

// CheckOutput fails the test unless out, what action of the registry's connector
// returned for input, matches the action's output schema — and, for a
// connectors.OutputDescriber, the schema it describes for that input. Connector
// tests call it on every success, so that the schemas dry runs make their examples
// from are the outputs' real shape.
func CheckOutput(t testing.TB, reg *connectors.Registry, connector, action string, input, out json.RawMessage) {
	t.Helper()
	c, ok := reg.Get(connector)
	if !ok {
		t.Fatalf("no connector %q", connector)
	}
	var schemas []json.RawMessage
	for _, a := range c.Actions() {
		if a.Name == action {
			schemas = append(schemas, a.OutputSchema)
		}
	}
	if len(schemas) != 1 || len(schemas[0]) == 0 {
		t.Fatalf("%s.%s declares no output schema", c.Name(), action)
	}
	if d, ok := c.(connectors.OutputDescriber); ok {
		if s, ok := d.DescribeOutput(action, input); ok {
			schemas = append(schemas, s)
		}
	}
	for _, s := range schemas {
		if err := MatchSchema(s, out); err != nil {
			t.Errorf("%s.%s output %s does not match its output schema %s: %v", c.Name(), action, out, s, err)
		}
	}
}

// MatchSchema reports why doc does not match schema (JSON Schema, draft 2020-12
// unless it says otherwise, formats asserted), or nil when it does.
func MatchSchema(schema, doc json.RawMessage) error {
	s, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return fmt.Errorf("the schema is not JSON: %w", err)
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	comp.AssertFormat()
	if err := comp.AddResource("mem:///schema.json", s); err != nil {
		return err
	}
	sch, err := comp.Compile("mem:///schema.json")
	if err != nil {
		return fmt.Errorf("the schema does not compile: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("the document is not JSON: %w", err)
	}
	return sch.Validate(v)
}
