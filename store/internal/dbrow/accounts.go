package dbrow

import (
	"fmt"
	"strings"
	"time"

	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/storejson"
	"github.com/levqor/levqor/users"
)

// ToUser converts a users row.
func ToUser(r User) (users.User, error) {
	meta, err := storejson.DecodeObject([]byte(r.Meta))
	if err != nil {
		return users.User{}, fmt.Errorf("user %s meta: %w", r.ID, err)
	}
	return users.User{
		ID: r.ID, Email: r.Email, Name: r.Name, Locale: r.Locale, Currency: r.Currency, Plan: r.Plan,
		Meta: meta, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}, nil
}

// InsertUser is the InsertUserIfAbsent parameters of u.
func InsertUser(u users.User) (InsertUserIfAbsentParams, error) {
	meta, err := storejson.EncodeObject(u.Meta)
	if err != nil {
		return InsertUserIfAbsentParams{}, err
	}
	return InsertUserIfAbsentParams{
		ID: u.ID, Email: u.Email, Name: u.Name, Locale: u.Locale, Currency: u.Currency, Plan: u.Plan,
		Meta: string(meta), CreatedAt: u.CreatedAt.UTC(),
	}, nil
}

// UpdateUser is the UpdateUser parameters of u.
func UpdateUser(u users.User) (UpdateUserParams, error) {
	meta, err := storejson.EncodeObject(u.Meta)
	if err != nil {
		return UpdateUserParams{}, err
	}
	return UpdateUserParams{
		ID: u.ID, Name: u.Name, Locale: u.Locale, Currency: u.Currency, Plan: u.Plan,
		Meta: string(meta), UpdatedAt: u.UpdatedAt.UTC(),
	}, nil
}

// ToKey converts an api_keys row.
func ToKey(r Key) keys.Key {
	return keys.Key{
		ID: r.ID, OwnerID: r.OwnerID, Name: r.Name, Prefix: r.Prefix, Last4: r.Last4, Hash: r.Hash,
		Scopes: strings.Fields(r.Scopes), CreatedAt: r.CreatedAt.UTC(),
		LastUsedAt: TimePtr(r.LastUsedAt), ExpiresAt: TimePtr(r.ExpiresAt), RevokedAt: TimePtr(r.RevokedAt),
	}
}

// InsertKey is the InsertKey parameters of k.
func InsertKey(k keys.Key) InsertKeyParams {
	return InsertKeyParams{
		ID: k.ID, OwnerID: k.OwnerID, Name: k.Name, Prefix: k.Prefix, Last4: k.Last4, Hash: k.Hash,
		Scopes: strings.Join(k.Scopes, " "), CreatedAt: k.CreatedAt.UTC(), ExpiresAt: NullTime(k.ExpiresAt),
	}
}

// ToConnection converts a connections row's metadata (its sealed secrets stay with the caller).
func ToConnection(ownerID, connector, name, fields string, createdAt, updatedAt time.Time) (credentials.Connection, error) {
	fs, err := storejson.DecodeArray[credentials.Field]([]byte(fields))
	if err != nil {
		return credentials.Connection{}, fmt.Errorf("connection %s/%s fields: %w", connector, name, err)
	}
	return credentials.Connection{OwnerID: ownerID, Connector: connector, Name: name, Fields: fs,
		CreatedAt: createdAt.UTC(), UpdatedAt: updatedAt.UTC()}, nil
}

// PutConnection is the PutConnection parameters of r.
func PutConnection(r credentials.Record) (PutConnectionParams, error) {
	fields, err := storejson.EncodeArray(r.Fields)
	if err != nil {
		return PutConnectionParams{}, fmt.Errorf("connection %s/%s fields: %w", r.Connector, r.Name, err)
	}
	return PutConnectionParams{
		OwnerID: r.OwnerID, Connector: r.Connector, Name: r.Name, Fields: string(fields), Sealed: r.Sealed, Now: r.UpdatedAt.UTC(),
	}, nil
}
