package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The load generator is closed-loop: each of N keep-alive connections sends one
// request, reads the whole response, and sends the next, for a fixed duration.
// It speaks just enough HTTP/1.1 to do that (a fixed request, with or without a
// Content-Length body; Content-Length responses) so that it spends as little of
// the machine's CPU as it can: on a small machine it shares the cores with the
// server, and a heavy client would hide the difference between two servers.

const (
	maxConnErrors = 100     // failures after which a connection gives up for the round
	maxHeaders    = 100     // header lines accepted in one response
	maxBody       = 1 << 20 // largest response body accepted
	dialTimeout   = time.Second
	roundGrace    = 5 * time.Second // how long a request may still run after the round ends
)

// loadRequest is the request every connection repeats, and what counts as a
// good answer to it.
type loadRequest struct {
	method string // GET when empty
	path   string
	header http.Header // sent besides Host, User-Agent and Content-Length
	body   []byte      // sent with a Content-Length header when not nil
	// status is the expected status code (200 when zero); want is the expected
	// body: the whole of it, or with contains a part of it (for bodies that vary,
	// such as timestamps, yet must name the right object).
	status   int
	want     []byte
	contains bool
}

// verb returns the request's method.
func (lr loadRequest) verb() string {
	if lr.method == "" {
		return http.MethodGet
	}
	return lr.method
}

// wantStatus returns the status code that counts as good.
func (lr loadRequest) wantStatus() int {
	if lr.status == 0 {
		return http.StatusOK
	}
	return lr.status
}

// String describes the expected response, for error messages.
func (lr loadRequest) String() string {
	if lr.contains {
		return fmt.Sprintf("%d with a body containing %q", lr.wantStatus(), lr.want)
	}
	return fmt.Sprintf("%d %q", lr.wantStatus(), lr.want)
}

// match reports whether a response with status and body is a good answer.
func (lr loadRequest) match(status int, body []byte) bool {
	if status != lr.wantStatus() {
		return false
	}
	if lr.contains {
		return bytes.Contains(body, lr.want)
	}
	return bytes.Equal(body, lr.want)
}

// wire returns the request as bytes on the wire, for the server at addr.
func (lr loadRequest) wire(addr string) []byte {
	var b bytes.Buffer
	b.WriteString(lr.verb() + " " + lr.path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: levqor-bench\r\n")
	if lr.body != nil {
		b.WriteString("Content-Length: " + strconv.Itoa(len(lr.body)) + "\r\n")
	}
	_ = lr.header.Write(&b) // a bytes.Buffer does not fail
	b.WriteString("\r\n")
	b.Write(lr.body)
	return b.Bytes()
}

// loadResult is what one round of load measured.
type loadResult struct {
	OK      uint64        // responses with the expected status and body
	Other   uint64        // complete responses with another status or body
	Errors  uint64        // failed dials, writes or reads; the connection is redialled
	Elapsed time.Duration // from the first dial until the last response
	latency histogram     // of the OK responses: from writing the request to reading the body
}

// RPS is the rate of OK responses.
func (r *loadResult) RPS() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

func (r *loadResult) add(o *loadResult) {
	r.OK += o.OK
	r.Other += o.Other
	r.Errors += o.Errors
	r.latency.merge(&o.latency)
}

// generateLoad keeps conns connections to addr busy with lr for d and counts
// the responses that lr matches.
func generateLoad(ctx context.Context, addr string, lr loadRequest, conns int, d time.Duration) *loadResult {
	req := lr.wire(addr)
	results := make([]loadResult, conns)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { loadConn(ctx, &results[i], addr, req, &lr, end) })
	}
	wg.Wait()
	total := &loadResult{Elapsed: time.Since(start)}
	for i := range results {
		total.add(&results[i])
	}
	return total
}

// loadConn runs one connection's request loop until end, redialling after an error.
func loadConn(ctx context.Context, r *loadResult, addr string, req []byte, lr *loadRequest, end time.Time) {
	body := make([]byte, 0, 512)
	for time.Now().Before(end) && ctx.Err() == nil && r.Errors < maxConnErrors {
		conn, err := net.DialTimeout("tcp", addr, dialTimeout)
		if err != nil {
			r.Errors++
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// Bound every read and write; on interrupt, fail them at once.
		_ = conn.SetDeadline(end.Add(roundGrace))
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
		br := bufio.NewReaderSize(conn, 4<<10)
		for sent := time.Now(); sent.Before(end); {
			if _, err = conn.Write(req); err != nil {
				break
			}
			var status int
			if status, body, err = readResponse(br, body); err != nil {
				break
			}
			done := time.Now()
			if lr.match(status, body) {
				r.OK++
				r.latency.record(done.Sub(sent))
			} else {
				r.Other++
			}
			sent = done
		}
		if err != nil {
			r.Errors++
		}
		stop()
		conn.Close()
	}
}

var (
	errMalformed     = errors.New("malformed HTTP response")
	headContentLen   = []byte("Content-Length")
	headTransferEnc  = []byte("Transfer-Encoding")
	statusLinePrefix = []byte("HTTP/1.1 ")
)

// readResponse reads one HTTP/1.1 response with a Content-Length body into
// body's storage and returns its status code and body.
func readResponse(br *bufio.Reader, body []byte) (int, []byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, body, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, statusLinePrefix) {
		return 0, body, errMalformed
	}
	status := parseDecimal(line[9:12])
	length := -1
	for i := 0; ; i++ {
		if i == maxHeaders {
			return 0, body, errMalformed
		}
		if line, err = br.ReadSlice('\n'); err != nil {
			return 0, body, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, body, errMalformed
		}
		switch {
		case bytes.EqualFold(name, headContentLen):
			length = parseDecimal(bytes.TrimSpace(value))
		case bytes.EqualFold(name, headTransferEnc):
			return 0, body, fmt.Errorf("response has Transfer-Encoding %q; only Content-Length bodies are supported", value)
		}
	}
	if status < 100 || length < 0 || length > maxBody {
		return 0, body, errMalformed
	}
	body = slices.Grow(body[:0], length)[:length]
	_, err = io.ReadFull(br, body)
	return status, body, err
}

// parseDecimal parses a short unsigned decimal, or returns -1.
func parseDecimal(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// histogram counts durations in log-linear buckets: 64 per power of two, so a
// quantile is within 1/128 (under 1%) of the true value, in fixed memory.
type histogram struct {
	counts [64 << subBits]uint64
	n      uint64
}

const subBits = 6

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the duration below which a fraction q of the recordings fall.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return time.Duration(bucketMid(i))
		}
	}
	return time.Duration(bucketMid(len(h.counts) - 1))
}

// bucketOf maps v to its bucket: values below 64 exactly, larger ones by their
// power of two and the 6 bits after the leading one.
func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)<<subBits | int(v>>shift)&(1<<subBits-1)
}

// bucketMid is the middle of bucket i's range.
func bucketMid(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	low := uint64(1<<subBits|i&(1<<subBits-1)) << shift
	return low + (uint64(1)<<shift)/2
}
