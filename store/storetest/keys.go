package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store"
)

// keyCreatedAt is the creation time of test keys: not in UTC and at microsecond
// precision, for the same reason as createdAt.
var keyCreatedAt = time.Date(2025, 6, 1, 8, 30, 15, 123456000, time.FixedZone("PDT", -7*3600))

// zones are offsets other than UTC that test times are given in; a store must return
// the same instants in UTC.
var (
	zoneIST = time.FixedZone("IST", 5*3600+1800)
	zoneNPT = time.FixedZone("NPT", 5*3600+2700)
	zoneHST = time.FixedZone("HST", -10*3600)
)

// addOwner creates a user to own keys and returns its id.
func addOwner(t *testing.T, s store.Store, email string) string {
	t.Helper()
	u := newUser(email)
	if _, created, err := s.CreateUserIfAbsent(t.Context(), u); err != nil || !created {
		t.Fatalf("CreateUserIfAbsent(%s): created=%v err=%v", email, created, err)
	}
	return u.ID
}

// newKey returns a key of owner with every field CreateKey takes set: a fresh id and
// secret, scopes out of their canonical order (a store must keep the order given)
// and no expiry.
func newKey(t *testing.T, ownerID string) keys.Key {
	t.Helper()
	_, k, err := keys.Generate(keys.EnvLive)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	k.ID = levqor.NewID("key")
	k.OwnerID = ownerID
	k.Name = "CI déploiement 🚀"
	k.Scopes = []string{keys.ScopeUsersWrite, keys.ScopeJobsRead, keys.ScopeAdmin}
	k.CreatedAt = keyCreatedAt
	return k
}

// createKey stores k and fails the test on error.
func createKey(t *testing.T, s store.Store, k keys.Key) {
	t.Helper()
	if _, err := s.CreateKey(t.Context(), k); err != nil {
		t.Fatalf("CreateKey(%s): %v", k.ID, err)
	}
}

// getKey returns the stored key with the id and fails the test on error.
func getKey(t *testing.T, s store.Store, id string) keys.Key {
	t.Helper()
	k, err := s.GetKey(t.Context(), id)
	if err != nil {
		t.Fatalf("GetKey(%s): %v", id, err)
	}
	return k
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// checkKey reports every field of got that differs from want. Times must be the
// same instant and in UTC.
func checkKey(t *testing.T, what string, got, want keys.Key) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want string
	}{
		{"ID", got.ID, want.ID},
		{"OwnerID", got.OwnerID, want.OwnerID},
		{"Name", got.Name, want.Name},
		{"Prefix", got.Prefix, want.Prefix},
		{"Last4", got.Last4, want.Last4},
	} {
		if f.got != f.want {
			t.Errorf("%s: %s = %q, want %q", what, f.name, f.got, f.want)
		}
	}
	if !bytes.Equal(got.Hash, want.Hash) {
		t.Errorf("%s: Hash = %x, want %x", what, got.Hash, want.Hash)
	}
	if !slices.Equal(got.Scopes, want.Scopes) {
		t.Errorf("%s: Scopes = %q, want %q", what, got.Scopes, want.Scopes)
	}
	checkTime(t, what, "CreatedAt", &got.CreatedAt, &want.CreatedAt)
	checkTime(t, what, "LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	checkTime(t, what, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkTime(t, what, "RevokedAt", got.RevokedAt, want.RevokedAt)
}

// checkTime reports a time that is set when it should not be, or the reverse, or is
// another instant, or is not in UTC.
func checkTime(t *testing.T, what, name string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil:
		t.Errorf("%s: %s = nil, want %s", what, name, want.Format(time.RFC3339Nano))
	case want == nil:
		t.Errorf("%s: %s = %s, want nil", what, name, got.Format(time.RFC3339Nano))
	default:
		if !got.Equal(*want) {
			t.Errorf("%s: %s = %s, want %s", what, name, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
		if got.Location() != time.UTC {
			t.Errorf("%s: %s is in %q, want UTC", what, name, got.Location())
		}
	}
}

// keyIDs returns the ids of ks, in order.
func keyIDs(ks []keys.Key) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return ids
}

