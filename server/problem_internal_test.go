package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/levqor/levqor"
	apispec "github.com/levqor/levqor/api/spec"
	"github.com/levqor/levqor/gen/api"
)

// lockedBuffer collects log output written from the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// observed wraps h in observe with a logger writing JSON into the returned buffer.
func observed(h http.Handler) (http.Handler, *lockedBuffer) {
	logs := &lockedBuffer{}
	return observe(slog.New(slog.NewJSONHandler(logs, nil)), nil, nil, h), logs
}

// logLines decodes JSON log output, one object a line.
func logLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// specProblem is components/schemas/Problem of the embedded spec.
func specProblem(t *testing.T) *openapi3.Schema {
	t.Helper()
	spec, err := apispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	return spec.Components.Schemas["Problem"].Value
}

// decodeProblem checks a recorded response is a problem valid against the spec
// and returns it.
func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) api.Problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("Content-Length %q, body %d bytes", cl, rec.Body.Len())
	}
	var doc any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("problem body %q: %v", rec.Body, err)
	}
	if err := specProblem(t).VisitJSON(doc, openapi3.VisitAsResponse()); err != nil {
		t.Errorf("problem %s does not match the spec's Problem: %v", rec.Body, err)
	}
	var p api.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != rec.Code {
		t.Errorf("problem status %d, HTTP status %d", p.Status, rec.Code)
	}
	return p
}

func TestPanicBecomesProblem(t *testing.T) {
	const secret = "db password hunter2 leaked by panic"
	h, logs := observed(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(secret) }))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/boom", nil)
	req.Header.Set("X-Request-ID", "boom-req-1")
	h.ServeHTTP(rec, req)

	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	p := decodeProblem(t, rec)
	if p.Code != api.ProblemCode(levqor.EInternal) || p.Detail == nil || *p.Detail != "Internal error." {
		t.Errorf("problem %s, want code internal and detail %q", rec.Body, "Internal error.")
	}
	if p.RequestId == nil || *p.RequestId != "boom-req-1" || rec.Header().Get("X-Request-ID") != "boom-req-1" {
		t.Errorf("request id: problem %v, header %q, want boom-req-1", p.RequestId, rec.Header().Get("X-Request-ID"))
	}
	if p.Type != problemBase+"internal" || p.Title != "Internal Server Error" {
		t.Errorf("type %q title %q", p.Type, p.Title)
	}
	if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "panic") {
		t.Errorf("the panic reached the client: %s", rec.Body)
	}

	var panicLine, accessLine map[string]any
	for _, l := range logLines(t, logs.String()) {
		switch l["msg"] {
		case "panic":
			panicLine = l
		case "request":
			accessLine = l
		}
	}
	if panicLine == nil || panicLine["panic"] != secret || panicLine["request_id"] != "boom-req-1" || panicLine["level"] != "ERROR" {
		t.Errorf("panic log line %v, want the panic text at ERROR with the request id", panicLine)
	}
	if stack, _ := panicLine["stack"].(string); !strings.Contains(stack, "TestPanicBecomesProblem") {
		t.Errorf("the panic log line has no useful stack: %.200q", stack)
	}
	if accessLine == nil || accessLine["status"] != float64(500) || accessLine["error_code"] != "internal" {
		t.Errorf("access line %v, want status 500 and error_code internal", accessLine)
	}
}

func TestPanicAfterHeadersAbortsConnection(t *testing.T) {
	h, logs := observed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "partial")
		http.NewResponseController(w).Flush()
		panic("half way")
	}))
	srv := httptest.NewServer(h)
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	// The client must see the response fail, not "partial" as a whole 200 body.
	if err == nil {
		t.Fatalf("read %q and no error: a truncated response passed as complete", body)
	}
	if !strings.Contains(logs.String(), `"panic":"half way"`) {
		t.Errorf("the panic is not logged:\n%s", logs)
	}
	var access int
	for _, l := range logLines(t, logs.String()) {
		if l["msg"] == "request" && l["status"] == float64(200) {
			access++
		}
	}
	if access != 1 {
		t.Errorf("%d access lines with status 200, want 1:\n%s", access, logs)
	}
}

