package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/levqor/levqor/stepinput"
)

// envs are the CEL environments expressions compile in: without and with a
// for_each step's item and index. Built once; cel.Env is immutable and safe for
// concurrent use.
var envs = sync.OnceValues(func() ([2]*cel.Env, error) {
	base := []cel.EnvOption{
		cel.Variable("payload", cel.DynType),
		cel.Variable("steps", cel.MapType(cel.StringType, cel.DynType)),
		cel.CrossTypeNumericComparisons(true),
	}
	plain, err := cel.NewEnv(base...)
	if err != nil {
		return [2]*cel.Env{}, err
	}
	each, err := plain.Extend(cel.Variable("item", cel.DynType), cel.Variable("index", cel.IntType))
	return [2]*cel.Env{plain, each}, err
})

// compile compiles and type-checks expression src (the step's field) of step i, whose result must be
// of type want (or dyn, checked when evaluated), and which may read only payload,
// its ancestors under steps (by literal id) and, when item is set, item and index.
func (g *Graph) compile(i int, field, src string, item bool, want *cel.Type, index map[string]int) (cel.Program, error) {
	if len(src) > MaxExpressionLen {
		return nil, fmt.Errorf("the expression is longer than %d characters", MaxExpressionLen)
	}
	es, err := envs()
	if err != nil {
		return nil, fmt.Errorf("expression environment: %w", err)
	}
	env := es[0]
	if item {
		env = es[1]
	}
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, errors.New(iss.Err().Error())
	}
	if out := checked.OutputType(); !out.IsAssignableType(want) && !out.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("the expression gives %s, not %s", out, want)
	}
	// Every read of steps names an ancestor: steps.<id>… or steps["<id>"]….
	root := ast.NavigateAST(checked.NativeRep())
	for _, e := range ast.MatchDescendants(root, ast.KindMatcher(ast.IdentKind)) {
		if e.AsIdent() == "item" {
			g.reads[i] = append(g.reads[i], Read{Item: true, Path: readPath(e), In: field})
			continue
		}
		if e.AsIdent() != "steps" {
			continue
		}
		id, ok := stepRead(e)
		if !ok {
			return nil, errors.New(`steps is read as steps.<id> or steps["<id>"], with a literal id`)
		}
		if err := g.checkAncestor(i, id, index); err != nil {
			return nil, fmt.Errorf("steps.%s: %w", id, err)
		}
		if path := readPath(e); len(path) >= 2 && path[1] == "output" {
			g.reads[i] = append(g.reads[i], Read{Step: path[0], Path: path[2:], In: field})
		}
	}
	prg, err := env.Program(checked, cel.CostLimit(MaxExpressionCost))
	if err != nil {
		return nil, fmt.Errorf("the expression cannot run: %w", err)
	}
	return prg, nil
}

// Read is a path an expression reads in an ancestor's output, with literal keys
// (steps.fetch.output.items[0]["id"] reads step fetch, path items, 0, id).
type Read struct {
	Step string
	Path []string
	In   string // the field that reads it: "if" or "for_each"
	// Item marks a read of a for_each step's item (Step is ""): Path is in the item.
	Item bool
	each bool // the for_each is this reference
}

// Reads lists the paths step i's `if` and `for_each` read in its ancestors'
// outputs and in its item (the longest literal path of each read; has() tests are
// left out). A dry run makes its example outputs hold them.
func (g *Graph) Reads(i int) []Read { return g.reads[i] }

// EachFrom reports the step output and path step i's for_each takes its items from,
// when it is one reference to a step's output ({{steps.list.output.items}}).
func (g *Graph) EachFrom(i int) (Read, bool) {
	for _, r := range g.reads[i] {
		if r.each {
			return r, true
		}
	}
	return Read{}, false
}

// readPath is the chain of literal member and index selections above an
// occurrence of the steps variable: [<id>, "output", …]. It stops at a key that is
// not a literal and before a has() test.
func readPath(e ast.NavigableExpr) []string {
	var path []string
	cur := e
	for {
		p, ok := cur.Parent()
		if !ok {
			return path
		}
		switch p.Kind() {
		case ast.SelectKind:
			sel := p.AsSelect()
			if sel.IsTestOnly() {
				return path
			}
			path = append(path, sel.FieldName())
		case ast.CallKind:
			c := p.AsCall()
			if c.FunctionName() != operators.Index || len(c.Args()) != 2 || c.Args()[0].ID() != cur.ID() || c.Args()[1].Kind() != ast.LiteralKind {
				return path
			}
			switch lit := c.Args()[1].AsLiteral().(type) {
			case types.String:
				path = append(path, string(lit))
			case types.Int:
				path = append(path, strconv.FormatInt(int64(lit), 10))
			case types.Uint:
				path = append(path, strconv.FormatUint(uint64(lit), 10))
			default:
				return path
			}
		default:
			return path
		}
		cur = p
	}
}

