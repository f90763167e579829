package storetest

import (
	"testing"

	"github.com/levqor/levqor/store"
)

// RunAnalytics checks the analytics.Store contract. (Filled in by the analytics work.)
func RunAnalytics(t *testing.T, open func(t testing.TB) store.Store) {}
