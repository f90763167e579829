package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/levqor/levqor/store/sqlite"
)

// The bare servers are this program re-executed in a hidden mode, named by its
// first argument; none is listed in -help. Each answers one levqor route the
// plain net/http way, for levqor to be compared with.
const (
	bareHealthFlag = "-bare-health" // GET /health
	bareUserFlag   = "-bare-user"   // GET /api/v1/users/{id} from levqor's SQLite file
	bareIntakeFlag = "-bare-intake" // POST /api/v1/intake into a SQLite file of its own
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
	db, err := sql.Open("sqlite", sqlite.DSN(path, true))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(sqlite.ReadPoolSize)
	db.SetMaxIdleConns(sqlite.ReadPoolSize)
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

// runBareIntake serves POST /api/v1/intake by storing each request's body as one
// row of a jobs table in a new SQLite file at -db, opened like levqor's writer.
// It does no authentication, rate limiting, validation, batching or logging,
// and runs nothing: what a comparison with it measures is everything levqor does
// around one durable insert per request.
func runBareIntake(args []string) error {
	return runBareInsert(bareIntakeFlag, args, createIntakeDB, insertBareJob, bareIntakeHandler)
}

// runBareInsert runs a bare mode that inserts each request into a SQLite file: it
// creates the file -db with create, prepares insert on it and serves handler(the
// statement) on -addr.
func runBareInsert(mode string, args []string, create func(context.Context, string) (*sql.DB, error),
	insert string, handler func(*sql.Stmt) http.Handler) error {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback host:port to listen on")
	dbPath := fs.String("db", "", "the SQLite file to create (it must not exist)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := create(context.Background(), *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	stmt, err := db.Prepare(insert)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	defer stmt.Close()
	return serveBare(*addr, handler(stmt))
}

// bareJobsSchema is a narrow cousin of levqor's jobs table (sql/sqlite/migrations/
// 0003_jobs.sql): a text primary key, the payload as text, a status and a
// creation time, and one secondary index, on the creation time as levqor's
// jobs_created. levqor's row is wider and it keeps five more indexes.
const bareJobsSchema = `
CREATE TABLE jobs (
    id         TEXT     NOT NULL PRIMARY KEY,
    payload    TEXT     NOT NULL,
    status     TEXT     NOT NULL,
    created_at DATETIME NOT NULL
);
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);`

const insertBareJob = `INSERT INTO jobs (id, payload, status, created_at) VALUES (?, ?, 'queued', ?)`

// createIntakeDB creates the SQLite file at path with bareJobsSchema and returns
// it opened like levqor's writer: sqlite.DSN(path, false), so WAL, synchronous NORMAL,
// busy_timeout 5000, foreign keys on and BEGIN IMMEDIATE, through one connection.
// An existing file is refused, so that a slip cannot write into levqor's.
func createIntakeDB(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("-db: want the path of a SQLite file to create")
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("-db: %s exists; want a new file", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("-db: %w", err)
	}
	db, err := sql.Open("sqlite", sqlite.DSN(path, false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if _, err := db.ExecContext(ctx, bareJobsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return db, nil
}

// bareIntakeHandler answers POST /api/v1/intake with 202 and a small JSON body
// once the request's body is stored by insert (insertBareJob) under a new id,
// and GET /health as levqor does, for the bench to see that it is up.
func bareIntakeHandler(insert *sql.Stmt) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, healthBody)
	})
	mux.HandleFunc("POST /api/v1/intake", func(w http.ResponseWriter, r *http.Request) {
		payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 512<<10))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		id := "job_" + rand.Text()
		if _, err := insert.ExecContext(r.Context(), id, string(payload), time.Now().UTC()); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"job_id":"`+id+`","status":"queued"}`+"\n")
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
