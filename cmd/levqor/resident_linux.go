//go:build linux

package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// dropStartupPages unmaps this process's resident pages of its own executable's
// read-only segments (code and read-only data) so that only what is used again gets
// mapped back. Initialisation touches code and tables of every linked package once
// (and the kernel maps 64 KiB around each touched page); afterwards most of it is never
// used again. The pages are clean copies of the file: they stay in the page cache,
// shared, and the next touch maps them back with a minor fault. Writable segments are
// left alone (discarding them would lose data). It returns the size of the segments.
func dropStartupPages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	var dropped int64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// 00400000-01f04000 r-xp 00000000 fd:01 1234 /path/to/levqor
		f := bytes.Fields(sc.Bytes())
		if len(f) < 6 || string(f[5]) != exe || f[1][1] == 'w' || f[1][0] != 'r' {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// The range is not Go memory, so it is passed as numbers, not as a slice.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); errno != 0 {
			return dropped, errno
		}
		dropped += int64(end - start)
	}
	return dropped, sc.Err()
}
