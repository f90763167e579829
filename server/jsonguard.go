package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"

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

// nulDetail is what a caller is told about a text value holding U+0000.
const nulDetail = "Must not contain the NUL character (U+0000)."

// refuseNUL is the one rule for U+0000 in what a request asks to store: PostgreSQL's
// text columns cannot hold it (SQLite's can), so rather than a 500 on one engine
// and a stored NUL on the other, every text value is refused on both with 400 and a
// pointer — any string the spec types (a name, a description, a map value or key)
// in a JSON body, and any query or path parameter. Free-form JSON (payloads, step
// inputs, meta: a schema that leaves the value open) is stored as JSON, where
// store/storejson turns U+0000 into U+FFFD; that keeps its existing behaviour.
// The spec decides which is which, so fields added later are covered unasked.
//
// It runs after the validator, on a body that already fits its schema, and does
// work only when the request carries a NUL at all.
func refuseNUL(spec *openapi3.T) mux.MiddlewareFunc {
	bodies := map[string]map[string]*openapi3.Schema{} // "METHOD /template" → media type → schema
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			byType := map[string]*openapi3.Schema{}
			for mt, media := range op.RequestBody.Value.Content {
				if media.Schema != nil {
					byType[mt] = media.Schema.Value
				}
			}
			bodies[method+" "+path] = byType
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var fields []levqor.FieldError
			if strings.Contains(r.URL.RawQuery, "%00") {
				for name, values := range r.URL.Query() {
					for _, v := range values {
						if strings.ContainsRune(v, 0) || strings.ContainsRune(name, 0) {
							fields = append(fields, levqor.FieldError{Pointer: "query." + name, Detail: nulDetail})
							break
						}
					}
				}
			}
			for name, v := range mux.Vars(r) {
				if strings.ContainsRune(v, 0) {
					fields = append(fields, levqor.FieldError{Pointer: "path." + name, Detail: nulDetail})
				}
			}
			if info := requestInfoFrom(r.Context()); info != nil && bytes.Contains(info.body, []byte(`\u0000`)) {
				mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
				var doc any
				if s := bodies[r.Method+" "+info.route][mt]; s != nil && json.Unmarshal(info.body, &doc) == nil {
					for _, p := range nulText(s, doc, "") {
						fields = append(fields, levqor.FieldError{Pointer: p, Detail: nulDetail})
					}
				}
			}
			if len(fields) > 0 {
				slices.SortFunc(fields, func(a, b levqor.FieldError) int { return strings.Compare(a.Pointer, b.Pointer) })
				writeProblem(w, r, &levqor.Error{Code: levqor.EInvalid, Message: "Text must not contain the NUL character (U+0000).", Fields: fields})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// nulText returns the JSON pointers (below at) of the text in v that holds U+0000:
// strings, and object keys, wherever schema s types the value rather than leaving
// it free-form.
func nulText(s *openapi3.Schema, v any, at string) []string {
	if s == nil || freeForm(s) {
		return nil
	}
	var out []string
	for _, sub := range slices.Concat(s.AllOf, s.AnyOf, s.OneOf) {
		if sub != nil {
			out = append(out, nulText(sub.Value, v, at)...)
		}
	}
	switch v := v.(type) {
	case string:
		if strings.ContainsRune(v, 0) {
			out = append(out, at)
		}
	case []any:
		if s.Items != nil {
			for i, e := range v {
				out = append(out, nulText(s.Items.Value, e, at+"/"+strconv.Itoa(i))...)
			}
		}
	case map[string]any:
		for k, e := range v {
			member := memberSchema(s, k)
			if member == nil {
				continue // a free-form member
			}
			p := at + "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
			if strings.ContainsRune(k, 0) {
				out = append(out, p)
				continue
			}
			out = append(out, nulText(member, e, p)...)
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(out)))
}

// freeForm reports whether s leaves its value open (no type but object, no
// properties, items or member schema): such values are stored as JSON.
func freeForm(s *openapi3.Schema) bool {
	typed := s.Type != nil && !s.Type.IsEmpty() && !s.Type.Is(openapi3.TypeObject)
	return !typed && len(s.Properties) == 0 && s.AdditionalProperties.Schema == nil && s.Items == nil &&
		len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) == 0
}

// memberSchema is the schema of member k of an object of schema s; nil when the
// member is free-form (additionalProperties true or absent).
func memberSchema(s *openapi3.Schema, k string) *openapi3.Schema {
	if p := s.Properties[k]; p != nil {
		return p.Value
	}
	if ap := s.AdditionalProperties.Schema; ap != nil {
		return ap.Value
	}
	return nil
}
