// Package stepinput fills a step's input with values from the job's payload and from the
// outputs of earlier steps, through references such as {{payload.user.email}} or
// {{steps.fetch.output.items.0.id}}. It substitutes values and nothing more: there are no
// expressions, and substituted values are never evaluated again.
package stepinput

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxResolvedBytes bounds a step's input once its references are filled in, counted as
// the compact JSON the connector receives. It is twice a step's output limit
// (connectors.MaxOutputBytes, 1 MiB): one earlier output can travel whole into a step,
// even as escaped text, beside the step's own literal input. The bound is enforced while
// the input is built, before each substituted value is added, because a short input
// that repeats a reference to a large value would otherwise expand without limit.
const MaxResolvedBytes = 2 << 20

// SizeError reports that an input would resolve to more than Limit bytes.
type SizeError struct {
	Limit int
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("the input with its references filled in would be larger than %d bytes; reference smaller values or fewer of them", e.Limit)
}

// RefError reports a reference that cannot be resolved or is malformed.
type RefError struct {
	Ref    string // the reference as written, without the braces, e.g. "payload.user.email"
	Reason string // why it failed; never contains the referenced data
}

func (e *RefError) Error() string {
	return fmt.Sprintf("reference {{%s}}: %s", e.Ref, e.Reason)
}

// placeholders finds the {{ … }} placeholders of s, leftmost first and not
// overlapping, at most n of them (all when n < 0): each as [start, end, inner start,
// inner end], the inner part without the whitespace around it. It matches as
// regexp's FindAllStringSubmatchIndex of `\{\{\s*([^{}]*?)\s*\}\}` would
// (FuzzPlaceholders compares them), at a tenth of the cost: intake looks for the
// references of every step input, and a run resolves them.
func placeholders(s string, n int) [][4]int {
	var out [][4]int
	for i := 0; n < 0 || len(out) < n; {
		k := strings.Index(s[i:], "{{")
		if k < 0 {
			break
		}
		i += k
		j := i + 2
		for j < len(s) && s[j] != '{' && s[j] != '}' {
			j++
		}
		if j+1 >= len(s) || s[j] != '}' || s[j+1] != '}' {
			i++
			continue
		}
		a, b := i+2, j
		for a < b && isSpace(s[a]) {
			a++
		}
		for b > a && isSpace(s[b-1]) {
			b--
		}
		out = append(out, [4]int{i, j + 2, a, b})
		i = j + 2
	}
	return out
}

// onlyPlaceholder reports whether s is one placeholder and nothing else, and returns
// its inner part.
func onlyPlaceholder(s string) (string, bool) {
	ms := placeholders(s, 1)
	if len(ms) == 0 || ms[0][0] != 0 || ms[0][1] != len(s) {
		return "", false
	}
	return s[ms[0][2]:ms[0][3]], true
}

// isSpace is regexp's \s: ASCII tab, newline, form feed, carriage return and space.
func isSpace(c byte) bool {
	return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' '
}

// ref is a parsed reference: payload.<path> or steps.<id>.output.<path>.
type ref struct {
	raw  string
	step string // "" for the payload or a variable
	vr   string // "item" or "index" for a for_each step's variables; "" otherwise
	path []string
}

// parseRef parses the text between the braces. ok is false when the text does not claim
// to be a reference (its first segment is neither "payload" nor "steps"), in which case
// the placeholder is left as literal text for whatever consumes the value downstream.
func parseRef(text string) (r ref, ok bool, err error) {
	r.raw = text
	segs := strings.Split(text, ".")
	switch segs[0] {
	case "payload":
		r.path = segs[1:]
	case "item", "index":
		r.vr, r.path = segs[0], segs[1:]
	case "steps":
		if len(segs) < 3 || segs[1] == "" || segs[2] != "output" {
			return r, true, &RefError{Ref: text, Reason: "a step reference has the form steps.<id>.output[.path]"}
		}
		r.step, r.path = segs[1], segs[3:]
	default:
		return r, false, nil
	}
	for _, s := range r.path {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return r, true, &RefError{Ref: text, Reason: "empty or blank path segment"}
		}
	}
	return r, true, nil
}

