package users_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/users"
)

var admin = keys.Principal{Scopes: []string{keys.ScopeAdmin}}

func str(s string) *string { return &s }

func TestUpsertNormalisesAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	svc := users.NewService(storetest.OpenSQLite(t))

	u, created, err := svc.Upsert(ctx, admin, "  Alice@Example.COM ", users.Fields{Name: str("Alice"), Meta: map[string]any{"n": 1}})
	if err != nil || !created {
		t.Fatalf("first upsert: created=%v err=%v", created, err)
	}
	if u.Email != "alice@example.com" || u.Name != "Alice" || u.Locale != users.DefaultLocale || u.Currency != users.DefaultCurrency || u.Plan != users.DefaultPlan {
		t.Fatalf("created user = %+v", u)
	}
	again, created, err := svc.Upsert(ctx, admin, "alice@example.com", users.Fields{Name: str("Alice"), Meta: map[string]any{"n": 1}})
	if err != nil || created {
		t.Fatalf("second upsert: created=%v err=%v", created, err)
	}
	if !reflect.DeepEqual(again, u) {
		t.Fatalf("same body changed the user:\n got %+v\nwant %+v", again, u)
	}
	changed, _, err := svc.Upsert(ctx, admin, "ALICE@example.com", users.Fields{Plan: str("pro")})
	if err != nil || changed.ID != u.ID || changed.Plan != "pro" || changed.Name != "Alice" || !changed.UpdatedAt.After(u.UpdatedAt) {
		t.Fatalf("changing upsert = %+v, %v", changed, err)
	}
}

func TestUpsertRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	svc := users.NewService(storetest.OpenSQLite(t))
	for name, tc := range map[string]struct {
		email string
		f     users.Fields
	}{
		"not an address":  {"not-an-email", users.Fields{}},
		"display name":    {"Alice <a@example.com>", users.Fields{}},
		"no domain dot":   {"a@localhost", users.Fields{}},
		"two addresses":   {"a@example.com,b@example.com", users.Fields{}},
		"bad locale":      {"a@example.com", users.Fields{Locale: str("not a locale")}},
		"meta over 16KiB": {"a@example.com", users.Fields{Meta: map[string]any{"x": strings.Repeat("a", 16<<10)}}},
	} {
		if _, _, err := svc.Upsert(ctx, admin, tc.email, tc.f); levqor.ErrorCode(err) != levqor.EInvalid {
			t.Errorf("%s: err = %v, want code invalid", name, err)
		}
	}
}

func TestNonAdminSeesOnlyItsOwner(t *testing.T) {
	ctx := context.Background()
	svc := users.NewService(storetest.OpenSQLite(t))
	a, _, _ := svc.Upsert(ctx, admin, "a@example.com", users.Fields{})
	b, _, _ := svc.Upsert(ctx, admin, "b@example.com", users.Fields{})
	asA := keys.Principal{KeyID: "key_a", OwnerID: a.ID, Scopes: []string{keys.ScopeUsersRead, keys.ScopeUsersWrite}}

	if got, err := svc.Get(ctx, asA, a.ID); err != nil || got.ID != a.ID {
		t.Fatalf("own user: %v", err)
	}
	if _, err := svc.Get(ctx, asA, b.ID); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("other's user by id: %v, want not_found", err)
	}
	if _, err := svc.FindByEmail(ctx, asA, "b@example.com"); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("other's user by email: %v, want not_found", err)
	}
	if _, err := svc.Patch(ctx, asA, b.ID, users.Fields{Name: str("x")}); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("patch other's user: %v, want not_found", err)
	}
	if _, _, err := svc.Upsert(ctx, asA, "b@example.com", users.Fields{Name: str("x")}); levqor.ErrorCode(err) != levqor.EForbidden {
		t.Errorf("upsert other's email: %v, want forbidden", err)
	}
	if _, _, err := svc.Upsert(ctx, asA, "new@example.com", users.Fields{}); levqor.ErrorCode(err) != levqor.EForbidden {
		t.Errorf("create another user: %v, want forbidden", err)
	}
	if got, _, err := svc.Upsert(ctx, asA, "A@example.com", users.Fields{Name: str("Me")}); err != nil || got.Name != "Me" {
		t.Errorf("upsert own email: %+v, %v", got, err)
	}
	// The plan is the server's (billing's): not even the user's own key sets it.
	if _, _, err := svc.Upsert(ctx, asA, "a@example.com", users.Fields{Plan: str("enterprise")}); levqor.ErrorCode(err) != levqor.EForbidden {
		t.Errorf("upsert own plan: %v, want forbidden", err)
	}
	if _, err := svc.Patch(ctx, asA, a.ID, users.Fields{Plan: str("enterprise")}); levqor.ErrorCode(err) != levqor.EForbidden {
		t.Errorf("patch own plan: %v, want forbidden", err)
	}
	if _, err := svc.Patch(ctx, asA, b.ID, users.Fields{Plan: str("enterprise")}); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("patch another's plan: %v, want not_found (its existence is not revealed)", err)
	}
	if got, err := svc.Get(ctx, asA, a.ID); err != nil || got.Plan != users.DefaultPlan {
		t.Errorf("plan after refused changes: %q, %v; want %q", got.Plan, err, users.DefaultPlan)
	}
	if got, err := svc.Patch(ctx, admin, a.ID, users.Fields{Plan: str("pro")}); err != nil || got.Plan != "pro" {
		t.Errorf("admin sets the plan: %+v, %v", got, err)
	}
}

func TestPatchIsAMergePatch(t *testing.T) {
	ctx := context.Background()
	svc := users.NewService(storetest.OpenSQLite(t))
	u, _, _ := svc.Upsert(ctx, admin, "a@example.com", users.Fields{Name: str("A"), Meta: map[string]any{
		"keep": "yes", "drop": 1, "nested": map[string]any{"x": 1, "y": 2},
	}})
	got, err := svc.Patch(ctx, admin, u.ID, users.Fields{Meta: map[string]any{
		"drop": nil, "nested": map[string]any{"y": nil, "z": 3}, "new": []any{1, "two"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"keep": "yes", "nested": map[string]any{"x": float64(1), "z": float64(3)}, "new": []any{float64(1), "two"}}
	if !reflect.DeepEqual(got.Meta, want) {
		t.Fatalf("meta = %#v, want %#v", got.Meta, want)
	}
	if got.Name != "A" || got.Email != u.Email || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("untouched fields changed: %+v", got)
	}
	same, err := svc.Patch(ctx, admin, u.ID, users.Fields{Name: str("A")})
	if err != nil || !same.UpdatedAt.Equal(got.UpdatedAt) {
		t.Fatalf("no-op patch bumped updated_at: %v → %v (%v)", got.UpdatedAt, same.UpdatedAt, err)
	}
	if _, err := svc.Patch(ctx, admin, u.ID, users.Fields{Meta: map[string]any{"big": strings.Repeat("b", 17<<10)}}); levqor.ErrorCode(err) != levqor.EInvalid {
		t.Errorf("patch over the meta limit: %v, want invalid", err)
	}
	if _, err := svc.Patch(ctx, admin, "usr_missing", users.Fields{Name: str("x")}); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("patch of a missing user: %v, want not_found", err)
	}
}
