package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/levqor/levqor/gen/sqlitedb"
	"github.com/levqor/levqor/store/storejson"
	"github.com/levqor/levqor/users"
)

var _ users.Store = (*DB)(nil)

func toUser(r sqlitedb.User) (users.User, error) {
	meta, err := storejson.DecodeObject([]byte(r.Meta))
	if err != nil {
		return users.User{}, fmt.Errorf("user %s meta: %w", r.ID, err)
	}
	return users.User{
		ID: r.ID, Email: r.Email, Name: r.Name, Locale: r.Locale, Currency: r.Currency, Plan: r.Plan,
		Meta: meta, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}, nil
}

// CreateUserIfAbsent implements users.Store.
func (db *DB) CreateUserIfAbsent(ctx context.Context, u users.User) (users.User, bool, error) {
	meta, err := storejson.EncodeObject(u.Meta)
	if err != nil {
		return users.User{}, false, err
	}
	row, err := db.wq.InsertUserIfAbsent(ctx, sqlitedb.InsertUserIfAbsentParams{
		ID: u.ID, Email: u.Email, Name: u.Name, Locale: u.Locale, Currency: u.Currency, Plan: u.Plan,
		Meta: string(meta), CreatedAt: u.CreatedAt.UTC(),
	})
	if errors.Is(err, sql.ErrNoRows) {
		// The email is taken; read it through the writer so the row is certainly visible.
		row, err = db.wq.GetUserByEmail(ctx, u.Email)
		if err != nil {
			return users.User{}, false, fmt.Errorf("get existing user: %w", err)
		}
		got, err := toUser(row)
		return got, false, err
	}
	if err != nil {
		return users.User{}, false, fmt.Errorf("insert user: %w", err)
	}
	got, err := toUser(row)
	return got, true, err
}

// GetUser implements users.Store.
func (db *DB) GetUser(ctx context.Context, id string) (users.User, error) {
	row, err := db.rq.GetUser(ctx, id)
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return toUser(row)
}

// GetUserByEmail implements users.Store.
func (db *DB) GetUserByEmail(ctx context.Context, email string) (users.User, error) {
	row, err := db.rq.GetUserByEmail(ctx, email)
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return toUser(row)
}

// UpdateUser implements users.Store.
func (db *DB) UpdateUser(ctx context.Context, u users.User) (users.User, error) {
	meta, err := storejson.EncodeObject(u.Meta)
	if err != nil {
		return users.User{}, err
	}
	row, err := db.wq.UpdateUser(ctx, sqlitedb.UpdateUserParams{
		ID: u.ID, Name: u.Name, Locale: u.Locale, Currency: u.Currency, Plan: u.Plan,
		Meta: string(meta), UpdatedAt: u.UpdatedAt.UTC(),
	})
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return toUser(row)
}
