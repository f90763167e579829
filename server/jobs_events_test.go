package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/gen/client"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

// withStreams sets the event-stream limits.
func withStreams(l server.StreamLimits) func(*testOptions) {
	return func(o *testOptions) { o.Streams = l }
}

// laterJob is a job that will not run during the test: its stream stays open.
func laterJob() map[string]any {
	body := echoJob("later")
	body["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	return body
}

// openStream is an event stream held open by the test: its response (200 checked)
// and a reader of its events, one at a time. close ends it from the client's side.
type openStream struct {
	resp  *http.Response
	lines *bufio.Reader
	close context.CancelFunc
}

// openEvents opens job id's stream with key (and Last-Event-ID when not ""),
// requiring 200, over a plain client: the validating transport would wait for the end.
func (b *bundle) openEvents(t *testing.T, key, id, lastEventID string) *openStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", b.URL+"/api/v1/jobs/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", key)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET events: %v", err)
	}
	s := &openStream{resp: resp, lines: bufio.NewReader(resp.Body), close: func() { cancel(); resp.Body.Close() }}
	t.Cleanup(s.close)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET events: %d %s", resp.StatusCode, body)
	}
	return s
}

// next returns the stream's next event (comments and retry fields skipped).
func (s *openStream) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := s.lines.ReadString('\n')
		if err != nil {
			t.Fatalf("read the stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ": ")
		switch {
		case line == "" && ev.event != "":
			return ev
		case field == "id":
			ev.id = value
		case field == "event":
			ev.event = value
		case field == "data":
			ev.data = value
		}
	}
}

// refusedEvents asks for job id's stream with key, expecting a refusal: the
// response (checked against the spec) and its problem. A stream that opens
// instead fails the test when the short deadline passes.
func (b *bundle) refusedEvents(t *testing.T, key, id string) (*http.Response, client.Problem) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", b.URL+"/api/v1/jobs/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", key)
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatalf("GET events, expecting a refusal: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, problemOf(t, resp, body)
}

// TestEventsPerKeyCap: a key holds at most MaxPerKey streams; the next gets 429 with
// Retry-After while another key still gets its stream, and a closed stream frees
// its slot.
func TestEventsPerKeyCap(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withStreams(server.StreamLimits{MaxPerKey: 2}))
	a := b.newTenant(t, "streams-a@example.com")
	other := b.newTenant(t, "streams-b@example.com")
	job := b.submit(t, a.key, laterJob()).JobId
	otherJob := b.submit(t, other.key, laterJob()).JobId

	first := b.openEvents(t, a.key, job, "")
	first.next(t)
	b.openEvents(t, a.key, job, "").next(t)
	resp, p := b.refusedEvents(t, a.key, job)
	if resp.StatusCode != http.StatusTooManyRequests || p.Code != "rate_limited" {
		t.Fatalf("third stream of a key with at most 2: %d %s", resp.StatusCode, p.Code)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want seconds", resp.Header.Get("Retry-After"))
	}
	if ev := b.openEvents(t, other.key, otherJob, "").next(t); ev.event != "status" {
		t.Errorf("another key's stream: first event %+v", ev)
	}

	// The client goes away: its slot comes back once the server has noticed.
	first.close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, err := http.DefaultClient.Do(eventsRequest(t, b, a.key, job))
		if err != nil {
			t.Fatalf("GET events: %v", err)
		}
		resp.Body.Close() // a stream we got: closed at once, its slot freed again
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after closing a stream: %d, want the freed slot (200)", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventsRequest is a GET of job id's stream with key, ended with the test.
func eventsRequest(t *testing.T, b *bundle, key, id string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", b.URL+"/api/v1/jobs/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", key)
	return req
}

