package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/config"
)

// TestLoadEventStreams: the LEVQOR_SSE_* settings, their defaults and their bounds.
func TestLoadEventStreams(t *testing.T) {
	c, err := config.Load(getenv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.SSEMaxPerKey != 10 || c.SSEMaxStreams != 1000 || c.SSEMaxDuration != 15*time.Minute {
		t.Errorf("defaults %d, %d, %s; want 10, 1000, 15m", c.SSEMaxPerKey, c.SSEMaxStreams, c.SSEMaxDuration)
	}
	c, err = config.Load(getenv(map[string]string{"LEVQOR_SSE_MAX_PER_KEY": "3", "LEVQOR_SSE_MAX_STREAMS": "50", "LEVQOR_SSE_MAX_DURATION": "90s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SSEMaxPerKey != 3 || c.SSEMaxStreams != 50 || c.SSEMaxDuration != 90*time.Second {
		t.Errorf("set to 3, 50, 90s: got %d, %d, %s", c.SSEMaxPerKey, c.SSEMaxStreams, c.SSEMaxDuration)
	}
	for name, bad := range map[string][]string{
		"LEVQOR_SSE_MAX_PER_KEY":  {"0", "-1", "x", "10001"},
		"LEVQOR_SSE_MAX_STREAMS":  {"0", "many", "1000001"},
		"LEVQOR_SSE_MAX_DURATION": {"0s", "500ms", "25h", "forever"},
	} {
		for _, v := range bad {
			if _, err := config.Load(getenv(map[string]string{name: v})); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: error %v, want one naming the variable", name, v, err)
			}
		}
	}
}
