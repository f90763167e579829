package postgres

import (
	"context"
	"github.com/jackc/pgx/v5"

	"errors"
	"fmt"

	"github.com/levqor/levqor/gen/pgdb"
	"github.com/levqor/levqor/store/internal/dbrow"
	"github.com/levqor/levqor/users"
)

var _ users.Store = (*DB)(nil)

// CreateUserIfAbsent implements users.Store.
func (db *DB) CreateUserIfAbsent(ctx context.Context, u users.User) (users.User, bool, error) {
	p, err := dbrow.InsertUser(u)
	if err != nil {
		return users.User{}, false, err
	}
	row, err := db.q.InsertUserIfAbsent(ctx, pgdb.InsertUserIfAbsentParams(p))
	if errors.Is(err, pgx.ErrNoRows) {
		// The email is taken; read the winner.
		row, err = db.q.GetUserByEmail(ctx, u.Email)
		if err != nil {
			return users.User{}, false, fmt.Errorf("get existing user: %w", err)
		}
		got, err := dbrow.ToUser(dbrow.User(row))
		return got, false, err
	}
	if err != nil {
		return users.User{}, false, fmt.Errorf("insert user: %w", err)
	}
	got, err := dbrow.ToUser(dbrow.User(row))
	return got, true, err
}

// GetUser implements users.Store.
func (db *DB) GetUser(ctx context.Context, id string) (users.User, error) {
	row, err := db.q.GetUser(ctx, id)
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return dbrow.ToUser(dbrow.User(row))
}

// GetUserByEmail implements users.Store.
func (db *DB) GetUserByEmail(ctx context.Context, email string) (users.User, error) {
	row, err := db.q.GetUserByEmail(ctx, email)
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return dbrow.ToUser(dbrow.User(row))
}

// UpdateUser implements users.Store.
func (db *DB) UpdateUser(ctx context.Context, u users.User) (users.User, error) {
	p, err := dbrow.UpdateUser(u)
	if err != nil {
		return users.User{}, err
	}
	row, err := db.q.UpdateUser(ctx, pgdb.UpdateUserParams(p))
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return dbrow.ToUser(dbrow.User(row))
}