// TestEventsServerCap: the process holds at most MaxTotal streams whatever the
// keys; past it 503 with Retry-After.
func TestEventsServerCap(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withStreams(server.StreamLimits{MaxPerKey: 5, MaxTotal: 2}))
	var tenants []tenant
	var ids []string
	for _, email := range []string{"cap-a@example.com", "cap-b@example.com", "cap-c@example.com"} {
		ten := b.newTenant(t, email)
		tenants, ids = append(tenants, ten), append(ids, b.submit(t, ten.key, laterJob()).JobId)
	}
	b.openEvents(t, tenants[0].key, ids[0], "").next(t)
	b.openEvents(t, tenants[1].key, ids[1], "").next(t)
	resp, p := b.refusedEvents(t, tenants[2].key, ids[2])
	if resp.StatusCode != http.StatusServiceUnavailable || p.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a third stream on a server holding at most 2: %d %s, Retry-After %q", resp.StatusCode, p.Code, resp.Header.Get("Retry-After"))
	}
}

// readRaw reads a stream to its end and returns its events and whether a retry
// field came after the last of them (the hint of a stream that ends early).
func readRaw(t *testing.T, s *openStream) (events []sseEvent, retry bool) {
	t.Helper()
	raw, err := io.ReadAll(s.lines)
	if err != nil {
		t.Fatalf("read the stream to its end: %v", err)
	}
	events, err = readSSE(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "data:"):
			retry = false
		case strings.HasPrefix(line, "retry: "):
			if ms, err := strconv.Atoi(strings.TrimPrefix(line, "retry: ")); err != nil || ms <= 0 {
				t.Errorf("retry field %q, want milliseconds", line)
			}
			retry = true
		}
	}
	return events, retry
}

// TestEventsResume: a stream ends after MaxDuration with a retry hint and no end
// event; reconnecting with the last id received carries on from there, so across
// all the streams every state is sent exactly once, the final one included.
func TestEventsResume(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin, withStreams(server.StreamLimits{MaxDuration: 250 * time.Millisecond}))
	ten := b.newTenant(t, "resume@example.com")
	body := map[string]any{"workflow": "slow", "payload": map[string]any{},
		"run_at": time.Now().Add(300 * time.Millisecond).UTC().Format(time.RFC3339Nano),
		"steps": []any{step("one", "core", "sleep", map[string]any{"ms": 400}), step("two", "core", "sleep", map[string]any{"ms": 400}),
			step("three", "core", "echo", map[string]any{"done": true})}}
	job := b.submit(t, ten.key, body).JobId

	var all []sseEvent
	last, streams := "", 0
	for streams < 40 {
		start := time.Now()
		events, retry := readRaw(t, b.openEvents(t, ten.key, job, last))
		streams++
		all = append(all, events...)
		if n := len(events); n > 0 {
			last = events[n-1].id
			if events[n-1].event == "end" {
				break
			}
		}
		if !retry {
			t.Fatalf("stream %d ended without end and without a retry field: %+v", streams, events)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("stream %d lasted %s, want about the 250ms maximum", streams, took)
		}
	}
	if streams < 3 {
		t.Fatalf("%d streams, want the job (~1.1 s) to outlast several 250ms streams", streams)
	}
	if len(all) == 0 || all[len(all)-1].event != "end" {
		t.Fatalf("no end event after %d streams: %+v", streams, all)
	}
	var seen []string
	count := map[string]int{}
	for _, ev := range all {
		key := ev.event
		switch ev.event {
		case "status":
			var d struct{ Status string }
			_ = json.Unmarshal([]byte(ev.data), &d)
			key += ":" + d.Status
		case "step":
			var d struct{ Step client.StepState }
			_ = json.Unmarshal([]byte(ev.data), &d)
			key += ":" + d.Step.Id + ":" + string(d.Step.Status)
		}
		seen = append(seen, key)
		count[key]++
	}
	for _, want := range []string{"status:scheduled", "status:running", "status:succeeded",
		"step:one:succeeded", "step:two:succeeded", "step:three:succeeded", "end"} {
		if count[want] != 1 {
			t.Errorf("%q sent %d times across %d streams, want once; events %q", want, count[want], streams, seen)
		}
	}

	// Reconnecting after the end event: nothing more (204, which stops EventSource).
	req, _ := http.NewRequestWithContext(t.Context(), "GET", b.URL+"/api/v1/jobs/"+job+"/events", nil)
	req.Header.Set("X-Api-Key", ten.key)
	req.Header.Set("Last-Event-ID", last)
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("reconnect after end: %d, want 204", resp.StatusCode)
	}
	// With the id of the final status (end not received): only the end event.
	finalState := ""
	for _, ev := range all {
		if ev.event != "end" {
			finalState = ev.id
		}
	}
	if events, _ := readRaw(t, b.openEvents(t, ten.key, job, finalState)); len(events) != 1 || events[0].event != "end" {
		t.Errorf("resume from the final state: %+v, want just end", events)
	}
	// An id the server does not recognise replays the current state.
	if events, _ := readRaw(t, b.openEvents(t, ten.key, job, "x9.nonsense")); len(events) != 5 || events[0].event != "status" {
		t.Errorf("resume from a foreign id: %+v, want the whole final state", events)
	}
}