// Resolve returns input with every reference replaced. A string that is exactly one
// reference becomes the referenced JSON value, type kept; references inside a longer
// string are interpolated as text (strings as they are, other values as compact JSON).
// Path segments index objects by key and arrays by decimal index. Object keys are never
// evaluated. An unresolvable or malformed reference returns a *RefError; a result
// that would exceed MaxResolvedBytes returns a *SizeError as soon as the expansion
// crosses it; input that is not JSON returns a plain error.
func Resolve(input json.RawMessage, payload json.RawMessage, outputs map[string]json.RawMessage) (json.RawMessage, error) {
	return resolve(input, payload, outputs, nil, MaxResolvedBytes)
}

// ResolveItem is Resolve for one iteration of a for_each step: {{item…}} is the
// iteration's item and {{index}} its position (from 0).
func ResolveItem(input, payload json.RawMessage, outputs map[string]json.RawMessage, item json.RawMessage, index int) (json.RawMessage, error) {
	vars := map[string]json.RawMessage{"item": item, "index": json.RawMessage(strconv.Itoa(index))}
	return resolve(input, payload, outputs, vars, MaxResolvedBytes)
}

// Var returns the for_each variable ("item" or "index") a reference (as Refs lists
// it) reads, if any.
func Var(ref string) (string, bool) {
	v, _, ok := VarPath(ref)
	return v, ok
}

// VarPath is Var with the path the reference reads in the variable.
func VarPath(ref string) (string, []string, bool) {
	r, ok, err := parseRef(ref)
	if !ok || err != nil || r.vr == "" {
		return "", nil, false
	}
	return r.vr, r.path, true
}

// resolve is Resolve with a size limit of limit bytes and for_each variables vars (nil outside for_each).
func resolve(input json.RawMessage, payload json.RawMessage, outputs map[string]json.RawMessage, vars map[string]json.RawMessage, limit int) (json.RawMessage, error) {
	doc, err := decode(input)
	if err != nil {
		return nil, fmt.Errorf("step input: %w", err)
	}
	r := &resolver{payload: payload, outputs: outputs, vars: vars, decoded: map[string]any{}, left: limit, limit: limit}
	doc, err = r.walk(doc)
	if err != nil {
		return nil, err
	}
	out, err := encode(doc)
	if err != nil {
		return nil, err
	}
	if len(out) > limit { // the accounting mirrors encode; this only backs it up
		return nil, &SizeError{Limit: limit}
	}
	return out, nil
}

// Refs lists the references in input, without braces, each once, in document order
// (object keys sorted). It returns a *RefError for a malformed reference and a plain error
// for input that is not JSON. Use StepID to find the steps a workflow step depends on.
func Refs(input json.RawMessage) ([]string, error) {
	doc, err := decode(input)
	if err != nil {
		return nil, fmt.Errorf("step input: %w", err)
	}
	var out []string
	err = visitStrings(doc, func(s string) error {
		for _, m := range placeholders(s, -1) {
			r, ok, err := parseRef(s[m[2]:m[3]])
			if err != nil {
				return err
			}
			if ok && !slices.Contains(out, r.raw) {
				out = append(out, r.raw)
			}
		}
		return nil
	})
	return out, err
}

// Whole reports whether s is exactly one reference (so that it resolves to the
// referenced value, type kept) and returns the reference as Refs lists it.
func Whole(s string) (string, bool) {
	inner, ok := onlyPlaceholder(s)
	if !ok {
		return "", false
	}
	r, ok, err := parseRef(inner)
	if !ok || err != nil {
		return "", false
	}
	return r.raw, true
}

// StepID returns the step a reference (as Refs lists it) points into.
func StepID(ref string) (string, bool) {
	id, _, ok := StepPath(ref)
	return id, ok
}

// StepPath returns the step a reference (as Refs lists it) points into and the
// path it reads in that step's output (empty for the whole output).
func StepPath(ref string) (id string, path []string, ok bool) {
	r, ok, err := parseRef(ref)
	if !ok || err != nil || r.step == "" {
		return "", nil, false
	}
	return r.step, r.path, true
}

