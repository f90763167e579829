package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"
)

// ErrNoPgDump is returned by Postgres when pg_dump is not installed: Levqor does not
// pretend to back up PostgreSQL itself.
var ErrNoPgDump = errors.New("pg_dump is not on PATH: back up PostgreSQL with `pg_dump -Fc` (or your provider's snapshots)")

// maxPgDumpStderr bounds how much of pg_dump's complaint an error quotes.
const maxPgDumpStderr = 2 << 10

// Postgres runs pg_dump -Fc (the custom format pg_restore reads) for the database at
// databaseURL into dir as Name(now, PostgresExt), through a temporary file renamed into
// place once pg_dump succeeded. databaseURL is the one pgx reads; pgDumpCommand says
// how it becomes pg_dump's. The password travels in PGPASSWORD, never on the command
// line, where other users could read it.
func Postgres(ctx context.Context, databaseURL, dir string, now time.Time) (Result, error) {
	start := time.Now()
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		return Result{}, ErrNoPgDump
	}
	args, password, err := pgDumpCommand(databaseURL)
	if err != nil {
		return Result{}, err
	}
	env := os.Environ()
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	return publish(dir, PostgresExt, now, start, func(tmp *os.File) error {
		cmd := exec.CommandContext(ctx, pgDump, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = tmp, &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if len(msg) > maxPgDumpStderr {
				msg = msg[:maxPgDumpStderr] + "…"
			}
			return fmt.Errorf("backup: pg_dump: %w: %s", err, msg)
		}
		if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
			return fmt.Errorf("backup: sync dump: %w", err)
		}
		return nil
	})
}

// libpqParams are the connection parameters libpq (and so pg_dump) accepts in a
// URL's query. pgx accepts more: its own settings (pool_max_conns,
// statement_cache_capacity, …) and any other name, which it sends as a run-time
// setting (search_path, statement_timeout, …); libpq refuses both ("invalid URI
// query parameter").
var libpqParams = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "passfile": true,
	"channel_binding": true, "connect_timeout": true, "client_encoding": true, "options": true,
	"application_name": true, "fallback_application_name": true, "keepalives": true,
	"keepalives_idle": true, "keepalives_interval": true, "keepalives_count": true,
	"tcp_user_timeout": true, "gssencmode": true, "sslmode": true, "requiressl": true,
	"sslcompression": true, "sslcert": true, "sslkey": true, "sslpassword": true, "sslcertmode": true,
	"sslrootcert": true, "sslcrl": true, "sslcrldir": true, "sslsni": true, "sslnegotiation": true,
	"requirepeer": true, "require_auth": true, "ssl_min_protocol_version": true,
	"ssl_max_protocol_version": true, "krbsrvname": true, "gsslib": true, "gssdelegation": true,
	"service": true, "target_session_attrs": true, "load_balance_hosts": true,
	"ssl": true, // ssl=true, libpq's JDBC-style spelling of sslmode=require
}

// pgDumpCommand turns the pgx URL of LEVQOR_DATABASE_URL into pg_dump's arguments and
// the password to pass in PGPASSWORD:
//   - the password (of the user info or a password parameter) leaves the URL;
//   - the parameters libpq knows stay; pgx's own settings and run-time settings go
//     (pg_dump sets its own session: search_path, timeouts, …);
//   - search_path, which names where Levqor's tables are (a schema of their own in a
//     shared database), becomes one --schema per schema in it, so the archive holds
//     Levqor's schema rather than every schema of the database. When a schema of it
//     cannot be named ("$user" without a user in the URL), the whole database is dumped:
//     more than needed, never less.
func pgDumpCommand(databaseURL string) (args []string, password string, err error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, "", errors.New("backup: LEVQOR_DATABASE_URL is not a valid URL") // the URL may hold a password: not quoted
	}
	if pw, ok := u.User.Password(); ok {
		password = pw
		u.User = url.User(u.User.Username())
	}
	// The query is filtered pair by pair, in order and as written: libpq, like pgx, lets
	// the last of repeated parameters win.
	var kept []string
	var schemas []string
	for _, pair := range strings.Split(u.RawQuery, "&") {
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err1 := url.PathUnescape(rawKey) // as libpq decodes: %XX only, a + stays a +
		value, err2 := url.PathUnescape(rawValue)
		if err1 != nil || err2 != nil {
			return nil, "", errors.New("backup: LEVQOR_DATABASE_URL has a malformed query parameter")
		}
		switch {
		case key == "password":
			password = value
		case key == "search_path":
			if schemas, err = searchPathSchemas(value, u.User.Username()); err != nil {
				return nil, "", fmt.Errorf("backup: LEVQOR_DATABASE_URL: search_path: %w", err)
			}
		case libpqParams[key]:
			kept = append(kept, pair)
		}
	}
	u.RawQuery = strings.Join(kept, "&")
	args = []string{"--format=custom", "--no-password", "--dbname=" + u.String()}
	for _, s := range schemas {
		args = append(args, "--schema="+schemaPattern(s))
	}
	return args, password, nil
}

// searchPathSchemas lists the schemas a search_path setting names, as PostgreSQL reads
// the list: comma-separated identifiers, unquoted ones folded to lower case, quoted ones
// as written ("" inside quotes is one quote); "$user" is user. System schemas (pg_*,
// which no user schema may be named) are left out. It returns nil, meaning every
// schema, when "$user" cannot be named (user is empty) or nothing else is left; an
// error when the list is malformed, as the server would refuse it.
func searchPathSchemas(v, user string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	unnamed := false // "$user" without a user
	rest := strings.TrimLeft(v, " \t\n\r")
	if rest == "" {
		return nil, nil // an empty search_path: no schema is Levqor's in particular
	}
	for {
		var name string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				if rest[i] != '"' {
					b.WriteByte(rest[i])
					continue
				}
				if i+1 < len(rest) && rest[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			if i >= len(rest) {
				return nil, errors.New("unterminated quoted identifier")
			}
			name, rest = b.String(), rest[i+1:]
		} else {
			end := strings.IndexAny(rest, ", \t\n\r")
			if end < 0 {
				end = len(rest)
			}
			name, rest = asciiLower(rest[:end]), rest[end:]
		}
		if name == "" {
			return nil, errors.New("empty schema name")
		}
		switch {
		case name == "$user" && user == "":
			unnamed, name = true, ""
		case name == "$user":
			name = user
		case strings.HasPrefix(name, "pg_"):
			name = ""
		}
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
		rest = strings.TrimLeft(rest, " \t\n\r")
		if rest == "" && unnamed {
			return nil, nil
		}
		if rest == "" {
			return out, nil
		}
		if rest[0] != ',' {
			return nil, errors.New("want a comma between schema names")
		}
		rest = strings.TrimLeft(rest[1:], " \t\n\r")
	}
}

// asciiLower folds ASCII letters only, as PostgreSQL folds unquoted identifiers in
// UTF-8 databases.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// schemaPattern is a pg_dump --schema pattern that matches exactly the schema name:
// inside double quotes no pattern character (*, ?, ., regular expression syntax) is
// special, and a quote is written twice.
func schemaPattern(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
