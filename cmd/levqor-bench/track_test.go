package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/store/sqlite"
)

// trackRow is the part of an analytics_events row that does not change from one
// insert to the next (id and created_at do).
type trackRow struct {
	Type, Path, Ref, Referrer, ReferrerHost, UTMSource, UTMMedium, UTMCampaign, EmailHash string
	Payload                                                                               sql.NullString
	Bot                                                                                   int64
}

func readTrackRows(t *testing.T, path string) []trackRow {
	t.Helper()
	db, err := sql.Open("sqlite", sqlite.DSN(path, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT type, path, ref, referrer, referrer_host, utm_source, utm_medium, utm_campaign, email_hash, payload, bot FROM analytics_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []trackRow
	for rows.Next() {
		var r trackRow
		if err := rows.Scan(&r.Type, &r.Path, &r.Ref, &r.Referrer, &r.ReferrerHost, &r.UTMSource, &r.UTMMedium, &r.UTMCampaign, &r.EmailHash, &r.Payload, &r.Bot); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBareTrackStoresLevqorsRow posts trackBody to the bare handler and tracks the
// same event through levqor's service, and expects the same row in both files.
func TestBareTrackStoresLevqorsRow(t *testing.T) {
	dir := t.TempDir()
	barePath := filepath.Join(dir, "bare.db")
	db, err := createTrackDB(t.Context(), barePath)
	if err != nil {
		t.Fatal(err)
	}
	insert, err := db.Prepare(insertBareEvent)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bareTrackHandler(insert))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/v1/metrics/track", "application/json", strings.NewReader(trackBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("bare track: %d", resp.StatusCode)
	}
	insert.Close()
	db.Close()
	if _, err := createTrackDB(t.Context(), barePath); err == nil {
		t.Error("createTrackDB opened an existing file")
	}

	levPath := filepath.Join(dir, "levqor.db")
	st, err := sqlite.Open(t.Context(), levPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	svc, err := analytics.NewService(st, []byte("bench-test-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Type, Ref, Referrer, Path string
		Payload                   json.RawMessage
	}
	if err := json.Unmarshal([]byte(trackBody), &e); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Track(t.Context(), analytics.TrackInput{Type: e.Type, Ref: e.Ref, Referrer: e.Referrer, Path: e.Path, Payload: e.Payload, UserAgent: "levqor-bench"}); err != nil {
		t.Fatal(err)
	}

	bare, lev := readTrackRows(t, barePath), readTrackRows(t, levPath)
	if len(bare) != 1 || len(lev) != 1 || bare[0] != lev[0] {
		t.Errorf("rows differ:\n bare   %+v\n levqor %+v", bare, lev)
	}
	if lev[0].UTMSource != "bench" || lev[0].ReferrerHost != "example.com" || lev[0].Bot != 0 {
		t.Errorf("levqor's row %+v: want utm_source bench, referrer host example.com, not a robot", lev[0])
	}
}
