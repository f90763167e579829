package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/newsletter"
	"github.com/levqor/levqor/store"
)

// RunNewsletter checks the newsletter.Store contract: one pending row per hash,
// confirmation emails spaced out and claimed once, confirmation idempotent.
func RunNewsletter(t *testing.T, open func(t testing.TB) store.Store) {
	s := open(t)
	ctx, at := t.Context(), time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	const hash, other = "hash-of-ada", "hash-of-grace"

	if _, err := s.NewsletterStatus(ctx, hash); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Fatalf("NewsletterStatus before any request: %v, want not_found", err)
	}
	if err := s.ConfirmNewsletter(ctx, hash, "ada@example.com", at); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Fatalf("ConfirmNewsletter before any request: %v, want not_found", err)
	}

	request := func(what string, now time.Time, wantSend bool) {
		t.Helper()
		send, err := s.RequestNewsletter(ctx, hash, "landing", now, now.Add(-newsletter.ResendInterval))
		if err != nil || send != wantSend {
			t.Fatalf("%s: RequestNewsletter = %v, %v; want %v, nil", what, send, err, wantSend)
		}
	}
	request("first request", at, true)
	request("again at once", at.Add(time.Minute), false)
	request("after the resend interval", at.Add(newsletter.ResendInterval+time.Second), true)
	if st, err := s.NewsletterStatus(ctx, hash); err != nil || st != newsletter.Pending {
		t.Fatalf("NewsletterStatus after requests = %q, %v; want pending", st, err)
	}

	// Concurrent requests for one address claim its email once.
	later := at.Add(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sends := 0
	for range 8 {
		wg.Go(func() {
			send, err := s.RequestNewsletter(ctx, other, "pricing", later, later.Add(-newsletter.ResendInterval))
			if err != nil {
				t.Errorf("concurrent RequestNewsletter: %v", err)
			}
			if send {
				mu.Lock()
				sends++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if sends != 1 {
		t.Errorf("8 concurrent requests claimed %d emails, want 1", sends)
	}

	for i := range 2 { // confirming twice is harmless
		if err := s.ConfirmNewsletter(ctx, hash, "ada@example.com", at.Add(2*time.Hour)); err != nil {
			t.Fatalf("ConfirmNewsletter #%d: %v", i+1, err)
		}
	}
	if st, err := s.NewsletterStatus(ctx, hash); err != nil || st != newsletter.Confirmed {
		t.Fatalf("NewsletterStatus after confirm = %q, %v; want confirmed", st, err)
	}
	request("a confirmed address asks again", at.Add(24*time.Hour), false)
	if st, _ := s.NewsletterStatus(ctx, hash); st != newsletter.Confirmed {
		t.Errorf("asking again turned a confirmed subscription %q", st)
	}
	if st, _ := s.NewsletterStatus(ctx, other); st != newsletter.Pending {
		t.Errorf("the other address is %q, want pending", st)
	}
}
