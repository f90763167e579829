package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/keys"
)

var _ keys.Store = (*DB)(nil)

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func toKey(r pgdb.ApiKey) keys.Key {
	return keys.Key{
		ID: r.ID, OwnerID: r.OwnerID, Name: r.Name, Prefix: r.Prefix, Last4: r.Last4, Hash: r.Hash,
		Scopes: strings.Fields(r.Scopes), CreatedAt: r.CreatedAt.UTC(),
		LastUsedAt: utcPtr(r.LastUsedAt), ExpiresAt: utcPtr(r.ExpiresAt), RevokedAt: utcPtr(r.RevokedAt),
	}
}

func insertKeyParams(k keys.Key) pgdb.InsertKeyParams {
	return pgdb.InsertKeyParams{
		ID: k.ID, OwnerID: k.OwnerID, Name: k.Name, Prefix: k.Prefix, Last4: k.Last4, Hash: k.Hash,
		Scopes: strings.Join(k.Scopes, " "), CreatedAt: k.CreatedAt.UTC(), ExpiresAt: utcPtr(k.ExpiresAt),
	}
}

// CreateKey implements keys.Store.
func (db *DB) CreateKey(ctx context.Context, k keys.Key) (keys.Key, error) {
	if _, err := db.q.GetUser(ctx, k.OwnerID); err != nil {
		return keys.Key{}, notFound(err, "Owner")
	}
	row, err := db.q.InsertKey(ctx, insertKeyParams(k))
	if err != nil {
		return keys.Key{}, fmt.Errorf("insert key: %w", err)
	}
	return toKey(row), nil
}

// GetKey implements keys.Store.
func (db *DB) GetKey(ctx context.Context, id string) (keys.Key, error) {
	row, err := db.q.GetKey(ctx, id)
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return toKey(row), nil
}

// GetKeyByHash implements keys.Store.
func (db *DB) GetKeyByHash(ctx context.Context, hash []byte) (keys.Key, error) {
	row, err := db.q.GetKeyByHash(ctx, hash)
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return toKey(row), nil
}

// ListKeys implements keys.Store.
func (db *DB) ListKeys(ctx context.Context, ownerID string, limit int) ([]keys.Key, error) {
	rows, err := db.q.ListKeys(ctx, pgdb.ListKeysParams{OwnerID: ownerID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]keys.Key, len(rows))
	for i, r := range rows {
		out[i] = toKey(r)
	}
	return out, nil
}

// RevokeKey implements keys.Store.
func (db *DB) RevokeKey(ctx context.Context, id string, at time.Time) (keys.Key, error) {
	at = at.UTC()
	row, err := db.q.RevokeKey(ctx, pgdb.RevokeKeyParams{ID: id, RevokedAt: &at})
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return toKey(row), nil
}

// RollKey implements keys.Store.
func (db *DB) RollKey(ctx context.Context, oldID string, oldExpiresAt time.Time, next keys.Key) (keys.Key, error) {
	var out keys.Key
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		if _, err := q.GetKey(ctx, oldID); err != nil {
			return notFound(err, "Key")
		}
		exp := oldExpiresAt.UTC()
		if _, err := q.ExpireKeyBy(ctx, pgdb.ExpireKeyByParams{ID: oldID, ExpiresAt: &exp}); err != nil {
			return fmt.Errorf("expire old key: %w", err)
		}
		row, err := q.InsertKey(ctx, insertKeyParams(next))
		if err != nil {
			return fmt.Errorf("insert new key: %w", err)
		}
		out = toKey(row)
		return nil
	})
	return out, err
}

// TouchKey implements keys.Store.
func (db *DB) TouchKey(ctx context.Context, id string, at time.Time) error {
	at = at.UTC()
	return db.q.TouchKey(ctx, pgdb.TouchKeyParams{ID: id, LastUsedAt: &at})
}
