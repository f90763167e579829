package outbound_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/outbound"
)

// server is a real HTTP server on 127.0.0.1 that counts its hits.
type server struct {
	*httptest.Server
	hits atomic.Int64
	port string
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	s.port = u.Port()
	return s
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }

func newGuard(t *testing.T, allow ...string) *outbound.Guard {
	t.Helper()
	g, err := outbound.NewGuard(allow)
	if err != nil {
		t.Fatalf("NewGuard(%q): %v", allow, err)
	}
	return g
}

func TestClient(t *testing.T) {
	target := newServer(t, ok)
	other := newServer(t, ok)
	redirector := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-other":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		case "/to-target":
			http.Redirect(w, r, target.URL+"/", http.StatusFound)
		case "/to-ftp":
			http.Redirect(w, r, "ftp://example.com/file", http.StatusFound)
		}
	})
	var loopHits atomic.Int64
	var loop *server
	loop = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		loopHits.Add(1)
		http.Redirect(w, r, loop.URL+"/again", http.StatusFound)
	})

	tests := []struct {
		name     string
		allow    []string
		url      string
		wantErr  error  // nil: the request must succeed with body "hello"
		wantMsg  string // substring of the error
		mustMiss *server
	}{
		{name: "loopback refused", url: target.URL, wantErr: outbound.ErrRefused,
			wantMsg: "refused: 127.0.0.1 is a loopback address", mustMiss: target},
		{name: "private 10.0.0.1 refused", url: "http://10.0.0.1:9/", wantErr: outbound.ErrRefused,
			wantMsg: "refused: 10.0.0.1 is a private address"},
		{name: "cloud metadata refused", url: "http://169.254.169.254/latest/meta-data/", wantErr: outbound.ErrRefused,
			wantMsg: "refused: 169.254.169.254 is a link-local address (cloud metadata)"},
		{name: "IPv6 loopback refused", url: "http://[::1]:" + target.port + "/", wantErr: outbound.ErrRefused,
			wantMsg: "refused: ::1 is a loopback address"},
		{name: "hostname resolving to loopback refused", url: "http://localhost:" + target.port + "/",
			wantErr: outbound.ErrRefused, wantMsg: "refused: localhost resolves to a loopback address", mustMiss: target},
		{name: "allowed ip:port works", allow: []string{"127.0.0.1:" + target.port}, url: target.URL + "/"},
		{name: "allowed ip:port does not cover another port", allow: []string{"127.0.0.1:" + target.port},
			url: other.URL + "/", wantErr: outbound.ErrRefused, wantMsg: "loopback", mustMiss: other},
		{name: "allowed CIDR works", allow: []string{"127.0.0.0/8"}, url: target.URL + "/"},
		{name: "allowed hostname works", allow: []string{"localhost"}, url: "http://localhost:" + target.port + "/"},
		{name: "allowed IP covers a name resolving to it", allow: []string{"127.0.0.1"}, url: "http://localhost:" + target.port + "/"},
		{name: "redirect to a disallowed loopback port refused", allow: []string{"127.0.0.1:" + redirector.port},
			url: redirector.URL + "/to-other", wantErr: outbound.ErrRefused,
			wantMsg: "refused: 127.0.0.1 is a loopback address", mustMiss: other},
		{name: "redirect to an allowed port followed", allow: []string{"127.0.0.1:" + redirector.port, "127.0.0.1:" + target.port},
			url: redirector.URL + "/to-target"},
		{name: "redirect to another scheme refused", allow: []string{"127.0.0.1:" + redirector.port},
			url: redirector.URL + "/to-ftp", wantErr: outbound.ErrRefused, wantMsg: `redirect to scheme "ftp" is not allowed`},
		{name: "redirect loop stops after 5", allow: []string{"127.0.0.1:" + loop.port},
			url: loop.URL + "/", wantErr: outbound.ErrTooManyRedirects, wantMsg: "stopped after 5 redirects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuard(t, tt.allow...)
			var missBefore int64
			if tt.mustMiss != nil {
				missBefore = tt.mustMiss.hits.Load()
			}
			loopHits.Store(0)
			resp, err := g.Client(5 * time.Second).Get(tt.url)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Get(%s): %v", tt.url, err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || string(body) != "hello" {
					t.Fatalf("Get(%s) = %d %q, want 200 \"hello\"", tt.url, resp.StatusCode, body)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("Get(%s) succeeded with %d, want error %v", tt.url, resp.StatusCode, tt.wantErr)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Get(%s) error = %v, want errors.Is %v", tt.url, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Get(%s) error = %q, want it to contain %q", tt.url, err, tt.wantMsg)
			}
			if tt.mustMiss != nil {
				if n := tt.mustMiss.hits.Load() - missBefore; n != 0 {
					t.Errorf("refused target was hit %d times", n)
				}
			}
			if errors.Is(tt.wantErr, outbound.ErrTooManyRedirects) {
				if n := loopHits.Load(); n != 1+outbound.MaxRedirects {
					t.Errorf("redirect loop served %d requests, want %d", n, 1+outbound.MaxRedirects)
				}
			}
		})
	}
}

