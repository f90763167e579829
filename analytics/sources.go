package analytics

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// maxUTMBytes bounds each UTM value as stored.
	maxUTMBytes = 100
	// maxPathBytes bounds a page path as stored and counted.
	maxPathBytes = 200
	// maxHostBytes is the longest DNS name.
	maxHostBytes = 253
)

// UTM are the campaign parameters of a page URL.
type UTM struct {
	Source, Medium, Campaign string
}

// ParseUTM reads utm_source, utm_medium and utm_campaign from the query of ref, a
// page URL ("https://levqor.ai/?utm_source=x") or a bare query ("?utm_source=x").
// Keys match case-insensitively and the first occurrence wins. Values are
// unescaped, made valid UTF-8 without control characters, trimmed, lower-cased and
// cut to 100 bytes; malformed parts are skipped. It never fails.
func ParseUTM(ref string) UTM {
	var u UTM
	_, query, ok := strings.Cut(ref, "?")
	if !ok {
		return u
	}
	query, _, _ = strings.Cut(query, "#")
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		key, value, _ := strings.Cut(pair, "=")
		var dst *string
		switch k, err := url.QueryUnescape(key); {
		case err != nil:
			continue
		case strings.EqualFold(k, "utm_source"):
			dst = &u.Source
		case strings.EqualFold(k, "utm_medium"):
			dst = &u.Medium
		case strings.EqualFold(k, "utm_campaign"):
			dst = &u.Campaign
		default:
			continue
		}
		if *dst != "" {
			continue
		}
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		*dst = clean(strings.ToLower(value), maxUTMBytes)
	}
	return u
}

// clean makes s valid UTF-8 without control characters, trims surrounding space
// and cuts it to at most max bytes on a character boundary.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	s = strings.TrimSpace(s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}

// refWithUTM returns the page URL ref as stored: without its fragment, and with
// only the utm_* parameters of its query (in their order), since the rest of a query
// may carry anything — tokens, emails. It is cleaned and cut to max bytes.
func refWithUTM(ref string, max int) string {
	ref, _, _ = strings.Cut(ref, "#")
	page, query, ok := strings.Cut(ref, "?")
	if ok {
		var kept []string
		for _, pair := range strings.Split(query, "&") {
			key, _, _ := strings.Cut(pair, "=")
			if k, err := url.QueryUnescape(key); err == nil && len(k) > 4 && strings.EqualFold(k[:4], "utm_") {
				kept = append(kept, pair)
			}
		}
		if len(kept) > 0 {
			page += "?" + strings.Join(kept, "&")
		}
	}
	return clean(page, max)
}

// withoutQuery returns a URL as stored: without query or fragment, which may carry
// anything; cleaned and cut to max bytes.
func withoutQuery(u string, max int) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return clean(u, max)
}

// referrerHost returns the lower-case host of a referrer URL without a leading
// "www.", or "" when it names none.
func referrerHost(referrer string) string {
	u, err := url.Parse(strings.TrimSpace(referrer))
	if err != nil || u.Host == "" {
		return ""
	}
	host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	if len(host) > maxHostBytes || host != clean(host, maxHostBytes) {
		return ""
	}
	return host
}

// pagePath returns the page path of an event: path when given, else the path of the
// page URL ref; without query or fragment, cleaned and cut to 200 bytes. It is ""
// when neither names a path starting with "/".
func pagePath(path, ref string) string {
	p := strings.TrimSpace(path)
	if p == "" {
		if u, err := url.Parse(strings.TrimSpace(ref)); err == nil {
			p = u.EscapedPath()
		}
	}
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	p = clean(p, maxPathBytes)
	if !strings.HasPrefix(p, "/") {
		return ""
	}
	return p
}
