package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestCgroupMemoryMax(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		text string
		want int64
		ok   bool
	}{
		{"536870912\n", 536870912, true},
		{"max\n", 0, false},
		{"0\n", 0, false},
		{"", 0, false},
	} {
		path := filepath.Join(dir, "memory.max")
		if err := os.WriteFile(path, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, ok := cgroupMemoryMax(path); got != c.want || ok != c.ok {
			t.Errorf("memory.max %q: %d, %v; want %d, %v", c.text, got, ok, c.want, c.ok)
		}
	}
	if _, ok := cgroupMemoryMax(filepath.Join(dir, "absent")); ok {
		t.Error("a missing memory.max gave a limit")
	}
}

// TestStartupGC: start-up runs at gcPercent; serving keeps it unless GOGC is set,
// when the environment's value (the runtime's setting before start-up) comes back.
func TestStartupGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	env := func(gogc string) func(string) string {
		return func(k string) string {
			if k == "GOGC" {
				return gogc
			}
			return "1GiB" // GOMEMLIMIT: set, so the test leaves the memory limit alone
		}
	}
	end := startupGC(env(""))
	if got := debug.SetGCPercent(gcPercent); got != gcPercent {
		t.Errorf("GOGC during start-up = %d, want %d", got, gcPercent)
	}
	end()
	if got := debug.SetGCPercent(150); got != gcPercent {
		t.Errorf("GOGC serving without GOGC set = %d, want %d", got, gcPercent)
	}
	end = startupGC(env("150")) // the runtime read GOGC=150 at start
	end()
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GOGC serving with GOGC=150 = %d, want 150", got)
	}
}
