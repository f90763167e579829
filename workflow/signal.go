package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// signalEnv is the CEL environment of a core.wait_for_signal step's `if`: it reads
// only `signal`, the data a delivery brings.
var signalEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable("signal", cel.DynType), cel.CrossTypeNumericComparisons(true))
})

// CompileSignalCond compiles and type-checks a core.wait_for_signal step's `if`
// (a bool over `signal`), under the same length and cost limits as a step's `if`.
func CompileSignalCond(src string) (cel.Program, error) {
	if len(src) > MaxExpressionLen {
		return nil, fmt.Errorf("the expression is longer than %d characters", MaxExpressionLen)
	}
	env, err := signalEnv()
	if err != nil {
		return nil, fmt.Errorf("expression environment: %w", err)
	}
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, errors.New(iss.Err().Error())
	}
	if out := checked.OutputType(); !out.IsAssignableType(cel.BoolType) && !out.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("the expression gives %s, not bool", out)
	}
	prg, err := env.Program(checked, cel.CostLimit(MaxExpressionCost))
	if err != nil {
		return nil, fmt.Errorf("the expression cannot run: %w", err)
	}
	return prg, nil
}

// SignalCond evaluates a core.wait_for_signal step's `if` over a signal's data.
func SignalCond(src string, data json.RawMessage) (bool, error) {
	prg, err := CompileSignalCond(src)
	if err != nil {
		return false, err
	}
	v, err := decodeJSON(data)
	if err != nil {
		return false, err
	}
	out, _, err := prg.Eval(map[string]any{"signal": v})
	if err != nil {
		return false, fmt.Errorf("if: %w", err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("if gave %s, not a bool", out.Type().TypeName())
	}
	return bool(b), nil
}
