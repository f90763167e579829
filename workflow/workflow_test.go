package workflow_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/workflow"
)

func needs(ids ...string) *[]string { return &ids }

func step(id string) workflow.Step { return workflow.Step{ID: id, Connector: "core", Action: "echo"} }

func TestParseRefusesWithPointers(t *testing.T) {
	withInput := func(st workflow.Step, in string) workflow.Step { st.Input = json.RawMessage(in); return st }
	with := func(st workflow.Step, f func(*workflow.Step)) workflow.Step { f(&st); return st }
	onFail := with(step("alert"), func(s *workflow.Step) { s.OnFailure = true })
	cases := []struct {
		name    string
		steps   []workflow.Step
		pointer string
	}{
		{"unknown need", []workflow.Step{step("a"), with(step("b"), func(s *workflow.Step) { s.Needs = needs("a", "zz") })}, "/steps/1/needs/1"},
		{"cycle", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.Needs = needs("b") }), step("b")}, "/steps/0/needs"},
		{"self need", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.Needs = needs("a") })}, "/steps/0/needs/0"},

		{"ref to a sibling", []workflow.Step{step("a"), with(step("b"), func(s *workflow.Step) { s.Needs = needs() }),
			withInput(with(step("c"), func(s *workflow.Step) { s.Needs = needs("a") }), `{"x":"{{steps.b.output}}"}`)}, "/steps/2/input"},
		{"ref to a later step", []workflow.Step{withInput(step("a"), `{"x":"{{steps.b.output}}"}`), step("b")}, "/steps/0/input"},
		{"item outside for_each", []workflow.Step{withInput(step("a"), `{"x":"{{item}}"}`)}, "/steps/0/input"},
		{"if does not compile", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.If = "payload.x ==" })}, "/steps/0/if"},
		{"if is not a bool", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.If = "1 + 2" })}, "/steps/0/if"},
		{"if reads a non-ancestor", []workflow.Step{step("a"), with(step("b"), func(s *workflow.Step) { s.If = `steps.a.status == "succeeded"`; s.Needs = needs() })}, "/steps/1/if"},
		{"if reads steps by a computed key", []workflow.Step{step("a"), with(step("b"), func(s *workflow.Step) { s.If = `steps["a" + ""].status == "x"` })}, "/steps/1/if"},
		{"if too long", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.If = "true" + strings.Repeat(" ", workflow.MaxExpressionLen) })}, "/steps/0/if"},
		{"for_each not a list", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.ForEach = `"text"` })}, "/steps/0/for_each"},
		{"for_each ref to a later step", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.ForEach = `{{steps.b.output}}` }), step("b")}, "/steps/0/for_each"},
		{"max_concurrency without for_each", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.MaxConcurrency = 2 })}, "/steps/0/max_concurrency"},
		{"max_concurrency too high", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.ForEach = "[1]"; s.MaxConcurrency = workflow.MaxItemConcurrency + 1 })}, "/steps/0/max_concurrency"},
		{"retry attempts", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.Retry = &workflow.Retry{Attempts: workflow.MaxRetryAttempts + 1} })}, "/steps/0/retry"},
		{"on_failure with needs", []workflow.Step{step("a"), with(onFail, func(s *workflow.Step) { s.Needs = needs("a") })}, "/on_failure"},
		{"need on on_failure", []workflow.Step{with(step("a"), func(s *workflow.Step) { s.Needs = needs("alert") }), onFail}, "/steps/0/needs/0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := workflow.Parse(c.steps, "/steps")
			var le *levqor.Error
			if !errors.As(err, &le) || le.Code != levqor.EUnprocessable || len(le.Fields) != 1 || le.Fields[0].Pointer != c.pointer {
				t.Fatalf("Parse = %#v, want unprocessable at %s", err, c.pointer)
			}
		})
	}
}

