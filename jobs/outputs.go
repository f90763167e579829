package jobs

import (
	"encoding/json"
	"fmt"

	"github.com/levqor/levqor/connectors"
)

// MaxJobOutputBytes bounds the stored size of a job's step outputs and result
// together; the step whose output would cross it fails CodeOutputTooLarge. A step's
// output alone may be 1 MiB (connectors.MaxOutputBytes), so without this bound 50 steps
// grow a small request into a record of 50 MiB and more. 8 MiB leaves room for several
// full-size outputs while keeping a job's record, its GET and its webhook body small.
const MaxJobOutputBytes = 8 << 20

// CodeOutputTooLarge is the step error of a step whose output would take its job's
// outputs past MaxJobOutputBytes. Running the step again would not shrink it.
const CodeOutputTooLarge = "output_too_large"

// checkJobOutputs returns a non-retryable step error when out, the output of steps[i],
// would take the job's stored outputs past MaxJobOutputBytes. The last step's output is
// stored twice: as its output and as the job's result.
func checkJobOutputs(steps []StepState, i int, out json.RawMessage) error {
	return checkOutputSize(steps, i, len(steps)-1, len(out))
}

// checkOutputs is checkJobOutputs for a graph job, whose result is the output of
// steps[result].
func checkOutputs(steps []StepState, i, result int, out json.RawMessage) error {
	return checkOutputSize(steps, i, result, len(out))
}

// checkOutputSize checks an output of n bytes for steps[i], the result being
// steps[result]'s output (stored twice).
func checkOutputSize(steps []StepState, i, result, n int) error {
	total := n
	if i == result {
		total += n
	}
	for k, st := range steps {
		if k != i {
			total += len(st.Output)
		}
	}
	if total <= MaxJobOutputBytes {
		return nil
	}
	return &connectors.StepError{Code: CodeOutputTooLarge, Message: fmt.Sprintf(
		"its output of %d bytes would take the job's stored outputs to %d bytes; a job may store at most %d bytes of outputs (with its result)",
		n, total, MaxJobOutputBytes)}
}
