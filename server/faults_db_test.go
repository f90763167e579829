package server_test

import (
	"database/sql"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store/postgres"
	"github.com/levqor/levqor/store/sqlite"
	"github.com/levqor/levqor/store/storetest"
)

// TestSQLiteFull fills a real SQLite file (PRAGMA max_page_count at its current
// size, as a full disk would): intake answers 507 storage_full problems with
// Retry-After, never 500, and /ready names the database; once there is room again
// intake is accepted, /ready is 200 and the file passes integrity_check.
func TestSQLiteFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levqor.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(o *testOptions) { o.Store = db }, withAdmin)
	ten := b.newTenant(t, "full@example.com")
	b.submit(t, ten.key, echoJob("full.v1"))

	pages, err := db.SetMaxPageCount(t.Context(), 1) // cannot go below the file's size: caps it there
	if err != nil {
		t.Fatal(err)
	}
	big := echoJob("full.v1")
	big["payload"] = map[string]any{"pad": strings.Repeat("x", 8<<10)}
	full := 0
	for i := 0; i < 200 && full == 0; i++ {
		resp, body := b.intake(t, ten.key, big, "")
		switch resp.StatusCode {
		case http.StatusAccepted:
		case http.StatusInsufficientStorage:
			p := problemOf(t, resp, body)
			if p.Code != "storage_full" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("507 with code %q, Retry-After %q", p.Code, resp.Header.Get("Retry-After"))
			}
			full++
		default:
			t.Fatalf("intake on a full file (%d pages): %d %s", pages, resp.StatusCode, body)
		}
	}
	if full == 0 {
		t.Fatalf("the file never filled at %d pages", pages)
	}
	time.Sleep(server.ReadyCacheTTL)
	resp, body := b.do(t, "GET", "/ready", nil, nil)
	if p := problemOf(t, resp, body); resp.StatusCode != http.StatusServiceUnavailable || p.Code != "unavailable" || !strings.Contains(string(body), `"database"`) {
		t.Errorf("/ready on a full file: %d %s", resp.StatusCode, body)
	}

	if _, err := db.SetMaxPageCount(t.Context(), 1<<30); err != nil {
		t.Fatal(err)
	}
	b.submit(t, ten.key, big)
	time.Sleep(server.ReadyCacheTTL)
	if resp, body := b.do(t, "GET", "/ready", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/ready with room again: %d %s", resp.StatusCode, body)
	}
	ro, err := sql.Open("sqlite", sqlite.DSN(path, true))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var check string
	if err := ro.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q %v", check, err)
	}
}

// tcpProxy forwards loopback connections to target until down is called; then its
// port is closed and every forwarded connection is cut, as when a database stops.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) down() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestPostgresDown: with PostgreSQL's port closed under a running server (its pool
// goes through a proxy that is then shut), intake and reads answer 503 unavailable
// problems with Retry-After, never 500, and /ready names the database.
func TestPostgresDown(t *testing.T) {
	u, err := url.Parse(storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()
	db, err := postgres.Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(o *testOptions) { o.Store = db }, withAdmin)
	ten := b.newTenant(t, "pgdown@example.com")
	acc := b.submit(t, ten.key, echoJob("down.v1"))

	proxy.down()
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/v1/intake"}, {"GET", "/api/v1/jobs/" + string(acc.JobId)}, {"GET", "/api/v1/jobs"},
	} {
		for range 3 { // the first request may meet a cut connection, later ones a refused dial
			var resp *http.Response
			var body []byte
			if c.method == "POST" {
				resp, body = b.intake(t, ten.key, echoJob("down.v1"), "")
			} else {
				resp, body = b.do(t, c.method, c.path, hdr(ten.key, ""), nil)
			}
			p := problemOf(t, resp, body)
			if resp.StatusCode != http.StatusServiceUnavailable || p.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("%s %s with PostgreSQL down: %d %q Retry-After %q %s", c.method, c.path, resp.StatusCode, p.Code, resp.Header.Get("Retry-After"), body)
			}
		}
	}
	resp, body := b.do(t, "GET", "/ready", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"database"`) {
		t.Errorf("/ready with PostgreSQL down: %d %s", resp.StatusCode, body)
	}
}
