package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/jobs"
)

// Defaults of StreamLimits, the same as config's (LEVQOR_SSE_*): a zero field
// never means unbounded.
const (
	// DefaultStreamsPerKey: a dashboard follows a few jobs at once (browsers open at
	// most 6 HTTP/1.1 connections per origin anyway); 10 leaves room for a second tab.
	DefaultStreamsPerKey = 10
	// DefaultStreams: each stream holds a goroutine, a connection and a hub
	// watcher (tens of KiB); 1000 keep that to tens of MiB and well under the
	// file-descriptor limit, while many keys together cannot take the server.
	DefaultStreams = 1000
	// DefaultStreamDuration: streams are renewed now and then, so connections
	// rebalance across instances and a client gone silently is released.
	DefaultStreamDuration = 15 * time.Minute
)

// Stream timings: named constants, documented in the spec and ADR 0005.
const (
	// streamReconnect is the `retry:` a stream sends: how long an EventSource waits
	// before reconnecting after the stream ends without `end`.
	streamReconnect = 2 * time.Second
	// streamRetryAfter is the Retry-After of a stream refused over a cap.
	streamRetryAfter = 5 * time.Second
	// streamKeepAlive is how often an idle stream writes a comment, so proxies keep
	// the connection and a client gone away is noticed by the failed write.
	streamKeepAlive = 15 * time.Second
	// streamWriteGrace is how long past its maximum duration a stream's writes may
	// block on a client that does not read, before the connection is dropped.
	streamWriteGrace = 5 * time.Second
	// StreamPollShared is the interval at which a stream re-reads its job when other
	// processes share the database (PostgreSQL): their changes do not reach this
	// process's hub. See ADR 0005.
	StreamPollShared = 5 * time.Second
)

// StreamLimits bound the job event streams (GET /api/v1/jobs/{id}/events).
type StreamLimits struct {
	MaxPerKey   int           // open streams per API key; past it 429 (0: DefaultStreamsPerKey)
	MaxTotal    int           // open streams in this process; past it 503 (0: DefaultStreams)
	MaxDuration time.Duration // a stream's lifetime; it then ends with a reconnect hint (0: DefaultStreamDuration)
	// Poll is how often a stream re-reads its job besides the hub's signals: 0 when
	// this process is the only one changing jobs (SQLite), StreamPollShared otherwise.
	Poll time.Duration
}

func (l StreamLimits) withDefaults() StreamLimits {
	if l.MaxPerKey <= 0 {
		l.MaxPerKey = DefaultStreamsPerKey
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = DefaultStreams
	}
	if l.MaxDuration <= 0 {
		l.MaxDuration = DefaultStreamDuration
	}
	return l
}

// streamSlots counts the open event streams, per API key and in all.
type streamSlots struct {
	limits StreamLimits
	mu     sync.Mutex
	perKey map[string]int
	total  int
}

func newStreamSlots(l StreamLimits) *streamSlots {
	return &streamSlots{limits: l.withDefaults(), perKey: map[string]int{}}
}

// acquire takes a slot for key, or returns a rate_limited (this key's cap) or
// unavailable (the process's cap) error. release may be called any number of
// times; only the first call counts.
func (s *streamSlots) acquire(key string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perKey[key] >= s.limits.MaxPerKey {
		return nil, levqor.Errorf(levqor.ERateLimited, "This API key already has %d event streams open, the most allowed; close one or retry later.", s.limits.MaxPerKey)
	}
	if s.total >= s.limits.MaxTotal {
		return nil, levqor.Errorf(levqor.EUnavailable, "The server holds as many event streams as it allows; retry later.")
	}
	s.perKey[key]++
	s.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.perKey[key]--; s.perKey[key] <= 0 {
				delete(s.perKey, key)
			}
		})
	}, nil
}

