package levqor

// JSONDepth returns the deepest nesting of arrays and objects in b, scanning it as
// JSON text (strings and escapes respected) without building any values. It is
// meant to run before a decoder, so it never fails: malformed input is the
// decoder's business, and its depth is measured all the same.
func JSONDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return deepest
}
