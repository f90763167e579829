package postgres

import (
	"context"
	"github.com/jackc/pgx/v5"

	"errors"
	"fmt"

	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/store/storejson"
	"github.com/levqor/levqor/users"
)

var _ users.Store = (*DB)(nil)

func toUser(r pgdb.User) (users.User, error) {
	meta, err := storejson.DecodeObject(r.Meta)
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
	row, err := db.q.InsertUserIfAbsent(ctx, pgdb.InsertUserIfAbsentParams{
		ID: u.ID, Email: u.Email, Name: u.Name, Locale: u.Locale, Currency: u.Currency, Plan: u.Plan,
		Meta: meta, CreatedAt: u.CreatedAt.UTC(),
	})
	if errors.Is(err, pgx.ErrNoRows) {
		// The email is taken; read the winner.
		row, err = db.q.GetUserByEmail(ctx, u.Email)
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
	row, err := db.q.GetUser(ctx, id)
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return toUser(row)
}

// GetUserByEmail implements users.Store.
func (db *DB) GetUserByEmail(ctx context.Context, email string) (users.User, error) {
	row, err := db.q.GetUserByEmail(ctx, email)
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
	row, err := db.q.UpdateUser(ctx, pgdb.UpdateUserParams{
		ID: u.ID, Name: u.Name, Locale: u.Locale, Currency: u.Currency, Plan: u.Plan,
		Meta: meta, UpdatedAt: u.UpdatedAt.UTC(),
	})
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return toUser(row)
}
