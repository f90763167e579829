package keys

import "slices"

// Principal is who a request acts for: the key that authenticated it and its owner.
// Bootstrap keys from the environment are admins without an owner.
type Principal struct {
	KeyID   string // "" for bootstrap keys
	OwnerID string // "" for bootstrap keys
	Scopes  []string
}

// Admin reports whether the principal holds the admin scope (which grants every scope).
func (p Principal) Admin() bool { return slices.Contains(p.Scopes, ScopeAdmin) }

// Can reports whether the principal holds scope, directly or through admin.
func (p Principal) Can(scope string) bool { return p.Admin() || slices.Contains(p.Scopes, scope) }

// Owns reports whether the principal may see an object owned by ownerID: admins see
// everything, everyone else only their owner's objects.
func (p Principal) Owns(ownerID string) bool {
	return p.Admin() || (p.OwnerID != "" && p.OwnerID == ownerID)
}
