package storetest

import (
	"testing"

	"github.com/levqor/levqor/store"
)

// RunCredentials checks the credentials.Store contract. (Filled in by the credentials work.)
func RunCredentials(t *testing.T, open func(t testing.TB) store.Store) {}
