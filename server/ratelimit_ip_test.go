package server_test

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/server"
)

// TestIPv6ClientsShareTheirSlash64: behind a trusted proxy, two IPv6 addresses in
// one /64 spend one per-IP budget, an address in another /64 has its own, and an
// IPv4-mapped address counts as its IPv4 address.
func TestIPv6ClientsShareTheirSlash64(t *testing.T) {
	b := setup(t, func(o *testOptions) {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		o.Limits = &server.Limits{IP: limiter.Rate{Period: time.Minute, Limit: 2}, Global: limiter.Rate{Period: time.Minute, Limit: 1000},
			Key: limiter.Rate{Period: time.Minute, Limit: 1000}, Store: memory.NewStore()}
	})
	from := func(addr string) int {
		t.Helper()
		h := http.Header{}
		h.Set("X-Forwarded-For", addr)
		resp, body := b.do(t, "GET", "/", h, nil)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("GET / from %s: %d %s", addr, resp.StatusCode, body)
		}
		return resp.StatusCode
	}
	// Two requests from two addresses of 2001:db8:0:1::/64 use its budget of 2 up.
	for _, addr := range []string{"2001:db8:0:1::a", "2001:db8:0:1:ffff::b"} {
		if got := from(addr); got != http.StatusOK {
			t.Fatalf("%s: %d, want 200 within the /64's budget", addr, got)
		}
	}
	if got := from("2001:db8:0:1::c"); got != http.StatusTooManyRequests {
		t.Errorf("third request from the same /64 (new address): %d, want 429", got)
	}
	// Another /64 of the same /48 is another client.
	if got := from("2001:db8:0:2::a"); got != http.StatusOK {
		t.Errorf("a different /64: %d, want 200", got)
	}
	// IPv4: by full address, and a mapped IPv6 form is the same client.
	for i, addr := range []string{"198.51.100.7", "::ffff:198.51.100.7", "198.51.100.7"} {
		want := http.StatusOK
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if got := from(addr); got != want {
			t.Errorf("request %d from %s: %d, want %d", i+1, addr, got, want)
		}
	}
	if got := from("198.51.100.8"); got != http.StatusOK {
		t.Errorf("the neighbouring IPv4 address: %d, want 200", got)
	}
}
