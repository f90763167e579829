package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/store"
)

// runJobsWebhooks checks completion webhook deliveries (claiming and recording them) and owners' webhook signing secrets.
func runJobsWebhooks(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("Callbacks", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := jobAt.Add(time.Minute)
		var ids []string
		for i := range 3 {
			j := jobAtOffset("usr_hooks", fmt.Sprintf("job_h%d", i), 0)
			j.CallbackURL = fmt.Sprintf("https://hooks.example.com/%d", i)
			insertJob(t, s, j)
			ids = append(ids, j.ID)
		}
		silent := jobAtOffset("usr_hooks", "job_silent", 0)
		silent.CallbackURL = ""
		insertJob(t, s, silent)
		if got := claimJobs(t, s, "tok_a", now, now.Add(time.Minute), 10); len(got) != 4 {
			t.Fatalf("ClaimJobs = %q, want 4 jobs", jobIDs(got))
		}
		end := now.Add(time.Second)
		var fs []jobs.Finish
		for _, id := range append(slices.Clone(ids), silent.ID) {
			fs = append(fs, jobs.Finish{ID: id, LeaseToken: "tok_a", Status: jobs.StatusSucceeded, Result: json.RawMessage(`{}`), FinishedAt: &end})
		}
		if n := finishJobs(t, s, end, fs...); n != 4 {
			t.Fatalf("FinishJobs applied %d, want 4", n)
		}

		if got := claimCallbacks(t, s, end.Add(-time.Microsecond), end.Add(time.Minute), 10); len(got) != 0 {
			t.Errorf("ClaimCallbacks before they are due = %q, want none", jobIDs(got))
		}
		if got := claimCallbacks(t, s, end, end.Add(time.Minute), 0); len(got) != 0 {
			t.Errorf("ClaimCallbacks with limit 0 = %q, want none", jobIDs(got))
		}
		lease1 := end.Add(30 * time.Second)
		first := claimCallbacks(t, s, end, lease1, 2)
		if len(first) != 2 {
			t.Fatalf("ClaimCallbacks with limit 2 = %q, want 2 jobs", jobIDs(first))
		}
		// The claimed two are leased: a second dispatcher gets only the third.
		rest := claimCallbacks(t, s, end.Add(time.Second), end.Add(90*time.Second), 10)
		if got, want := sortedJobIDs(append(slices.Clone(first), rest...)), sortedIDs(ids...); len(rest) != 1 || !slices.Equal(got, want) {
			t.Fatalf("ClaimCallbacks while two are leased = %q (first %q), want the third of %q", jobIDs(rest), jobIDs(first), ids)
		}
		// A dispatcher that died: its lease runs out and the deliveries are due again.
		again := claimCallbacks(t, s, lease1, lease1.Add(time.Minute), 10)
		if got, want := sortedJobIDs(again), sortedJobIDs(first); !slices.Equal(got, want) {
			t.Errorf("ClaimCallbacks after the lease ran out = %q, want %q", got, want)
		}

		retryAt := end.Add(10 * time.Minute).In(zoneHST)
		tries := []jobs.CallbackAttempt{{Attempt: 1, At: end.Add(2 * time.Second).UTC(), Error: "connection refused"}}
		if err := s.RecordCallback(ctx, ids[0], tries, jobs.CallbackPending, &retryAt, end.Add(3*time.Second)); err != nil {
			t.Fatalf("RecordCallback (pending): %v", err)
		}
		delivered := []jobs.CallbackAttempt{{Attempt: 1, At: end.Add(2 * time.Second).UTC(), StatusCode: 200}}
		if err := s.RecordCallback(ctx, ids[1], delivered, jobs.CallbackDelivered, nil, end.Add(3*time.Second)); err != nil {
			t.Fatalf("RecordCallback (delivered): %v", err)
		}
		gaveUp := []jobs.CallbackAttempt{
			{Attempt: 1, At: end.Add(2 * time.Second).UTC(), StatusCode: 500},
			{Attempt: 2, At: end.Add(4 * time.Second).UTC(), StatusCode: 410, Error: "Gone"},
		}
		if err := s.RecordCallback(ctx, ids[2], gaveUp, jobs.CallbackFailed, nil, end.Add(5*time.Second)); err != nil {
			t.Fatalf("RecordCallback (failed): %v", err)
		}
		for _, tc := range []struct {
			id    string
			state string
			tries []jobs.CallbackAttempt
		}{
			{ids[0], jobs.CallbackPending, tries}, {ids[1], jobs.CallbackDelivered, delivered}, {ids[2], jobs.CallbackFailed, gaveUp},
		} {
			j := getJob(t, s, tc.id)
			if j.CallbackState != tc.state {
				t.Errorf("job %s: CallbackState = %q, want %q", tc.id, j.CallbackState, tc.state)
			}
			checkArray(t, "job "+tc.id, "Callbacks", j.Callbacks, tc.tries)
		}

		if got := claimCallbacks(t, s, retryAt.Add(-time.Second), retryAt.Add(time.Hour), 10); len(got) != 0 {
			t.Errorf("ClaimCallbacks before the retry is due = %q, want none", jobIDs(got))
		}
		if got := claimCallbacks(t, s, retryAt.Add(time.Hour), retryAt.Add(2*time.Hour), 10); !slices.Equal(jobIDs(got), []string{ids[0]}) {
			t.Errorf("ClaimCallbacks when the retry is due = %q, want [%s]", jobIDs(got), ids[0])
		}
	})

	t.Run("WebhookSecret", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		get := func(owner, fresh string, at time.Time) jobs.WebhookSecret {
			t.Helper()
			got, err := s.WebhookSecret(ctx, owner, jobs.WebhookSecret{OwnerID: owner, Secret: fresh, CreatedAt: at})
			if err != nil {
				t.Fatalf("WebhookSecret(%s): %v", owner, err)
			}
			return got
		}
		check := func(what string, got jobs.WebhookSecret, owner, secret string, at time.Time) {
			t.Helper()
			if got.OwnerID != owner || got.Secret != secret {
				t.Errorf("%s: %s %q, want %s %q", what, got.OwnerID, got.Secret, owner, secret)
			}
			checkTime(t, what, "CreatedAt", &got.CreatedAt, &at)
		}
		t0 := jobAt
		check("WebhookSecret creating", get("usr_ann", "whsec_1", t0), "usr_ann", "whsec_1", t0)
		check("WebhookSecret again", get("usr_ann", "whsec_2", t0.Add(time.Hour)), "usr_ann", "whsec_1", t0)
		check("WebhookSecret of another owner", get("usr_bob", "whsec_b", t0.Add(time.Minute)), "usr_bob", "whsec_b", t0.Add(time.Minute))

		t1 := t0.Add(24*time.Hour + time.Microsecond)
		put, err := s.PutWebhookSecret(ctx, jobs.WebhookSecret{OwnerID: "usr_ann", Secret: "whsec_3", CreatedAt: t1})
		if err != nil {
			t.Fatalf("PutWebhookSecret: %v", err)
		}
		check("PutWebhookSecret", put, "usr_ann", "whsec_3", t1)
		check("WebhookSecret after PutWebhookSecret", get("usr_ann", "whsec_4", t1.Add(time.Hour)), "usr_ann", "whsec_3", t1)
		check("another owner's after PutWebhookSecret", get("usr_bob", "whsec_5", t1), "usr_bob", "whsec_b", t0.Add(time.Minute))
		put, err = s.PutWebhookSecret(ctx, jobs.WebhookSecret{OwnerID: "usr_carol", Secret: "whsec_c", CreatedAt: t1})
		if err != nil {
			t.Fatalf("PutWebhookSecret of a new owner: %v", err)
		}
		check("PutWebhookSecret of a new owner", put, "usr_carol", "whsec_c", t1)
		check("WebhookSecret after PutWebhookSecret of a new owner", get("usr_carol", "whsec_6", t0), "usr_carol", "whsec_c", t1)

		// Concurrent first calls agree on one secret, for several owners at once so
		// that some calls find the row missing when they read but present when they insert.
		const owners, callers = 10, 20
		got := make([]jobs.WebhookSecret, owners*callers)
		errs := make([]error, owners*callers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range owners * callers {
			owner := fmt.Sprintf("usr_race%d", i%owners)
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.WebhookSecret(ctx, owner, jobs.WebhookSecret{OwnerID: owner, Secret: fmt.Sprintf("whsec_r%d", i), CreatedAt: t0})
			})
		}
		close(start)
		wg.Wait()
		for i := range owners * callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			first := got[i%owners] // the first caller of the same owner
			if got[i].OwnerID != first.OwnerID || got[i].Secret != first.Secret || !strings.HasPrefix(got[i].Secret, "whsec_r") {
				t.Errorf("caller %d got %s %q, the first caller of its owner %s %q: want one of the fresh ones, the same for all", i, got[i].OwnerID, got[i].Secret, first.OwnerID, first.Secret)
			}
		}
		check("WebhookSecret after the race", get("usr_race0", "whsec_late", t1), "usr_race0", got[0].Secret, t0)
	})
}
