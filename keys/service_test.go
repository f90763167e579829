package keys_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

func owner(t *testing.T, st store.Store, email string) string {
	t.Helper()
	u, _, err := users.NewService(st).Upsert(context.Background(), keys.Principal{Scopes: []string{keys.ScopeAdmin}}, email, users.Fields{})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	const bootstrap = "seed-admin-key-0123456789"
	svc := keys.NewService(st, []string{bootstrap, " ", ""})
	ownerID := owner(t, st, "o@example.com")

	k, secret, err := svc.Create(ctx, keys.CreateInput{OwnerID: ownerID, Scopes: []string{keys.ScopeUsersRead, keys.ScopeUsersRead}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.Scopes, []string{keys.ScopeUsersRead}) {
		t.Errorf("scopes = %v, want de-duplicated", k.Scopes)
	}
	p, err := svc.Authenticate(ctx, secret)
	if err != nil || p.KeyID != k.ID || p.OwnerID != ownerID || !p.Can(keys.ScopeUsersRead) || p.Can(keys.ScopeUsersWrite) || p.Admin() {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	if got, _ := st.GetKey(ctx, k.ID); got.LastUsedAt == nil {
		t.Error("last_used_at not recorded")
	}
	if p, err := svc.Authenticate(ctx, bootstrap); err != nil || !p.Admin() || p.OwnerID != "" {
		t.Errorf("bootstrap key: %+v, %v", p, err)
	}

	other, _, _ := keys.Generate(keys.EnvLive)
	expiring, expSecret, _ := svc.Create(ctx, keys.CreateInput{OwnerID: ownerID, Scopes: []string{keys.ScopeJobsRead}, ExpiresAt: ptr(time.Now().Add(time.Hour))})
	// A roll whose insert fails changes nothing (one transaction): the key, which
	// the failed roll would have expired a second ago, keeps working (checked below).
	if _, err := st.RollKey(ctx, expiring.ID, time.Now().Add(-time.Second), keys.Key{}); err == nil {
		t.Fatal("RollKey with an empty next key should fail")
	}
	revoked, revSecret, _ := svc.Create(ctx, keys.CreateInput{OwnerID: ownerID, Scopes: []string{keys.ScopeJobsRead}})
	if err := svc.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"empty": "", "malformed": "nope", "unknown": other, "revoked": revSecret, "whitespace bootstrap": " "} {
		if _, err := svc.Authenticate(ctx, s); levqor.ErrorCode(err) != levqor.EUnauthorized {
			t.Errorf("%s: %v, want unauthorized", name, err)
		}
	}
	if _, err := svc.Authenticate(ctx, expSecret); err != nil {
		t.Errorf("unexpired key refused: %v", err)
	}
}

func TestRollKeepsOldKeyForTheGracePeriod(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	svc := keys.NewService(st, nil)
	ownerID := owner(t, st, "o@example.com")
	old, oldSecret, _ := svc.Create(ctx, keys.CreateInput{OwnerID: ownerID, Name: "ci", Scopes: []string{keys.ScopeJobsWrite}, Env: keys.EnvTest})

	next, nextSecret, err := svc.Roll(ctx, old.ID, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if next.ID == old.ID || next.OwnerID != ownerID || next.Name != "ci" || !slices.Equal(next.Scopes, old.Scopes) || next.Prefix != keys.PrefixTest {
		t.Fatalf("rolled key = %+v", next)
	}
	for _, s := range []string{oldSecret, nextSecret} {
		if _, err := svc.Authenticate(ctx, s); err != nil {
			t.Fatalf("during the grace period: %v", err)
		}
	}
	time.Sleep(400 * time.Millisecond)
	if _, err := svc.Authenticate(ctx, oldSecret); levqor.ErrorCode(err) != levqor.EUnauthorized {
		t.Errorf("old key after the grace period: %v, want unauthorized", err)
	}
	if _, err := svc.Authenticate(ctx, nextSecret); err != nil {
		t.Errorf("new key after the grace period: %v", err)
	}
	if _, _, err := svc.Roll(ctx, old.ID, time.Hour); levqor.ErrorCode(err) != levqor.EConflict {
		t.Errorf("rolling an expired key: %v, want conflict", err)
	}
	if _, _, err := svc.Roll(ctx, "key_missing", time.Hour); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("rolling a missing key: %v, want not_found", err)
	}
	if _, _, err := svc.Roll(ctx, next.ID, keys.MaxGrace+time.Second); levqor.ErrorCode(err) != levqor.EInvalid {
		t.Errorf("grace over the maximum: %v, want invalid", err)
	}
	// Rolling never extends a key's life: a key that expires in 1 s keeps that expiry.
	soon := time.Now().Add(time.Second).UTC()
	short, _, _ := svc.Create(ctx, keys.CreateInput{OwnerID: ownerID, Scopes: []string{keys.ScopeJobsRead}, ExpiresAt: &soon})
	if _, _, err := svc.Roll(ctx, short.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetKey(ctx, short.ID); got.ExpiresAt == nil || got.ExpiresAt.After(soon.Add(time.Millisecond)) {
		t.Errorf("roll extended the old key's expiry to %v (was %v)", got.ExpiresAt, soon)
	}
}

func TestCreateRefuses(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	svc := keys.NewService(st, nil)
	ownerID := owner(t, st, "o@example.com")
	past := time.Now().Add(-time.Minute)
	for name, in := range map[string]keys.CreateInput{
		"no scopes":     {OwnerID: ownerID},
		"unknown scope": {OwnerID: ownerID, Scopes: []string{"root"}},
		"past expiry":   {OwnerID: ownerID, Scopes: []string{keys.ScopeAdmin}, ExpiresAt: &past},
	} {
		if _, _, err := svc.Create(ctx, in); levqor.ErrorCode(err) != levqor.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if _, _, err := svc.Create(ctx, keys.CreateInput{OwnerID: "usr_nobody", Scopes: []string{keys.ScopeAdmin}}); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("unknown owner: %v, want not_found", err)
	}
}

func ptr[T any](v T) *T { return &v }
