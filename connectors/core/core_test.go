package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/core"
)

func TestRunCore(t *testing.T) {
	r, err := connectors.NewRegistry(core.New())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		action   string
		input    string
		timeout  time.Duration
		wantOut  string
		wantCode string
		maxTime  time.Duration
	}{
		{name: "echo", action: "echo", input: `{"a":[1,2.50,{"b":null}],"c":"\u00e9"}`, wantOut: `{"a":[1,2.50,{"b":null}],"c":"\u00e9"}`},
		{name: "sleep", action: "sleep", input: `{"ms": 30}`, wantOut: `{"slept_ms":30}`},
		{name: "sleep 1e1", action: "sleep", input: `{"ms": 1e1}`, wantOut: `{"slept_ms":10}`},
		{name: "sleep honours the deadline", action: "sleep", input: `{"ms": 60000}`, timeout: 30 * time.Millisecond,
			wantCode: connectors.CodeTimeout, maxTime: 5 * time.Second},
		{name: "sleep rejects over 60000", action: "sleep", input: `{"ms": 60001}`, wantCode: connectors.CodeInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			out, err := r.Run(ctx, "core", tt.action, json.RawMessage(tt.input))
			if tt.maxTime > 0 && time.Since(start) > tt.maxTime {
				t.Errorf("Run took %v, want under %v", time.Since(start), tt.maxTime)
			}
			if tt.wantCode != "" {
				var se *connectors.StepError
				if !errors.As(err, &se) || se.Code != tt.wantCode {
					t.Fatalf("Run = %s, %v; want code %s", out, err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			connectortest.CheckOutput(t, r, "core", tt.action, json.RawMessage(tt.input), out)
			if string(out) != tt.wantOut {
				t.Fatalf("Run output = %s, want %s", out, tt.wantOut)
			}
		})
	}
}

// TestSleepCancel runs core's sleep directly, so it is the connector (not the registry's
// watchdog) that must notice the cancellation.
func TestSleepCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	_, err := core.New().Run(ctx, "sleep", json.RawMessage(`{"ms": 60000}`))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep error = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("sleep returned after %v", d)
	}
}
