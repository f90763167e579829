// Package outbound guards every request Levqor makes to a URL a user supplied (webhooks,
// callbacks, the HTTP connector) against server-side request forgery: it refuses loopback,
// private, link-local and other internal addresses unless an operator allowlisted them.
//
// The decisive check runs at dial time, on the address actually being connected to, so a
// hostname that resolves (or re-resolves, as in DNS rebinding) to an internal address is
// refused as well as a literal one, and so is every hop of a redirect chain.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MaxRedirects is how many redirects a Guard's client follows before giving up.
const MaxRedirects = 5

// ErrRefused matches (with errors.Is) every refusal by a Guard.
var ErrRefused = errors.New("refused")

// ErrTooManyRedirects is returned (wrapped in a *url.Error) when a response chain has more
// than MaxRedirects redirects.
var ErrTooManyRedirects = fmt.Errorf("stopped after %d redirects", MaxRedirects)

// RefusedError is a refusal with a reason that is safe to show to the user who supplied the URL.
type RefusedError struct {
	Reason string // e.g. "127.0.0.1 is a loopback address"
}

func (e *RefusedError) Error() string { return "refused: " + e.Reason }

// Is makes errors.Is(err, ErrRefused) true for every *RefusedError.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func refusef(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// Guard decides which outbound destinations are allowed. It is safe for concurrent use.
type Guard struct {
	names     map[string]struct{}         // hostnames allowed on any port
	namePorts map[string]struct{}         // "hostname:port" allowed
	addrPorts map[netip.AddrPort]struct{} // "ip:port" allowed
	prefixes  []netip.Prefix              // IPs and CIDRs allowed on any port

	transport *http.Transport
}

// NewGuard returns a Guard that exempts the given destinations (typically from
// LEVQOR_OUTBOUND_ALLOW_HOSTS) from the internal-address rules. Each entry is a hostname
// ("hooks.internal"), a hostname or IP with a port ("127.0.0.1:8080", "[::1]:8080"), an IP
// ("10.0.0.5") or a CIDR ("10.1.0.0/16"). A hostname entry trusts whatever that name
// resolves to; an IP or CIDR entry allows that address whichever name led to it.
func NewGuard(allow []string) (*Guard, error) {
	g := &Guard{
		names:     map[string]struct{}{},
		namePorts: map[string]struct{}{},
		addrPorts: map[netip.AddrPort]struct{}{},
	}
	for _, raw := range allow {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		if err := g.add(entry); err != nil {
			return nil, fmt.Errorf("outbound: allow entry %q: %w", raw, err)
		}
	}
	g.transport = g.newTransport()
	return g, nil
}

func (g *Guard) add(entry string) error {
	if strings.Contains(entry, "/") {
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return errors.New("not a valid CIDR")
		}
		g.prefixes = append(g.prefixes, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
		return nil
	}
	if ip, err := netip.ParseAddr(entry); err == nil { // a bare IP, IPv6 included
		if ip.Zone() != "" {
			return errors.New("IPv6 zones are not supported")
		}
		ip = ip.Unmap()
		g.prefixes = append(g.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	host, portStr, err := net.SplitHostPort(entry)
	if err != nil {
		host, portStr = entry, ""
	}
	var port uint16
	if portStr != "" {
		p, err := parsePort(portStr)
		if err != nil {
			return err
		}
		port = p
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return errors.New("IPv6 zones are not supported")
		}
		if port == 0 {
			return errors.New("an IP in brackets needs a port")
		}
		g.addrPorts[netip.AddrPortFrom(ip.Unmap(), port)] = struct{}{}
		return nil
	}
	name := normalizeName(host)
	if !validHostname(name) {
		return errors.New("not a valid hostname, IP or CIDR")
	}
	if port == 0 {
		g.names[name] = struct{}{}
	} else {
		g.namePorts[net.JoinHostPort(name, strconv.Itoa(int(port)))] = struct{}{}
	}
	return nil
}

// unmappedBits converts the prefix length of an IPv4-mapped IPv6 prefix to its IPv4 length.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return p.Bits() - 96
	}
	return p.Bits()
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not in 1..65535", s)
	}
	return uint16(n), nil
}