// RunKeys checks an engine's keys.Store; open returns a fresh, migrated store.
func RunKeys(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("CreateKey", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name    string
			env     string
			expires *time.Time
		}{
			{"NoExpiry", keys.EnvLive, nil},
			{"Expiry", keys.EnvTest, ptr(time.Date(2026, 1, 2, 3, 4, 5, 678901000, zoneIST))},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				s, ctx := open(t), t.Context()
				owner := addOwner(t, s, "owner@example.com")
				want := newKey(t, owner)
				_, gen, err := keys.Generate(tc.env)
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				want.Prefix, want.Last4, want.Hash = gen.Prefix, gen.Last4, gen.Hash
				want.ExpiresAt = tc.expires

				got, err := s.CreateKey(ctx, want)
				if err != nil {
					t.Fatalf("CreateKey: %v", err)
				}
				checkKey(t, "CreateKey", got, want)
				checkKey(t, "GetKey", getKey(t, s, want.ID), want)
				byHash, err := s.GetKeyByHash(ctx, want.Hash)
				if err != nil {
					t.Fatalf("GetKeyByHash: %v", err)
				}
				checkKey(t, "GetKeyByHash", byHash, want)
			})
		}
	})

	t.Run("CreateKeyUnknownOwner", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		// Another user exists, so a store that checks only that some user does fails.
		addOwner(t, s, "present@example.com")
		k := newKey(t, newID())

		_, err := s.CreateKey(ctx, k)
		checkNotFound(t, "CreateKey for an unknown owner", err)
		_, err = s.GetKey(ctx, k.ID)
		checkNotFound(t, "GetKey after CreateKey for an unknown owner", err)
		_, err = s.GetKeyByHash(ctx, k.Hash)
		checkNotFound(t, "GetKeyByHash after CreateKey for an unknown owner", err)
		all, err := s.ListKeys(ctx, "", 10)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if len(all) != 0 {
			t.Errorf("ListKeys after CreateKey for an unknown owner = %q, want none", keyIDs(all))
		}
	})

	t.Run("CreateKeyDuplicateHash", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		owner := addOwner(t, s, "owner@example.com")
		first := newKey(t, owner)
		createKey(t, s, first)
		second := newKey(t, owner)
		second.Hash = bytes.Clone(first.Hash)

		if _, err := s.CreateKey(ctx, second); err == nil {
			t.Fatalf("CreateKey with the hash of an existing key: no error, want one")
		}
		_, err := s.GetKey(ctx, second.ID)
		checkNotFound(t, "GetKey of the key with the duplicate hash", err)
		byHash, err := s.GetKeyByHash(ctx, first.Hash)
		if err != nil {
			t.Fatalf("GetKeyByHash: %v", err)
		}
		checkKey(t, "GetKeyByHash of the shared hash", byHash, first)
	})

	t.Run("GetNotFound", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		// One key exists, so a store that returns any row it finds fails.
		present := newKey(t, addOwner(t, s, "owner@example.com"))
		createKey(t, s, present)
		_, absent, err := keys.Generate(keys.EnvLive)
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		for _, tc := range []struct {
			name string
			get  func() (keys.Key, error)
		}{
			{"GetKey", func() (keys.Key, error) { return s.GetKey(ctx, levqor.NewID("key")) }},
			{"GetKeyEmptyID", func() (keys.Key, error) { return s.GetKey(ctx, "") }},
			{"GetKeyByHash", func() (keys.Key, error) { return s.GetKeyByHash(ctx, absent.Hash) }},
			{"GetKeyByHashPrefix", func() (keys.Key, error) { return s.GetKeyByHash(ctx, present.Hash[:16]) }},
			{"GetKeyByHashNil", func() (keys.Key, error) { return s.GetKeyByHash(ctx, nil) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				k, err := tc.get()
				checkNotFound(t, tc.name, err)
				if k.ID != "" {
					t.Errorf("%s: returned key %q along with the error", tc.name, k.ID)
				}
			})
		}
	})

	t.Run("ListKeys", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		ann := addOwner(t, s, "ann@example.com")
		bob := addOwner(t, s, "bob@example.com")
		nobody := addOwner(t, s, "nobody@example.com")

		at := func(owner string, created time.Time) keys.Key {
			k := newKey(t, owner)
			k.CreatedAt = created
			return k
		}
		base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		// Newest first: ann3, ann2hi, ann2lo (same instant, so by id), bob1, ann1,
		// bobHi, bobLo (the same), bob0. ann3 is given in a zone ahead of UTC and bob1
		// in one behind it, so a store that orders by local wall time gets them wrong;
		// ann1 and bob1 differ by a microsecond.
		ann3 := at(ann, base.Add(3*time.Hour).In(zoneNPT))
		ann2lo := at(ann, base.Add(2*time.Hour+500*time.Microsecond))
		ann2hi := at(ann, ann2lo.CreatedAt.In(zoneIST))
		if ann2hi.ID < ann2lo.ID {
			ann2hi.ID, ann2lo.ID = ann2lo.ID, ann2hi.ID
		}
		bob1 := at(bob, base.Add(time.Hour+time.Microsecond).In(zoneHST))
		ann1 := at(ann, base.Add(time.Hour))
		bobLo := at(bob, base.Add(30*time.Minute))
		bobHi := at(bob, bobLo.CreatedAt)
		if bobHi.ID < bobLo.ID {
			bobHi.ID, bobLo.ID = bobLo.ID, bobHi.ID
		}
		bob0 := at(bob, base)
		// Inserted neither in list order nor its reverse, and one tie's higher id
		// first but the other's last, so neither insertion order nor its reverse
		// passes for the ordering by id.
		for _, k := range []keys.Key{ann1, ann2hi, bobLo, bob0, ann3, ann2lo, bobHi, bob1} {
			createKey(t, s, k)
		}

		for _, tc := range []struct {
			name  string
			owner string
			limit int
			want  []keys.Key
		}{
			{"AllOwners", "", 100, []keys.Key{ann3, ann2hi, ann2lo, bob1, ann1, bobHi, bobLo, bob0}},
			{"AllOwnersLimit", "", 4, []keys.Key{ann3, ann2hi, ann2lo, bob1}},
			{"AllOwnersLimitOne", "", 1, []keys.Key{ann3}},
			{"Owner", ann, 100, []keys.Key{ann3, ann2hi, ann2lo, ann1}},
			{"OwnerLimit", ann, 2, []keys.Key{ann3, ann2hi}},
			{"OtherOwner", bob, 100, []keys.Key{bob1, bobHi, bobLo, bob0}},
			{"OwnerExactLimit", bob, 4, []keys.Key{bob1, bobHi, bobLo, bob0}},
			{"OwnerWithoutKeys", nobody, 100, nil},
			{"UnknownOwner", newID(), 100, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ListKeys(ctx, tc.owner, tc.limit)
				if err != nil {
					t.Fatalf("ListKeys(%q, %d): %v", tc.owner, tc.limit, err)
				}
				if !slices.Equal(keyIDs(got), keyIDs(tc.want)) {
					t.Fatalf("ListKeys(%q, %d) = %q, want %q", tc.owner, tc.limit, keyIDs(got), keyIDs(tc.want))
				}
				for i := range got {
					checkKey(t, "ListKeys", got[i], tc.want[i])
				}
			})
		}
	})

	t.Run("RevokeKey", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		owner := addOwner(t, s, "owner@example.com")
		k := newKey(t, owner)
		k.ExpiresAt = ptr(keyCreatedAt.Add(90 * 24 * time.Hour))
		bystander := newKey(t, owner)
		createKey(t, s, k)
		createKey(t, s, bystander)

		first := keyCreatedAt.Add(time.Hour + 654321*time.Microsecond).In(zoneIST)
		want := k
		want.RevokedAt = &first
		got, err := s.RevokeKey(ctx, k.ID, first)
		if err != nil {
			t.Fatalf("RevokeKey: %v", err)
		}
		checkKey(t, "RevokeKey", got, want)
		checkKey(t, "GetKey after RevokeKey", getKey(t, s, k.ID), want)

		// A second revocation, later or earlier, keeps the first time.
		for _, again := range []time.Time{first.Add(time.Hour), first.Add(-time.Hour)} {
			got, err = s.RevokeKey(ctx, k.ID, again)
			if err != nil {
				t.Fatalf("RevokeKey again at %s: %v", again.Format(time.RFC3339Nano), err)
			}
			checkKey(t, "RevokeKey again", got, want)
			checkKey(t, "GetKey after RevokeKey again", getKey(t, s, k.ID), want)
		}

		checkKey(t, "another key after RevokeKey", getKey(t, s, bystander.ID), bystander)

		_, err = s.RevokeKey(ctx, levqor.NewID("key"), first)
		checkNotFound(t, "RevokeKey of an unknown id", err)
	})

	t.Run("RollKey", func(t *testing.T) {
		t.Parallel()
		// at is the roll's expiry for the old key, in a zone other than UTC.
		at := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).In(zoneIST)
		for _, tc := range []struct {
			name       string
			oldExpires *time.Time
			want       time.Time
		}{
			{"NoExpiry", nil, at},
			{"LaterExpiry", ptr(at.Add(30 * 24 * time.Hour)), at},
			{"LaterByAMicrosecond", ptr(at.Add(time.Microsecond)), at},
			{"SameExpiry", ptr(at), at},
			{"EarlierByAMicrosecond", ptr(at.Add(-time.Microsecond)), at.Add(-time.Microsecond)},
			{"EarlierExpiry", ptr(at.Add(-time.Hour).In(zoneHST)), at.Add(-time.Hour)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				s, ctx := open(t), t.Context()
				owner := addOwner(t, s, "owner@example.com")
				old := newKey(t, owner)
				old.ExpiresAt = tc.oldExpires
				bystander := newKey(t, owner)
				createKey(t, s, old)
				createKey(t, s, bystander)
				next := newKey(t, owner)
				next.Name = "rolled"
				next.Scopes = []string{keys.ScopeMetricsRead, keys.ScopeJobsWrite}
				next.CreatedAt = keyCreatedAt.Add(time.Minute)
				next.ExpiresAt = ptr(at.Add(365 * 24 * time.Hour))

				got, err := s.RollKey(ctx, old.ID, at, next)
				if err != nil {
					t.Fatalf("RollKey: %v", err)
				}
				checkKey(t, "RollKey", got, next)
				checkKey(t, "GetKey of the next key", getKey(t, s, next.ID), next)
				byHash, err := s.GetKeyByHash(ctx, next.Hash)
				if err != nil {
					t.Fatalf("GetKeyByHash of the next key: %v", err)
				}
				checkKey(t, "GetKeyByHash of the next key", byHash, next)

				wantOld := old
				wantOld.ExpiresAt = &tc.want
				checkKey(t, "GetKey of the old key", getKey(t, s, old.ID), wantOld)
				checkKey(t, "another key after RollKey", getKey(t, s, bystander.ID), bystander)
			})
		}
	})

	t.Run("RollKeyUnknownOld", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		owner := addOwner(t, s, "owner@example.com")
		bystander := newKey(t, owner)
		createKey(t, s, bystander)
		next := newKey(t, owner)

		_, err := s.RollKey(ctx, levqor.NewID("key"), keyCreatedAt.Add(time.Hour), next)
		checkNotFound(t, "RollKey of an unknown id", err)
		_, err = s.GetKey(ctx, next.ID)
		checkNotFound(t, "GetKey of the next key after RollKey of an unknown id", err)
		_, err = s.GetKeyByHash(ctx, next.Hash)
		checkNotFound(t, "GetKeyByHash of the next key after RollKey of an unknown id", err)
		checkKey(t, "another key after RollKey of an unknown id", getKey(t, s, bystander.ID), bystander)
	})

	t.Run("RollKeyInsertFails", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name       string
			oldExpires *time.Time
			// spoil makes next impossible to insert, given the old key and another.
			spoil func(next *keys.Key, old, other keys.Key)
		}{
			{"DuplicateHashNoExpiry", nil, func(next *keys.Key, _, other keys.Key) {
				next.Hash = bytes.Clone(other.Hash)
			}},
			{"DuplicateHashLaterExpiry", ptr(keyCreatedAt.Add(48 * time.Hour)), func(next *keys.Key, _, other keys.Key) {
				next.Hash = bytes.Clone(other.Hash)
			}},
			{"OldKeysHash", nil, func(next *keys.Key, old, _ keys.Key) {
				next.Hash = bytes.Clone(old.Hash)
			}},
			{"DuplicateID", nil, func(next *keys.Key, _, other keys.Key) {
				next.ID = other.ID
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				s, ctx := open(t), t.Context()
				owner := addOwner(t, s, "owner@example.com")
				old := newKey(t, owner)
				old.ExpiresAt = tc.oldExpires
				other := newKey(t, owner)
				createKey(t, s, old)
				createKey(t, s, other)
				next := newKey(t, owner)
				tc.spoil(&next, old, other)

				if _, err := s.RollKey(ctx, old.ID, keyCreatedAt.Add(time.Hour), next); err == nil {
					t.Fatalf("RollKey whose next key cannot be inserted: no error, want one")
				}
				checkKey(t, "old key after the failed RollKey", getKey(t, s, old.ID), old)
				checkKey(t, "other key after the failed RollKey", getKey(t, s, other.ID), other)
				all, err := s.ListKeys(ctx, "", 10)
				if err != nil {
					t.Fatalf("ListKeys: %v", err)
				}
				if len(all) != 2 {
					t.Errorf("ListKeys after the failed RollKey = %q, want only the old and the other key", keyIDs(all))
				}
			})
		}
	})

	t.Run("TouchKey", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		owner := addOwner(t, s, "owner@example.com")
		k := newKey(t, owner)
		bystander := newKey(t, owner)
		createKey(t, s, k)
		createKey(t, s, bystander)

		want := k
		for _, used := range []time.Time{
			keyCreatedAt.Add(time.Minute + 111111*time.Microsecond).In(zoneIST),
			keyCreatedAt.Add(2*time.Hour + 222222*time.Microsecond).In(zoneHST),
		} {
			if err := s.TouchKey(ctx, k.ID, used); err != nil {
				t.Fatalf("TouchKey at %s: %v", used.Format(time.RFC3339Nano), err)
			}
			want.LastUsedAt = &used
			checkKey(t, "GetKey after TouchKey", getKey(t, s, k.ID), want)
		}
		checkKey(t, "another key after TouchKey", getKey(t, s, bystander.ID), bystander)
	})
}