func visitStrings(v any, f func(string) error) error {
	switch v := v.(type) {
	case string:
		return f(v)
	case []any:
		for _, e := range v {
			if err := visitStrings(e, f); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range sortedKeys(v) {
			if err := visitStrings(v[k], f); err != nil {
				return err
			}
		}
	}
	return nil
}

type resolver struct {
	payload json.RawMessage
	outputs map[string]json.RawMessage
	vars    map[string]json.RawMessage // item and index of a for_each iteration
	decoded map[string]any             // "payload" or "steps.<id>" → decoded document, filled lazily
	// left is how many bytes of encoded output may still be added. walk charges every
	// part of the result as it builds it, so the result never holds more than the limit.
	left  int
	limit int
}

// charge takes n bytes from what is left, or fails when they are not there.
func (r *resolver) charge(n int) error {
	if n > r.left {
		r.left = -1
		return &SizeError{Limit: r.limit}
	}
	r.left -= n
	return nil
}

func (r *resolver) walk(v any) (any, error) {
	switch v := v.(type) {
	case string:
		return r.resolveString(v)
	case []any:
		if err := r.charge(2 + max(len(v)-1, 0)); err != nil { // brackets and commas
			return nil, err
		}
		for i, e := range v {
			out, err := r.walk(e)
			if err != nil {
				return nil, err
			}
			v[i] = out
		}
		return v, nil
	case map[string]any:
		if err := r.charge(2 + max(len(v)-1, 0)); err != nil { // braces and commas
			return nil, err
		}
		for _, k := range sortedKeys(v) { // sorted: the first error reported is stable
			if err := r.charge(stringSize(k, r.left) + 1); err != nil { // the key and its colon
				return nil, err
			}
			out, err := r.walk(v[k])
			if err != nil {
				return nil, err
			}
			v[k] = out
		}
		return v, nil
	}
	return v, r.charge(valueSize(v, r.left))
}

func (r *resolver) resolveString(s string) (any, error) {
	if !strings.Contains(s, "{{") {
		return s, r.charge(stringSize(s, r.left))
	}
	// A string that is one placeholder and nothing else takes the value's type.
	if inner, whole := onlyPlaceholder(s); whole {
		ref, ok, err := parseRef(inner)
		if err != nil {
			return nil, err
		}
		if !ok {
			return s, r.charge(stringSize(s, r.left))
		}
		v, err := r.lookup(ref)
		if err != nil {
			return nil, err
		}
		// The value is shared, not copied, until the result is encoded: charge what it will add.
		return v, r.charge(valueSize(v, r.left))
	}
	// Interpolation: collect the pieces, charging each as its escaped text, then build
	// the string once at its final size.
	if err := r.charge(2); err != nil { // the quotes
		return nil, err
	}
	var pieces []string
	add := func(p string) error {
		if err := r.charge(stringSize(p, r.left+2) - 2); err != nil { // without the quotes
			return err
		}
		pieces = append(pieces, p)
		return nil
	}
	end := 0
	for _, m := range placeholders(s, -1) {
		ref, ok, err := parseRef(s[m[2]:m[3]])
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // left as literal text, part of the next literal piece
		}
		if err := add(s[end:m[0]]); err != nil {
			return nil, err
		}
		end = m[1]
		v, err := r.lookup(ref)
		if err != nil {
			return nil, err
		}
		if str, isStr := v.(string); isStr {
			if err := add(str); err != nil {
				return nil, err
			}
			continue
		}
		// Its JSON text is at least its size: refuse before encoding what cannot fit.
		if valueSize(v, r.left) > r.left {
			return nil, &SizeError{Limit: r.limit}
		}
		b, err := encode(v)
		if err != nil {
			return nil, &RefError{Ref: ref.raw, Reason: "value cannot be written as text"}
		}
		if err := add(string(b)); err != nil {
			return nil, err
		}
	}
	if err := add(s[end:]); err != nil {
		return nil, err
	}
	n := 0
	for _, p := range pieces {
		n += len(p)
	}
	var out strings.Builder
	out.Grow(n)
	for _, p := range pieces {
		out.WriteString(p)
	}
	return out.String(), nil
}

