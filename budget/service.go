package budget

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/levqor/levqor"
)

// Service answers questions about owners' budgets: their limits (an override or
// the configured defaults), their usage, and whether new AI work can start.
type Service struct {
	store    OwnerStore
	defaults Limits
	now      func() time.Time
	log      *slog.Logger

	onThreshold func(ctx context.Context, ownerID string, p Period)             // nil: only the log line
	onSpend     func(model string, actual Nanos)                                // nil: none (metrics)
	planLimits  func(ctx context.Context, ownerID string) (Limits, bool, error) // nil: no plans

	mu     sync.Mutex
	warned map[string]bool     // "owner period" pairs already warned about
	room   map[string]headroom // per owner: what may still be settled before the totals are read again
}

// headroom is how much an owner may still settle, as this process last read its totals,
// before a period could reach the soft threshold.
type headroom struct {
	left Nanos
	read time.Time
}

// roomTTL bounds how long a headroom is trusted: other instances spend too.
const roomTTL = 10 * time.Second

// SoftThreshold is the share of a period's limit at which a warning is logged, once.
const SoftThreshold = 0.8

// NewService returns a Service over store with the configured default limits.
func NewService(store OwnerStore, defaults Limits) *Service {
	return &Service{store: store, defaults: defaults, now: time.Now, log: slog.Default(), warned: map[string]bool{}, room: map[string]headroom{}}
}

// OnThreshold sets a function called (once per owner and period, like the warning) when
// settled spending reaches SoftThreshold of a limit, e.g. to email the owner. It must
// not block: the settling step waits for it.
func (s *Service) OnThreshold(f func(ctx context.Context, ownerID string, p Period)) *Service {
	s.onThreshold = f
	return s
}

// OnSpend sets a function called after every settlement on an owner's budget with
// the model the reservation named ("" when none) and the amount; it must be quick
// (metrics of AI spending by model).
func (s *Service) OnSpend(f func(model string, actual Nanos)) *Service {
	s.onSpend = f
	return s
}

// WithClock sets the service's clock (and its owner budgets'), for tests.
func (s *Service) WithClock(now func() time.Time) *Service {
	s.now = now
	return s
}

// WithLogger sets where the soft-threshold warnings go.
func (s *Service) WithLogger(log *slog.Logger) *Service {
	s.log = log
	return s
}

