package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/levqor/levqor/connectors/ai/aitest"
)

// The plan-eval scenario's default model is this deterministic stand-in: it reads the
// description and picks one action per keyword rule that matches, in the order the
// keywords appear, each step needing the one before. It knows nothing of parallel
// steps and little of language, so its scores are a floor that checks the pipeline
// (prompt, schema, validation, scoring) end to end, not a measure of a model.

// keywordRule picks an action when its pattern matches the description.
type keywordRule struct {
	label   string
	pattern *regexp.Regexp
	// input is the step's input; from is a reference to the previous step's output
	// (or the payload's text for the first step).
	input func(from string) map[string]any
	field string // the output field later steps read
}

var keywordRules = []keywordRule{
	{"core.wait_for_signal", regexp.MustCompile(`\b(approve|approval|signal)\b`), func(string) map[string]any { return map[string]any{"name": "approved"} }, ""},
	{"core.wait", regexp.MustCompile(`\b(wait|pause)( for)? \d+`), func(string) map[string]any { return map[string]any{"for": "1h"} }, ""},
	{"gmail.list_messages", regexp.MustCompile(`\b(unread|inbox)\b`), func(string) map[string]any { return map[string]any{"query": "is:unread"} }, "messages"},
	{"telegram.get_updates", regexp.MustCompile(`\btelegram bot\b`), func(string) map[string]any { return map[string]any{"limit": 10} }, "updates"},
	{"notion.query_database", regexp.MustCompile(`\bquery\b`), func(string) map[string]any { return map[string]any{"database_id": "{{payload.database_id}}"} }, "results"},
	{"notion.search", regexp.MustCompile(`\bsearch notion\b`), func(string) map[string]any { return map[string]any{"query": "{{payload.query}}"} }, "results"},
	{"slack.list_channels", regexp.MustCompile(`\bslack channels\b`), func(string) map[string]any { return map[string]any{} }, "channels"},
	{"http.request", regexp.MustCompile(`\b(fetch|url|urls|api|webhook|endpoint)\b`), func(string) map[string]any {
		return map[string]any{"method": "GET", "url": "{{payload.url}}"}
	}, "text"},
	{"ai.extract", regexp.MustCompile(`\bextract\b`), func(from string) map[string]any {
		return map[string]any{"prompt": "Extract the fields from: " + from, "schema": map[string]any{"type": "object"}}
	}, "data"},
	{"ai.classify", regexp.MustCompile(`\b(classify|sentiment|triage)\b`), func(from string) map[string]any {
		return map[string]any{"labels": []string{"urgent", "normal", "spam"}, "text": from}
	}, "label"},
	{"ai.complete", regexp.MustCompile(`\b(summari[sz]e|translate|draft|write|compare|pick)\b`), func(from string) map[string]any {
		return map[string]any{"prompt": "Do as asked with: " + from, "max_tokens": 400}
	}, "text"},
	{"slack.upload_file", regexp.MustCompile(`\bupload\b`), func(from string) map[string]any {
		return map[string]any{"channel": "{{payload.channel}}", "content": from, "filename": "report.txt"}
	}, "file_id"},
	{"slack.post_message", regexp.MustCompile(`\bslack\b`), func(from string) map[string]any {
		return map[string]any{"channel": "{{payload.channel}}", "text": from}
	}, "ts"},
	{"telegram.send_message", regexp.MustCompile(`\btelegram\b`), func(from string) map[string]any {
		return map[string]any{"chat_id": "{{payload.chat_id}}", "text": from}
	}, "message_id"},
	{"notion.create_page", regexp.MustCompile(`\bnotion\b`), func(from string) map[string]any {
		return map[string]any{"database_id": "{{payload.database_id}}", "properties": map[string]any{"Name": map[string]any{"title": []any{map[string]any{"text": map[string]any{"content": from}}}}}}
	}, "id"},
	{"gmail.send_email", regexp.MustCompile(`\bgmail account\b`), func(from string) map[string]any {
		return map[string]any{"to": []string{"{{payload.to}}"}, "subject": "{{payload.subject}}", "text": from}
	}, "id"},
	{"email.send", regexp.MustCompile(`\bemail\b`), func(from string) map[string]any {
		return map[string]any{"to": "{{payload.to}}", "subject": "{{payload.subject}}", "text": from}
	}, "id"},
	{"core.echo", regexp.MustCompile(`\becho\b`), func(from string) map[string]any { return map[string]any{"result": from} }, ""},
}

// keywordPlan is the stand-in's answer for description.
func keywordPlan(description string) map[string]any {
	text := strings.ToLower(description)
	type match struct {
		at   int
		rule keywordRule
	}
	var found []match
	for _, r := range keywordRules {
		if loc := r.pattern.FindStringIndex(text); loc != nil {
			found = append(found, match{loc[0], r})
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].at < found[j].at })
	steps := []any{}
	from, prev := "{{payload.text}}", ""
	for i, m := range found {
		id := fmt.Sprintf("s%d", i+1)
		needs := []string{}
		if prev != "" {
			needs = append(needs, prev)
		}
		connector, action, _ := strings.Cut(m.rule.label, ".")
		steps = append(steps, map[string]any{"id": id, "connector": connector, "action": action, "input": m.rule.input(from),
			"needs": needs, "reason": fmt.Sprintf("The description asks for %s.", m.rule.label)})
		from, prev = "{{steps."+id+".output}}", id
		if m.rule.field != "" {
			from = "{{steps." + id + ".output." + m.rule.field + "}}"
		}
	}
	return map[string]any{"description": description, "steps": steps}
}

// keywordModel answers every planning request (a repair too) with keywordPlan of the
// conversation's first user message, with the usage a provider would report.
func keywordModel(_ int, req aitest.Request) aitest.Reply {
	var description string
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(m.Content)
		if m.Role == "user" && description == "" {
			description = m.Content
		}
	}
	content, _ := json.Marshal(keywordPlan(description))
	return aitest.Reply{Content: string(content), PromptTokens: int64(prompt / 4), CompletionTokens: int64(len(content) / 4)}
}
