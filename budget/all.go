package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/levqor/levqor"
)

// ModelReserver is a Budget that records which model a reservation is for.
type ModelReserver interface {
	ReserveModel(ctx context.Context, model string, usd float64) (Reservation, error)
}

// Reserve reserves usd on b, naming the model when b records models.
func Reserve(ctx context.Context, b Budget, model string, usd float64) (Reservation, error) {
	if m, ok := b.(ModelReserver); ok {
		return m.ReserveModel(ctx, model, usd)
	}
	return b.Reserve(ctx, usd)
}

// All reserves against several budgets at once — a step's job budget and its
// owner's — all or nothing, and settles each.
type All struct {
	budgets []Budget
	mu      sync.Mutex
	held    map[string][]Reservation
}

// NewAll returns a Budget that is every one of bs.
func NewAll(bs ...Budget) *All { return &All{budgets: bs, held: map[string][]Reservation{}} }

// Reserve implements Budget.
func (a *All) Reserve(ctx context.Context, usd float64) (Reservation, error) {
	return a.ReserveModel(ctx, "", usd)
}

// ReserveModel implements ModelReserver: it reserves on each budget in turn and, when
// one refuses, releases what the earlier ones reserved.
func (a *All) ReserveModel(ctx context.Context, model string, usd float64) (Reservation, error) {
	rs := make([]Reservation, 0, len(a.budgets))
	for _, b := range a.budgets {
		r, err := Reserve(ctx, b, model, usd)
		if err != nil {
			for j, got := range rs {
				_ = a.budgets[j].Settle(context.WithoutCancel(ctx), got, 0)
			}
			return Reservation{}, err
		}
		rs = append(rs, r)
	}
	id := levqor.NewID("rsv")
	a.mu.Lock()
	a.held[id] = rs
	a.mu.Unlock()
	return Reservation{ID: id, USD: usd}, nil
}

// Settle implements Budget: it settles actualUSD on every budget, in order, and stops
// at the first that refuses: a settlement one budget refuses (the job's, first) is not
// written to the others (the owner's ledger). Their reservations stay open until their
// expiry releases them, so the refused amount is never recorded as spent anywhere.
// An amount no budget may record (CheckUSD) is refused before any is touched.
func (a *All) Settle(ctx context.Context, r Reservation, actualUSD float64) error {
	a.mu.Lock()
	rs, ok := a.held[r.ID]
	delete(a.held, r.ID)
	a.mu.Unlock()
	if !ok {
		return ErrUnknownReservation
	}
	if err := CheckUSD(actualUSD); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	for i, got := range rs {
		if err := a.budgets[i].Settle(ctx, got, actualUSD); err != nil {
			if i+1 < len(rs) {
				return fmt.Errorf("settle: %w (%d later budget(s) left to their reservations' expiry)", err, len(rs)-i-1)
			}
			return err
		}
	}
	return nil
}

// Owner is one step's view of its owner's durable budget: reservations are rows
// in the owner's ledger that expire (are released) after ttl if never settled.
type Owner struct {
	store                OwnerStore
	limits               Limits
	load                 func(context.Context) Limits // when set, read once into limits at the first reservation
	ownerID, jobID, step string
	ttl                  time.Duration
	now                  func() time.Time
	settled              func(ctx context.Context, ownerID string, limits Limits, actual Nanos) // after each settlement (optional)
	spent                func(model string, actual Nanos)                                       // after each settlement (optional)

	mu     sync.Mutex
	models map[string]string // reservation id → the model it named, until settled (for spent)
}

// NewOwner returns the owner budget for one step of one job.
func NewOwner(store OwnerStore, limits Limits, ownerID, jobID, stepID string, ttl time.Duration) *Owner {
	return &Owner{store: store, limits: limits, ownerID: ownerID, jobID: jobID, step: stepID, ttl: ttl, now: time.Now}
}

// Reserve implements Budget.
func (o *Owner) Reserve(ctx context.Context, usd float64) (Reservation, error) {
	return o.ReserveModel(ctx, "", usd)
}

// ReserveModel implements ModelReserver.
func (o *Owner) ReserveModel(ctx context.Context, model string, usd float64) (Reservation, error) {
	if err := checkOwnerUSD(usd); err != nil {
		return Reservation{}, fmt.Errorf("reserve: %w", err)
	}
	now := o.now().UTC()
	r := OwnerReservation{ID: levqor.NewID("rsv"), OwnerID: o.ownerID, JobID: o.jobID, StepID: o.step, Model: model,
		Reserved: USDToNanos(usd), ExpiresAt: now.Add(o.ttl), CreatedAt: now}
	if err := o.store.ReserveOwnerBudget(ctx, r, o.currentLimits(ctx)); err != nil {
		return Reservation{}, err
	}
	if o.spent != nil {
		o.mu.Lock()
		if o.models == nil {
			o.models = map[string]string{}
		}
		o.models[r.ID] = model
		o.mu.Unlock()
	}
	return Reservation{ID: r.ID, USD: usd}, nil
}

// currentLimits are the owner's limits, read through load the first time when set.
func (o *Owner) currentLimits(ctx context.Context) Limits {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.load != nil {
		o.limits, o.load = o.load(ctx), nil
	}
	return o.limits
}

// Settle implements Budget. A negative or non-finite amount is refused and nothing is
// written: spending only ever grows. A finite amount past MaxNanos saturates at it.
func (o *Owner) Settle(ctx context.Context, r Reservation, actualUSD float64) error {
	if err := checkOwnerUSD(actualUSD); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	actual := USDToNanos(actualUSD)
	if err := o.store.SettleOwnerBudget(ctx, o.ownerID, r.ID, actual, o.now().UTC()); err != nil {
		return err
	}
	if o.settled != nil {
		o.settled(ctx, o.ownerID, o.currentLimits(ctx), actual)
	}
	if o.spent != nil {
		o.mu.Lock()
		model := o.models[r.ID]
		delete(o.models, r.ID)
		o.mu.Unlock()
		o.spent(model, actual)
	}
	return nil
}

// checkOwnerUSD refuses the amounts that would lower or poison an owner's ledger:
// negative ones and NaN or ±Inf. Large finite ones are fine: they saturate.
func checkOwnerUSD(usd float64) error {
	switch {
	case math.IsNaN(usd) || math.IsInf(usd, 0):
		return errors.New("amount is not a finite number")
	case usd < 0:
		return fmt.Errorf("amount %g is negative", usd)
	}
	return nil
}
