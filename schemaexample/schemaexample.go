// Package schemaexample makes example JSON values from JSON Schemas: what a dry run
// shows as a step's output, derived from its action's output schema. An example can
// then be extended along a path a reference reads, where the schema leaves room (an
// object open to other members, a value of any type, an array's further items), so
// that such a reference resolves; a path the schema rules out is an error.
package schemaexample

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds of an example, so that no schema (a step's own ai.extract schema is the
// caller's) can make one large or deep.
const (
	// MaxDepth is how deep a schema is followed; deeper values are null.
	MaxDepth = 32
	// MaxNodes bounds the values one example is made of; past it, values are null.
	MaxNodes = 10_000
	// MaxItems bounds the items made for an array's minItems.
	MaxItems = 16
	// MaxIndex bounds the array index a path may reach (an example array grows to it).
	MaxIndex = 999
	// MaxStringLen bounds the length made for a string's minLength.
	MaxStringLen = 256
	// MaxSchemaBytes bounds the schema an example is made from.
	MaxSchemaBytes = 1 << 20
	// MaxBytes bounds, roughly, the JSON of an example: past it, values are null.
	MaxBytes = 256 << 10
	// MaxResolves bounds the $ref and allOf resolutions of one example, which a
	// schema could otherwise make exponential ({"allOf": [{"$ref": "#"}, {"$ref": "#"}]}):
	// past it, a schema counts as any value.
	MaxResolves = 100_000
)

// Example is an example value and the schema it was made from.
type Example struct {
	root   any // the whole schema, for local $refs
	schema any // the value's schema: decoded JSON, or exact
	value  any
	nodes  int // values made
	bytes  int // their JSON's size, roughly
	work   int // resolutions (MaxResolves)
}

// exact is the schema of a value that is known exactly (a const, or an example
// assembled from others): nothing may be added to it.
type exact struct{}

// New makes an example of schema (JSON Schema, draft 2020-12): a const, the first of
// examples, the default or the first enum value when the schema gives one; else a
// value of its (first non-null) type with every property it declares, as many array
// items as minItems asks (at least one, at most MaxItems), strings of a plausible
// format, numbers within their bounds. anyOf and oneOf take their first branch;
// allOf's members are merged into one schema. $refs within the schema are followed;
// others are taken as any value.
func New(schema json.RawMessage) (*Example, error) {
	s, err := decodeSchema(schema)
	if err != nil {
		return nil, err
	}
	e := &Example{root: s, schema: s}
	e.value = e.make(s, 0)
	return e, nil
}

// decodeSchema decodes a schema of at most MaxSchemaBytes, numbers kept exact.
func decodeSchema(schema json.RawMessage) (any, error) {
	if len(schema) > MaxSchemaBytes {
		return nil, fmt.Errorf("the schema is larger than %d bytes", MaxSchemaBytes)
	}
	var s any
	d := json.NewDecoder(bytes.NewReader(schema))
	d.UseNumber()
	if err := d.Decode(&s); err != nil {
		return nil, fmt.Errorf("the schema is not JSON: %w", err)
	}
	if d.More() {
		return nil, errors.New("the schema is not one JSON value")
	}
	switch s.(type) {
	case map[string]any, bool:
		return s, nil
	}
	return nil, errors.New("a schema is an object or a boolean")
}

// Exact is an example whose value is known (items: each an example, or nil for
// null): a for_each step's array of outputs. Paths may go into its items' open
// parts but not past its length.
func Exact(items []*Example) *Example {
	values := make([]any, len(items))
	schemas := make([]any, len(items))
	for i, it := range items {
		if it == nil {
			schemas[i] = exact{}
			continue
		}
		values[i], schemas[i] = it.value, itemOf{it}
	}
	return &Example{schema: map[string]any{"prefixItems": schemas, "items": false}, value: values}
}

// itemOf is an item of an Exact list: its own example, with its own root.
type itemOf struct{ e *Example }

// JSON is the example as JSON.
func (e *Example) JSON() json.RawMessage {
	b, err := json.Marshal(e.value)
	if err != nil { // decoded JSON and made values always encode
		return json.RawMessage("null")
	}
	return b
}

// Reach makes sure the example holds a value at path (object members by name,
// array items by decimal index), adding what is missing where the schema allows it.
// It returns an error saying why when the schema rules the path out: a member an
// object schema does not allow, an index past an array's maxItems (or MaxIndex), a
// step into a string, number, boolean or null.
func (e *Example) Reach(path []string) error {
	v, err := e.reach(e.value, e.schema, path, 0)
	if err != nil {
		return err
	}
	e.value = v
	return nil
}

func (e *Example) reach(v, s any, path []string, depth int) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	if it, ok := s.(itemOf); ok {
		err := it.e.Reach(path)
		return it.e.value, err
	}
	if depth >= MaxDepth {
		return v, fmt.Errorf("the path is deeper than %d levels", MaxDepth)
	}
	s = e.resolve(s, 0)
	seg, rest := path[0], path[1:]
	switch cur := v.(type) {
	case map[string]any:
		if child, ok := cur[seg]; ok {
			sub, _ := e.member(s, seg, true)
			got, err := e.reach(child, sub, rest, depth+1)
			cur[seg] = got
			return cur, wrap(seg, err)
		}
		sub, ok := e.member(s, seg, false)
		if !ok {
			return v, fmt.Errorf("has no member %q%s", seg, e.members(s))
		}
		got, err := e.reach(e.make(sub, depth+1), sub, rest, depth+1)
		cur[seg] = got
		return cur, wrap(seg, err)
	case []any:
		idx, err := strconv.Atoi(seg)
		if err != nil || idx < 0 || strconv.Itoa(idx) != seg {
			return v, fmt.Errorf("is an array; %q is not an index", seg)
		}
		if idx >= len(cur) {
			limit := e.maxItems(s)
			if idx >= limit {
				return v, fmt.Errorf("is an array of at most %d items; it has no item %d", limit, idx)
			}
			for k := len(cur); k <= idx; k++ {
				cur = append(cur, e.make(e.item(s, k), depth+1))
			}
		}
		got, err := e.reach(cur[idx], e.item(s, idx), rest, depth+1)
		cur[idx] = got
		return cur, wrap(seg, err)
	}
	// A scalar or null: replaced by an array (for an index) or an object when the
	// schema allows one.
	switch {
	case isIndex(seg) && e.allows(s, "array"):
		return e.reach([]any{}, s, path, depth)
	case e.allows(s, "object"):
		return e.reach(map[string]any{}, s, path, depth)
	}
	return v, fmt.Errorf("is %s; it has no member %q", kindOf(v), seg)
}

