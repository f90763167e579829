package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/store"
)

// connAt is the base time of credentials tests, in a zone that is not UTC so that
// a store keeping local times would show.
var connAt = time.Date(2025, 3, 9, 14, 15, 16, 123456000, zoneIST)

// newConnRecord returns a record for (owner, connector, name) written at `at`, whose
// sealed bytes include every byte value (NUL too) so that a store mangling binary
// data shows.
func newConnRecord(owner, connector, name string, at time.Time, fields ...string) credentials.Record {
	sealed := make([]byte, 0, 256+len(owner)+len(connector)+len(name))
	for i := range 256 {
		sealed = append(sealed, byte(i))
	}
	sealed = append(sealed, owner+"/"+connector+"/"+name...)
	r := credentials.Record{
		Connection: credentials.Connection{OwnerID: owner, Connector: connector, Name: name, CreatedAt: at, UpdatedAt: at},
		Sealed:     sealed,
	}
	for _, f := range fields {
		r.Fields = append(r.Fields, credentials.Field{Name: f, Last4: f[max(0, len(f)-4):]})
	}
	return r
}

// checkConnection fails the test where got differs from want's metadata.
func checkConnection(t *testing.T, what string, got, want credentials.Connection) {
	t.Helper()
	if got.OwnerID != want.OwnerID || got.Connector != want.Connector || got.Name != want.Name {
		t.Errorf("%s: identity (%q, %q, %q), want (%q, %q, %q)", what, got.OwnerID, got.Connector, got.Name, want.OwnerID, want.Connector, want.Name)
	}
	if !slices.Equal(got.Fields, want.Fields) {
		t.Errorf("%s: fields %+v, want %+v", what, got.Fields, want.Fields)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("%s: created_at %v, want %v in UTC", what, got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) || got.UpdatedAt.Location() != time.UTC {
		t.Errorf("%s: updated_at %v, want %v in UTC", what, got.UpdatedAt, want.UpdatedAt)
	}
}

// RunCredentials checks the credentials.Store contract.
func RunCredentials(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("PutGetReplace", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		first := newConnRecord("usr_a", "gmail", "default", connAt, "client_id", "client_secret", "refresh_token")
		got, err := s.PutConnection(ctx, first)
		if err != nil {
			t.Fatalf("PutConnection: %v", err)
		}
		checkConnection(t, "PutConnection (new)", got, first.Connection)

		rec, err := s.GetConnection(ctx, "usr_a", "gmail", "default")
		if err != nil {
			t.Fatalf("GetConnection: %v", err)
		}
		checkConnection(t, "GetConnection", rec.Connection, first.Connection)
		if !bytes.Equal(rec.Sealed, first.Sealed) {
			t.Errorf("GetConnection sealed = %x, want %x", rec.Sealed, first.Sealed)
		}

		// Replacing keeps the creation time and swaps everything else.
		later := connAt.Add(90 * time.Minute)
		second := newConnRecord("usr_a", "gmail", "default", later, "client_id")
		second.Sealed = []byte{0, 1, 2, 3}
		got, err = s.PutConnection(ctx, second)
		if err != nil {
			t.Fatalf("PutConnection (replace): %v", err)
		}
		want := second.Connection
		want.CreatedAt = connAt
		checkConnection(t, "PutConnection (replace)", got, want)
		rec, err = s.GetConnection(ctx, "usr_a", "gmail", "default")
		if err != nil {
			t.Fatalf("GetConnection after replace: %v", err)
		}
		checkConnection(t, "GetConnection after replace", rec.Connection, want)
		if !bytes.Equal(rec.Sealed, second.Sealed) {
			t.Errorf("GetConnection after replace: sealed = %x, want %x", rec.Sealed, second.Sealed)
		}
		list, err := s.ListConnections(ctx, "usr_a")
		if err != nil || len(list) != 1 {
			t.Fatalf("ListConnections after replace = %d connections, %v; want the one (unique by owner, connector, name)", len(list), err)
		}
	})

	t.Run("ListIsolatesOwnersAndSorts", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		// Put out of order; the same connector and name under other owners, and
		// the same name under other connectors, are distinct connections.
		recs := []credentials.Record{
			newConnRecord("usr_a", "slack", "work", connAt, "token"),
			newConnRecord("usr_a", "notion", "default", connAt.Add(time.Second), "token"),
			newConnRecord("usr_a", "slack", "default", connAt.Add(2*time.Second), "token"),
			newConnRecord("usr_b", "slack", "default", connAt.Add(3*time.Second), "token"),
			newConnRecord("", "slack", "default", connAt.Add(4*time.Second), "token"),
		}
		for _, r := range recs {
			if _, err := s.PutConnection(ctx, r); err != nil {
				t.Fatalf("PutConnection(%s, %s, %s): %v", r.OwnerID, r.Connector, r.Name, err)
			}
		}
		for _, tc := range []struct {
			owner string
			want  []credentials.Record
		}{
			{"usr_a", []credentials.Record{recs[1], recs[2], recs[0]}},
			{"usr_b", []credentials.Record{recs[3]}},
			{"", []credentials.Record{recs[4]}},
			{"usr_nobody", nil},
		} {
			got, err := s.ListConnections(ctx, tc.owner)
			if err != nil {
				t.Fatalf("ListConnections(%q): %v", tc.owner, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ListConnections(%q) = %d connections, want %d: %+v", tc.owner, len(got), len(tc.want), got)
			}
			for i := range got {
				checkConnection(t, "ListConnections("+tc.owner+")", got[i], tc.want[i].Connection)
			}
		}
		// Another owner's connection is not found under this owner.
		if _, err := s.GetConnection(ctx, "usr_b", "slack", "work"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("GetConnection of another owner's connection: %v, want not_found", err)
		}
		rec, err := s.GetConnection(ctx, "usr_b", "slack", "default")
		if err != nil || !bytes.Equal(rec.Sealed, recs[3].Sealed) {
			t.Errorf("GetConnection(usr_b, slack, default) = %x, %v; want usr_b's own", rec.Sealed, err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		for _, r := range []credentials.Record{
			newConnRecord("usr_a", "slack", "default", connAt, "token"),
			newConnRecord("usr_b", "slack", "default", connAt, "token"),
		} {
			if _, err := s.PutConnection(ctx, r); err != nil {
				t.Fatalf("PutConnection: %v", err)
			}
		}
		if err := s.DeleteConnection(ctx, "usr_c", "slack", "default"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("DeleteConnection of another owner's connection: %v, want not_found", err)
		}
		if err := s.DeleteConnection(ctx, "usr_a", "slack", "other"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("DeleteConnection of a missing name: %v, want not_found", err)
		}
		if err := s.DeleteConnection(ctx, "usr_a", "slack", "default"); err != nil {
			t.Fatalf("DeleteConnection: %v", err)
		}
		if _, err := s.GetConnection(ctx, "usr_a", "slack", "default"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("GetConnection after delete: %v, want not_found", err)
		}
		if err := s.DeleteConnection(ctx, "usr_a", "slack", "default"); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("DeleteConnection twice: %v, want not_found", err)
		}
		if _, err := s.GetConnection(ctx, "usr_b", "slack", "default"); err != nil {
			t.Errorf("usr_b's connection after usr_a's was deleted: %v", err)
		}
	})
}
