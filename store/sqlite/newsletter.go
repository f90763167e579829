package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/newsletter"
)

var _ newsletter.Store = (*DB)(nil)

// RequestNewsletter implements newsletter.Store.
func (db *DB) RequestNewsletter(ctx context.Context, emailHash, source string, now, sentBefore time.Time) (bool, error) {
	if err := db.wq.InsertNewsletterPending(ctx, sqlitedb.InsertNewsletterPendingParams{
		EmailHash: emailHash, Source: source, CreatedAt: now.UTC(),
	}); err != nil {
		return false, fmt.Errorf("insert newsletter subscription: %w", err)
	}
	n, err := db.wq.ClaimNewsletterSend(ctx, sqlitedb.ClaimNewsletterSendParams{
		Now: sql.NullTime{Time: now.UTC(), Valid: true}, EmailHash: emailHash, SentBefore: sql.NullTime{Time: sentBefore.UTC(), Valid: true},
	})
	if err != nil {
		return false, fmt.Errorf("claim newsletter email: %w", err)
	}
	return n == 1, nil
}

// ConfirmNewsletter implements newsletter.Store.
func (db *DB) ConfirmNewsletter(ctx context.Context, emailHash, email string, now time.Time) error {
	n, err := db.wq.ConfirmNewsletter(ctx, sqlitedb.ConfirmNewsletterParams{
		Email: sql.NullString{String: email, Valid: true}, Now: sql.NullTime{Time: now.UTC(), Valid: true}, EmailHash: emailHash,
	})
	if err != nil {
		return fmt.Errorf("confirm newsletter subscription: %w", err)
	}
	if n == 1 {
		return nil
	}
	_, err = db.NewsletterStatus(ctx, emailHash) // confirmed already (nil), or never asked for
	return err
}

// NewsletterStatus implements newsletter.Store.
func (db *DB) NewsletterStatus(ctx context.Context, emailHash string) (newsletter.Status, error) {
	status, err := db.rq.GetNewsletterStatus(ctx, emailHash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", levqor.Errorf(levqor.ENotFound, "No newsletter subscription was asked for with this address.")
	}
	if err != nil {
		return "", fmt.Errorf("get newsletter subscription: %w", err)
	}
	return newsletter.Status(status), nil
}