// wrap puts the path segment before a nested error.
func wrap(seg string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", seg, err)
}

func isIndex(seg string) bool {
	n, err := strconv.Atoi(seg)
	return err == nil && n >= 0
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, int64:
		return "a number"
	}
	return "a value"
}

// resolve follows a local $ref and picks what a value of s is made from: the first
// branch of anyOf/oneOf when s declares no type of its own, and allOf merged.
func (e *Example) resolve(s any, depth int) any {
	m, ok := s.(map[string]any)
	if !ok || depth > MaxDepth {
		return s
	}
	if e.work++; e.work > MaxResolves {
		return true
	}
	if ref, ok := m["$ref"].(string); ok {
		return e.resolve(e.lookup(ref), depth+1)
	}
	if all, ok := m["allOf"].([]any); ok && len(all) > 0 {
		merged := map[string]any{}
		for k, v := range m {
			if k != "allOf" {
				merged[k] = v
			}
		}
		for _, part := range all {
			pm, ok := e.resolve(part, depth+1).(map[string]any)
			if !ok {
				continue
			}
			for k, v := range pm {
				if k == "properties" {
					props, _ := merged[k].(map[string]any)
					union := map[string]any{}
					for pk, pv := range props {
						union[pk] = pv
					}
					if pp, ok := v.(map[string]any); ok {
						for pk, pv := range pp {
							union[pk] = pv
						}
					}
					merged[k] = union
					continue
				}
				if _, set := merged[k]; !set {
					merged[k] = v
				}
			}
		}
		return merged
	}
	if !declares(m) {
		for _, k := range []string{"anyOf", "oneOf"} {
			if alts, ok := m[k].([]any); ok && len(alts) > 0 {
				return e.resolve(alts[0], depth+1)
			}
		}
	}
	return m
}