// TestClientCountsAllowedHit checks that an allowed request really went through: the guard
// must not just refuse everything.
func TestClientCountsAllowedHit(t *testing.T) {
	s := newServer(t, ok)
	g := newGuard(t, "127.0.0.1:"+s.port)
	resp, err := g.Client(time.Second).Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("server hits = %d, want 1", n)
	}
}

// TestClientIgnoresProxyEnv checks the transport directly: net/http reads the proxy
// variables once per process, so setting them in a test proves nothing.
func TestClientIgnoresProxyEnv(t *testing.T) {
	tr, ok := newGuard(t).Client(time.Second).Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Client's transport is %T, want *http.Transport", tr)
	}
	if tr.Proxy != nil {
		t.Fatal("Client's transport uses a proxy: the dial check would see the proxy, not the target")
	}
}

func TestCheckURL(t *testing.T) {
	g := newGuard(t, "hooks.internal", "127.0.0.1:8080", "10.1.0.0/16", "[::1]:9000")
	tests := []struct {
		url     string
		wantMsg string // "" means allowed
	}{
		{"https://example.com/callback", ""},
		{"https://example.com:8443/callback?x=1", ""},
		{"https://93.184.215.14/cb", ""},
		{"https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/cb", ""},
		{"http://hooks.internal/cb", ""},
		{"http://HOOKS.internal./cb", ""},
		{"http://127.0.0.1:8080/cb", ""},
		{"http://10.1.2.3/cb", ""},
		{"http://[::1]:9000/cb", ""},
		{"http://example.com/cb", "plain http is only allowed for allowlisted hosts"},
		{"ftp://example.com/file", `scheme "ftp" is not allowed`},
		{"file:///etc/passwd", `scheme "file" is not allowed`},
		{"javascript:alert(1)", `scheme "javascript" is not allowed`},
		{"example.com/cb", "URL has no scheme"},
		{"https:///path", "URL has no host"},
		{"https:example.com", "URL has no host"},
		{"https://user:secret@example.com/", "URL must not contain credentials"},
		{"https://example.com:0/", `port "0" is not in 1..65535`},
		{"https://example.com:65536/", `port "65536" is not in 1..65535`},
		{"https://example.com:/", "URL has an empty port"},
		{"https://127.0.0.1/", "127.0.0.1 is a loopback address"},
		{"https://127.0.0.1:8081/", "127.0.0.1 is a loopback address"},
		{"https://10.0.0.1/", "10.0.0.1 is a private address"},
		{"https://10.2.0.1/", "10.2.0.1 is a private address"},
		{"https://172.16.5.4/", "172.16.5.4 is a private address"},
		{"https://192.168.1.1/", "192.168.1.1 is a private address"},
		{"https://169.254.169.254/", "169.254.169.254 is a link-local address (cloud metadata)"},
		{"https://100.64.0.1/", "100.64.0.1 is a shared (carrier-grade NAT) address"},
		{"https://0.0.0.0/", "0.0.0.0 is an unspecified (this-network) address"},
		{"https://255.255.255.255/", "255.255.255.255 is a broadcast address"},
		{"https://224.0.0.1/", "224.0.0.1 is a multicast address"},
		{"https://[::1]/", "::1 is a loopback address"},
		{"https://[::]/", ":: is an unspecified address"},
		{"https://[fd00:ec2::254]/", "fd00:ec2::254 is a private (unique local) address"},
		{"https://[fe80::1]/", "fe80::1 is a link-local address"},
		{"https://[fe80::1%25eth0]/", "IPv6 zones are not allowed"},
		{"https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a loopback address (IPv4-mapped)"},
		{"https://[::ffff:169.254.169.254]/", "link-local address (cloud metadata) (IPv4-mapped)"},
		{"https://[64:ff9b::a00:1]/", "64:ff9b::a00:1 is a private address (NAT64)"},
		{"https://[2002:7f00:1::]/", "2002:7f00:1:: is a loopback address (6to4)"},
		{"https://[ff02::1]/", "ff02::1 is a multicast address"},
		{"https://localhost/", "localhost is a loopback name"},
		{"https://api.localhost/", "api.localhost is a loopback name"},
		{"https://2130706433/", `"2130706433" is an ambiguous numeric host`},
		{"https://0x7f.1/", `"0x7f.1" is an ambiguous numeric host`},
		{"https://127.1/", `"127.1" is an ambiguous numeric host`},
		{"https://exa mple.com/", "not a valid URL"},
		{"https://exa_mple!.com/", "is not a valid hostname"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := g.CheckURL(tt.url)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckURL(%q) = nil, want error containing %q", tt.url, tt.wantMsg)
			}
			if !errors.Is(err, outbound.ErrRefused) {
				t.Errorf("CheckURL(%q) = %v, not errors.Is ErrRefused", tt.url, err)
			}
			if !strings.HasPrefix(err.Error(), "refused: ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("CheckURL(%q) = %q, want \"refused: …%s…\"", tt.url, err, tt.wantMsg)
			}
		})
	}
}

