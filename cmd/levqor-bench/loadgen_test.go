package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantStatus int
		wantBody   string
		wantErr    bool
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 16\r\n\r\n{\"status\":\"ok\"}\n", 200, "{\"status\":\"ok\"}\n", false},
		{"empty body", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 204, "", false},
		{"no length", "HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nbody", 0, "", true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n", 0, "", true},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", 0, "", true},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 200, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := readResponse(bufio.NewReader(strings.NewReader(tt.in)), nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (status != tt.wantStatus || string(body) != tt.wantBody) {
				t.Errorf("got %d %q, want %d %q", status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 100000; i++ { // 1µs … 100ms, uniformly
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.01, 0.5, 0.99} {
		got, want := float64(h.quantile(q)), q*100000*float64(time.Microsecond)
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v within 1%%", q, time.Duration(got), time.Duration(want))
		}
	}
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 40, math.MaxUint64} {
		mid := bucketMid(bucketOf(v))
		if d := math.Abs(float64(mid) - float64(v)); d > float64(v)/128+1 {
			t.Errorf("bucketMid(bucketOf(%d)) = %d, off by more than 1/128", v, mid)
		}
	}
}

// TestGenerateLoadCounts checks the load generator against a real net/http
// server: every 200 with the expected body is counted, and nothing else is.
func TestGenerateLoadCounts(t *testing.T) {
	var served, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1)%10 == 0 {
			bad.Add(1)
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(healthBody))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	res := generateLoad(context.Background(), addr, loadRequest{path: "/health", want: []byte(healthBody)}, 4, 300*time.Millisecond)
	if res.Errors != 0 {
		t.Fatalf("%d connection errors", res.Errors)
	}
	if res.OK == 0 || int64(res.OK) != served.Load()-bad.Load() || int64(res.Other) != bad.Load() {
		t.Errorf("counted %d OK + %d other; server sent %d OK + %d errors", res.OK, res.Other, served.Load()-bad.Load(), bad.Load())
	}
	if res.latency.n != res.OK || res.latency.quantile(0.5) <= 0 {
		t.Errorf("latency has %d samples (p50 %v) for %d OK", res.latency.n, res.latency.quantile(0.5), res.OK)
	}
	if rps := res.RPS(); rps <= 0 {
		t.Errorf("RPS = %v", rps)
	}
}

// TestGenerateLoadHeaderAndContains checks that the extra header is sent on every
// request and that, with contains, a 200 counts only when its body holds want.
func TestGenerateLoadHeaderAndContains(t *testing.T) {
	var served, good atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		switch {
		case r.Header.Get("X-Api-Key") != "secret" || r.URL.Path != "/api/v1/users/usr_1":
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		case n%5 == 0: // a 200 about someone else
			fmt.Fprintf(w, `{"id":"usr_2","n":%d}`, n)
		default:
			good.Add(1)
			fmt.Fprintf(w, `{"id":"usr_1","n":%d}`, n)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	lr := loadRequest{path: "/api/v1/users/usr_1", header: http.Header{"X-Api-Key": {"secret"}}, want: []byte(`"id":"usr_1"`), contains: true}
	res := generateLoad(context.Background(), addr, lr, 4, 300*time.Millisecond)
	if res.Errors != 0 {
		t.Fatalf("%d connection errors", res.Errors)
	}
	if res.OK == 0 || int64(res.OK) != good.Load() || int64(res.Other) != served.Load()-good.Load() {
		t.Errorf("counted %d OK + %d other; server sent %d for usr_1 of %d", res.OK, res.Other, good.Load(), served.Load())
	}
}

func TestLoadRequestMatch(t *testing.T) {
	for _, tt := range []struct {
		lr     loadRequest
		status int
		body   string
		want   bool
	}{
		{loadRequest{want: []byte("ab")}, 200, "ab", true},
		{loadRequest{want: []byte("ab")}, 200, "abc", false},
		{loadRequest{want: []byte("ab")}, 201, "ab", false},
		{loadRequest{want: []byte("ab"), contains: true}, 200, "xaby", true},
		{loadRequest{want: []byte("ab"), contains: true}, 200, "a b", false},
		{loadRequest{status: 202, want: []byte("ab"), contains: true}, 202, "xaby", true},
		{loadRequest{status: 202, want: []byte("ab"), contains: true}, 200, "xaby", false},
	} {
		if got := tt.lr.match(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("%v.match(%d, %q) = %v, want %v", tt.lr, tt.status, tt.body, got, tt.want)
		}
	}
}

// TestGenerateLoadPost checks that a request with a body reaches a real net/http
// server whole, with its method, Content-Length and headers, on every request
// of a keep-alive connection, and that only the expected status counts.
func TestGenerateLoadPost(t *testing.T) {
	body := intakeBody
	var served, good atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		got, err := io.ReadAll(r.Body)
		switch {
		case err != nil || r.Method != http.MethodPost || string(got) != body || r.ContentLength != int64(len(body)) ||
			r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Api-Key") != "secret":
			http.Error(w, "bad request", http.StatusBadRequest)
		case n%4 == 0: // the right body under the wrong status
			fmt.Fprint(w, `{"status":"queued"}`)
		default:
			good.Add(1)
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"job_id":"job_%d","status":"queued"}`, n)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	lr := intakeRequest()
	lr.header = http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {"secret"}}
	res := generateLoad(context.Background(), addr, lr, 4, 300*time.Millisecond)
	if res.Errors != 0 {
		t.Fatalf("%d connection errors", res.Errors)
	}
	if res.OK == 0 || int64(res.OK) != good.Load() || int64(res.Other) != served.Load()-good.Load() {
		t.Errorf("counted %d OK + %d other; server accepted %d of %d", res.OK, res.Other, good.Load(), served.Load())
	}
	if int64(res.OK) < 2*int64(4) {
		t.Errorf("only %d accepted requests on 4 connections: keep-alive requests after the first were not answered", res.OK)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPick(t *testing.T) {
	all := allScenarios()
	got, err := pick(all, "e2e,userget,health, coldstart,intake")
	var names []string
	for _, s := range got {
		names = append(names, s.name)
	}
	if err != nil || strings.Join(names, ",") != "coldstart,health,userget,intake,e2e" {
		t.Errorf("pick = %v, %v; want coldstart,health,userget,intake,e2e in canonical order", names, err)
	}
	if got, _ := pick(all, ""); len(got) != len(all)-1 {
		t.Errorf("pick of none = %d scenarios, want all %d but the guard", len(got), len(all))
	}
	if _, err := pick(all, "coldstart,nope"); err == nil {
		t.Error("pick accepted an unknown scenario")
	}
}