// anyValue is the example of a value a schema leaves open (any type): a string fits
// the most places a reference puts it, and a path into it makes it an object or an
// array (Reach); Fit shapes it to where a step's input puts it.
const anyValue = "example"

// open reports whether a (resolved) schema allows any value.
func open(s any) bool {
	switch s := s.(type) {
	case bool:
		return s
	case map[string]any:
		if declares(s) {
			return false
		}
		for _, k := range []string{"anyOf", "oneOf", "allOf", "not", "$ref", "required", "minProperties", "pattern", "format"} {
			if _, ok := s[k]; ok {
				return false
			}
		}
		return true
	}
	return false
}

// Fit replaces the value at path, when its schema leaves it open (any value) and no
// path (Reach) has shaped it yet, by an example of schema: what a step's input needs
// where a reference puts the value whole. It reports whether it did.
func (e *Example) Fit(path []string, schema json.RawMessage) bool {
	with, err := New(schema)
	if err != nil {
		return false
	}
	v, ok := e.fit(e.value, e.schema, path, with.value, 0)
	if ok {
		e.value = v
	}
	return ok
}

func (e *Example) fit(v, s any, path []string, with any, depth int) (any, bool) {
	if it, ok := s.(itemOf); ok {
		got, ok := it.e.fit(it.e.value, it.e.schema, path, with, depth)
		if ok {
			it.e.value = got
		}
		return got, ok
	}
	s = e.resolve(s, 0)
	if len(path) == 0 {
		if open(s) && v == anyValue { // not one a path has shaped already
			return with, true
		}
		return v, false
	}
	if depth >= MaxDepth {
		return v, false
	}
	switch cur := v.(type) {
	case map[string]any:
		child, ok := cur[path[0]]
		if !ok {
			return v, false
		}
		sub, _ := e.member(s, path[0], true)
		got, ok := e.fit(child, sub, path[1:], with, depth+1)
		cur[path[0]] = got
		return cur, ok
	case []any:
		idx, err := strconv.Atoi(path[0])
		if err != nil || idx < 0 || idx >= len(cur) {
			return v, false
		}
		got, ok := e.fit(cur[idx], e.item(s, idx), path[1:], with, depth+1)
		cur[idx] = got
		return cur, ok
	}
	return v, false
}

