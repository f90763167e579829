package server

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tt := range []struct {
		name    string
		remote  string
		xff     []string
		realIP  string
		want    string
		trusted bool
	}{
		{"direct peer, spoofed XFF ignored", "203.0.113.9:1234", []string{"1.2.3.4"}, "5.6.7.8", "203.0.113.9", false},
		{"trusted proxy, one hop", "10.1.2.3:80", []string{"198.51.100.7"}, "", "198.51.100.7", true},
		{"trusted proxy chain: right-most untrusted wins", "10.1.2.3:80", []string{"6.6.6.6, 198.51.100.7, 10.9.9.9"}, "", "198.51.100.7", true},
		{"several XFF headers are one list", "10.1.2.3:80", []string{"6.6.6.6", "198.51.100.7"}, "", "198.51.100.7", true},
		{"malformed hop stops the walk", "10.1.2.3:80", []string{"198.51.100.7, garbage"}, "", "10.1.2.3", true},
		{"all hops trusted: the left-most trusted", "10.1.2.3:80", []string{"10.0.0.5"}, "", "10.0.0.5", true},
		{"X-Real-IP from a trusted proxy", "[::1]:80", nil, "192.0.2.44", "192.0.2.44", true},
		{"X-Real-IP from an untrusted peer ignored", "192.0.2.1:80", nil, "192.0.2.44", "192.0.2.1", false},
		{"IPv4-mapped IPv6 is unmapped", "[::ffff:203.0.113.9]:1", nil, "", "203.0.113.9", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				r.Header.Set("X-Real-IP", tt.realIP)
			}
			got, viaProxy := clientIP(r, trusted)
			if got.String() != tt.want || viaProxy != tt.trusted {
				t.Errorf("clientIP = %s, %v; want %s, %v", got, viaProxy, tt.want, tt.trusted)
			}
		})
	}
}

// TestIPLimitKey: IPv4 clients are counted by address, IPv6 clients by their /64,
// and an IPv4-mapped IPv6 address as the IPv4 address it carries.
func TestIPLimitKey(t *testing.T) {
	for _, tt := range []struct{ ip, want string }{
		{"203.0.113.9", "ip:203.0.113.9"},
		{"203.0.113.10", "ip:203.0.113.10"},
		{"::ffff:203.0.113.9", "ip:203.0.113.9"},
		{"2001:db8:1:2::1", "ip:2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "ip:2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "ip:2001:db8:1:3::/64"},
		{"fe80::1%eth0", "ip:fe80::/64"},
		{"::1", "ip:::/64"},
	} {
		if got := ipLimitKey(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("ipLimitKey(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}
