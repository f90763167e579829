package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/store/storetest"
)

// TestOwnerLimitsCoalesced: many concurrent OwnerLimits calls for several owners,
// which share reads, each get their own owner's override (or none).
func TestOwnerLimitsCoalesced(t *testing.T) {
	s := storetest.OpenPostgres(t)
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	want := map[string]budget.Limits{}
	for i := range 5 {
		owner := fmt.Sprintf("usr_limits_%d", i)
		want[owner] = budget.Limits{Daily: budget.Nanos(i + 1), Monthly: budget.Nanos(100 * (i + 1))}
		l := want[owner]
		if err := s.SetOwnerLimits(ctx, owner, &l, at); err != nil {
			t.Fatalf("SetOwnerLimits: %v", err)
		}
	}
	const calls = 400
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		owner := fmt.Sprintf("usr_limits_%d", i%7) // 5 and 6 have no override
		wg.Go(func() {
			got, ok, err := s.OwnerLimits(ctx, owner)
			w, wantOK := want[owner]
			if err != nil || ok != wantOK || got != w {
				errs <- fmt.Errorf("OwnerLimits(%s) = %+v, %v, %v; want %+v, %v, nil", owner, got, ok, err, w, wantOK)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestOwnerLimitsReadsAfterWrite: while other calls keep reads running, a read
// that starts after an override was written sees it (a call never gets the answer
// of a read that was already under way).
func TestOwnerLimitsReadsAfterWrite(t *testing.T) {
	s := storetest.OpenPostgres(t)
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	const owner = "usr_limits_rw"
	busy, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for busy.Err() == nil {
				_, _, _ = s.OwnerLimits(busy, owner)
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	for i := range 100 {
		l := budget.Limits{Daily: budget.Nanos(i + 1), Monthly: budget.Nanos(i + 2)}
		if err := s.SetOwnerLimits(ctx, owner, &l, at); err != nil {
			t.Fatalf("SetOwnerLimits: %v", err)
		}
		got, ok, err := s.OwnerLimits(ctx, owner)
		if err != nil || !ok || got != l {
			t.Fatalf("write %d: OwnerLimits = %+v, %v, %v; want %+v, true, nil", i, got, ok, err, l)
		}
	}
}