// StreamJobEvents implements api.StrictServerInterface: a text/event-stream of
// status and step events, from the job's current state (or the state named by
// Last-Event-ID) until a terminal status, the stream's maximum duration or shutdown.
func (s *handlers) StreamJobEvents(ctx context.Context, req api.StreamJobEventsRequestObject) (api.StreamJobEventsResponseObject, error) {
	p := principalFrom(ctx)
	slotKey := "key:" + p.KeyID
	if p.KeyID == "" {
		slotKey = "key:bootstrap" // as the per-key rate limit counts bootstrap keys
	}
	release, err := s.streams.acquire(slotKey)
	if err != nil {
		if info := requestInfoFrom(ctx); info != nil {
			info.header.Set("Retry-After", strconv.Itoa(int(streamRetryAfter/time.Second)))
		}
		return nil, err
	}
	// Watch before the first read, so no change between the read and the watch is
	// missed. done releases the slot and the watch on every way out: the stream's
	// end, an error below, or the request's end (its context ends once the
	// handler has returned, also when the response is never written).
	signal, stopWatching := s.hub.Watch(req.Id)
	var once sync.Once
	done := func() { once.Do(func() { stopWatching(); release() }) }
	context.AfterFunc(ctx, done)

	j, err := s.jobs.Get(ctx, p, req.Id)
	if err != nil {
		done()
		return nil, err
	}
	seen, ended := resumeFrom(req.Params.LastEventID, j)
	if ended {
		done()
		return api.StreamJobEvents204Response{}, nil
	}
	limits := s.streams.limits
	return eventStream{ctx: ctx, stopping: s.stopping, first: j, seen: seen, signal: signal, done: done,
		maxDuration: limits.MaxDuration, poll: limits.Poll,
		next: func(ctx context.Context) (jobs.Job, error) { return s.jobs.Get(ctx, p, req.Id) }}, nil
}

// eventStream writes a job's changes as server-sent events. It reads the job when
// the hub signals a change made in this process and, when other processes share
// the database, every poll interval.
type eventStream struct {
	ctx         context.Context
	stopping    <-chan struct{} // the server is shutting down (nil: never)
	first       jobs.Job
	seen        *jobMarks // what the client has already seen; nil: nothing
	next        func(context.Context) (jobs.Job, error)
	signal      <-chan struct{}
	done        func() // releases the slot and the watch
	maxDuration time.Duration
	poll        time.Duration // 0: no polling
}

func (e eventStream) VisitStreamJobEventsResponse(w http.ResponseWriter) error {
	defer e.done()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	// A stream outlives the server's write timeout, but no write may block past its
	// end (plus a grace): a client that stops reading cannot hold it for longer.
	_ = rc.SetWriteDeadline(time.Now().Add(e.maxDuration + streamWriteGrace))
	w.WriteHeader(http.StatusOK)

	lifetime := time.NewTimer(e.maxDuration)
	defer lifetime.Stop()
	keepAlive := time.NewTicker(streamKeepAlive)
	defer keepAlive.Stop()
	var poll <-chan time.Time
	if e.poll > 0 {
		t := time.NewTicker(e.poll)
		defer t.Stop()
		poll = t.C
	}
	write := func(format string, args ...any) bool {
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// reconnect ends a stream that the client should reopen with Last-Event-ID.
	reconnect := func(why string) error {
		write("retry: %d\n: %s; reconnect with Last-Event-ID\n\n", streamReconnect.Milliseconds(), why)
		return nil
	}
	if !write("retry: %d\n\n", streamReconnect.Milliseconds()) {
		return nil
	}

	seen := e.seen
	if seen == nil {
		seen = freshMarks(e.first)
	}
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		return err == nil && write("id: %s\nevent: %s\ndata: %s\n\n", seen.id(), event, b)
	}
	j := e.first
	for {
		if seen.status != j.Status || seen.attempts != j.Attempts {
			seen.status, seen.attempts = j.Status, j.Attempts
			if !send("status", map[string]any{"job_id": j.ID, "status": j.Status, "attempts": j.Attempts}) {
				return nil
			}
		}
		for i, st := range j.Steps {
			if seen.steps[i] == (stepMark{st.Status, st.Attempts}) {
				continue
			}
			seen.steps[i] = stepMark{st.Status, st.Attempts}
			ev := toAPIJob(jobs.Job{Steps: []jobs.StepState{st}}).Steps[0]
			if !send("step", map[string]any{"job_id": j.ID, "step": ev}) {
				return nil
			}
		}
		if jobs.Terminal(j.Status) {
			b, err := json.Marshal(toAPIJob(j))
			if err == nil {
				write("id: %s\nevent: end\ndata: %s\n\n", endEventID, b)
			}
			return nil
		}
	wait:
		for {
			select {
			case <-e.ctx.Done():
				return nil
			case <-e.stopping:
				return reconnect("the server is shutting down") // to another instance, or after the restart
			case <-lifetime.C:
				return reconnect("the stream reached its maximum duration")
			case <-keepAlive.C:
				if !write(": keep-alive\n\n") {
					return nil
				}
			case <-e.signal:
				break wait
			case <-poll:
				break wait
			}
		}
		next, err := e.next(e.ctx)
		if err != nil {
			return reconnect("the job could not be read")
		}
		if len(next.Steps) != len(seen.steps) { // cannot happen: a job's steps are fixed at intake
			return reconnect("the job changed shape")
		}
		j = next
	}
}