// SchemaAt is the schema of the value at path (object members by name, array items
// by index) in a value of schema, or false when the schema says nothing of it.
func SchemaAt(schema json.RawMessage, path []string) (json.RawMessage, bool) {
	s, err := decodeSchema(schema)
	if err != nil {
		return nil, false
	}
	e := &Example{root: s}
	for depth, seg := range path {
		if depth >= MaxDepth {
			return nil, false
		}
		s = e.resolve(s, 0)
		if isIndex(seg) && e.allows(s, "array") && !e.allows(s, "object") {
			s = e.item(s, mustAtoi(seg))
			continue
		}
		sub, ok := e.member(s, seg, false)
		if !ok {
			return nil, false
		}
		s = sub
	}
	out, err := json.Marshal(e.resolve(s, 0))
	if err != nil {
		return nil, false
	}
	return out, true
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// declares reports whether a schema says what its values are by itself.
func declares(m map[string]any) bool {
	for _, k := range []string{"type", "const", "enum", "properties", "items", "prefixItems", "additionalProperties"} {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// lookup finds a local $ref ("#", "#/$defs/x") in the root schema; any other
// reference is any value.
func (e *Example) lookup(ref string) any {
	if ref == "#" {
		return e.root
	}
	if !strings.HasPrefix(ref, "#/") {
		return true
	}
	cur := e.root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			n, err := strconv.Atoi(tok)
			if err != nil || n < 0 || n >= len(c) {
				return true
			}
			cur = c[n]
		default:
			return true
		}
	}
	if cur == nil {
		return true
	}
	return cur
}

// types lists the types a schema allows (nil: any).
func (e *Example) types(s any) []string {
	m, ok := s.(map[string]any)
	if !ok {
		return nil
	}
	switch t := m["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, v := range t {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	_, props := m["properties"]
	_, addl := m["additionalProperties"]
	_, req := m["required"]
	if props || addl || req {
		return []string{"object"}
	}
	_, items := m["items"]
	_, prefix := m["prefixItems"]
	if items || prefix {
		return []string{"array"}
	}
	return nil
}

// allows reports whether a value of schema s may be of type t.
func (e *Example) allows(s any, t string) bool {
	switch s := s.(type) {
	case exact:
		return false
	case bool:
		return s
	case map[string]any:
		if _, ok := s["const"]; ok {
			return false
		}
		if _, ok := s["enum"]; ok {
			return false
		}
	}
	ts := e.types(s)
	return ts == nil || slices.Contains(ts, t) || (t == "number" && slices.Contains(ts, "integer"))
}

// member returns the schema of member name of an object of schema s, and whether
// s allows it. existing says the member is in the example already.
func (e *Example) member(s any, name string, existing bool) (any, bool) {
	switch s := s.(type) {
	case exact:
		return exact{}, existing
	case bool:
		return s, s
	case map[string]any:
		if c, ok := s["const"]; ok {
			if m, ok := c.(map[string]any); ok && existing {
				return map[string]any{"const": m[name]}, true
			}
			return exact{}, false
		}
		if _, ok := s["enum"]; ok {
			return exact{}, existing
		}
		if props, ok := s["properties"].(map[string]any); ok {
			if p, ok := props[name]; ok {
				return p, true
			}
		}
		if pats, ok := s["patternProperties"].(map[string]any); ok {
			for pat, p := range pats {
				if re, err := regexp.Compile(pat); err == nil && re.MatchString(name) {
					return p, true
				}
			}
		}
		switch a := s["additionalProperties"].(type) {
		case bool:
			return a, a || existing
		case map[string]any:
			return a, true
		}
		return true, true
	}
	return true, true
}

// members lists the members an object schema declares, for an error message.
func (e *Example) members(s any) string {
	m, ok := s.(map[string]any)
	if !ok {
		return ""
	}
	props, _ := m["properties"].(map[string]any)
	if len(props) == 0 {
		return ""
	}
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	slices.Sort(names)
	return " (it has " + strings.Join(names, ", ") + ")"
}

// item returns the schema of item k of an array of schema s.
func (e *Example) item(s any, k int) any {
	m, ok := s.(map[string]any)
	if !ok {
		if _, isExact := s.(exact); isExact {
			return exact{}
		}
		return true
	}
	if pre, ok := m["prefixItems"].([]any); ok && k < len(pre) {
		return pre[k]
	}
	if it, ok := m["items"]; ok {
		return it
	}
	return true
}

// maxItems is how many items an array of schema s may hold, as far as a path may reach.
func (e *Example) maxItems(s any) int {
	limit := MaxIndex + 1
	m, ok := s.(map[string]any)
	if !ok {
		if _, isExact := s.(exact); isExact {
			return 0
		}
		return limit
	}
	if _, ok := m["const"]; ok {
		return 0
	}
	if pre, ok := m["prefixItems"].([]any); ok && m["items"] == false {
		limit = min(limit, len(pre))
	}
	if n, ok := intOf(m["maxItems"]); ok {
		limit = min(limit, int(max(n, 0)))
	}
	return limit
}

// make makes a value of schema s at depth.
func (e *Example) make(s any, depth int) any {
	e.nodes++
	if depth > MaxDepth || e.nodes > MaxNodes || e.bytes > MaxBytes {
		return nil
	}
	s = e.resolve(s, 0)
	m, ok := s.(map[string]any)
	if !ok {
		if it, ok := s.(itemOf); ok {
			return it.e.value
		}
		if s == false {
			return nil
		}
		e.bytes += len(anyValue)
		return anyValue // true: any value
	}
	if c, ok := m["const"]; ok {
		return e.literal(c)
	}
	if ex, ok := m["examples"].([]any); ok && len(ex) > 0 {
		return e.literal(ex[0])
	}
	if d, ok := m["default"]; ok {
		return e.literal(d)
	}
	if en, ok := m["enum"].([]any); ok && len(en) > 0 {
		return e.literal(en[0])
	}
	t := ""
	for _, ty := range e.types(m) {
		if ty != "null" {
			t = ty
			break
		}
		t = ty
	}
	switch t {
	case "":
		if open(m) {
			e.bytes += len(anyValue)
			return anyValue
		}
		e.bytes += 2
		return e.object(m, depth)
	case "object":
		e.bytes += 2
		return e.object(m, depth)
	case "array":
		e.bytes += 2
		return e.array(m, depth)
	case "string":
		s := str(m)
		e.bytes += len(s) + 2
		return s
	case "integer":
		e.bytes += 8
		return integer(m)
	case "number":
		e.bytes += 8
		return number(m)
	case "boolean":
		e.bytes += 5
		return false
	}
	e.bytes += 4
	return nil
}

// literal is a value the schema gives (const, examples, default, enum), charged at
// its size: a schema may name one large value many times.
func (e *Example) literal(v any) any {
	b, err := json.Marshal(v)
	if err != nil || e.bytes+len(b) > MaxBytes {
		e.bytes += 4
		return nil
	}
	e.bytes += len(b)
	return v
}

func (e *Example) object(m map[string]any, depth int) any {
	out := map[string]any{}
	props, _ := m["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		e.bytes += len(k) + 4
		out[k] = e.make(props[k], depth+1)
	}
	req, _ := m["required"].([]any)
	for _, r := range req {
		if k, ok := r.(string); ok {
			if _, done := out[k]; !done {
				sub, _ := e.member(m, k, false)
				out[k] = e.make(sub, depth+1)
			}
		}
	}
	return out
}

func (e *Example) array(m map[string]any, depth int) any {
	n := 1
	if lo, ok := intOf(m["minItems"]); ok && lo > 1 {
		n = int(min(lo, MaxItems))
	}
	if hi, ok := intOf(m["maxItems"]); ok && int64(n) > hi {
		n = int(max(hi, 0))
	}
	if pre, ok := m["prefixItems"].([]any); ok && m["items"] == false {
		n = min(n, len(pre))
	}
	out := make([]any, n)
	for k := range out {
		out[k] = e.make(e.item(m, k), depth+1)
	}
	return out
}

func intOf(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return int64(math.Max(math.Min(f, math.MaxInt32), math.MinInt32)), true
}

func floatOf(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// formats are examples of the string formats steps commonly carry.
var formats = map[string]string{
	"date-time": "2025-01-01T00:00:00Z", "date": "2025-01-01", "time": "00:00:00Z", "email": "user@example.com",
	"uri": "https://example.com/", "url": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000",
	"hostname": "example.com", "ipv4": "192.0.2.1", "ipv6": "2001:db8::1",
}

func str(m map[string]any) string {
	s := "example"
	if f, ok := m["format"].(string); ok && formats[f] != "" {
		s = formats[f]
	}
	if lo, ok := intOf(m["minLength"]); ok && int64(utf8.RuneCountInString(s)) < lo {
		s += strings.Repeat("x", int(min(lo, MaxStringLen))-utf8.RuneCountInString(s))
	}
	if hi, ok := intOf(m["maxLength"]); ok && int64(utf8.RuneCountInString(s)) > hi {
		s = string([]rune(s)[:max(hi, 0)])
	}
	return s
}

// bounds reads a numeric schema's bounds; exclusive ones move in by step.
func bounds(m map[string]any, step float64) (lo, hi float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	if v, ok := floatOf(m["minimum"]); ok {
		lo = v
	}
	if v, ok := floatOf(m["exclusiveMinimum"]); ok {
		lo = math.Max(lo, v+step)
	}
	if v, ok := floatOf(m["maximum"]); ok {
		hi = v
	}
	if v, ok := floatOf(m["exclusiveMaximum"]); ok {
		hi = math.Min(hi, v-step)
	}
	return lo, hi
}

func integer(m map[string]any) json.Number {
	lo, hi := bounds(m, 1)
	v := math.Min(math.Max(0, math.Ceil(lo)), math.Floor(hi))
	if math.IsInf(v, 0) || math.IsNaN(v) || math.Abs(v) > 1<<53 {
		v = 0
	}
	return json.Number(strconv.FormatInt(int64(v), 10))
}

func number(m map[string]any) json.Number {
	lo, hi := bounds(m, 0)
	v := math.Min(math.Max(0, lo), hi)
	if _, ok := m["exclusiveMinimum"]; ok && v == lo && hi > lo {
		v = lo + math.Min(1, (hi-lo)/2)
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		v = 0
	}
	return json.Number(strconv.FormatFloat(v, 'g', -1, 64))
}