// checkSoftThreshold logs, once per owner and period, that settled spending has
// reached SoftThreshold of the limit. It never fails the caller. So that a settlement
// does not pay a read, the totals are read again only when this process's settlements
// since the last read could have crossed the threshold, or after roomTTL (other
// instances' spending): a warning may come up to roomTTL late, never early.
func (s *Service) checkSoftThreshold(ctx context.Context, ownerID string, limits Limits, actual Nanos) {
	now := s.now()
	s.mu.Lock()
	if h, ok := s.room[ownerID]; ok && now.Sub(h.read) < roomTTL && h.left > actual {
		h.left -= actual
		s.room[ownerID] = h
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	day, month, err := s.periods(ctx, ownerID, limits, s.store.OwnerTotals)
	if err != nil {
		return
	}
	left := Nanos(math.MaxInt64)
	for _, p := range []Period{day, month} {
		if p.Limit <= 0 {
			continue
		}
		threshold := Nanos(SoftThreshold * float64(p.Limit))
		if p.Spent < threshold {
			left = min(left, threshold-p.Spent)
			continue
		}
		key := ownerID + " " + p.Name
		s.mu.Lock()
		first := !s.warned[key]
		s.warned[key] = true
		s.mu.Unlock()
		if first {
			s.log.WarnContext(ctx, "AI budget soft threshold reached", "owner_id", ownerID, "period", p.Name,
				"spent_usd", p.Spent.USD(), "limit_usd", p.Limit.USD(), "threshold", SoftThreshold)
			if s.onThreshold != nil {
				s.onThreshold(ctx, ownerID, p)
			}
		}
	}
	s.mu.Lock()
	if len(s.room) >= maxRooms {
		clear(s.room) // a cache: dropping it costs one read per owner
	}
	s.room[ownerID] = headroom{left: left, read: now}
	s.mu.Unlock()
}

// maxRooms bounds the headroom cache.
const maxRooms = 10000

// WithPlanLimits sets where owners' plan limits come from (billing.Service.OwnerLimits):
// an owner's plan, when f reports one, replaces the defaults, and a stored override
// still wins over it.
func (s *Service) WithPlanLimits(f func(ctx context.Context, ownerID string) (Limits, bool, error)) *Service {
	s.planLimits = f
	return s
}

// Limits returns the owner's limits: its override, else its plan's, else the defaults.
func (s *Service) Limits(ctx context.Context, ownerID string) (Limits, error) {
	l, ok, err := s.store.OwnerLimits(ctx, ownerID)
	if err != nil {
		return s.defaults, err
	}
	if ok {
		return l, nil
	}
	if s.planLimits != nil {
		l, ok, err := s.planLimits(ctx, ownerID)
		if err != nil {
			return s.defaults, err
		}
		if ok {
			return l, nil
		}
	}
	return s.defaults, nil
}

// Period is one period's view of an owner's budget.
type Period struct {
	Name                   string // 2026-11-25 or 2026-11
	Kind                   string // "daily" or "monthly"
	Spent, Reserved, Limit Nanos
	ByModel                map[string]Nanos
}

// Remaining is what may still be reserved in the period (never negative). The sum
// saturates, so spending at MaxNanos cannot wrap around into room.
func (p Period) Remaining() Nanos {
	used := p.Spent.Add(p.Reserved)
	if used >= p.Limit {
		return 0
	}
	return p.Limit - used
}

// Usage returns the owner's day and month, with spending per model.
func (s *Service) Usage(ctx context.Context, ownerID string) (day, month Period, err error) {
	l, err := s.Limits(ctx, ownerID)
	if err != nil {
		return Period{}, Period{}, err
	}
	return s.periods(ctx, ownerID, l, s.store.OwnerUsage)
}

// totals is Usage without spending per model: cheap enough for every intake.
func (s *Service) totals(ctx context.Context, ownerID string) (day, month Period, err error) {
	l, err := s.Limits(ctx, ownerID)
	if err != nil {
		return Period{}, Period{}, err
	}
	return s.periods(ctx, ownerID, l, s.store.OwnerTotals)
}

// periods reads the owner's day and month (with read) and pairs them with limits l.
func (s *Service) periods(ctx context.Context, ownerID string, l Limits, read func(context.Context, string, time.Time) (Usage, Usage, error)) (day, month Period, err error) {
	now := s.now().UTC()
	d, m, err := read(ctx, ownerID, now)
	if err != nil {
		return Period{}, Period{}, err
	}
	return Period{Name: now.Format("2006-01-02"), Kind: "daily", Spent: d.Spent, Reserved: d.Reserved, Limit: l.Daily, ByModel: d.ByModel},
		Period{Name: now.Format("2006-01"), Kind: "monthly", Spent: m.Spent, Reserved: m.Reserved, Limit: l.Monthly, ByModel: m.ByModel}, nil
}

// CheckFit refuses new AI work for an owner whose day or month cannot fit need (the
// work's least worst-case cost) on top of what is spent and reserved — or, with a need
// of 0, has nothing left: a levqor.EBudgetExceeded error naming what remains.
func (s *Service) CheckFit(ctx context.Context, ownerID string, need Nanos) error {
	day, month, err := s.totals(ctx, ownerID)
	if err != nil {
		return err
	}
	for _, p := range []Period{day, month} {
		rem := p.Remaining()
		switch {
		case rem <= 0:
			return levqor.Errorf(levqor.EBudgetExceeded, "The AI budget for %s is used up: $%s of $%s spent or reserved, $0 remaining.",
				p.Name, usd((p.Spent + p.Reserved).USD()), usd(p.Limit.USD()))
		case need > rem:
			return levqor.Errorf(levqor.EBudgetExceeded, "This job's AI steps need at least $%s (their worst case); the AI budget for %s has $%s remaining of $%s.",
				usd(need.USD()), p.Name, usd(rem.USD()), usd(p.Limit.USD()))
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
	o := NewOwner(s.store, limits, ownerID, jobID, stepID, ttl)
	o.now = s.now
	o.settled = s.checkSoftThreshold
	o.spent = s.onSpend
	return o
}

// OwnerDeferred is Owner with limits read by load at the step's first reservation,
// so a step that spends nothing costs no read of them. load is called at most once
// per Owner; it should fail closed (zero limits) when it cannot read them.
func (s *Service) OwnerDeferred(load func(context.Context) Limits, ownerID, jobID, stepID string, ttl time.Duration) *Owner {
	o := s.Owner(Limits{}, ownerID, jobID, stepID, ttl)
	o.load = load
	return o
}

// Expire releases reservations whose step can no longer be running.
func (s *Service) Expire(ctx context.Context) (int, error) {
	return s.store.ExpireOwnerReservations(ctx, s.now().UTC())
}
