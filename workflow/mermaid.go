package workflow

import (
	"fmt"
	"strings"
)

// Mermaid draws the graph as a Mermaid flowchart: a node per step (its id,
// connector.action, and its if / for_each), an edge per need; the on_failure
// step stands apart, dashed.
func (g *Graph) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	for i, st := range g.Steps {
		label := st.ID + "<br/>" + st.Connector + "." + st.Action
		if st.If != "" {
			label += "<br/>if " + st.If
		}
		if st.ForEach != "" {
			label += "<br/>for each " + st.ForEach
		}
		if st.OnFailure {
			label = "on failure: " + label
		}
		fmt.Fprintf(&b, "  s%d[\"%s\"]\n", i, mermaidText(label))
	}
	for _, e := range g.Edges() {
		fmt.Fprintf(&b, "  s%d --> s%d\n", e[0], e[1])
	}
	if g.OnFailure >= 0 {
		fmt.Fprintf(&b, "  classDef onFailure stroke-dasharray: 5 5\n  class s%d onFailure\n", g.OnFailure)
	}
	return b.String()
}

// mermaidText escapes text for a quoted Mermaid label: quotes and angle brackets
// become entity codes, so a step's expression cannot end the label or inject markup.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<br/>", "\x00", "<", "#lt;", ">", "#gt;", "\n", " ", "\r", " ")
	return strings.ReplaceAll(r.Replace(s), "\x00", "<br/>")
}
