package stepinput

import (
	"regexp"
	"slices"
	"testing"
)

// placeholderRE is the expression placeholders stands for.
var placeholderRE = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

func checkPlaceholders(t *testing.T, s string) {
	t.Helper()
	var want [][4]int
	for _, m := range placeholderRE.FindAllStringSubmatchIndex(s, -1) {
		want = append(want, [4]int{m[0], m[1], m[2], m[3]})
	}
	if got := placeholders(s, -1); !slices.Equal(got, want) {
		t.Fatalf("placeholders(%q) = %v, the expression finds %v", s, got, want)
	}
	if got := placeholders(s, 1); len(want) > 0 && (len(got) != 1 || got[0] != want[0]) || len(want) == 0 && got != nil {
		t.Fatalf("placeholders(%q, 1) = %v, want the first of %v", s, got, want)
	}
}

func TestPlaceholders(t *testing.T) {
	for _, s := range []string{
		"", "{{", "}}", "{{}}", "{{ }}", "{{\t\n\f\r x \v}}", "{{a}}", "a {{ b.c }} d {{e}}",
		"{{{a}}}", "{{a{{b}}", "{{a}b}}", "{{a}}}}", "{{ {{a}} }}", "x{{payload.n}}y{{", "{{é ü}}",
	} {
		checkPlaceholders(t, s)
	}
}

// FuzzPlaceholders compares placeholders with the regular expression it replaces.
func FuzzPlaceholders(f *testing.F) {
	for _, s := range []string{"{{payload.n}}", "Dear {{ name }}, {{steps.a.output.x}}", "{{{a}}}", "{{a}b}} {{ }}"} {
		f.Add(s)
	}
	f.Fuzz(checkPlaceholders)
}

// BenchmarkRefs is intake's look for the references of a step input (the bench's job).
func BenchmarkRefs(b *testing.B) {
	input := []byte(`{"x":"{{payload.n}}","greeting":"Dear {{ payload.user.name }}, your order {{steps.a.output.id}}"}`)
	for b.Loop() {
		if _, err := Refs(input); err != nil {
			b.Fatal(err)
		}
	}
}
