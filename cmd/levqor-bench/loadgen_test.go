package main

import (
	"bufio"
	"context"
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

	res := generateLoad(context.Background(), addr, "/health", []byte(healthBody), 4, 300*time.Millisecond)
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
	got, err := pick(all, "health, coldstart")
	if err != nil || len(got) != 2 || got[0].name != "coldstart" || got[1].name != "health" {
		t.Errorf("pick = %v, %v; want coldstart, health in canonical order", got, err)
	}
	if _, err := pick(all, "coldstart,nope"); err == nil {
		t.Error("pick accepted an unknown scenario")
	}
}
