package together

import "testing"

func TestNext(t *testing.T) {
	in, closing := make(chan []int, 8), make(chan struct{})
	for _, r := range [][]int{{1, 2}, {3}, {4, 5}, {6}} {
		in <- r
	}
	size := func(r []int) int { return len(r) }
	g, ok := Next(in, closing, 4, size) // 2 + 1 + 2 reaches 4: stops taking after the third
	if !ok || len(g) != 3 {
		t.Fatalf("first group = %v, %v; want the first three requests", g, ok)
	}
	g, ok = Next(in, closing, 4, size) // only one left queued
	if !ok || len(g) != 1 || g[0][0] != 6 {
		t.Fatalf("second group = %v, %v; want [[6]]", g, ok)
	}
	close(closing)
	if g, ok := Next(in, closing, 4, size); ok || g != nil {
		t.Fatalf("after closing: %v, %v; want nil, false", g, ok)
	}
}
