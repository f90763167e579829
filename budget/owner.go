package budget

import (
	"context"
	"math"
	"time"
)

// Nanos is an amount of US dollars in billionths, so sums over many small AI calls
// are exact.
type Nanos int64

// MaxNanos is the largest amount Nanos holds, about 9.2 billion dollars: conversions
// and sums saturate at it instead of wrapping around to a negative amount.
const MaxNanos = Nanos(math.MaxInt64)

// USDToNanos converts dollars to Nanos, rounding up (a reservation never undercounts).
// It saturates: amounts beyond the range of Nanos (±Inf included) become MaxNanos or
// math.MinInt64, and NaN, an amount nobody can know, becomes MaxNanos, the most it
// could be. Callers that must refuse such amounts check them first (CheckUSD).
func USDToNanos(usd float64) Nanos {
	v := usd * 1e9
	switch {
	case math.IsNaN(v) || v >= 0x1p63: // float64(MaxInt64) rounds up to 2⁶³, which does not fit
		return MaxNanos
	case v <= -0x1p63:
		return math.MinInt64
	}
	n := Nanos(v)
	if float64(n) < v {
		n++ // v < 2⁶³ - 1024 here, so this cannot overflow
	}
	return n
}

// Add returns n + m, saturating at MaxNanos and math.MinInt64 instead of wrapping.
func (n Nanos) Add(m Nanos) Nanos {
	s := n + m
	switch {
	case m > 0 && s < n:
		return MaxNanos
	case m < 0 && s > n:
		return math.MinInt64
	}
	return s
}

// USD converts Nanos to dollars.
func (n Nanos) USD() float64 { return float64(n) / 1e9 }

// Limits are an owner's spending limits per UTC day and calendar month (0: none allowed).
type Limits struct {
	Daily, Monthly Nanos
}

// OwnerReservation is a durable reservation of an owner's budget for one AI call.
type OwnerReservation struct {
	ID        string
	OwnerID   string
	JobID     string
	StepID    string
	Model     string
	Reserved  Nanos
	ExpiresAt time.Time // an open reservation past this is released (its worker died)
	CreatedAt time.Time
}

// Usage is an owner's spending in one period.
type Usage struct {
	Spent    Nanos            // settled
	Reserved Nanos            // open, not yet released by ExpireOwnerReservations
	ByModel  map[string]Nanos // settled, per model
}

// OwnerStore keeps owners' budgets durably, so that concurrent jobs, several workers
// and several server instances can never overshoot a limit. Implementations live in
// store/sqlite and store/postgres.
type OwnerStore interface {
	// ReserveOwnerBudget records r if, for r.OwnerID, the settled spending plus open
	// reservations plus r.Reserved stays within limits both in the UTC day and in the
	// calendar month of r.CreatedAt; otherwise it records nothing and returns an
	// *ExceededError (LimitUSD, SpentUSD, ReservedUSD, RequestedUSD of the period that
	// does not fit). Check and insert are atomic per owner.
	//
	// An open reservation past its ExpiresAt keeps counting (here and in OwnerUsage)
	// until ExpireOwnerReservations releases it; the worker sweeps every second. The
	// stores keep running totals per owner and period rather than summing the ledger,
	// so a reservation costs the same however long the ledger grows.
	ReserveOwnerBudget(ctx context.Context, r OwnerReservation, limits Limits) error
	// SettleOwnerBudget closes the owner's reservation id at actual (which may exceed
	// what was reserved) at time now; settling twice, an unknown id or another owner's is
	// ErrUnknownReservation.
	SettleOwnerBudget(ctx context.Context, ownerID, id string, actual Nanos, now time.Time) error
	// ExpireOwnerReservations releases open reservations whose ExpiresAt is before
	// now and returns how many.
	ExpireOwnerReservations(ctx context.Context, now time.Time) (int, error)
	// OwnerUsage returns the owner's usage in the UTC day and the calendar month of at.
	OwnerUsage(ctx context.Context, ownerID string, at time.Time) (day, month Usage, err error)
	// OwnerTotals is OwnerUsage without ByModel: it reads the running totals only, so
	// its cost does not grow with the ledger.
	OwnerTotals(ctx context.Context, ownerID string, at time.Time) (day, month Usage, err error)
	// OwnerLimits returns the owner's override limits, or ok=false when none is set.
	OwnerLimits(ctx context.Context, ownerID string) (l Limits, ok bool, err error)
	// SetOwnerLimits sets (or with nil, removes) the owner's override limits.
	SetOwnerLimits(ctx context.Context, ownerID string, l *Limits, now time.Time) error
}