// countingStore counts the job reads event streams make, over the real store.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) GetJob(ctx context.Context, id string) (jobs.Job, error) {
	c.reads.Add(1)
	return c.Store.GetJob(ctx, id)
}

// TestEventsPushedNotPolled: an idle stream does not read the database; a change
// made in this process reaches it at once through the hub.
func TestEventsPushedNotPolled(t *testing.T) {
	t.Parallel()
	var cs *countingStore
	b := setup(t, func(o *testOptions) { cs = &countingStore{Store: o.Store}; o.Store = cs }, withAdmin)
	ten := b.newTenant(t, "push@example.com")
	job := b.submit(t, ten.key, laterJob()).JobId

	s := b.openEvents(t, ten.key, job, "")
	if ev := s.next(t); ev.event != "status" || !strings.Contains(ev.data, `"scheduled"`) {
		t.Fatalf("first event %+v", ev)
	}
	before := cs.reads.Load()
	time.Sleep(2500 * time.Millisecond)
	if idle := cs.reads.Load() - before; idle != 0 {
		t.Errorf("an idle stream read the job %d times in 2.5 s, want none (it waits on the hub)", idle)
	}
	start := time.Now()
	if resp, data := b.do(t, "POST", "/api/v1/jobs/"+job+"/cancel", hdr(ten.key, ""), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel: %d %s", resp.StatusCode, data)
	}
	if ev := s.next(t); ev.event != "status" || !strings.Contains(ev.data, `"canceled"`) {
		t.Errorf("after cancel: %+v", ev)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the cancellation reached the stream after %s, want at once", took)
	}
}

// TestEventsOtherInstance (PostgreSQL): a change made by another process sharing
// the database reaches a stream by the slow fallback poll.
func TestEventsOtherInstance(t *testing.T) {
	t.Parallel()
	st := storetest.OpenPostgres(t)
	poll := 300 * time.Millisecond
	streaming := setup(t, func(o *testOptions) { o.Store = st }, withAdmin, withStreams(server.StreamLimits{Poll: poll}))
	other := setup(t, func(o *testOptions) { o.Store = st }, withAdmin)
	ten := streaming.newTenant(t, "instances@example.com")
	job := streaming.submit(t, ten.key, laterJob()).JobId

	s := streaming.openEvents(t, ten.key, job, "")
	s.next(t)
	start := time.Now()
	if resp, data := other.do(t, "POST", "/api/v1/jobs/"+job+"/cancel", hdr(ten.key, ""), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel on the other instance: %d %s", resp.StatusCode, data)
	}
	if ev := s.next(t); ev.event != "status" || !strings.Contains(ev.data, `"canceled"`) {
		t.Errorf("after a cancel elsewhere: %+v", ev)
	}
	if took := time.Since(start); took > poll+time.Second {
		t.Errorf("another instance's change arrived after %s, want within the %s poll", took, poll)
	}
}