func normalizeName(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// validHostname accepts DNS names made of letters, digits, hyphens and underscores.
func validHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// allowedName reports whether a hostname (on the given port) is allowlisted.
func (g *Guard) allowedName(name string, port uint16) bool {
	name = normalizeName(name)
	if _, ok := g.names[name]; ok {
		return true
	}
	_, ok := g.namePorts[net.JoinHostPort(name, strconv.Itoa(int(port)))]
	return ok
}

// allowedAddr reports whether an IP (on the given port) is allowlisted.
func (g *Guard) allowedAddr(ip netip.Addr, port uint16) bool {
	ip = ip.Unmap().WithZone("")
	if _, ok := g.addrPorts[netip.AddrPortFrom(ip, port)]; ok {
		return true
	}
	for _, p := range g.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Client returns an HTTP client whose every connection, redirects included, passes the
// Guard. Clients share one connection pool. The client ignores proxy environment variables:
// a proxy would make the dial-time check see the proxy's address instead of the target's.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		Transport:     g.transport,
		CheckRedirect: checkRedirect,
	}
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return ErrTooManyRedirects
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return refusef("redirect to scheme %q is not allowed", req.URL.Scheme)
	}
	if req.URL.User != nil {
		return refusef("redirect to a URL with credentials is not allowed")
	}
	return nil
}

func (g *Guard) newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// dialContext dials addr ("host:port" as the request named it) with a Control hook that
// checks every resolved address just before connect(2).
func (g *Guard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, refusef("malformed address %q", addr)
	}
	d := &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			return g.checkDial(host, network, address)
		},
	}
	return d.DialContext(ctx, network, addr)
}

// checkDial decides whether a connection to address (the resolved "ip:port") may be made
// for a request that named host.
func (g *Guard) checkDial(host, network, address string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return refusef("network %q is not allowed", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refusef("malformed address %q", address)
	}
	ip, port := ap.Addr(), ap.Port()
	if g.allowedAddr(ip, port) {
		return nil
	}
	hostIP, hostErr := netip.ParseAddr(host)
	isName := hostErr != nil
	if isName && g.allowedName(host, port) {
		return nil
	}
	reason := classify(ip)
	if reason == "" {
		return nil
	}
	if isName || hostIP.WithZone("") != ip.WithZone("") {
		return refusef("%s resolves to %s", host, reason)
	}
	return refusef("%s is %s", ip.WithZone(""), reason)
}

// CheckURL validates a user-supplied URL up front (for example a job's callback_url)
// without resolving it: http or https, a host, no credentials, a sane port, plain http only
// for allowlisted hosts, and no internal literal IP unless allowlisted. Names that resolve
// to internal addresses are caught later, when a Guard's client dials them.
// Every error it returns matches ErrRefused.
func (g *Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return refusef("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		if u.Scheme == "" {
			return refusef("URL has no scheme; use https://")
		}
		return refusef("scheme %q is not allowed; use https", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return refusef("URL has no host")
	}
	if u.User != nil {
		return refusef("URL must not contain credentials")
	}
	port := uint16(443)
	if u.Scheme == "http" {
		port = 80
	}
	if ps := u.Port(); ps != "" {
		p, err := parsePort(ps)
		if err != nil {
			return refusef("%v", err)
		}
		port = p
	} else if strings.HasSuffix(u.Host, ":") {
		return refusef("URL has an empty port")
	}
	host := u.Hostname()
	ip, ipErr := netip.ParseAddr(host)
	allowed := false
	if ipErr == nil {
		if ip.Zone() != "" {
			return refusef("IPv6 zones are not allowed")
		}
		allowed = g.allowedAddr(ip, port)
		if !allowed {
			if reason := classify(ip); reason != "" {
				return refusef("%s is %s", ip, reason)
			}
		}
	} else {
		name := normalizeName(host)
		if !validHostname(name) {
			return refusef("%q is not a valid hostname", host)
		}
		allowed = g.allowedName(name, port)
		if !allowed {
			if looksNumeric(name) {
				// Forms such as "2130706433" or "0x7f.1" are IPs to some resolvers.
				return refusef("%q is an ambiguous numeric host", host)
			}
			if name == "localhost" || strings.HasSuffix(name, ".localhost") {
				return refusef("%s is a loopback name", host)
			}
		}
	}
	if u.Scheme == "http" && !allowed {
		return refusef("plain http is only allowed for allowlisted hosts; use https")
	}
	return nil
}

// looksNumeric reports whether a hostname's last label is numeric (decimal or hex), which
// no real top-level domain is.
func looksNumeric(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if strings.HasPrefix(last, "0x") {
		return true
	}
	for _, r := range last {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