func TestParseGraph(t *testing.T) {
	steps := []workflow.Step{
		step("fetch"),
		{ID: "a", Connector: "core", Action: "echo", Needs: needs("fetch"), Input: json.RawMessage(`{"v":"{{steps.fetch.output}}"}`)},
		{ID: "b", Connector: "core", Action: "echo", Needs: needs("fetch"), If: `steps.fetch.output.n > 2`},
		{ID: "join", Connector: "core", Action: "echo", Needs: needs("a", "b"), ForEach: "{{steps.fetch.output.items}}",
			Input: json.RawMessage(`{"i":"{{index}}","x":"{{item.name}}","a":"{{steps.fetch.output}}"}`), If: "index < 5 && item.name != 'z'"},
		{ID: "alert", Connector: "core", Action: "echo", OnFailure: true, Input: json.RawMessage(`{"a":"{{steps.join.output}}"}`)},
	}
	g, err := workflow.Parse(steps, "/steps")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.Needs) != "[[] [0] [0] [1 2] []]" || g.OnFailure != 4 {
		t.Fatalf("needs %v, on_failure %d", g.Needs, g.OnFailure)
	}
	if workflow.Linear(steps) || !workflow.Linear([]workflow.Step{step("x"), step("y")}) {
		t.Fatal("Linear is wrong")
	}
	env := workflow.Env{Payload: json.RawMessage(`{}`), Steps: map[string]workflow.Result{"fetch": {Status: "succeeded", Output: json.RawMessage(`{"n":3,"items":[{"name":"x"},{"name":"z"}]}`)}}}
	if ok, err := g.Cond(2, env); err != nil || !ok {
		t.Fatalf("b's if = %v, %v; want true (3 > 2)", ok, err)
	}
	env.Steps["fetch"] = workflow.Result{Status: "succeeded", Output: json.RawMessage(`{"n":1.5}`)}
	if ok, err := g.Cond(2, env); err != nil || ok {
		t.Fatalf("b's if = %v, %v; want false", ok, err)
	}
	env.Steps["fetch"] = workflow.Result{Status: "succeeded", Output: json.RawMessage(`{"n":3,"items":[{"name":"x"},{"name":"z"}]}`)}
	items, err := g.Items(3, env)
	if err != nil || len(items) != 2 || string(items[1]) != `{"name":"z"}` {
		t.Fatalf("items %s, %v", items, err)
	}
	env.Item, env.Index = items[1], 1
	if ok, err := g.Cond(3, env); err != nil || ok {
		t.Fatalf("item z's if = %v, %v; want false", ok, err)
	}
	// Prepared once, the environment gives the same answers per item.
	penv, err := env.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range []bool{true, false} {
		penv.Item, penv.Index = items[k], k
		if ok, err := g.Cond(3, penv); err != nil || ok != want {
			t.Fatalf("prepared: item %d's if = %v, %v; want %v", k, ok, err, want)
		}
	}
	m := g.Mermaid()
	for _, want := range []string{"flowchart TD", "s0 --> s1", "s1 --> s3", "s2 --> s3", "class s4 onFailure", "#gt; 2"} {
		if !strings.Contains(m, want) {
			t.Errorf("mermaid lacks %q:\n%s", want, m)
		}
	}
}

func TestItemsBounds(t *testing.T) {
	g, err := workflow.Parse([]workflow.Step{{ID: "a", Connector: "core", Action: "echo", ForEach: "payload.list"}}, "/steps")
	if err != nil {
		t.Fatal(err)
	}
	list := func(n int) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"list": make([]int, n)})
		return b
	}
	if items, err := g.Items(0, workflow.Env{Payload: list(workflow.MaxForEachItems)}); err != nil || len(items) != workflow.MaxForEachItems {
		t.Fatalf("max items: %d, %v", len(items), err)
	}
	if _, err := g.Items(0, workflow.Env{Payload: list(workflow.MaxForEachItems + 1)}); !errors.Is(err, workflow.ErrTooManyItems) {
		t.Fatalf("max+1 items: %v", err)
	}
	if _, err := g.Items(0, workflow.Env{Payload: json.RawMessage(`{"list":"no"}`)}); err == nil {
		t.Fatal("a string for_each gave items")
	}
}

