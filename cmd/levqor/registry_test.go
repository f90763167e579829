package main

import (
	"testing"

	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/schemaexample"
)

// TestEveryActionDescribesItsOutput: every input and output schema of the
// connectors the binary builds compiles, every action declares an output schema
// (GET /api/v1/connectors shows it, dry runs make their examples from it), and the
// example a dry run makes from it is valid against it. (Each connector's own tests check its real outputs against it.)
func TestEveryActionDescribesItsOutput(t *testing.T) {
	guard, err := outbound.NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := newRegistry(loadConfig(t, nil), guard, connectortest.NewCredentials())
	if err != nil {
		t.Fatalf("newRegistry: %v", err)
	}
	// Schemas compile on first use (ADR 0026): this is where one that does not is found.
	if err := reg.Compile(); err != nil {
		t.Fatalf("Compile: %v", err)
	}
	actions := 0
	for _, c := range reg.Catalogue() {
		for _, a := range c.Actions {
			actions++
			if len(a.OutputSchema) == 0 {
				t.Errorf("%s.%s declares no output schema", c.Connector, a.Name)
				continue
			}
			ex, err := schemaexample.New(a.OutputSchema)
			if err != nil {
				t.Errorf("%s.%s: no example: %v", c.Connector, a.Name, err)
				continue
			}
			if err := connectortest.MatchSchema(a.OutputSchema, ex.JSON()); err != nil {
				t.Errorf("%s.%s: the example %s does not match the output schema: %v", c.Connector, a.Name, ex.JSON(), err)
			}
		}
	}
	if actions < 20 {
		t.Errorf("%d actions in the catalogue; the registry looks incomplete", actions)
	}
}
