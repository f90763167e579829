package server_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	sredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/levqor/levqor/limitstore"
	"github.com/levqor/levqor/server"
)

// redisClient connects to LEVQOR_TEST_REDIS_URL; without it the test is skipped
// (and fails under CI, where Redis must be there).
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	u := os.Getenv("LEVQOR_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("LEVQOR_TEST_REDIS_URL is unset under CI: the Redis tests must run")
		}
		t.Skip("Redis test skipped: set LEVQOR_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("LEVQOR_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("Redis at LEVQOR_TEST_REDIS_URL: %v", err)
	}
	return c
}

// TestRedisSharesLimitsAcrossInstances: two servers on one Redis enforce one
// global limit between them — 10 anonymous requests alternating between them,
// against a global limit of 5, give exactly five 200s.
func TestRedisSharesLimitsAcrossInstances(t *testing.T) {
	c := redisClient(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "levqor-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		keys, _ := c.Keys(t.Context(), prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(t.Context(), keys...)
		}
	})
	rate := func(n int64) limiter.Rate { return limiter.Rate{Period: time.Minute, Limit: n} }
	instance := func() *bundle {
		st, err := sredis.NewStoreWithOptions(c, limiter.StoreOptions{Prefix: prefix, MaxRetry: 3})
		if err != nil {
			t.Fatal(err)
		}
		return setup(t, func(o *testOptions) {
			o.Limits = &server.Limits{IP: rate(100), Global: rate(5), Key: rate(100), Store: st, FailOpen: false}
		})
	}
	a, z := instance(), instance()
	ok := 0
	for i := 0; i < 10; i++ {
		b := a
		if i%2 == 1 {
			b = z
		}
		resp, body := b.do(t, "GET", "/status", nil, nil)
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			if p := problemOf(t, resp, body); p.Code != "rate_limited" {
				t.Errorf("429 with code %q", p.Code)
			}
		default:
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if ok != 5 {
		t.Errorf("%d requests passed a shared global limit of 5", ok)
	}

	// A single in-memory instance, for contrast, would have let each server pass 5.
	mem := setup(t, func(o *testOptions) {
		o.Limits = &server.Limits{IP: rate(100), Global: rate(5), Key: rate(100), Store: memory.NewStore()}
	})
	if resp, _ := mem.do(t, "GET", "/status", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("separate memory store: %d", resp.StatusCode)
	}
}

// TestRateLimitStoreFailure: with the store down, fail-open lets requests through
// (and logs the failure), fail-closed answers 503 problem+json; neither panics.
func TestRateLimitStoreFailure(t *testing.T) {
	rate := limiter.Rate{Period: time.Minute, Limit: 100}
	// The limiter's Redis store loads its scripts when created, so it starts on a
	// live Redis; closing the client afterwards makes every later call fail.
	c := redisClient(t)
	st, err := sredis.NewStoreWithOptions(c, limiter.StoreOptions{Prefix: "levqor-test-dead", MaxRetry: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, failOpen := range []bool{true, false} {
		b := setup(t, func(o *testOptions) {
			g := limitstore.New(st, limitstore.Options{FailOpen: failOpen, Fallback: memory.NewStore(), Logger: o.Logger})
			o.Limits = &server.Limits{IP: rate, Global: rate, Key: rate, Store: g, FailOpen: failOpen}
		})
		resp, body := b.do(t, "GET", "/status", nil, nil)
		if failOpen && resp.StatusCode != http.StatusOK {
			t.Errorf("fail open: %d %s", resp.StatusCode, body)
		}
		if !failOpen {
			if p := problemOf(t, resp, body); resp.StatusCode != http.StatusServiceUnavailable || p.Code != "unavailable" {
				t.Errorf("fail closed: %d %s", resp.StatusCode, body)
			}
		}
		if !strings.Contains(b.Logs(), "rate-limit store unavailable") {
			t.Errorf("fail open=%v: store failure not logged", failOpen)
		}
	}
}
