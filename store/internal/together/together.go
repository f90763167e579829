// Package together gathers requests that arrive together on a channel into one group,
// for the stores' group commit of job inserts.
package together

// Next waits for a first request on in, then takes the requests already queued
// behind it while the group's size (the sum of size over its requests) is under
// max. ok is false, with no group, once closing is closed while waiting.
func Next[R any](in <-chan R, closing <-chan struct{}, max int, size func(R) int) (group []R, ok bool) {
	var first R
	select {
	case first = <-in:
	case <-closing:
		return nil, false
	}
	group, n := []R{first}, size(first)
	for n < max {
		select {
		case r := <-in:
			group, n = append(group, r), n+size(r)
		default:
			return group, true
		}
	}
	return group, true
}
