package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver, as levqor's store does
)

// The bare servers are this program re-executed in a hidden mode, named by its
// first argument; none is listed in -help. Each answers one levqor route the
// plain net/http way, for levqor to be compared with.
const (
	bareHealthFlag = "-bare-health" // GET /health
	bareUserFlag   = "-bare-user"   // GET /api/v1/users/{id} from levqor's SQLite file
)

// healthBody is what levqor's GET /health answers, byte for byte.
const healthBody = "{\"status\":\"ok\"}\n"

// runBareHealth serves GET /health with healthBody. A comparison with it
// measures levqor's handler stack (middleware, router, validation, access log)
// and nothing else.
func runBareHealth(args []string) error {
	fs := flag.NewFlagSet(bareHealthFlag, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback host:port to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := []byte(healthBody)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	return serveBare(*addr, mux)
}

// runBareUser serves GET /api/v1/users/{id} from the users table of the SQLite
// file at -db, read through a pool like levqor's. It does no authentication,
// rate limiting or validation: that, and the rest of levqor's stack, is what a
// comparison with it measures.
func runBareUser(args []string) error {
	fs := flag.NewFlagSet(bareUserFlag, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback host:port to listen on")
	dbPath := fs.String("db", "", "levqor's SQLite file (it must exist)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openReadPool(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	return serveBare(*addr, bareUserHandler(db))
}

// readPoolSize and readDSN copy levqor's read side (store/sqlite: readPoolSize
// and dsn(path, true)), so that the bare server reads the row the same way.
const readPoolSize = 4

func readDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "query_only(1)")
	q.Set("_time_format", "sqlite")
	return "file:" + path + "?" + q.Encode()
}

// openReadPool opens the existing SQLite file at path for reading with
// readPoolSize connections. SQLite would create a missing file; a typo must
// fail instead.
func openReadPool(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("-db: want the path of levqor's SQLite file")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("-db: %w", err)
	}
	db, err := sql.Open("sqlite", readDSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(readPoolSize)
	db.SetMaxIdleConns(readPoolSize)
	db.SetConnMaxLifetime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// bareUser is a users row as JSON, with the field names (and order) of levqor's
// API User, so both servers send the same bytes. meta is stored as JSON text
// and sent as it is.
type bareUser struct {
	CreatedAt time.Time       `json:"created_at"`
	Currency  string          `json:"currency"`
	Email     string          `json:"email"`
	ID        string          `json:"id"`
	Locale    string          `json:"locale"`
	Meta      json.RawMessage `json:"meta"`
	Name      string          `json:"name"`
	Plan      string          `json:"plan"`
	UpdatedAt time.Time       `json:"updated_at"`
}

const selectUser = `SELECT id, email, name, locale, currency, plan, meta, created_at, updated_at FROM users WHERE id = ?`

// bareUserHandler answers GET /api/v1/users/{id} with the row as JSON, 404 when
// there is none.
func bareUserHandler(db *sql.DB) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		var u bareUser
		var meta string
		err := db.QueryRowContext(r.Context(), selectUser, r.PathValue("id")).Scan(
			&u.ID, &u.Email, &u.Name, &u.Locale, &u.Currency, &u.Plan, &meta, &u.CreatedAt, &u.UpdatedAt)
		if errors.Is(err, sql.ErrNoRows) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		u.Meta, u.CreatedAt, u.UpdatedAt = json.RawMessage(meta), u.CreatedAt.UTC(), u.UpdatedAt.UTC()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(u)
	})
	return mux
}

// serveBare serves handler on the loopback address addr until SIGTERM or
// SIGINT. The http.Server has levqor's settings, so only the handlers differ.
func serveBare(addr string, handler http.Handler) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr: want a loopback host:port, got %q", addr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
