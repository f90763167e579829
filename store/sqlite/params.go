package sqlite

import "strings"

// anonymousParams rewrites sqlc's numbered parameters (?1, ?2, …) as SQLite's
// anonymous ? wherever that names the same parameter: SQLite numbers a ? one more
// than the largest number before it, so ?N may become ? when N is that number. The
// statement binds the same way. What changes is the cost of every run: modernc's
// driver asks SQLite for each parameter's name on each run and turns it into a Go
// string and a number, and an anonymous parameter has no name (docs/benchmarks.md).
// Strings, quoted names and comments are copied as they are.
func anonymousParams(q string) string {
	var b strings.Builder
	b.Grow(len(q))
	largest := 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"' || c == '`' || c == '[':
			end := c
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for j < len(q) {
				if q[j] == end {
					if end != ']' && j+1 < len(q) && q[j+1] == end { // doubled: an escaped quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(q))
			b.WriteString(q[i:j])
			i = j
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				j = len(q) - i
			} else {
				j += 4
			}
			b.WriteString(q[i : i+j])
			i += j
		case c == '?':
			j, n := i+1, 0
			for j < len(q) && q[j] >= '0' && q[j] <= '9' && n <= 1<<20 {
				n = n*10 + int(q[j]-'0')
				j++
			}
			if j > i+1 && n == largest+1 {
				b.WriteByte('?')
			} else {
				b.WriteString(q[i:j])
			}
			if j == i+1 {
				n = largest + 1 // a ? of the query's own
			}
			largest = max(largest, n)
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}
