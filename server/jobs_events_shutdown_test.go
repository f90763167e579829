package server_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/levqor/levqor/server"
)

// TestEventsEndOnShutdown: a stream of a job that will not end soon stops when the
// server shuts down (Options.Stopping), instead of holding the drain.
func TestEventsEndOnShutdown(t *testing.T) {
	stopping := make(chan struct{})
	b := setup(t, withAdmin, func(o *testOptions) { o.Stopping = stopping })
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

// TestEventsShutdownReleasesSlots: at shutdown a stream ends with a reconnect hint
// (retry, no end event) and gives its slot back, as on a client's disconnect.
func TestEventsShutdownReleasesSlots(t *testing.T) {
	stopping := make(chan struct{})
	b := setup(t, withAdmin, withStreams(server.StreamLimits{MaxPerKey: 1}), func(o *testOptions) { o.Stopping = stopping })
	ten := b.newTenant(t, "stream-slots@example.com")
	job := b.submit(t, ten.key, laterJob()).JobId

	s := b.openEvents(t, ten.key, job, "")
	s.next(t)
	if resp, p := b.refusedEvents(t, ten.key, job); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second stream of a key with at most 1: %d %s", resp.StatusCode, p.Code)
	}
	close(stopping)
	events, retry := readRaw(t, s)
	if !retry || len(events) != 0 {
		t.Errorf("the stream's rest after shutdown: events %+v, retry %v; want a retry field alone", events, retry)
	}
	// The slot is back: the next stream opens (and, the server stopping, ends at once).
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, err := http.DefaultClient.Do(eventsRequest(t, b, ten.key, job))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after shutdown: %d, want the slot released (200)", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
