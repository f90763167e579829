// Package credentials keeps connector credentials per owner, encrypted at rest.
package credentials

// Store is what the database keeps for credentials. (Filled in by the credentials work.)
type Store interface{}

// Service manages owners' connections. (Filled in by the credentials work.)
type Service struct{}
