package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/users"
)

// createdAt is the creation time of test users: not in UTC, at microsecond precision
// (the finest PostgreSQL keeps), so that a store that drops the zone conversion or
// truncates to seconds or milliseconds fails.
var createdAt = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.FixedZone("IST", 5*3600+1800))

// newUser returns a user with every field set, a fresh id and the given email.
func newUser(email string) users.User {
	return users.User{
		ID:       newID(),
		Email:    email,
		Name:     "Zoë Ångström",
		Locale:   "sv-SE",
		Currency: "SEK",
		Plan:     "free",
		// Decoded JSON, so numbers are float64: what a round trip must give back.
		Meta: map[string]any{
			"source": "signup",
			"score":  4.5,
			"flags":  []any{"beta", true, nil, float64(3)},
			"utm": map[string]any{
				"campaign": "launch 🚀",
				"nested":   map[string]any{"depth": float64(2), "empty": map[string]any{}},
			},
		},
		CreatedAt: createdAt,
		UpdatedAt: createdAt,
	}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "usr_" + hex.EncodeToString(b[:])
}

// checkUser reports every field of got that differs from want. Times must be the
// same instant and in UTC.
func checkUser(t *testing.T, what string, got, want users.User) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want string
	}{
		{"ID", got.ID, want.ID},
		{"Email", got.Email, want.Email},
		{"Name", got.Name, want.Name},
		{"Locale", got.Locale, want.Locale},
		{"Currency", got.Currency, want.Currency},
		{"Plan", got.Plan, want.Plan},
	} {
		if f.got != f.want {
			t.Errorf("%s: %s = %q, want %q", what, f.name, f.got, f.want)
		}
	}
	if !reflect.DeepEqual(got.Meta, want.Meta) {
		t.Errorf("%s: Meta = %#v, want %#v", what, got.Meta, want.Meta)
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
	} {
		if !f.got.Equal(f.want) {
			t.Errorf("%s: %s = %s, want %s", what, f.name, f.got.Format(time.RFC3339Nano), f.want.Format(time.RFC3339Nano))
		}
		if f.got.Location() != time.UTC {
			t.Errorf("%s: %s is in %q, want UTC", what, f.name, f.got.Location())
		}
	}
}

// checkNotFound fails unless err carries levqor.ENotFound.
func checkNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if code := levqor.ErrorCode(err); code != levqor.ENotFound {
		t.Errorf("%s: error code %q (err %v), want %q", what, code, err, levqor.ENotFound)
	}
}

