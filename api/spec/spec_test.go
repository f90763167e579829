package spec_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/levqor/levqor/api/spec"
)

// TestLoadIsTheYAML: Load gives what kin-openapi's loader makes of
// api/openapi.yaml itself, so the embedded JSON is neither stale nor read
// differently (make check-generated catches the staleness too).
func TestLoadIsTheYAML(t *testing.T) {
	y, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := openapi3.NewLoader().LoadFromData(y)
	if err != nil {
		t.Fatal(err)
	}
	got, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, gotJSON := marshal(t, want), marshal(t, got)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("Load differs from loading api/openapi.yaml (run make generate): %d bytes, want %d", len(gotJSON), len(wantJSON))
	}
	// References are resolved: a $ref'd schema carries the value its component holds.
	list := got.Paths.Value("/api/v1/workflows").Get.Responses.Value("200").Value.Content.Get("application/json").Schema
	if component := got.Components.Schemas["WorkflowList"]; list.Ref == "" || list.Value == nil || list.Value != component.Value {
		t.Fatalf("GET /api/v1/workflows 200: schema %q not resolved to its component", list.Ref)
	}
	if err := got.Validate(t.Context()); err != nil {
		t.Errorf("loaded spec does not validate: %v", err)
	}
	// Each call returns a document of its own: the server changes the one it gets.
	again, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	if again == got || again.Paths == got.Paths {
		t.Error("Load returned the same document twice")
	}
}

func marshal(t *testing.T, doc *openapi3.T) []byte {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := spec.Load(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadYAML(b *testing.B) {
	y, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := openapi3.NewLoader().LoadFromData(y); err != nil {
			b.Fatal(err)
		}
	}
}