// stepRead returns the step id an occurrence of the steps variable selects.
func stepRead(e ast.NavigableExpr) (string, bool) {
	p, ok := e.Parent()
	if !ok {
		return "", false
	}
	switch p.Kind() {
	case ast.SelectKind:
		return p.AsSelect().FieldName(), true
	case ast.CallKind:
		c := p.AsCall()
		if c.FunctionName() != operators.Index || len(c.Args()) != 2 || c.Args()[0].ID() != e.ID() {
			return "", false
		}
		if lit := c.Args()[1]; lit.Kind() == ast.LiteralKind {
			if s, ok := lit.AsLiteral().(types.String); ok {
				return string(s), true
			}
		}
	}
	return "", false
}

// Result is what an expression sees of an ancestor step.
type Result struct {
	Status string
	Output json.RawMessage // nil unless it succeeded
}

// Env is what an expression of a job's step is evaluated over.
type Env struct {
	Payload json.RawMessage
	Steps   map[string]Result // the ancestors that have ended
	Item    json.RawMessage   // a for_each iteration's item (nil outside one)
	Index   int

	vars map[string]any // payload and steps decoded by Prepare
}

// Prepare decodes the payload and the steps' outputs once, for an Env used in many
// evaluations (the items of a for_each), which would otherwise decode them each time.
func (e Env) Prepare() (Env, error) {
	item := e.Item
	e.Item = nil
	vars, err := e.activation()
	e.Item, e.vars = item, vars
	return e, err
}

// activation builds the variables of an evaluation.
func (e Env) activation() (map[string]any, error) {
	vars, err := e.base()
	if err != nil {
		return nil, err
	}
	if e.Item != nil {
		item, err := decodeJSON(e.Item)
		if err != nil {
			return nil, fmt.Errorf("item: %w", err)
		}
		vars["item"], vars["index"] = item, int64(e.Index)
	}
	return vars, nil
}

// base is payload and steps: decoded once by Prepare (e.vars), or now.
func (e Env) base() (map[string]any, error) {
	if e.vars != nil {
		return map[string]any{"payload": e.vars["payload"], "steps": e.vars["steps"]}, nil
	}
	payload, err := decodeJSON(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	steps := make(map[string]any, len(e.Steps))
	for id, r := range e.Steps {
		out, err := decodeJSON(r.Output)
		if err != nil {
			return nil, fmt.Errorf("output of step %q: %w", id, err)
		}
		steps[id] = map[string]any{"status": r.Status, "output": out}
	}
	return map[string]any{"payload": payload, "steps": steps}, nil
}

func decodeJSON(b json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Cond evaluates step i's `if` over env; a step without one runs (true).
func (g *Graph) Cond(i int, env Env) (bool, error) {
	if g.cond[i] == nil {
		return true, nil
	}
	vars, err := env.activation()
	if err != nil {
		return false, err
	}
	v, _, err := g.cond[i].Eval(vars)
	if err != nil {
		return false, fmt.Errorf("if: %w", err)
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("if gave %s, not a bool", v.Type().TypeName())
	}
	return bool(b), nil
}

// ErrTooManyItems is returned by Items for a for_each of more than MaxForEachItems items.
var ErrTooManyItems = fmt.Errorf("for_each gave more than %d items", MaxForEachItems)

// Items evaluates step i's for_each over env: the items, each as JSON. It returns
// ErrTooManyItems past MaxForEachItems.
func (g *Graph) Items(i int, env Env) ([]json.RawMessage, error) {
	var list json.RawMessage
	switch {
	case g.eachRef[i] != "":
		outputs := make(map[string]json.RawMessage, len(env.Steps))
		for id, r := range env.Steps {
			if r.Output != nil {
				outputs[id] = r.Output
			}
		}
		got, err := stepinput.Resolve(json.RawMessage(mustJSON(g.eachRef[i])), env.Payload, outputs)
		if err != nil {
			return nil, fmt.Errorf("for_each: %w", err)
		}
		list = got
	case g.each[i] != nil:
		vars, err := env.activation()
		if err != nil {
			return nil, err
		}
		v, _, err := g.each[i].Eval(vars)
		if err != nil {
			return nil, fmt.Errorf("for_each: %w", err)
		}
		pv, err := v.ConvertToNative(reflect.TypeOf(&structpb.Value{}))
		if err != nil {
			return nil, fmt.Errorf("for_each gave %s, not a JSON array", v.Type().TypeName())
		}
		if list, err = protojson.Marshal(pv.(*structpb.Value)); err != nil {
			return nil, fmt.Errorf("for_each: %w", err)
		}
	default:
		return nil, errors.New("step has no for_each")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return nil, errors.New("for_each did not give an array")
	}
	if len(items) > MaxForEachItems {
		return nil, ErrTooManyItems
	}
	return items, nil
}
