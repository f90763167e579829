package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/internal/dbrow"
)

var _ keys.Store = (*DB)(nil)

// CreateKey implements keys.Store.
func (db *DB) CreateKey(ctx context.Context, k keys.Key) (keys.Key, error) {
	if _, err := db.q.GetUser(ctx, k.OwnerID); err != nil {
		return keys.Key{}, notFound(err, "Owner")
	}
	row, err := db.q.InsertKey(ctx, pgdb.InsertKeyParams(dbrow.InsertKey(k)))
	if err != nil {
		return keys.Key{}, fmt.Errorf("insert key: %w", err)
	}
	return dbrow.ToKey(dbrow.Key(row)), nil
}

// GetKey implements keys.Store.
func (db *DB) GetKey(ctx context.Context, id string) (keys.Key, error) {
	row, err := db.q.GetKey(ctx, id)
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return dbrow.ToKey(dbrow.Key(row)), nil
}

// GetKeyByHash implements keys.Store.
func (db *DB) GetKeyByHash(ctx context.Context, hash []byte) (keys.Key, error) {
	row, err := db.q.GetKeyByHash(ctx, hash)
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return dbrow.ToKey(dbrow.Key(row)), nil
}

// ListKeys implements keys.Store.
func (db *DB) ListKeys(ctx context.Context, ownerID string, limit int) ([]keys.Key, error) {
	rows, err := db.q.ListKeys(ctx, pgdb.ListKeysParams{OwnerID: ownerID, MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]keys.Key, len(rows))
	for i, r := range rows {
		out[i] = dbrow.ToKey(dbrow.Key(r))
	}
	return out, nil
}

// RevokeKey implements keys.Store.
func (db *DB) RevokeKey(ctx context.Context, id string, at time.Time) (keys.Key, error) {
	row, err := db.q.RevokeKey(ctx, pgdb.RevokeKeyParams{ID: id, RevokedAt: dbrow.NullTime(&at)})
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return dbrow.ToKey(dbrow.Key(row)), nil
}

// RollKey implements keys.Store.
func (db *DB) RollKey(ctx context.Context, oldID string, oldExpiresAt time.Time, next keys.Key) (keys.Key, error) {
	var out keys.Key
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		q := db.q.WithTx(tx)
		if _, err := q.GetKey(ctx, oldID); err != nil {
			return notFound(err, "Key")
		}
		if _, err := q.ExpireKeyBy(ctx, pgdb.ExpireKeyByParams{ID: oldID, ExpiresAt: dbrow.NullTime(&oldExpiresAt)}); err != nil {
			return fmt.Errorf("expire old key: %w", err)
		}
		row, err := q.InsertKey(ctx, pgdb.InsertKeyParams(dbrow.InsertKey(next)))
		if err != nil {
			return fmt.Errorf("insert new key: %w", err)
		}
		out = dbrow.ToKey(dbrow.Key(row))
		return nil
	})
	return out, err
}

// TouchKey implements keys.Store.
func (db *DB) TouchKey(ctx context.Context, id string, at time.Time) error {
	return db.q.TouchKey(ctx, pgdb.TouchKeyParams{ID: id, LastUsedAt: dbrow.NullTime(&at)})
}
