package config

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// update rewrites .env.example and the README's table from the options table:
// go test ./config -run TestDocs -update
var update = flag.Bool("update", false, "rewrite .env.example and the README's settings table from the options table")

const (
	envExamplePath = "../.env.example"
	readmePath     = "../README.md"
	tableBegin     = "<!-- settings:begin (generated from config/options.go: go test ./config -run TestDocs -update) -->\n"
	tableEnd       = "<!-- settings:end -->\n"
)

// envExample is .env.example as the options table writes it.
func envExample() string {
	var b strings.Builder
	b.WriteString("# Levqor configuration. Every variable is optional; the values shown are the defaults.\n")
	b.WriteString("# An invalid value stops start-up with a message naming the variable.\n")
	b.WriteString("# Generated from config/options.go (go test ./config -run TestDocs -update); edit the table, not this file.\n")
	for _, o := range options {
		b.WriteString("\n# " + strings.ToUpper(o.Doc[:1]) + o.Doc[1:] + ".")
		if o.DefaultDoc != "" {
			b.WriteString(" Default: " + strings.ReplaceAll(o.DefaultDoc, "`", "") + ".")
		}
		b.WriteString("\n" + o.Name + "=" + o.Default + "\n")
	}
	return b.String()
}

// readmeTable is the README's settings table as the options table writes it.
func readmeTable() string {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var b strings.Builder
	b.WriteString(tableBegin)
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, o := range options {
		name := "`" + o.Name + "`"
		if o.Alias != "" {
			name += " (or `" + o.Alias + "`)"
		}
		def := "—"
		switch {
		case o.DefaultDoc != "":
			def = o.DefaultDoc
		case o.Default != "":
			def = "`" + o.Default + "`"
		}
		b.WriteString("| " + name + " | " + cell(def) + " | " + cell(o.Doc) + " |\n")
	}
	b.WriteString(tableEnd)
	return b.String()
}

// TestDocs: .env.example and the README's table list every option, with its default
// and its doc line, and nothing else; both are generated from the table.
func TestDocs(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := strings.Index(string(readme), tableBegin), strings.Index(string(readme), tableEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s has no settings table between %q and %q", readmePath, tableBegin, tableEnd)
	}
	gotTable := string(readme[begin : end+len(tableEnd)])
	gotEnv, err := os.ReadFile(envExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		readme := string(readme[:begin]) + readmeTable() + string(readme[end+len(tableEnd):])
		if err := os.WriteFile(readmePath, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(envExamplePath, []byte(envExample()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if gotTable != readmeTable() {
		t.Errorf("%s's settings table is not the options table's; run go test ./config -run TestDocs -update. Want:\n%s", readmePath, readmeTable())
	}
	if string(gotEnv) != envExample() {
		t.Errorf("%s is not the options table's; run go test ./config -run TestDocs -update. Want:\n%s", envExamplePath, envExample())
	}
	// Every variable named in the files is an option (or an option's alias).
	known := map[string]bool{}
	for _, o := range options {
		known[o.Name], known[o.Alias] = true, true
	}
	for _, name := range regexp.MustCompile(`^([A-Z_]+)=`).FindAllStringSubmatch(string(gotEnv), -1) {
		if !known[name[1]] {
			t.Errorf("%s sets %s, which is not an option", envExamplePath, name[1])
		}
	}
	for _, name := range regexp.MustCompile("(?m)^\\| `([A-Z_]+)`").FindAllStringSubmatch(gotTable, -1) {
		if !known[name[1]] {
			t.Errorf("%s's table lists %s, which is not an option", readmePath, name[1])
		}
	}
}

// TestOptionsTable: names are unique LEVQOR_ variables, every option is documented,
// and every default parses (Load with nothing set succeeds).
func TestOptionsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range options {
		if !strings.HasPrefix(o.Name, "LEVQOR_") || seen[o.Name] {
			t.Errorf("option %q: want a unique LEVQOR_ name", o.Name)
		}
		seen[o.Name] = true
		if o.Doc == "" || strings.HasSuffix(o.Doc, ".") || strings.Contains(o.Doc, "\n") {
			t.Errorf("%s: want a one-line doc without a final full stop, got %q", o.Name, o.Doc)
		}
		if o.parse == nil || (o.Alias != "") != (o.fromAlias != nil) {
			t.Errorf("%s: incomplete option", o.Name)
		}
		if o.Default != "" && o.DefaultDoc != "" {
			t.Errorf("%s: a default and a default doc; the README would hide the default", o.Name)
		}
	}
	if _, err := Load(func(string) string { return "" }); err != nil {
		t.Errorf("defaults do not load: %v", err)
	}
}
