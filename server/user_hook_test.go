package server_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/levqor/levqor/users"
)

// TestUserCreatedHook: the hook (the welcome email in production) runs once, when the
// upsert creates the user, and not when it updates one.
func TestUserCreatedHook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var created []string
	b := setup(t, withAdmin, func(o *testOptions) {
		o.UserCreated = func(_ context.Context, u users.User) {
			mu.Lock()
			defer mu.Unlock()
			created = append(created, u.Email)
		}
	})
	for i, want := range []int{http.StatusCreated, http.StatusOK} {
		resp, body := b.do(t, "POST", "/api/v1/users", hdr(adminKey, "application/json"),
			jsonBody(t, map[string]any{"email": "hook@example.com", "name": "Hook"}))
		if resp.StatusCode != want {
			t.Fatalf("upsert %d: %d %s", i, resp.StatusCode, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(created) != 1 || created[0] != "hook@example.com" {
		t.Errorf("hook calls = %q, want one for hook@example.com", created)
	}
}
