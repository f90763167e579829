package planeval

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/connectors/email"
	"github.com/levqor/levqor/connectors/gmail"
	"github.com/levqor/levqor/connectors/httpcall"
	"github.com/levqor/levqor/connectors/notion"
	"github.com/levqor/levqor/connectors/slack"
	"github.com/levqor/levqor/connectors/telegram"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/workflow"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

// TestCounts: F1 as TaskBench computes it, by hand: sets per case, counts summed
// over cases (micro), zero when nothing was found or nothing matches.
func TestCounts(t *testing.T) {
	g := func(nodes ...string) Graph { return Graph{Nodes: nodes} }
	e := func(pairs ...string) Graph {
		var out Graph
		for i := 0; i+1 < len(pairs); i += 2 {
			out.Edges = append(out.Edges, [2]string{pairs[i], pairs[i+1]})
		}
		return out
	}
	for _, c := range []struct {
		name        string
		got         Counts
		want        Counts
		p, r, f1    float64
		wantIsEmpty bool
	}{
		// {a b c} against {a b d}: a and b found, d wrong, c missed: P = R = F1 = 2/3.
		{"one wrong, one missed", NodeCounts(g("a", "b", "c"), g("a", "b", "d")), Counts{2, 1, 1}, 2.0 / 3, 2.0 / 3, 2.0 / 3, false},
		// A label twice is one node.
		{"duplicates", NodeCounts(g("a"), g("a", "a")), Counts{1, 0, 0}, 1, 1, 1, false},
		// {a b c d} against {a}: P = 1, R = 1/4, F1 = 2·1·¼ / (1+¼) = 0.4.
		{"one of four", NodeCounts(g("a", "b", "c", "d"), g("a")), Counts{1, 0, 3}, 1, 0.25, 0.4, false},
		// No plan (a 422): nothing found, all missed.
		{"no plan", NodeCounts(g("a", "b", "c"), Graph{}), Counts{0, 0, 3}, 0, 0, 0, false},
		{"nothing either side", EdgeCounts(Graph{}, Graph{}), Counts{}, 0, 0, 0, true},
		// Edges are ordered pairs: (b, a) is not (a, b). {ab bc} against {ab ac}: 1/2.
		{"edges", EdgeCounts(e("a", "b", "b", "c"), e("a", "b", "a", "c")), Counts{1, 1, 1}, 0.5, 0.5, 0.5, false},
		{"edge direction", EdgeCounts(e("a", "b"), e("b", "a")), Counts{0, 1, 1}, 0, 0, 0, false},
		// Micro: {2,1,1} + {1,0,0} = {3,1,1}: 0.75, not the mean of 2/3 and 1.
		{"micro over cases", Counts{2, 1, 1}.Add(Counts{1, 0, 0}), Counts{3, 1, 1}, 0.75, 0.75, 0.75, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("counts = %+v, want %+v", c.got, c.want)
			}
			if !near(c.got.Precision(), c.p) || !near(c.got.Recall(), c.r) || !near(c.got.F1(), c.f1) || c.got.Empty() != c.wantIsEmpty {
				t.Errorf("P %v R %v F1 %v empty %v; want %v %v %v %v", c.got.Precision(), c.got.Recall(), c.got.F1(), c.got.Empty(), c.p, c.r, c.f1, c.wantIsEmpty)
			}
		})
	}
}

func steps(t *testing.T, s string) []workflow.Step {
	t.Helper()
	var out []workflow.Step
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGraphOf: a plain sequence is a chain (the default needs), explicit needs
// make a fan-out, and a label used twice is one node with each of its edges.
func TestGraphOf(t *testing.T) {
	chain := steps(t, `[{"id": "f", "connector": "http", "action": "request"}, {"id": "s", "connector": "ai", "action": "complete"},
		{"id": "p", "connector": "slack", "action": "post_message"}]`)
	got, err := GraphOf(chain)
	if err != nil {
		t.Fatal(err)
	}
	want := Graph{Nodes: []string{"http.request", "ai.complete", "slack.post_message"},
		Edges: [][2]string{{"http.request", "ai.complete"}, {"ai.complete", "slack.post_message"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("chain: %+v, want %+v", got, want)
	}
	fan := steps(t, `[{"id": "eu", "connector": "http", "action": "request", "needs": []}, {"id": "us", "connector": "http", "action": "request", "needs": []},
		{"id": "cmp", "connector": "ai", "action": "complete", "needs": ["eu", "us"]}]`)
	s, err := ScoreOf(Graph{Nodes: []string{"http.request", "ai.complete"}, Edges: [][2]string{{"http.request", "ai.complete"}}}, fan)
	if err != nil {
		t.Fatal(err)
	}
	if s.Nodes != (Counts{2, 0, 0}) || s.Edges != (Counts{1, 0, 0}) {
		t.Errorf("fan-in: %+v", s)
	}
	if s, _ := ScoreOf(want, nil); s.Nodes != (Counts{0, 0, 3}) || s.Edges != (Counts{0, 0, 2}) {
		t.Errorf("no plan: %+v", s)
	}
	if _, err := ScoreOf(want, steps(t, `[{"id": "a", "connector": "core", "action": "echo", "needs": ["nope"]}]`)); err == nil {
		t.Error("a plan that is no graph was scored")
	}
}

// TestCases: the set loads, its ids are unique, and every label it expects is an
// action of Levqor's connectors.
func TestCases(t *testing.T) {
	cs, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) < 20 {
		t.Errorf("%d cases, want at least 20", len(cs))
	}
	guard, err := outbound.NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	creds := connectortest.NewCredentials()
	const base = "https://vendor.example.com/"
	aiConn, err1 := ai.New(ai.Config{BaseURL: base})
	slackConn, err2 := slack.New(slack.Config{BaseURL: base, Credentials: creds})
	telegramConn, err3 := telegram.New(telegram.Config{BaseURL: base, Credentials: creds})
	notionConn, err4 := notion.New(notion.Config{BaseURL: base, Credentials: creds})
	gmailConn, err5 := gmail.New(gmail.Config{BaseURL: base, TokenURL: base + "token", Credentials: creds})
	emailConn, err6 := email.New(email.Config{BaseURL: base, Credentials: creds, Senders: []string{"no-reply@example.com"}, PublicURL: "https://levqor.example.com"})
	for _, err := range []error{err1, err2, err3, err4, err5, err6} {
		if err != nil {
			t.Fatal(err)
		}
	}
	reg, err := connectors.NewRegistry(core.New(), httpcall.New(guard), aiConn, slackConn, telegramConn, notionConn, gmailConn, emailConn)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	for _, e := range reg.Catalogue() {
		for _, a := range e.Actions {
			labels[e.Connector+"."+a.Name] = true
		}
	}
	ids := map[string]bool{}
	for _, c := range cs {
		if ids[c.ID] {
			t.Errorf("case id %q twice", c.ID)
		}
		ids[c.ID] = true
		for _, n := range c.Nodes {
			if !labels[n] {
				t.Errorf("case %s expects %q, which no connector has", c.ID, n)
			}
		}
	}
}
