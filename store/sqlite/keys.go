package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/keys"
)

var _ keys.Store = (*DB)(nil)

func nullTime(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func toKey(r sqlitedb.ApiKey) keys.Key {
	return keys.Key{
		ID: r.ID, OwnerID: r.OwnerID, Name: r.Name, Prefix: r.Prefix, Last4: r.Last4, Hash: r.Hash,
		Scopes: strings.Fields(r.Scopes), CreatedAt: r.CreatedAt.UTC(),
		LastUsedAt: timePtr(r.LastUsedAt), ExpiresAt: timePtr(r.ExpiresAt), RevokedAt: timePtr(r.RevokedAt),
	}
}

func insertKeyParams(k keys.Key) sqlitedb.InsertKeyParams {
	return sqlitedb.InsertKeyParams{
		ID: k.ID, OwnerID: k.OwnerID, Name: k.Name, Prefix: k.Prefix, Last4: k.Last4, Hash: k.Hash,
		Scopes: strings.Join(k.Scopes, " "), CreatedAt: k.CreatedAt.UTC(), ExpiresAt: nullTime(k.ExpiresAt),
	}
}

// CreateKey implements keys.Store.
func (db *DB) CreateKey(ctx context.Context, k keys.Key) (keys.Key, error) {
	if _, err := db.wq.GetUser(ctx, k.OwnerID); err != nil {
		return keys.Key{}, notFound(err, "Owner")
	}
	row, err := db.wq.InsertKey(ctx, insertKeyParams(k))
	if err != nil {
		return keys.Key{}, fmt.Errorf("insert key: %w", err)
	}
	return toKey(row), nil
}

// GetKey implements keys.Store.
func (db *DB) GetKey(ctx context.Context, id string) (keys.Key, error) {
	row, err := db.rq.GetKey(ctx, id)
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return toKey(row), nil
}

// GetKeyByHash implements keys.Store.
func (db *DB) GetKeyByHash(ctx context.Context, hash []byte) (keys.Key, error) {
	row, err := db.rq.GetKeyByHash(ctx, hash)
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return toKey(row), nil
}

// ListKeys implements keys.Store.
func (db *DB) ListKeys(ctx context.Context, ownerID string, limit int) ([]keys.Key, error) {
	rows, err := db.rq.ListKeys(ctx, sqlitedb.ListKeysParams{OwnerID: ownerID, MaxRows: int64(limit)})
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
	row, err := db.wq.RevokeKey(ctx, sqlitedb.RevokeKeyParams{ID: id, RevokedAt: nullTime(&at)})
	if err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	return toKey(row), nil
}

// RollKey implements keys.Store.
func (db *DB) RollKey(ctx context.Context, oldID string, oldExpiresAt time.Time, next keys.Key) (keys.Key, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return keys.Key{}, err
	}
	defer tx.Rollback()
	q := db.wq.WithTx(tx)
	if _, err := q.GetKey(ctx, oldID); err != nil {
		return keys.Key{}, notFound(err, "Key")
	}
	if _, err := q.ExpireKeyBy(ctx, sqlitedb.ExpireKeyByParams{ID: oldID, ExpiresAt: nullTime(&oldExpiresAt)}); err != nil {
		return keys.Key{}, fmt.Errorf("expire old key: %w", err)
	}
	row, err := q.InsertKey(ctx, insertKeyParams(next))
	if err != nil {
		return keys.Key{}, fmt.Errorf("insert new key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return keys.Key{}, err
	}
	return toKey(row), nil
}

// TouchKey implements keys.Store.
func (db *DB) TouchKey(ctx context.Context, id string, at time.Time) error {
	return db.wq.TouchKey(ctx, sqlitedb.TouchKeyParams{ID: id, LastUsedAt: nullTime(&at)})
}
