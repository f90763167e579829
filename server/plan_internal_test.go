package server

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	apispec "github.com/levqor/levqor/api/spec"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/connectors/httpcall"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/planner"
)

// TestPlanAnswerSchema: the schema the model answers in, built from the spec's
// workflow body and a real catalogue, is valid JSON Schema 2020-12 that takes a
// workflow of the catalogue's actions and refuses an action it does not have, an
// input its action's schema refuses, an id the API's pattern refuses and a step
// without a reason.
func TestPlanAnswerSchema(t *testing.T) {
	spec, err := apispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	contract, err := workflowContract(spec)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := outbound.NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ai.New(ai.Config{BaseURL: "https://api.example.com/v1", DefaultModel: "gpt-4o-mini"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := connectors.NewRegistry(core.New(), httpcall.New(guard), conn)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := planner.AnswerSchema(contract.Schema, reg.Catalogue())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("answer.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("answer.json")
	if err != nil {
		t.Fatalf("the answer schema does not compile: %v", err)
	}
	step := `{"id": "%s", "connector": "%s", "action": "%s", "input": %s, "needs": [], "reason": "%s"}`
	for _, tc := range []struct {
		name, answer string
		valid        bool
	}{
		{"good", `{"description": "d", "steps": [` + fmt.Sprintf(step, "ask", "ai", "complete", `{"prompt": "Hi."}`, "Ask.") + `]}`, true},
		{"unknown action", `{"description": "d", "steps": [` + fmt.Sprintf(step, "ask", "ai", "sing", `{"prompt": "Hi."}`, "Ask.") + `]}`, false},
		{"input the action refuses", `{"description": "d", "steps": [` + fmt.Sprintf(step, "nap", "core", "sleep", `{"ms": -1}`, "Nap.") + `]}`, false},
		{"id the API refuses", `{"description": "d", "steps": [` + fmt.Sprintf(step, "a b", "core", "echo", `{}`, "Echo.") + `]}`, false},
		{"no reason", `{"description": "d", "steps": [` + fmt.Sprintf(step, "e", "core", "echo", `{}`, "") + `]}`, false},
		{"no steps", `{"description": "d", "steps": []}`, false},
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(tc.answer))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := sch.Validate(v); (err == nil) != tc.valid {
			t.Errorf("%s: valid = %v, want %v (%v)", tc.name, err == nil, tc.valid, err)
		}
	}
}