func TestCostLimit(t *testing.T) {
	// A nested comprehension over the payload costs far past the limit: refused when run, not left to spin.
	g, err := workflow.Parse([]workflow.Step{{ID: "a", Connector: "core", Action: "echo",
		If: "payload.l.all(x, payload.l.all(y, payload.l.all(z, true)))"}}, "/steps")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"l": make([]int, 200)})
	if _, err := g.Cond(0, workflow.Env{Payload: b}); err == nil || !strings.Contains(err.Error(), "cost") {
		t.Fatalf("Cond = %v, want a cost limit error", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`[{"id":"a","connector":"core","action":"echo"},{"id":"b","connector":"core","action":"echo","needs":["a"],"if":"payload.x > 1","input":{"v":"{{steps.a.output}}"}}]`)
	f.Add(`[{"id":"a","connector":"core","action":"echo","for_each":"{{payload.l}}","input":{"v":"{{item}}"}},{"id":"z","connector":"c","action":"a","on_failure":true}]`)
	f.Add(`[{"id":"a","connector":"c","action":"a","needs":["b"]},{"id":"b","connector":"c","action":"a","needs":["a"]}]`)
	f.Fuzz(func(t *testing.T, doc string) {
		var steps []workflow.Step
		if json.Unmarshal([]byte(doc), &steps) != nil || len(steps) == 0 || len(steps) > 50 {
			return
		}
		g, err := workflow.Parse(steps, "/steps")
		if err != nil {
			var le *levqor.Error
			if !errors.As(err, &le) || len(le.Fields) != 1 || !strings.HasPrefix(le.Fields[0].Pointer, "/") {
				t.Fatalf("error without a pointer: %v", err)
			}
			return
		}
		// A valid graph is acyclic, and every need is an ancestor.
		for i, ns := range g.Needs {
			for _, j := range ns {
				if j == i {
					t.Fatalf("step %d needs itself", i)
				}
			}
		}
		_ = g.Mermaid()
		env := workflow.Env{Payload: json.RawMessage(`{"x":1,"l":[1,2]}`), Steps: map[string]workflow.Result{}}
		for i := range g.Steps {
			_, _ = g.Cond(i, env)
			if g.Steps[i].ForEach != "" {
				_, _ = g.Items(i, env)
			}
		}
	})
}

// TestReads: the literal paths a step's expressions read in its ancestors' outputs
// and in its item — through members, string and integer indexes; not past a
// computed key, nor into a has() test — and where a reference for_each takes its items.
func TestReads(t *testing.T) {
	b := step("b")
	b.If = `steps.a.output.x["y"][0] == 1 && has(steps.a.output.z) && steps.a.output[payload.k] == 2 && steps["a"].status == "succeeded"`
	c := step("c")
	c.Needs = needs("a")
	c.ForEach = "{{steps.a.output.items}}"
	c.If = `item.user.name != "" && index < 3`
	g, err := workflow.Parse([]workflow.Step{step("a"), b, c}, "/steps")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(g.Reads(1))
	want := `[{a [x y 0] if false false} {a [] if false false} {a [] if false false}]` // the status read is not an output
	if got != want {
		t.Errorf("b reads %s, want %s", got, want)
	}
	from, ok := g.EachFrom(2)
	if !ok || from.Step != "a" || strings.Join(from.Path, ".") != "items" || from.In != "for_each" {
		t.Errorf("EachFrom(c) = %+v, %v", from, ok)
	}
	var items []string
	for _, r := range g.Reads(2) {
		if r.Item {
			items = append(items, strings.Join(r.Path, "."))
		}
	}
	if strings.Join(items, ",") != "user.name" {
		t.Errorf("c reads in its item %v, want user.name", items)
	}
	if _, ok := g.EachFrom(1); ok {
		t.Error("EachFrom of a step without for_each")
	}
}
