package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	row, err := db.wq.InsertUserIfAbsent(ctx, p)
	if errors.Is(err, sql.ErrNoRows) {
		// The email is taken; read it through the writer so the row is certainly visible.
		row, err = db.wq.GetUserByEmail(ctx, u.Email)
		if err != nil {
			return users.User{}, false, fmt.Errorf("get existing user: %w", err)
		}
		got, err := dbrow.ToUser(row)
		return got, false, err
	}
	if err != nil {
		return users.User{}, false, fmt.Errorf("insert user: %w", err)
	}
	got, err := dbrow.ToUser(row)
	return got, true, err
}

// GetUser implements users.Store.
func (db *DB) GetUser(ctx context.Context, id string) (users.User, error) {
	row, err := db.rq.GetUser(ctx, id)
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return dbrow.ToUser(row)
}

// GetUserByEmail implements users.Store.
func (db *DB) GetUserByEmail(ctx context.Context, email string) (users.User, error) {
	row, err := db.rq.GetUserByEmail(ctx, email)
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return dbrow.ToUser(row)
}

// UpdateUser implements users.Store.
func (db *DB) UpdateUser(ctx context.Context, u users.User) (users.User, error) {
	p, err := dbrow.UpdateUser(u)
	if err != nil {
		return users.User{}, err
	}
	row, err := db.wq.UpdateUser(ctx, p)
	if err != nil {
		return users.User{}, notFound(err, "User")
	}
	return dbrow.ToUser(row)
}
