package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/internal/dbrow"
)

var _ keys.Store = (*DB)(nil)

// CreateKey implements keys.Store.
func (db *DB) CreateKey(ctx context.Context, k keys.Key) (keys.Key, error) {
	if _, err := db.wq.GetUser(ctx, k.OwnerID); err != nil {
		return keys.Key{}, notFound(err, "Owner")
	}
	row, err := db.wq.InsertKey(ctx, dbrow.InsertKey(k))
	if err != nil {
		return keys.Key{}, fmt.Errorf("insert key: %w", err)
	}
	return dbrow.ToKey(row), nil
}

// GetKey implements keys.Store.
func (db *DB) GetKey(ctx context.Context, id string) (keys.Key, error) {
	row, err := db.rq.GetKey(ctx, id)
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return dbrow.ToKey(row), nil
}

// GetKeyByHash implements keys.Store.
func (db *DB) GetKeyByHash(ctx context.Context, hash []byte) (keys.Key, error) {
	row, err := db.rq.GetKeyByHash(ctx, hash)
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return dbrow.ToKey(row), nil
}

// ListKeys implements keys.Store.
func (db *DB) ListKeys(ctx context.Context, ownerID string, limit int) ([]keys.Key, error) {
	rows, err := db.rq.ListKeys(ctx, sqlitedb.ListKeysParams{OwnerID: ownerID, MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]keys.Key, len(rows))
	for i, r := range rows {
		out[i] = dbrow.ToKey(r)
	}
	return out, nil
}

// RevokeKey implements keys.Store.
func (db *DB) RevokeKey(ctx context.Context, id string, at time.Time) (keys.Key, error) {
	row, err := db.wq.RevokeKey(ctx, sqlitedb.RevokeKeyParams{ID: id, RevokedAt: dbrow.NullTime(&at)})
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return dbrow.ToKey(row), nil
}

// RollKey implements keys.Store.
func (db *DB) RollKey(ctx context.Context, oldID string, oldExpiresAt time.Time, next keys.Key) (keys.Key, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return keys.Key{}, err
	}
	defer tx.Rollback()
	q := db.wtx(tx)
	if _, err := q.GetKey(ctx, oldID); err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	if _, err := q.ExpireKeyBy(ctx, sqlitedb.ExpireKeyByParams{ID: oldID, ExpiresAt: dbrow.NullTime(&oldExpiresAt)}); err != nil {
		return keys.Key{}, fmt.Errorf("expire old key: %w", err)
	}
	row, err := q.InsertKey(ctx, dbrow.InsertKey(next))
	if err != nil {
		return keys.Key{}, fmt.Errorf("insert new key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return keys.Key{}, err
	}
	return dbrow.ToKey(row), nil
}

// TouchKey implements keys.Store.
func (db *DB) TouchKey(ctx context.Context, id string, at time.Time) error {
	return db.wq.TouchKey(ctx, sqlitedb.TouchKeyParams{ID: id, LastUsedAt: dbrow.NullTime(&at)})
}
