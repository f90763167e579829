package main

import (
	"strings"
	"testing"
	"time"
)

func TestExitErrNamesAnExitedServer(t *testing.T) {
	s, err := startServer("sleeper", "127.0.0.1:0", "sleep", []string{"0.2"})
	if err != nil {
		t.Skipf("cannot run sleep: %v", err)
	}
	if err := s.exitErr(); err != nil {
		t.Errorf("exitErr while running = %v, want nil", err)
	}
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("sleep 0.2 did not exit")
	}
	if err := s.exitErr(); err == nil || !strings.Contains(err.Error(), "sleeper") || !strings.Contains(err.Error(), "exit status 0") {
		t.Errorf("exitErr after exit = %v, want it to name sleeper and exit status 0", err)
	}
}