// RunUsers checks an engine's users.Store; open returns a fresh, migrated store.
func RunUsers(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("CreateUserIfAbsent", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		want := newUser("ann@example.com")

		got, created, err := s.CreateUserIfAbsent(ctx, want)
		if err != nil {
			t.Fatalf("CreateUserIfAbsent: %v", err)
		}
		if !created {
			t.Errorf("CreateUserIfAbsent of a new email: created = false, want true")
		}
		checkUser(t, "CreateUserIfAbsent", got, want)

		byID, err := s.GetUser(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		checkUser(t, "GetUser", byID, want)
		byEmail, err := s.GetUserByEmail(ctx, want.Email)
		if err != nil {
			t.Fatalf("GetUserByEmail: %v", err)
		}
		checkUser(t, "GetUserByEmail", byEmail, want)
	})

	t.Run("CreateUserIfAbsentExistingEmail", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		original := newUser("bob@example.com")
		if _, created, err := s.CreateUserIfAbsent(ctx, original); err != nil || !created {
			t.Fatalf("first CreateUserIfAbsent: created=%v err=%v", created, err)
		}

		// Every field but the email differs, so any field taken from it shows.
		second := users.User{
			ID: newID(), Email: original.Email, Name: "Impostor", Locale: "fr-FR", Currency: "EUR", Plan: "pro",
			Meta:      map[string]any{"source": "import"},
			CreatedAt: createdAt.Add(time.Hour), UpdatedAt: createdAt.Add(2 * time.Hour),
		}
		got, created, err := s.CreateUserIfAbsent(ctx, second)
		if err != nil {
			t.Fatalf("second CreateUserIfAbsent: %v", err)
		}
		if created {
			t.Errorf("second CreateUserIfAbsent of one email: created = true, want false")
		}
		checkUser(t, "second CreateUserIfAbsent", got, original)

		stored, err := s.GetUserByEmail(ctx, original.Email)
		if err != nil {
			t.Fatalf("GetUserByEmail: %v", err)
		}
		checkUser(t, "GetUserByEmail after the second create", stored, original)
		_, err = s.GetUser(ctx, second.ID)
		checkNotFound(t, "GetUser of the id that lost", err)
	})

	t.Run("CreateUserIfAbsentNilMeta", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		u := newUser("nometa@example.com")
		u.Meta = nil
		if _, _, err := s.CreateUserIfAbsent(ctx, u); err != nil {
			t.Fatalf("CreateUserIfAbsent with nil Meta: %v", err)
		}
		got, err := s.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		if len(got.Meta) != 0 {
			t.Errorf("Meta stored from nil = %#v, want empty", got.Meta)
		}
	})

	t.Run("CreateUserIfAbsentConcurrent", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		const callers = 50
		const email = "race@example.com"

		tries := make([]users.User, callers)
		for i := range tries {
			tries[i] = newUser(email)
			tries[i].Name = fmt.Sprintf("caller %d", i)
		}
		type result struct {
			u       users.User
			created bool
			err     error
		}
		results := make([]result, callers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				<-start
				u, created, err := s.CreateUserIfAbsent(ctx, tries[i])
				results[i] = result{u, created, err}
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, r := range results {
			if r.err != nil {
				t.Errorf("caller %d: %v", i, r.err)
				continue
			}
			if r.created {
				if winner >= 0 {
					t.Errorf("callers %d and %d both report created = true", winner, i)
				}
				winner = i
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		if winner < 0 {
			t.Fatalf("no caller reports created = true")
		}
		for i, r := range results {
			checkUser(t, fmt.Sprintf("caller %d", i), r.u, tries[winner])
		}
		stored, err := s.GetUserByEmail(ctx, email)
		if err != nil {
			t.Fatalf("GetUserByEmail: %v", err)
		}
		checkUser(t, "GetUserByEmail after the race", stored, tries[winner])
		for i, u := range tries {
			if i == winner {
				continue
			}
			if _, err := s.GetUser(ctx, u.ID); levqor.ErrorCode(err) != levqor.ENotFound {
				t.Errorf("GetUser of losing caller %d's id: err %v, want %q", i, err, levqor.ENotFound)
			}
		}
	})

	t.Run("GetNotFound", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		// One other user, so a store that returns any row it finds fails.
		other := newUser("present@example.com")
		if _, _, err := s.CreateUserIfAbsent(ctx, other); err != nil {
			t.Fatalf("CreateUserIfAbsent: %v", err)
		}
		for _, tc := range []struct {
			name string
			get  func() (users.User, error)
		}{
			{"GetUser", func() (users.User, error) { return s.GetUser(ctx, newID()) }},
			{"GetUserEmptyID", func() (users.User, error) { return s.GetUser(ctx, "") }},
			{"GetUserByEmail", func() (users.User, error) { return s.GetUserByEmail(ctx, "absent@example.com") }},
			{"GetUserByEmailEmpty", func() (users.User, error) { return s.GetUserByEmail(ctx, "") }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u, err := tc.get()
				checkNotFound(t, tc.name, err)
				if u.ID != "" {
					t.Errorf("%s: returned user %q along with the error", tc.name, u.ID)
				}
			})
		}
	})

	t.Run("UpdateUser", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		orig := newUser("carol@example.com")
		bystander := newUser("dave@example.com")
		for _, u := range []users.User{orig, bystander} {
			if _, _, err := s.CreateUserIfAbsent(ctx, u); err != nil {
				t.Fatalf("CreateUserIfAbsent(%s): %v", u.Email, err)
			}
		}

		later := createdAt.Add(36*time.Hour + 123456*time.Microsecond)
		in := users.User{
			ID:       orig.ID,
			Email:    "mallory@example.com", // immutable: must be ignored
			Name:     "Carol B.",
			Locale:   "de-DE",
			Currency: "EUR",
			Plan:     "pro",
			// Replaces the old object: "source" and "utm" must be gone.
			Meta:      map[string]any{"plan_history": []any{"free", "pro"}, "seats": float64(5)},
			CreatedAt: createdAt.Add(-24 * time.Hour), // immutable: must be ignored
			UpdatedAt: later,
		}
		want := in
		want.Email, want.CreatedAt = orig.Email, orig.CreatedAt

		got, err := s.UpdateUser(ctx, in)
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		checkUser(t, "UpdateUser", got, want)
		stored, err := s.GetUser(ctx, orig.ID)
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		checkUser(t, "GetUser after UpdateUser", stored, want)
		byEmail, err := s.GetUserByEmail(ctx, orig.Email)
		if err != nil {
			t.Fatalf("GetUserByEmail of the unchanged email: %v", err)
		}
		checkUser(t, "GetUserByEmail after UpdateUser", byEmail, want)
		_, err = s.GetUserByEmail(ctx, in.Email)
		checkNotFound(t, "GetUserByEmail of the email UpdateUser was given", err)

		other, err := s.GetUser(ctx, bystander.ID)
		if err != nil {
			t.Fatalf("GetUser(bystander): %v", err)
		}
		checkUser(t, "another user after UpdateUser", other, bystander)
	})

	t.Run("UpdateUserNotFound", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		u := newUser("ghost@example.com")
		_, err := s.UpdateUser(ctx, u)
		checkNotFound(t, "UpdateUser of a missing id", err)
		_, err = s.GetUser(ctx, u.ID)
		checkNotFound(t, "GetUser after UpdateUser of a missing id", err)
	})
}