func TestErrAbortHandlerIsRepanicked(t *testing.T) {
	h, logs := observed(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler re-panicked", p)
			}
		}()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/abort", nil))
	}()
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
		t.Errorf("an aborted request got a response: %q", rec.Body)
	}
	lines := logLines(t, logs.String())
	for _, l := range lines {
		if l["msg"] == "panic" {
			t.Errorf("an intentional abort is logged as a panic: %v", l)
		}
	}
	if len(lines) != 1 || lines[0]["msg"] != "request" {
		t.Errorf("want exactly one access line for an aborted request, got:\n%s", logs)
	}
}

// wantStatus is the mapping of every application error code, written out
// independently of statusOf.
var wantStatus = map[string]int{
	levqor.EInvalid:              400,
	levqor.EUnauthorized:         401,
	levqor.EForbidden:            403,
	levqor.ENotFound:             404,
	levqor.EMethodNotAllowed:     405,
	levqor.EConflict:             409,
	levqor.EUnprocessable:        422,
	levqor.EBudgetExceeded:       402,
	levqor.ETooLarge:             413,
	levqor.EUnsupportedMediaType: 415,
	levqor.ERateLimited:          429,
	levqor.EInternal:             500,
	levqor.EUnavailable:          503,
	levqor.EStorageFull:          507,
	levqor.EGone:                 410,
}

func TestWriteProblemEveryCode(t *testing.T) {
	if len(statusOf) != len(wantStatus) {
		t.Errorf("statusOf maps %d codes, the test knows %d: keep both in step with errors.go", len(statusOf), len(wantStatus))
	}
	enum := map[string]bool{}
	for _, v := range specProblem(t).Properties["code"].Value.Enum {
		enum[v.(string)] = true
	}
	for code, status := range wantStatus {
		t.Run(code, func(t *testing.T) {
			if !enum[code] {
				t.Errorf("code %q is not in the spec's Problem.code enum", code)
			}
			if got, ok := statusOf[code]; !ok || got != status {
				t.Errorf("statusOf[%q] = %d, %v; want %d", code, got, ok, status)
			}
			h, _ := observed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeProblem(w, r, fmt.Errorf("wrapped: %w", levqor.Errorf(code, "Message for %s.", code)))
			}))
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/things/1", nil)
			req.Header.Set("X-Request-ID", "code-"+code)
			h.ServeHTTP(rec, req)
			if rec.Code != status {
				t.Fatalf("status %d, want %d", rec.Code, status)
			}
			p := decodeProblem(t, rec)
			wantType := "https://levqor.ai/problems/" + strings.ReplaceAll(code, "_", "-")
			if p.Type != wantType || p.Title != http.StatusText(status) || string(p.Code) != code {
				t.Errorf("type %q title %q code %q, want %q %q %q", p.Type, p.Title, p.Code, wantType, http.StatusText(status), code)
			}
			wantDetail := "Message for " + code + "."
			if code == levqor.EInternal {
				wantDetail = "Internal error."
			}
			if p.Detail == nil || *p.Detail != wantDetail {
				t.Errorf("detail %v, want %q", p.Detail, wantDetail)
			}
			if p.Instance == nil || *p.Instance != "/things/1" || p.RequestId == nil || *p.RequestId != "code-"+code {
				t.Errorf("instance %v request_id %v", p.Instance, p.RequestId)
			}
		})
	}
}

func TestWriteProblemHidesInternals(t *testing.T) {
	const secret = "postgres://levqor:hunter2@10.0.0.5/levqor"
	cases := map[string]error{
		"plain error":             errors.New("dial " + secret + ": connection refused"),
		"wrapped plain error":     fmt.Errorf("create job: %w", errors.New(secret)),
		"internal levqor error":   &levqor.Error{Code: levqor.EInternal, Message: "query failed on " + secret},
		"unmapped levqor code":    &levqor.Error{Code: "no_such_code", Message: "detail from " + secret, Fields: []levqor.FieldError{{Pointer: "/x", Detail: secret}}},
		"levqor error with cause": &levqor.Error{Code: levqor.EInternal, Message: "Internal error.", Err: errors.New(secret)},
	}
	for name, err := range cases {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeProblem(rec, httptest.NewRequest(http.MethodGet, "/x", nil), err)
			if rec.Code != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", rec.Code)
			}
			p := decodeProblem(t, rec)
			if p.Code != api.ProblemCode(levqor.EInternal) || p.Detail == nil || *p.Detail != "Internal error." || p.Errors != nil {
				t.Errorf("problem %s, want code internal, detail %q and no field errors", rec.Body, "Internal error.")
			}
			if strings.Contains(rec.Body.String(), "hunter2") {
				t.Errorf("the error text reached the client: %s", rec.Body)
			}
		})
	}
}

