// Package budget is the seam between steps that spend money (AI calls) and the cost limits
// they run under: a step reserves its worst-case cost before it spends and settles to the
// actual cost after, and JobBudget enforces one job's guardrails.max_cost_usd in memory.
package budget

import (
	"context"
	"errors"
	"fmt"
)

// Reservation is money set aside for one call until it is settled.
type Reservation struct {
	ID  string
	USD float64
}

// Budget is a cost limit that calls reserve against before they spend.
// Implementations must be safe for concurrent use.
type Budget interface {
	// Reserve sets usd aside. It returns an error matching ErrExceeded (an *ExceededError)
	// when the reservation would take spending past the limit; nothing is reserved then.
	Reserve(ctx context.Context, usd float64) (Reservation, error)
	// Settle releases r and records actualUSD as spent. actualUSD may be more than r.USD
	// (money already spent is recorded, never refused) or less (the difference is freed).
	// Callers settle even after their step's context is done, so implementations should
	// not fail only because ctx is; pass context.WithoutCancel if in doubt.
	Settle(ctx context.Context, r Reservation, actualUSD float64) error
}

// ErrExceeded matches (with errors.Is) every *ExceededError.
var ErrExceeded = errors.New("budget exceeded")

// ErrUnknownReservation is returned by Settle for a reservation the budget does not hold:
// never made, or settled already.
var ErrUnknownReservation = errors.New("unknown or already settled reservation")

// ExceededError says why a reservation was refused. Its message is safe to show to the job's owner.
type ExceededError struct {
	LimitUSD     float64 // the budget's limit
	SpentUSD     float64 // settled so far
	ReservedUSD  float64 // held by reservations not yet settled
	RequestedUSD float64 // the refused reservation
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("budget exceeded: this call may cost up to $%s, but $%s of the $%s limit is already spent and $%s is reserved by calls in flight",
		usd(e.RequestedUSD), usd(e.SpentUSD), usd(e.LimitUSD), usd(e.ReservedUSD))
}

// Is makes errors.Is(err, ErrExceeded) true for every *ExceededError.
func (e *ExceededError) Is(target error) bool { return target == ErrExceeded }

// usd prints an amount with enough digits for sub-cent AI calls and no trailing noise.
func usd(v float64) string { return fmt.Sprintf("%.6f", v) }

type ctxKey struct{}

// WithBudget returns a context that carries b for the steps run under it.
func WithBudget(ctx context.Context, b Budget) context.Context {
	return context.WithValue(ctx, ctxKey{}, b)
}

// From returns the budget ctx carries, if any.
func From(ctx context.Context) (Budget, bool) {
	b, ok := ctx.Value(ctxKey{}).(Budget)
	return b, ok && b != nil
}