func TestNewGuardRejectsBadEntries(t *testing.T) {
	for _, entry := range []string{"10.0.0.0/33", "not a host", "host:0", "host:99999", "*.example.com", "[::1]", "fe80::1%eth0"} {
		t.Run(entry, func(t *testing.T) {
			_, err := outbound.NewGuard([]string{entry})
			if err == nil {
				t.Fatalf("NewGuard(%q) = nil error, want one", entry)
			}
			if !strings.Contains(err.Error(), entry) {
				t.Errorf("error %q does not name the entry %q", err, entry)
			}
		})
	}
	if _, err := outbound.NewGuard([]string{" ", "", "example.com", "example.com:443", "::1", "10.0.0.0/8", "::ffff:10.0.0.0/104"}); err != nil {
		t.Fatalf("NewGuard with good entries: %v", err)
	}
}

// TestMappedCIDR checks that an IPv4-mapped CIDR entry allows the IPv4 range it names.
func TestMappedCIDR(t *testing.T) {
	g := newGuard(t, "::ffff:10.0.0.0/104")
	if err := g.CheckURL("https://10.9.9.9/"); err != nil {
		t.Fatalf("CheckURL in mapped CIDR: %v", err)
	}
	if err := g.CheckURL("https://11.0.0.1/"); err != nil {
		t.Fatalf("CheckURL public: %v", err)
	}
	if err := g.CheckURL("https://192.168.0.1/"); err == nil {
		t.Fatal("CheckURL outside mapped CIDR allowed a private address")
	}
}
