package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/levqor/levqor/store/migrate"
	"github.com/levqor/levqor/store/sqlite"
)

const (
	// bareTrackFlag runs the bare server of track: POST /api/v1/metrics/track into a
	// SQLite file of its own.
	bareTrackFlag = "-bare-track"
	// trackBody is the event every request of track sends: a page view with a path,
	// UTM parameters in its ref, a referrer and a small payload.
	trackBody = `{"type":"page_view","path":"/pricing","ref":"https://levqor.ai/pricing?utm_source=bench&utm_medium=load&utm_campaign=track",` +
		`"referrer":"https://www.example.com/post","payload":{"plan":"pro","step":2}}`
	// trackTarget is levqor's share of the bare server's throughput that track aims at.
	trackTarget = 60.0 // %
)

// trackRequest is POST /api/v1/metrics/track of trackBody, as a browser's page
// would send it; the load generator's User-Agent (levqor-bench) is not a robot's,
// so levqor counts every event in its rollups. An answer counts when it is 202
// with an event id, which both servers send.
func trackRequest() loadRequest {
	return loadRequest{
		method: http.MethodPost,
		path:   "/api/v1/metrics/track",
		header: http.Header{"Content-Type": {"application/json"}},
		body:   []byte(trackBody),
		status: http.StatusAccepted,
		want:   []byte(`"id":"evt_`), contains: true,
	}
}

// runTrack compares POST /api/v1/metrics/track on levqor (its per-IP and global
// limits raised so that they never refuse) with a bare net/http handler that
// inserts the same row into the same table of a SQLite file of its own, opened
// like levqor's writer, one transaction per request. levqor also updates its
// rollups in the transaction that stores the events.
func runTrack(ctx context.Context, o options) (_ outcome, err error) {
	dir, err := os.MkdirTemp("", "levqor-bench-*")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(dir)

	var servers []*server
	defer func() { err = errors.Join(err, stopAll(servers)) }()
	lev, err := startReady(ctx, &servers, "/ready", func() (*server, error) {
		return startLevqor(o.bin, dir, "LEVQOR_RATE_LIMIT_IP="+benchRateLimit, "LEVQOR_RATE_LIMIT_GLOBAL="+benchRateLimit)
	})
	if err != nil {
		return outcome{}, err
	}
	bare, err := startReady(ctx, &servers, "/health", func() (*server, error) {
		return startBare(o.self, bareTrackFlag, "-db", filepath.Join(dir, "bare.db"))
	})
	if err != nil {
		return outcome{}, err
	}

	lr := trackRequest()
	levBody, bareBody, err := fetchBoth(ctx, lev, bare, lr)
	if err != nil {
		return outcome{}, err
	}
	fmt.Fprintf(o.out, "POST %s (%d-byte page view, no key); 202 bodies: levqor %d bytes, bare %d bytes\n",
		lr.path, len(lr.body), len(levBody), len(bareBody))
	c, err := compareThroughput(ctx, o, bare, lev, lr, nil)
	if err != nil {
		return outcome{}, err
	}
	fmt.Fprintf(o.out, "track: levqor at %.1f%% of bare (target ≥ %g%%)\n", c.RatioPct, trackTarget)
	return outcome{Checks: []check{atLeast("track levqor/bare req/s (medians)", c.RatioPct, "%", trackTarget)}, Details: c}, nil
}

// runBareTrack serves POST /api/v1/metrics/track by inserting each event as one
// row of levqor's analytics_events table (created by levqor's own migration) in
// the SQLite file -db, which it creates, opened like levqor's writer. It derives
// the row's columns from the body the plain way (net/url for the UTM parameters,
// the referrer's host and the path) and commits each insert on its own. It does no
// validation, rate limiting, bot filtering, rollups or logging.
func runBareTrack(args []string) error {
	return runBareInsert(bareTrackFlag, args, createTrackDB, insertBareEvent, bareTrackHandler)
}

const insertBareEvent = `INSERT INTO analytics_events (id, type, created_at, path, ref, referrer, referrer_host,
	utm_source, utm_medium, utm_campaign, email_hash, payload, bot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, 0)`

// createTrackDB creates the SQLite file at path with levqor's analytics migration
// and returns it opened like levqor's writer (sqlite.DSN, one connection). An
// existing file is refused, so that a slip cannot write into levqor's.
func createTrackDB(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("-db: want the path of a SQLite file to create")
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("-db: %s exists; want a new file", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("-db: %w", err)
	}
	migrations, err := migrate.Migrations("sqlite")
	if err != nil {
		return nil, err
	}
	schema := ""
	for _, m := range migrations {
		if strings.HasSuffix(m.Name, "_analytics.sql") {
			schema = m.SQL
		}
	}
	if schema == "" {
		return nil, errors.New("no analytics migration among levqor's")
	}
	db, err := sql.Open("sqlite", sqlite.DSN(path, false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return db, nil
}

// bareEvent is the body of POST /api/v1/metrics/track.
type bareEvent struct {
	Type     string          `json:"type"`
	Payload  json.RawMessage `json:"payload"`
	Ref      string          `json:"ref"`
	Referrer string          `json:"referrer"`
	Path     string          `json:"path"`
}

// bareTrackHandler answers POST /api/v1/metrics/track with 202 and the new event's
// id once insert (insertBareEvent) has stored it, and GET /health as levqor does.
func bareTrackHandler(insert *sql.Stmt) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, healthBody)
	})
	mux.HandleFunc("POST /api/v1/metrics/track", func(w http.ResponseWriter, r *http.Request) {
		var e bareEvent
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&e); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		var utm url.Values
		if u, err := url.Parse(e.Ref); err == nil {
			utm = u.Query()
		}
		var host string
		if u, err := url.Parse(e.Referrer); err == nil {
			host = strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
		}
		path, _, _ := strings.Cut(e.Path, "?")
		var payload sql.NullString
		if len(e.Payload) > 0 {
			payload = sql.NullString{String: string(e.Payload), Valid: true}
		}
		id := "evt_" + strings.ToLower(rand.Text())
		if _, err := insert.ExecContext(r.Context(), id, e.Type, time.Now().UTC(), path, e.Ref, e.Referrer, host,
			utm.Get("utm_source"), utm.Get("utm_medium"), utm.Get("utm_campaign"), payload); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"`+id+`"}`+"\n")
	})
	return mux
}