// endEventID is the id of the `end` event: a client that has it has everything.
const endEventID = "end"

// jobMarks is the part of a job's state that its events report: the status with
// its attempt, and each step's status and attempts. An event's id encodes the
// marks the client holds once it has the event, so a reconnecting client's
// Last-Event-ID says exactly what it has seen.
type jobMarks struct {
	status   string
	attempts int
	steps    []stepMark
}

type stepMark struct {
	status   string
	attempts int
}

// One letter per status in event ids; see jobMarks.id.
var (
	jobStatusLetters = map[string]byte{jobs.StatusQueued: 'q', jobs.StatusScheduled: 's', jobs.StatusRunning: 'r',
		jobs.StatusRetrying: 'y', jobs.StatusWaiting: 'w', jobs.StatusSucceeded: 'd', jobs.StatusFailed: 'f', jobs.StatusCanceled: 'c'}
	stepStatusLetters = map[string]byte{jobs.StepPending: 'p', jobs.StepRunning: 'r', jobs.StepSucceeded: 'd',
		jobs.StepFailed: 'f', jobs.StepCanceled: 'c', jobs.StepSkipped: 's', jobs.StepWaiting: 'w'}
)

// freshMarks is what a client without Last-Event-ID is taken to have seen: no
// status, and the steps that have not started (which it is not told about).
func freshMarks(j jobs.Job) *jobMarks {
	m := &jobMarks{attempts: -1, steps: make([]stepMark, len(j.Steps))}
	for i, st := range j.Steps {
		m.steps[i] = stepMark{jobs.StepPending, 0}
		if st.Status == jobs.StepPending {
			m.steps[i].attempts = st.Attempts
		}
	}
	return m
}

// id encodes the marks as "<job><attempts>.<step><attempts>…", e.g. "r2.d1.r1.p0":
// at most 52 short fields (a job has at most 50 steps and an on_failure step).
func (m *jobMarks) id() string {
	var b strings.Builder
	b.WriteByte(jobStatusLetters[m.status])
	b.WriteString(strconv.Itoa(m.attempts))
	for _, st := range m.steps {
		b.WriteByte('.')
		b.WriteByte(stepStatusLetters[st.status])
		b.WriteString(strconv.Itoa(st.attempts))
	}
	return b.String()
}

// resumeFrom decodes a Last-Event-ID for job j: the marks the client has seen (nil
// without an id, or for one that does not fit the job, which then replays the
// current state), and whether the client already has the job's end event.
func resumeFrom(lastEventID *string, j jobs.Job) (seen *jobMarks, ended bool) {
	if lastEventID == nil {
		return nil, false
	}
	if *lastEventID == endEventID {
		return nil, jobs.Terminal(j.Status)
	}
	fields := strings.Split(*lastEventID, ".")
	if len(fields) != len(j.Steps)+1 {
		return nil, false
	}
	m := &jobMarks{steps: make([]stepMark, len(j.Steps))}
	var ok bool
	if m.status, m.attempts, ok = parseMark(fields[0], jobStatusLetters); !ok {
		return nil, false
	}
	for i, f := range fields[1:] {
		if m.steps[i].status, m.steps[i].attempts, ok = parseMark(f, stepStatusLetters); !ok {
			return nil, false
		}
	}
	return m, false
}

// parseMark reads one field of an event id: a status letter of letters and a
// number of attempts.
func parseMark(f string, letters map[string]byte) (status string, attempts int, ok bool) {
	if len(f) < 2 || len(f) > 7 {
		return "", 0, false
	}
	n, err := strconv.Atoi(f[1:])
	if err != nil || n < 0 || f[1] == '+' {
		return "", 0, false
	}
	for s, l := range letters {
		if l == f[0] {
			return s, n, true
		}
	}
	return "", 0, false
}
