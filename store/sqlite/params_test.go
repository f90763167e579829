package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

func TestAnonymousParams(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT ?1, ?2, ?3", "SELECT ?, ?, ?"},
		{"VALUES (?1, ?2, ?2, ?3)", "VALUES (?, ?, ?2, ?)"}, // a repeat keeps its number
		{"SELECT ?2, ?1", "SELECT ?2, ?1"},                  // ?2 first: a ? there would be 1
		{"SELECT ?1, ?, ?3", "SELECT ?, ?, ?"},              // the query's own ? is 2
		{"SELECT ?1, ?10, ?11", "SELECT ?, ?10, ?"},
		{"SELECT '?1', \"?1\", `?1`, [?1], ?1", "SELECT '?1', \"?1\", `?1`, [?1], ?"},
		{"SELECT 'it''s ?1', ?1", "SELECT 'it''s ?1', ?"},
		{"-- ?1 in a comment\nSELECT ?1 /* ?2 */, ?2", "-- ?1 in a comment\nSELECT ? /* ?2 */, ?"},
		{"SELECT 'open ?1", "SELECT 'open ?1"},
		{"SELECT ?1 -- to the end", "SELECT ? -- to the end"},
		{"SELECT ?1 /* open", "SELECT ? /* open"},
		{"SELECT ?", "SELECT ?"},
	} {
		if got := anonymousParams(c.in); got != c.want {
			t.Errorf("anonymousParams(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestAnonymousParamsBindAlike: SQLite binds a rewritten statement's arguments to
// the same places as the original's.
func TestAnonymousParamsBindAlike(t *testing.T) {
	db, err := sql.Open("sqlite", DSN(filepath.Join(t.TempDir(), "p.db"), false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"SELECT ?1, ?2, ?2, ?3, ?4, ?1",
		"SELECT ?2, ?1, ?3, ?4, ?4, ?3",
		"SELECT ?1 || '?2', ?2, ?3, ?4 /* ?3 */, ?3, ?1 -- ?5",
	} {
		args := []any{"a", "b", "c", "d"}
		want, got := make([]any, 6), make([]any, 6)
		wantp, gotp := make([]any, 6), make([]any, 6)
		for i := range want {
			wantp[i], gotp[i] = &want[i], &got[i]
		}
		if err := db.QueryRowContext(t.Context(), q, args...).Scan(wantp...); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		r := anonymousParams(q)
		if err := db.QueryRowContext(t.Context(), r, args...).Scan(gotp...); err != nil {
			t.Fatalf("%q: %v", r, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q gives %v; rewritten, %q gives %v", q, want, r, got)
		}
	}
}
