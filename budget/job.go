package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
)

// MaxUSD is the largest amount a JobBudget accepts as a limit or a reservation; it keeps
// the fixed-point arithmetic far from overflow.
const MaxUSD = 1e9

// nanoPerUSD is JobBudget's unit: amounts are kept as whole nano-dollars so that sums are
// exact and a limit that fits ten reservations admits exactly ten, which float64 sums
// (0.1+0.2 > 0.3) would not guarantee. A nano-dollar is well below the price of one token.
const nanoPerUSD = 1e9

// JobBudget is an in-memory budget for one job run (guardrails.max_cost_usd). It is safe
// for concurrent use: a reservation is admitted only if spent + reserved + request ≤ limit.
type JobBudget struct {
	limit Nanos

	mu       sync.Mutex
	spent    Nanos
	reserved Nanos
	open     map[uint64]Nanos // reservation number → nano-dollars held
	next     uint64
}

var _ Budget = (*JobBudget)(nil)

// NewJobBudget returns a budget of limitUSD (0 ≤ limitUSD ≤ MaxUSD).
func NewJobBudget(limitUSD float64) (*JobBudget, error) {
	n, err := toNano(limitUSD)
	if err != nil {
		return nil, fmt.Errorf("budget limit: %w", err)
	}
	return &JobBudget{limit: n, open: map[uint64]Nanos{}}, nil
}

// Reserve implements Budget. It fails with ctx's error if ctx is done, with an
// *ExceededError if the request does not fit, and on a negative or non-finite amount.
func (b *JobBudget) Reserve(ctx context.Context, usd float64) (Reservation, error) {
	if err := ctx.Err(); err != nil {
		return Reservation{}, err
	}
	n, err := toNano(usd)
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Sums saturate: spending recorded past the limit (settlements may exceed their
	// reservations) must never wrap around into room for more.
	if b.spent.Add(b.reserved).Add(n) > b.limit {
		return Reservation{}, &ExceededError{
			LimitUSD:     toUSD(b.limit),
			SpentUSD:     toUSD(b.spent),
			ReservedUSD:  toUSD(b.reserved),
			RequestedUSD: usd,
		}
	}
	b.next++
	b.open[b.next] = n
	b.reserved = b.reserved.Add(n)
	return Reservation{ID: strconv.FormatUint(b.next, 10), USD: toUSD(n)}, nil
}

// Settle implements Budget. It ignores ctx, so a step that timed out can still settle,
// and returns ErrUnknownReservation for a reservation it does not hold.
func (b *JobBudget) Settle(_ context.Context, r Reservation, actualUSD float64) error {
	n, err := toNano(actualUSD)
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	id, err := strconv.ParseUint(r.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("settle %q: %w", r.ID, ErrUnknownReservation)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	held, ok := b.open[id]
	if !ok {
		return fmt.Errorf("settle %q: %w", r.ID, ErrUnknownReservation)
	}
	delete(b.open, id)
	b.reserved -= held // held was added to reserved, so this cannot go below zero
	b.spent = b.spent.Add(n)
	return nil
}

// LimitUSD returns the budget's limit.
func (b *JobBudget) LimitUSD() float64 { return toUSD(b.limit) }

// SpentUSD returns what settled reservations cost.
func (b *JobBudget) SpentUSD() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return toUSD(b.spent)
}

// ReservedUSD returns what reservations not yet settled hold.
func (b *JobBudget) ReservedUSD() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return toUSD(b.reserved)
}

// CheckUSD reports whether usd is an amount a budget accepts: a finite number from 0
// to MaxUSD. Budgets refuse other amounts, to reserve or to settle, and record nothing.
func CheckUSD(usd float64) error {
	switch {
	case math.IsNaN(usd) || math.IsInf(usd, 0):
		return errors.New("amount is not a finite number")
	case usd < 0:
		return fmt.Errorf("amount %g is negative", usd)
	case usd > MaxUSD:
		return fmt.Errorf("amount %g is over %g", usd, float64(MaxUSD))
	}
	return nil
}

func toNano(usd float64) (Nanos, error) {
	if err := CheckUSD(usd); err != nil {
		return 0, err
	}
	return Nanos(math.Round(usd * nanoPerUSD)), nil // ≤ 10¹⁸: fits
}

func toUSD(nano Nanos) float64 { return float64(nano) / nanoPerUSD }
