package server_test

import (
	"testing"
	"time"

	"github.com/levqor/levqor/server"
)

// TestEventsEndOnShutdown: a stream of a job that will not end soon stops when the
// server shuts down (Options.Stopping), instead of holding the drain.
func TestEventsEndOnShutdown(t *testing.T) {
	stopping := make(chan struct{})
	b := setup(t, withAdmin, func(o *server.Options) { o.Stopping = stopping })
	ten := b.newTenant(t, "stream-stop@example.com")
	body := echoJob("later")
	body["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	acc := b.submit(t, ten.key, body)

	time.AfterFunc(300*time.Millisecond, func() { close(stopping) })
	start := time.Now()
	events := b.streamEvents(t, ten.key, acc.JobId) // fails the test if the stream does not end
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the stream ended %s after the shutdown signal, want at once", took-300*time.Millisecond)
	}
	if len(events) == 0 || events[0].event != "status" {
		t.Errorf("events %+v, want the scheduled status first", events)
	}
	for _, ev := range events {
		if ev.event == "end" {
			t.Errorf("an end event on shutdown: the job has not ended")
		}
	}
}
