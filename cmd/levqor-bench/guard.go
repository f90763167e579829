package main

import (
	"context"
	"time"
)

// guardIntakeFloor is the guard's floor for levqor's intake throughput as a share of
// the bare server's, in %. Quiet runs measure 58–75 % (docs/benchmarks.md) and a
// machine loaded by other builds 34–39 %; a change that halves levqor's intake
// speed (about 30–37 % on a quiet machine) fails it.
const guardIntakeFloor = 35.0

// runGuard is the regression guard CI runs (make bench-guard): the intake
// comparison in short rounds, judged only on the levqor/bare throughput ratio
// against guardIntakeFloor. Both servers take turns on the same machine, so noise
// falls on both; the floor is generous so noise alone does not fail it. With
// -strict a miss makes the command fail.
func runGuard(ctx context.Context, o options) (outcome, error) {
	o.rounds, o.duration, o.warmup = max(o.rounds, 3), min(o.duration, 2*time.Second), min(o.warmup, 500*time.Millisecond)
	out, err := runIntake(ctx, o)
	if err != nil {
		return outcome{}, err
	}
	ratio := out.Checks[0]
	return outcome{Checks: []check{atLeast("guard: intake levqor/bare req/s", ratio.Value, "%", guardIntakeFloor)}, Details: out.Details}, nil
}
