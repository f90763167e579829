package planner

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/levqor/levqor"
)

// TestParseAnswer: reasons come out of the steps, and what a model may say in more
// than one way is normalised (null and empty optional members, default needs);
// anything that is not a JSON object is one violation at the workflow.
func TestParseAnswer(t *testing.T) {
	for _, c := range []struct {
		name, content, finish string
		doc                   string // the workflow document after parsing ("" for none)
		reasons               []string
		violations            []levqor.FieldError
	}{
		{
			name: "default needs and empty members are left out",
			content: `{"description": "d", "extra": null, "steps": [
				{"id": "a", "connector": "core", "action": "echo", "needs": [], "if": "", "for_each": null, "reason": " first "},
				{"id": "b", "connector": "core", "action": "echo", "needs": ["a"], "if": "  ", "reason": "second"}]}`,
			doc:     `{"description": "d", "steps": [{"id": "a", "connector": "core", "action": "echo"}, {"id": "b", "connector": "core", "action": "echo"}]}`,
			reasons: []string{"first", "second"},
		},
		{
			name: "other needs stay",
			content: "```json\n" + `{"steps": [
				{"id": "a", "needs": ["b"], "reason": "r"},
				{"id": "b", "needs": [], "reason": "r"},
				{"id": "c", "needs": ["a", "b"], "if": "true", "reason": "r"}]}` + "\n```",
			doc:     `{"steps": [{"id": "a", "needs": ["b"]}, {"id": "b", "needs": []}, {"id": "c", "needs": ["a", "b"], "if": "true"}]}`,
			reasons: []string{"r", "r", "r"},
		},
		{
			name:       "missing and overlong reasons",
			content:    `{"steps": [{"id": "a"}, {"id": "b", "reason": "` + strings.Repeat("x", MaxReasonChars+1) + `"}, "not a step"]}`,
			doc:        `{"steps": [{"id": "a"}, {"id": "b"}, "not a step"]}`,
			reasons:    []string{"", strings.Repeat("x", MaxReasonChars+1)},
			violations: []levqor.FieldError{{Pointer: "/workflow/steps/0/reason", Detail: "Say in one sentence why the step is there."}, {Pointer: "/workflow/steps/1/reason", Detail: "A reason is at most 500 characters."}},
		},
		{
			name:       "prose",
			content:    "Here is the workflow you asked for.",
			violations: []levqor.FieldError{{Pointer: "/workflow", Detail: "The answer is not JSON."}},
		},
		{
			name: "cut off", content: `{"steps": [{"id": "a",`, finish: "length",
			violations: []levqor.FieldError{{Pointer: "/workflow", Detail: "The answer is not JSON: it was cut off at max_tokens; propose fewer steps or shorter inputs."}},
		},
		{
			name:       "an array",
			content:    `[{"id": "a"}]`,
			violations: []levqor.FieldError{{Pointer: "/workflow", Detail: "The answer is not a JSON object."}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc, reasons, vs := parseAnswer(c.content, c.finish)
			if !reflect.DeepEqual(vs, c.violations) {
				t.Errorf("violations = %+v, want %+v", vs, c.violations)
			}
			if c.doc == "" {
				if doc != nil {
					t.Errorf("doc = %v, want none", doc)
				}
				return
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(c.doc), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(doc, want) {
				t.Errorf("doc = %v, want %v", doc, want)
			}
			if !reflect.DeepEqual(reasons, c.reasons) {
				t.Errorf("reasons = %q, want %q", reasons, c.reasons)
			}
		})
	}
}

// FuzzParseAnswer: any answer parses without panicking into a document or a
// violation; a document keeps no reason member and has one reason per step object.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{
		`{"steps": [{"id": "a", "needs": [], "reason": "r"}, {"id": "b", "needs": ["a"], "reason": "s"}]}`,
		"```\n{\"steps\": null}\n```", `{"steps": [null, 1, {"needs": [1]}]}`, `"x"`, `{`, ``,
	} {
		f.Add(s, "stop")
	}
	f.Fuzz(func(t *testing.T, content, finish string) {
		doc, reasons, vs := parseAnswer(content, finish)
		if doc == nil {
			if len(vs) != 1 || vs[0].Pointer != base {
				t.Fatalf("no document and violations %+v", vs)
			}
			return
		}
		steps, _ := doc["steps"].([]any)
		n := 0
		for _, s := range steps {
			if m, ok := s.(map[string]any); ok {
				n++
				if _, has := m["reason"]; has {
					t.Fatalf("step %v kept its reason", m)
				}
			}
		}
		if len(reasons) != n {
			t.Fatalf("%d reasons for %d steps", len(reasons), n)
		}
	})
}

// TestRepairPrompt: violations are sent with pointers into the model's own answer.
func TestRepairPrompt(t *testing.T) {
	got := repairPrompt([]levqor.FieldError{{Pointer: "/workflow", Detail: "The answer is not JSON."}, {Pointer: "/workflow/steps/2/needs/0", Detail: "Unknown."}})
	for _, want := range []string{"- at (root): The answer is not JSON.\n", "- at /steps/2/needs/0: Unknown.\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("repair prompt %q lacks %q", got, want)
		}
	}
}

func TestSummary(t *testing.T) {
	vs := []levqor.FieldError{{Pointer: "/a", Detail: "One."}, {Pointer: "/b", Detail: "Two."}, {Pointer: "/c", Detail: "Three."}, {Pointer: "/d", Detail: "Four."}, {Pointer: "/e", Detail: "Five."}}
	if got, want := summary(vs), "/a: One; /b: Two; /c: Three (and 2 more)."; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	if got, want := summary(vs[:1]), "/a: One."; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}
