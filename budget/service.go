package budget

import (
	"context"
	"time"

	"github.com/levqor/levqor"
)

// Service answers questions about owners' budgets: their limits (an override or
// the configured defaults), their usage, and whether new AI work can start.
type Service struct {
	store    OwnerStore
	defaults Limits
	now      func() time.Time
}

// NewService returns a Service over store with the configured default limits.
func NewService(store OwnerStore, defaults Limits) *Service {
	return &Service{store: store, defaults: defaults, now: time.Now}
}

// Limits returns the owner's limits: its override, or the defaults.
func (s *Service) Limits(ctx context.Context, ownerID string) (Limits, error) {
	l, ok, err := s.store.OwnerLimits(ctx, ownerID)
	if err != nil || !ok {
		return s.defaults, err
	}
	return l, nil
}

// Period is one period's view of an owner's budget.
type Period struct {
	Name                   string // 2026-11-25 or 2026-11
	Spent, Reserved, Limit Nanos
	ByModel                map[string]Nanos
}

// Remaining is what may still be reserved in the period (never negative).
func (p Period) Remaining() Nanos { return max(0, p.Limit-p.Spent-p.Reserved) }

// Usage returns the owner's day and month.
func (s *Service) Usage(ctx context.Context, ownerID string) (day, month Period, err error) {
	now := s.now().UTC()
	l, err := s.Limits(ctx, ownerID)
	if err != nil {
		return Period{}, Period{}, err
	}
	d, m, err := s.store.OwnerUsage(ctx, ownerID, now)
	if err != nil {
		return Period{}, Period{}, err
	}
	return Period{Name: now.Format("2006-01-02"), Spent: d.Spent, Reserved: d.Reserved, Limit: l.Daily, ByModel: d.ByModel},
		Period{Name: now.Format("2006-01"), Spent: m.Spent, Reserved: m.Reserved, Limit: l.Monthly, ByModel: m.ByModel}, nil
}

// CheckRoom refuses new AI work for an owner whose day or month has no budget left:
// a levqor.EBudgetExceeded error naming what remains.
func (s *Service) CheckRoom(ctx context.Context, ownerID string) error {
	day, month, err := s.Usage(ctx, ownerID)
	if err != nil {
		return err
	}
	for _, p := range []Period{day, month} {
		if p.Remaining() <= 0 {
			return levqor.Errorf(levqor.EBudgetExceeded, "The AI budget for %s is used up: $%s of $%s spent or reserved, $0 remaining.",
				p.Name, usd((p.Spent + p.Reserved).USD()), usd(p.Limit.USD()))
		}
	}
	return nil
}

// SetLimits overrides (or with nil, resets to the defaults) an owner's limits.
func (s *Service) SetLimits(ctx context.Context, ownerID string, l *Limits) error {
	return s.store.SetOwnerLimits(ctx, ownerID, l, s.now().UTC())
}

// Owner returns the owner budget of one step: reservations in the owner's ledger
// under limits, released after ttl if never settled.
func (s *Service) Owner(limits Limits, ownerID, jobID, stepID string, ttl time.Duration) *Owner {
	return NewOwner(s.store, limits, ownerID, jobID, stepID, ttl)
}

// Expire releases reservations whose step can no longer be running.
func (s *Service) Expire(ctx context.Context) (int, error) {
	return s.store.ExpireOwnerReservations(ctx, s.now().UTC())
}