func TestWriteProblemFieldsAndEncoding(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Encoding", "gzip") // set by a handler before it failed
	writeProblem(rec, httptest.NewRequest(http.MethodPost, "/jobs", nil), &levqor.Error{
		Code: levqor.EInvalid, Message: "Two fields are wrong.",
		Fields: []levqor.FieldError{{Pointer: "/name", Detail: "Too long."}, {Pointer: "query.limit", Detail: "Must be at most 100."}},
	})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d", rec.Code)
	}
	if ce := rec.Header().Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding %q left on a plain JSON problem", ce)
	}
	p := decodeProblem(t, rec)
	if p.Errors == nil || len(*p.Errors) != 2 || (*p.Errors)[0].Pointer != "/name" || (*p.Errors)[1].Detail != "Must be at most 100." {
		t.Errorf("errors %s, want both field errors in order", rec.Body)
	}
}

func TestLimitBody(t *testing.T) {
	const max = 1024
	t.Run("Content-Length over the limit is refused before the handler", func(t *testing.T) {
		called := false
		h, _ := observed(limitBody(max, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/jobs", bytes.NewReader(make([]byte, max+1))))
		if called {
			t.Error("the handler ran")
		}
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", rec.Code)
		}
		if p := decodeProblem(t, rec); string(p.Code) != levqor.ETooLarge || p.Detail == nil || !strings.Contains(*p.Detail, "1024") {
			t.Errorf("problem %s, want too_large naming the limit", rec.Body)
		}
	})
	t.Run("a body at the limit passes intact", func(t *testing.T) {
		want := bytes.Repeat([]byte("x"), max)
		var got []byte
		var readErr error
		h := limitBody(max, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, readErr = io.ReadAll(r.Body) }))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/jobs", bytes.NewReader(want)))
		if readErr != nil || !bytes.Equal(got, want) {
			t.Errorf("handler read %d bytes, err %v; want all %d", len(got), readErr, max)
		}
	})
	t.Run("a chunked body over the limit stops the reader", func(t *testing.T) {
		var readErr error
		var read int
		h, _ := observed(limitBody(max, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength != -1 || len(r.TransferEncoding) == 0 || r.TransferEncoding[0] != "chunked" {
				t.Errorf("the request is not chunked: ContentLength %d, TransferEncoding %v", r.ContentLength, r.TransferEncoding)
			}
			var b []byte
			b, readErr = io.ReadAll(r.Body)
			read = len(b)
			writeProblem(w, r, validationError(readErr))
		})))
		srv := httptest.NewServer(h)
		defer srv.Close()
		// A reader without a known length makes net/http send the body chunked.
		body := io.MultiReader(bytes.NewReader(make([]byte, max)), strings.NewReader("one byte too many"))
		resp, err := http.Post(srv.URL+"/jobs", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var mbe *http.MaxBytesError
		if !errors.As(readErr, &mbe) || mbe.Limit != max {
			t.Fatalf("the handler's read error is %v, want *http.MaxBytesError with limit %d", readErr, max)
		}
		if read > max {
			t.Errorf("the handler read %d bytes past a limit of %d", read, max)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", resp.StatusCode)
		}
		var p api.Problem
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || string(p.Code) != levqor.ETooLarge {
			t.Errorf("problem %+v (%v), want too_large", p, err)
		}
	})
}

func TestValidationErrorTooLarge(t *testing.T) {
	mbe := &http.MaxBytesError{Limit: 2048}
	// As kin-openapi's request validator reports a failed body read.
	reqErr := &openapi3filter.RequestError{Reason: "reading failed", Err: mbe}
	for name, err := range map[string]error{
		"bare":         mbe,
		"wrapped":      fmt.Errorf("read body: %w", mbe),
		"RequestError": reqErr,
		"MultiError":   openapi3.MultiError{reqErr},
	} {
		got := validationError(err)
		if code := levqor.ErrorCode(got); code != levqor.ETooLarge {
			t.Errorf("%s: code %q, want too_large", name, code)
		}
		if msg := levqor.ErrorMessage(got); !strings.Contains(msg, "2048") {
			t.Errorf("%s: message %q does not name the limit", name, msg)
		}
	}
	if code := levqor.ErrorCode(validationError(errors.New("other"))); code != levqor.EInvalid {
		t.Errorf("an ordinary validation error maps to %q, want invalid", code)
	}
}
