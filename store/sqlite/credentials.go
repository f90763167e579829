package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/store/storejson"
)

var _ credentials.Store = (*DB)(nil)

// toConnection converts a connections row's metadata.
func toConnection(ownerID, connector, name string, fields []byte, createdAt, updatedAt time.Time) (credentials.Connection, error) {
	fs, err := storejson.DecodeArray[credentials.Field](fields)
	if err != nil {
		return credentials.Connection{}, fmt.Errorf("connection %s/%s fields: %w", connector, name, err)
	}
	return credentials.Connection{OwnerID: ownerID, Connector: connector, Name: name, Fields: fs,
		CreatedAt: createdAt.UTC(), UpdatedAt: updatedAt.UTC()}, nil
}

// PutConnection implements credentials.Store.
func (db *DB) PutConnection(ctx context.Context, r credentials.Record) (credentials.Connection, error) {
	fields, err := storejson.EncodeArray(r.Fields)
	if err != nil {
		return credentials.Connection{}, fmt.Errorf("connection %s/%s fields: %w", r.Connector, r.Name, err)
	}
	row, err := db.wq.PutConnection(ctx, sqlitedb.PutConnectionParams{
		OwnerID: r.OwnerID, Connector: r.Connector, Name: r.Name, Fields: string(fields), Sealed: r.Sealed, Now: r.UpdatedAt.UTC(),
	})
	if err != nil {
		return credentials.Connection{}, fmt.Errorf("put connection: %w", err)
	}
	return toConnection(row.OwnerID, row.Connector, row.Name, []byte(row.Fields), row.CreatedAt, row.UpdatedAt)
}

// GetConnection implements credentials.Store.
func (db *DB) GetConnection(ctx context.Context, ownerID, connector, name string) (credentials.Record, error) {
	row, err := db.rq.GetConnection(ctx, sqlitedb.GetConnectionParams{OwnerID: ownerID, Connector: connector, Name: name})
	if err != nil {
		return credentials.Record{}, notFound(err, "Connection")
	}
	c, err := toConnection(row.OwnerID, row.Connector, row.Name, []byte(row.Fields), row.CreatedAt, row.UpdatedAt)
	if err != nil {
		return credentials.Record{}, err
	}
	return credentials.Record{Connection: c, Sealed: row.Sealed}, nil
}

// ListConnections implements credentials.Store.
func (db *DB) ListConnections(ctx context.Context, ownerID string) ([]credentials.Connection, error) {
	rows, err := db.rq.ListConnections(ctx, ownerID)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	out := make([]credentials.Connection, len(rows))
	for i, r := range rows {
		if out[i], err = toConnection(r.OwnerID, r.Connector, r.Name, []byte(r.Fields), r.CreatedAt, r.UpdatedAt); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeleteConnection implements credentials.Store.
func (db *DB) DeleteConnection(ctx context.Context, ownerID, connector, name string) error {
	n, err := db.wq.DeleteConnection(ctx, sqlitedb.DeleteConnectionParams{OwnerID: ownerID, Connector: connector, Name: name})
	if err != nil {
		return fmt.Errorf("delete connection: %w", err)
	}
	if n == 0 {
		return levqor.Errorf(levqor.ENotFound, "Connection not found.")
	}
	return nil
}
