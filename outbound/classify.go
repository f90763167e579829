package outbound

import (
	"net/netip"
)

// rule names one range of addresses that user-supplied URLs may not reach.
type rule struct {
	prefix netip.Prefix
	reason string
}

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// Order matters: the first matching rule names the reason.
var v4Rules = []rule{
	{netip.MustParsePrefix("169.254.169.254/32"), "a link-local address (cloud metadata)"},
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-network) address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "a reserved (IETF protocol) address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a reserved (benchmarking) address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
}

var v6Rules = []rule{
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("::/96"), "a reserved (IPv4-compatible) address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a private (local NAT64) address"},
	{netip.MustParsePrefix("100::/64"), "a reserved (discard) address"},
	{netip.MustParsePrefix("fc00::/7"), "a private (unique local) address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a private (site-local) address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// classify returns why ip may not be reached ("a loopback address"), or "" if it may.
// IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4) are judged by the IPv4 address.
func classify(ip netip.Addr) string {
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return "an invalid address"
	}
	if ip.Is4In6() {
		if r := classify4(ip.Unmap()); r != "" {
			return r + " (IPv4-mapped)"
		}
		return ""
	}
	if ip.Is4() {
		return classify4(ip)
	}
	b := ip.As16()
	if nat64.Contains(ip) {
		if r := classify4(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); r != "" {
			return r + " (NAT64)"
		}
		return ""
	}
	if sixToFour.Contains(ip) {
		if r := classify4(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); r != "" {
			return r + " (6to4)"
		}
		return ""
	}
	for _, r := range v6Rules {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	return ""
}

func classify4(ip netip.Addr) string {
	if ip == broadcast {
		return "a broadcast address"
	}
	for _, r := range v4Rules {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	return ""
}
