package postgres

import (
	"context"
	"fmt"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/store/internal/dbrow"
)

var _ credentials.Store = (*DB)(nil)

// PutConnection implements credentials.Store.
func (db *DB) PutConnection(ctx context.Context, r credentials.Record) (credentials.Connection, error) {
	p, err := dbrow.PutConnection(r)
	if err != nil {
		return credentials.Connection{}, err
	}
	row, err := db.q.PutConnection(ctx, pgdb.PutConnectionParams(p))
	if err != nil {
		return credentials.Connection{}, fmt.Errorf("put connection: %w", err)
	}
	return dbrow.ToConnection(row.OwnerID, row.Connector, row.Name, row.Fields, row.CreatedAt, row.UpdatedAt)
}

// GetConnection implements credentials.Store.
func (db *DB) GetConnection(ctx context.Context, ownerID, connector, name string) (credentials.Record, error) {
	row, err := db.q.GetConnection(ctx, pgdb.GetConnectionParams{OwnerID: ownerID, Connector: connector, Name: name})
	if err != nil {
		return credentials.Record{}, notFound(err, "Connection")
	}
	c, err := dbrow.ToConnection(row.OwnerID, row.Connector, row.Name, row.Fields, row.CreatedAt, row.UpdatedAt)
	if err != nil {
		return credentials.Record{}, err
	}
	return credentials.Record{Connection: c, Sealed: row.Sealed}, nil
}

// ListConnections implements credentials.Store.
func (db *DB) ListConnections(ctx context.Context, ownerID string) ([]credentials.Connection, error) {
	rows, err := db.q.ListConnections(ctx, ownerID)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	out := make([]credentials.Connection, len(rows))
	for i, r := range rows {
		if out[i], err = dbrow.ToConnection(r.OwnerID, r.Connector, r.Name, r.Fields, r.CreatedAt, r.UpdatedAt); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeleteConnection implements credentials.Store.
func (db *DB) DeleteConnection(ctx context.Context, ownerID, connector, name string) error {
	n, err := db.q.DeleteConnection(ctx, pgdb.DeleteConnectionParams{OwnerID: ownerID, Connector: connector, Name: name})
	if err != nil {
		return fmt.Errorf("delete connection: %w", err)
	}
	if n == 0 {
		return levqor.Errorf(levqor.ENotFound, "Connection not found.")
	}
	return nil
}
