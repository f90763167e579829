package connectors

import "strings"

// QueryFieldPrefix starts a field of a header connection (HeaderCredentialed) that
// is a query parameter rather than a header: "?api_key". No header name contains it.
const QueryFieldPrefix = "?"

// reservedHeaders are the headers the HTTP client sets itself; a connection cannot.
var reservedHeaders = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection"}

// CheckHeaderField returns "" when name and value may be a field of a header
// connection — a header name (an HTTP token, not one of the client's own headers)
// or QueryFieldPrefix and a parameter name, with a value free of control
// characters — or else why not. The value is never quoted: it is a secret.
func CheckHeaderField(name, value string) string {
	if param, ok := strings.CutPrefix(name, QueryFieldPrefix); ok {
		if param == "" || !printable(param) {
			return "a query parameter field is ? and a name without control characters"
		}
	} else {
		if !isToken(name) {
			return "must be a header name (letters, digits and !#$%&'*+-.^_`|~) or ? and a query parameter name"
		}
		for _, h := range reservedHeaders {
			if strings.EqualFold(name, h) {
				return "the client sets " + h + " itself"
			}
		}
	}
	if !printable(value) {
		return "the value has a control character"
	}
	return ""
}

// printable reports whether s has no ASCII control characters (tab aside).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), as header names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
