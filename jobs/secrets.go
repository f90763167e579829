package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SecretSealer encrypts webhook signing secrets at rest, bound to their owner, so a
// copy of the database (a backup, a replica) does not let anyone sign webhooks.
// credentials.Service implements it with the key that seals connections.
type SecretSealer interface {
	SealWebhookSecret(ownerID, secret string) ([]byte, error)
	OpenWebhookSecret(ownerID string, sealed []byte) (string, error)
}

// errNoSealer is the error of a sealed secret read by a process built without a SecretSealer.
var errNoSealer = errors.New("the webhook secret is sealed and this process has no key to open it")

// newWebhookSecret returns a fresh secret for owner as the store keeps it: sealed
// when sealer is set (always in `levqor serve`; nil only in tests), else in clear.
func newWebhookSecret(sealer SecretSealer, owner string, now time.Time) (WebhookSecret, error) {
	ws := WebhookSecret{OwnerID: owner, Secret: newSecret(), CreatedAt: now.UTC()}
	if sealer == nil {
		return ws, nil
	}
	sealed, err := sealer.SealWebhookSecret(owner, ws.Secret)
	if err != nil {
		return WebhookSecret{}, fmt.Errorf("seal webhook secret: %w", err)
	}
	ws.Secret, ws.Sealed = "", sealed
	return ws, nil
}

// openWebhookSecret returns a stored secret with Secret in clear: opened when
// sealed, as it is for a row written before secrets were sealed.
func openWebhookSecret(sealer SecretSealer, ws WebhookSecret) (WebhookSecret, error) {
	if len(ws.Sealed) == 0 {
		return ws, nil
	}
	if sealer == nil {
		return WebhookSecret{}, errNoSealer
	}
	secret, err := sealer.OpenWebhookSecret(ws.OwnerID, ws.Sealed)
	if err != nil {
		return WebhookSecret{}, fmt.Errorf("open webhook secret: %w", err)
	}
	ws.Secret, ws.Sealed = secret, nil
	return ws, nil
}

// sealBatch is how many clear rows SealWebhookSecrets reads at a time.
const sealBatch = 500

// SealWebhookSecrets seals every webhook secret the store still keeps in clear
// (rows written before migration 0012) and returns how many it sealed. It is
// idempotent, and safe beside running servers: a row rolled meanwhile is left as
// the roll wrote it. `levqor serve` runs it at start-up.
func SealWebhookSecrets(ctx context.Context, store Store, sealer SecretSealer) (int, error) {
	sealed := 0
	for {
		rows, err := store.ClearWebhookSecrets(ctx, sealBatch)
		if err != nil {
			return sealed, err
		}
		progress := false
		for _, r := range rows {
			b, err := sealer.SealWebhookSecret(r.OwnerID, r.Secret)
			if err != nil {
				return sealed, fmt.Errorf("seal webhook secret: %w", err)
			}
			ok, err := store.SealWebhookSecret(ctx, r.OwnerID, r.Secret, b)
			if err != nil {
				return sealed, err
			}
			if ok {
				sealed++
				progress = true
			}
		}
		// A batch that sealed nothing is one other writers changed under us; stop
		// rather than spin on it (the next start seals what is left).
		if len(rows) < sealBatch || !progress {
			return sealed, nil
		}
	}
}
