package backup

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPgDumpCommand: pg_dump gets a URL libpq accepts (pgx's own and run-time
// parameters gone, libpq's kept in order), the password only through PGPASSWORD, and
// search_path as exact --schema patterns.
func TestPgDumpCommand(t *testing.T) {
	cases := []struct {
		name, url    string
		wantDB       string
		wantSchemas  []string
		wantPassword string
	}{
		{"plain", "postgres://levqor@db:5432/levqor?sslmode=require",
			"postgres://levqor@db:5432/levqor?sslmode=require", nil, ""},
		{"per-test schema, as storetest.PostgresURL makes it", "postgres://postgres@127.0.0.1:5432/test?search_path=t_0a1b2c&sslmode=disable",
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", []string{`"t_0a1b2c"`}, ""},
		{"pgx settings and run-time settings dropped", "postgres://u@h/d?pool_max_conns=20&statement_cache_capacity=0&default_query_exec_mode=exec&statement_timeout=5000&application_name=levqor&connect_timeout=5",
			"postgres://u@h/d?application_name=levqor&connect_timeout=5", nil, ""},
		{"password of the user info", "postgres://u:s3cr%40t@h/d",
			"postgres://u@h/d", nil, "s3cr@t"},
		{"password parameter, which wins as in libpq", "postgres://u:old@h/d?password=n%2Bw+x&sslmode=verify-full",
			"postgres://u@h/d?sslmode=verify-full", nil, "n+w+x"},
		{"quoted, mixed case, pattern characters", `postgres://u@h/d?search_path=%22Lev%22%22qor.*%22,%20Public`,
			"postgres://u@h/d", []string{`"Lev""qor.*"`, `"public"`}, ""},
		{"$user is the URL's user; system schemas left out", `postgres://app@h/d?search_path=%22$user%22,pg_catalog,app,public`,
			"postgres://app@h/d", []string{`"app"`, `"public"`}, ""},
		{"$user without a user: the whole database", `postgres://h/d?search_path=$user,public`,
			"postgres://h/d", nil, ""},
		{"the last search_path wins", `postgres://u@h/d?search_path=a&search_path=b`,
			"postgres://u@h/d", []string{`"b"`}, ""},
		{"repeated libpq parameters kept in order", `postgres://u@h/d?sslmode=disable&host=x&sslmode=require`,
			"postgres://u@h/d?sslmode=disable&host=x&sslmode=require", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args, pw, err := pgDumpCommand(c.url)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string{"--format=custom", "--no-password", "--dbname=" + c.wantDB}, prefixed("--schema=", c.wantSchemas)...)
			if !slices.Equal(args, want) || pw != c.wantPassword {
				t.Errorf("pgDumpCommand(%q) = %q, password %q\nwant %q, password %q", c.url, args, pw, want, c.wantPassword)
			}
			if pw != "" && strings.Contains(strings.Join(args, " "), pw) {
				t.Errorf("the password is on the command line: %q", args)
			}
		})
	}
	for _, bad := range []string{"postgres://u@h/d?search_path=%22unterminated", "postgres://u@h/d?search_path=a,,b", "postgres://u@h/d?x=%zz", "postgres://u@h/d?search_path=a%20b"} {
		if args, _, err := pgDumpCommand(bad); err == nil {
			t.Errorf("pgDumpCommand(%q) = %q, want an error", bad, args)
		}
	}
	if _, _, err := pgDumpCommand("postgres://u:pw@h:port/d"); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("an unparsable URL: %v (must fail without quoting it)", err)
	}
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// TestSearchPathSchemas: PostgreSQL's reading of an identifier list.
func TestSearchPathSchemas(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  ", nil},
		{"levqor", []string{"levqor"}},
		{" LevQor ,\tpublic ", []string{"levqor", "public"}},
		{`"LevQor"`, []string{"LevQor"}},
		{`"a,b" , "c""d"`, []string{"a,b", `c"d`}},
		{`"$user", public`, []string{"me", "public"}},
		{`public, PUBLIC, "public"`, []string{"public"}},
		{`pg_catalog, pg_temp`, nil},
		{`"Ünïcode", ÄB`, []string{"Ünïcode", "Äb"}}, // unquoted: ASCII letters fold only
	}
	for _, c := range cases {
		got, err := searchPathSchemas(c.in, "me")
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("searchPathSchemas(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`"`, `"a`, `a,`, `,a`, `a b`, `"a"b`, `a,,b`, `""`} {
		if got, err := searchPathSchemas(bad, "me"); err == nil {
			t.Errorf("searchPathSchemas(%q) = %q, want an error", bad, got)
		}
	}
	// Without a user, "$user" makes it every schema, but a malformed list is still refused.
	if got, err := searchPathSchemas(`$user, levqor`, ""); got != nil || err != nil {
		t.Errorf(`searchPathSchemas("$user, levqor", no user) = %q, %v; want nil (every schema)`, got, err)
	}
	if _, err := searchPathSchemas(`$user,,levqor`, ""); err == nil {
		t.Error(`searchPathSchemas("$user,,levqor", no user): no error`)
	}
}

// FuzzSearchPathSchemas: any input either fails or yields non-empty, distinct names
// outside pg_*, and every name, written back as a quoted identifier list, reads the same.
func FuzzSearchPathSchemas(f *testing.F) {
	for _, s := range []string{"", "a", `"a""b", C`, `$user,public`, `"x,y"`, "a ,\tb", `"`, "pg_x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := searchPathSchemas(v, "me")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		quoted := make([]string, len(got))
		for i, s := range got {
			if s == "" || seen[s] || strings.HasPrefix(s, "pg_") {
				t.Fatalf("searchPathSchemas(%q) = %q", v, got)
			}
			if utf8.ValidString(v) && !utf8.ValidString(s) {
				t.Fatalf("searchPathSchemas(%q) made invalid UTF-8 %q", v, s)
			}
			seen[s] = true
			quoted[i] = `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		}
		again, err := searchPathSchemas(strings.Join(quoted, ","), "me")
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("round trip of %q: %q, %v; want %q", v, again, err, got)
		}
	})
}