// valueSize is the length of v as encode writes it, or some number above limit once
// it is known to exceed limit (so a large value is not measured to its end).
func valueSize(v any, limit int) int {
	switch v := v.(type) {
	case nil:
		return len("null")
	case bool:
		if v {
			return len("true")
		}
		return len("false")
	case json.Number:
		return len(v)
	case string:
		return stringSize(v, limit)
	case []any:
		n := 2 + max(len(v)-1, 0)
		for _, e := range v {
			if n > limit {
				return n
			}
			n += valueSize(e, limit-n)
		}
		return n
	case map[string]any:
		n := 2 + max(len(v)-1, 0)
		for k, e := range v {
			if n > limit {
				return n
			}
			n += stringSize(k, limit-n) + 1
			n += valueSize(e, limit-n)
		}
		return n
	}
	return limit + 1 // no other type comes out of decode; count it as too large
}

// stringSize is the length of s as a JSON string written by encode (quotes and
// escapes included, HTML not escaped), or some number above limit once it is known
// to exceed limit.
func stringSize(s string, limit int) int {
	n := 2
	for i := 0; i < len(s) && n <= limit; {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\b' || b == '\f' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20:
				n += 6 // \u00XX
			default:
				n++
			}
			i++
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if (c == utf8.RuneError && size == 1) || c == '\u2028' || c == '\u2029' {
			n += 6 // \ufffd, \u2028, \u2029
		} else {
			n += size
		}
		i += size
	}
	return n
}

func (r *resolver) lookup(ref ref) (any, error) {
	key, raw := "payload", r.payload
	if ref.vr != "" {
		var ok bool
		key = ref.vr
		if raw, ok = r.vars[ref.vr]; !ok {
			return nil, &RefError{Ref: ref.raw, Reason: fmt.Sprintf("%s is bound only in a for_each step", ref.vr)}
		}
	}
	if ref.step != "" {
		key = "steps." + ref.step
		var ok bool
		raw, ok = r.outputs[ref.step]
		if !ok {
			return nil, &RefError{Ref: ref.raw, Reason: fmt.Sprintf("step %q has no output (unknown step, or it has not run yet)", ref.step)}
		}
	}
	root, ok := r.decoded[key]
	if !ok {
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil, &RefError{Ref: ref.raw, Reason: "there is no " + strings.Replace(key, "steps.", "output of step ", 1)}
		}
		var err error
		if root, err = decode(raw); err != nil {
			return nil, &RefError{Ref: ref.raw, Reason: "the referenced document is not valid JSON"}
		}
		r.decoded[key] = root
	}
	cur := root
	for i, seg := range ref.path {
		at := strings.Join(ref.path[:i], ".")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, &RefError{Ref: ref.raw, Reason: fmt.Sprintf("no key %q%s", seg, where(at))}
			}
			cur = next
		case []any:
			n, err := index(seg)
			if err != nil {
				return nil, &RefError{Ref: ref.raw, Reason: fmt.Sprintf("%q is not an array index%s", seg, where(at))}
			}
			if n >= len(v) {
				return nil, &RefError{Ref: ref.raw, Reason: fmt.Sprintf("index %d is out of range%s (length %d)", n, where(at), len(v))}
			}
			cur = v[n]
		default:
			return nil, &RefError{Ref: ref.raw, Reason: fmt.Sprintf("cannot look up %q in a %s%s", seg, typeName(cur), where(at))}
		}
	}
	return cur, nil
}

func where(at string) string {
	if at == "" {
		return ""
	}
	return " under " + at
}

// index parses a canonical non-negative decimal array index ("0", "12"; not "01" or "+1").
func index(s string) (int, error) {
	if s != "0" && (s[0] < '1' || s[0] > '9') {
		return 0, errors.New("not an index")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("not an index")
		}
	}
	return strconv.Atoi(s)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	}
	return "value"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// decode parses exactly one JSON value, numbers kept exact as json.Number.
func decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not valid JSON: data after the value")
	}
	return v, nil
}

// encode writes compact JSON without HTML escaping, so text keeps its < > &.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
