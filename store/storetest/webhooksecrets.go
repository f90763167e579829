package storetest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/store"
)

// RunWebhookSecrets checks that webhook signing secrets are stored sealed (the
// stored secret column is empty and the sealed one does not hold the secret), that
// their owner still sees them, and that rows written in clear before migration 0012
// keep working and are sealed by jobs.SealWebhookSecrets.
func RunWebhookSecrets(t *testing.T, open func(t testing.TB) store.Store) {
	t.Parallel()
	s, ctx := open(t), t.Context()
	key, err := credentials.NewKey(bytes.Repeat([]byte{7}, credentials.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	sealer := credentials.NewService(s, key, nil)
	reg, err := connectors.NewRegistry(core.New())
	if err != nil {
		t.Fatal(err)
	}
	guard, err := outbound.NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := jobs.NewEngine(jobs.Config{Store: s, Registry: reg, Guard: guard, Sealer: sealer, ShutdownTimeout: time.Second,
		Encode: func(j jobs.Job) ([]byte, error) { return json.Marshal(j.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	svc := engine.Service

	// stored returns the owner's row as the store keeps it (a fresh secret that
	// must not be used: the row exists).
	stored := func(owner string) jobs.WebhookSecret {
		t.Helper()
		row, err := s.WebhookSecret(ctx, owner, jobs.WebhookSecret{OwnerID: owner, Secret: "whsec_must_not_be_used", CreatedAt: jobAt})
		if err != nil {
			t.Fatalf("store WebhookSecret(%s): %v", owner, err)
		}
		return row
	}
	checkSealed := func(what, owner, secret string) {
		t.Helper()
		row := stored(owner)
		if row.Secret != "" || len(row.Sealed) == 0 {
			t.Fatalf("%s: stored secret column %q, sealed %d bytes; want '' and the ciphertext", what, row.Secret, len(row.Sealed))
		}
		if bytes.Contains(row.Sealed, []byte(secret)) || bytes.Contains(row.Sealed, []byte(secret[len("whsec_"):])) {
			t.Fatalf("%s: the sealed column holds the secret in clear", what)
		}
		if got, err := sealer.OpenWebhookSecret(owner, row.Sealed); err != nil || got != secret {
			t.Fatalf("%s: the sealed column opens to %q, %v; want the secret shown to its owner", what, got, err)
		}
		if _, err := sealer.OpenWebhookSecret("usr_someone_else", row.Sealed); err == nil {
			t.Fatalf("%s: the sealed secret opens for another owner", what)
		}
	}

	owner := keys.Principal{OwnerID: "usr_new"}
	first, err := svc.WebhookSecret(ctx, owner)
	if err != nil || len(first.Secret) < 40 || first.Sealed != nil {
		t.Fatalf("WebhookSecret = %+v, %v; want a clear secret for its owner", first, err)
	}
	checkSealed("created", "usr_new", first.Secret)
	if again, err := svc.WebhookSecret(ctx, owner); err != nil || again.Secret != first.Secret {
		t.Fatalf("WebhookSecret again = %q, %v; want the same secret %q", again.Secret, err, first.Secret)
	}
	rolled, err := svc.RollWebhookSecret(ctx, owner)
	if err != nil || rolled.Secret == first.Secret || len(rolled.Secret) < 40 {
		t.Fatalf("RollWebhookSecret = %+v, %v; want a new clear secret", rolled, err)
	}
	checkSealed("rolled", "usr_new", rolled.Secret)

	// A row written before migration 0012 (in clear) still works, then is sealed.
	const legacy = "whsec_legacy_0123456789abcdefghijklmnop"
	if _, err := s.PutWebhookSecret(ctx, jobs.WebhookSecret{OwnerID: "usr_old", Secret: legacy, CreatedAt: jobAt}); err != nil {
		t.Fatalf("PutWebhookSecret (a clear row): %v", err)
	}
	if got, err := svc.WebhookSecret(ctx, keys.Principal{OwnerID: "usr_old"}); err != nil || got.Secret != legacy {
		t.Fatalf("WebhookSecret of a clear row = %q, %v; want %q", got.Secret, err, legacy)
	}
	if ok, err := s.SealWebhookSecret(ctx, "usr_old", "whsec_not_the_stored_one", []byte{1, 2, 3}); err != nil || ok {
		t.Fatalf("SealWebhookSecret with another clear value = %v, %v; want false (a roll in between wins)", ok, err)
	}
	n, err := jobs.SealWebhookSecrets(ctx, s, sealer)
	if err != nil || n != 1 {
		t.Fatalf("SealWebhookSecrets = %d, %v; want the one clear row sealed", n, err)
	}
	checkSealed("sealed at start-up", "usr_old", legacy)
	if got, err := svc.WebhookSecret(ctx, keys.Principal{OwnerID: "usr_old"}); err != nil || got.Secret != legacy {
		t.Fatalf("WebhookSecret after sealing = %q, %v; want the same secret %q", got.Secret, err, legacy)
	}
	if n, err := jobs.SealWebhookSecrets(ctx, s, sealer); err != nil || n != 0 {
		t.Fatalf("SealWebhookSecrets again = %d, %v; want 0", n, err)
	}
	if rows, err := s.ClearWebhookSecrets(ctx, 10); err != nil || len(rows) != 0 {
		t.Fatalf("ClearWebhookSecrets after sealing = %d rows, %v; want none", len(rows), err)
	}
}
