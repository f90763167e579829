package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/jobs"
)

// MaxJSONDepth is the deepest nesting of arrays and objects a request body may have.
const MaxJSONDepth = 32

func isJSONMediaType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// guardJSON reads JSON bodies (already bounded by limitBody) and refuses those nested
// deeper than MaxJSONDepth before any decoder sees them; an over-long body becomes 413.
func guardJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || !isJSONMediaType(r.Header.Get("Content-Type")) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeProblem(w, r, levqor.Errorf(levqor.ETooLarge, "The request body is larger than %d bytes.", mbe.Limit))
				return
			}
			writeProblem(w, r, &levqor.Error{Code: levqor.EInvalid, Message: "The request body could not be read.", Err: err})
			return
		}
		if d := levqor.JSONDepth(body); d > MaxJSONDepth {
			writeProblem(w, r, levqor.Errorf(levqor.EInvalid, "The JSON body is nested %d levels deep; at most %d are allowed.", d, MaxJSONDepth))
			return
		}
		if info := requestInfoFrom(r.Context()); info != nil {
			info.body = body
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// requestBodyHash fingerprints the JSON body of the request ctx belongs to (for
// idempotency keys); "" when there was none.
func requestBodyHash(ctx context.Context) string {
	info := requestInfoFrom(ctx)
	if info == nil || info.body == nil {
		return ""
	}
	return jobs.HashBody(info.body)
}
