//go:build !linux

package main

// dropStartupPages is a no-op where there is no madvise on the executable's mappings.
func dropStartupPages() (int64, error) { return 0, nil }
