package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
)

// problemBase prefixes every problem type URI.
const problemBase = "https://levqor.ai/problems/"

// statusOf is the one mapping from application error codes to HTTP statuses.
var statusOf = map[string]int{
	levqor.EInvalid:              http.StatusBadRequest,
	levqor.EUnprocessable:        http.StatusUnprocessableEntity,
	levqor.EBudgetExceeded:       http.StatusPaymentRequired,
	levqor.ENotFound:             http.StatusNotFound,
	levqor.EMethodNotAllowed:     http.StatusMethodNotAllowed,
	levqor.EConflict:             http.StatusConflict,
	levqor.EUnauthorized:         http.StatusUnauthorized,
	levqor.EForbidden:            http.StatusForbidden,
	levqor.ETooLarge:             http.StatusRequestEntityTooLarge,
	levqor.EUnsupportedMediaType: http.StatusUnsupportedMediaType,
	levqor.ERateLimited:          http.StatusTooManyRequests,
	levqor.EUnavailable:          http.StatusServiceUnavailable,
	levqor.EInternal:             http.StatusInternalServerError,
}

// problemFor turns any error into the problem document the client sees. Only
// *levqor.Error values contribute text; every other error becomes "Internal error.".
func problemFor(r *http.Request, err error) api.Problem {
	code := levqor.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		// An unmapped code is a programming error: answer as for any internal
		// error, without the error's own message or fields.
		code, status = levqor.EInternal, http.StatusInternalServerError
		err = &levqor.Error{Code: levqor.EInternal, Err: err}
	}
	p := api.Problem{
		Type:     problemBase + strings.ReplaceAll(code, "_", "-"),
		Title:    http.StatusText(status),
		Status:   status,
		Code:     api.ProblemCode(code),
		Instance: ptr(r.URL.Path),
	}
	if msg := levqor.ErrorMessage(err); msg != "" {
		p.Detail = ptr(msg)
	}
	var e *levqor.Error
	if errors.As(err, &e) && len(e.Fields) > 0 {
		fields := make([]struct {
			Detail  string `json:"detail"`
			Pointer string `json:"pointer"`
		}, len(e.Fields))
		for i, f := range e.Fields {
			fields[i].Pointer, fields[i].Detail = f.Pointer, f.Detail
		}
		p.Errors = &fields
	}
	if info := requestInfoFrom(r.Context()); info != nil && info.id != "" {
		p.RequestId = ptr(info.id)
	}
	return p
}

// writeProblem writes err as application/problem+json. Internal errors are logged
// with their cause; the client only sees the generic message and the request id.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(r, err)
	log := slog.Default()
	if info := requestInfoFrom(r.Context()); info != nil {
		info.err = err
		log = info.log
	}
	if p.Status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "request_id", deref(p.RequestId), "error", err.Error())
	}
	body, mErr := json.Marshal(p)
	if mErr != nil { // cannot happen for this fixed shape; keep the contract anyway
		body = []byte(`{"type":"` + problemBase + `internal","title":"Internal Server Error","status":500,"code":"internal"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Del("Content-Encoding")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// validationError classifies an error from the request validator (kin-openapi)
// or from the generated parameter binding as an application error.
func validationError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return levqor.Errorf(levqor.ETooLarge, "The request body is larger than %d bytes.", mbe.Limit)
	}
	if errors.Is(err, routers.ErrPathNotFound) {
		return levqor.Errorf(levqor.ENotFound, "No such route.")
	}
	if errors.Is(err, routers.ErrMethodNotAllowed) {
		return levqor.Errorf(levqor.EMethodNotAllowed, "Method not allowed on this route.")
	}
	var sec *openapi3filter.SecurityRequirementsError
	if errors.As(err, &sec) {
		for _, e := range sec.Errors {
			if levqor.ErrorCode(e) != levqor.EInternal {
				return e
			}
		}
		return levqor.Errorf(levqor.EUnauthorized, "A valid API key is required in the X-Api-Key header.")
	}
	var me openapi3.MultiError
	if !errors.As(err, &me) {
		me = openapi3.MultiError{err}
	}
	out := &levqor.Error{Code: levqor.EInvalid, Message: "The request is invalid.", Err: err}
	for _, e := range me {
		var re *openapi3filter.RequestError
		if errors.As(e, &re) && re.RequestBody != nil && strings.HasPrefix(re.Reason, "header Content-Type has unexpected value") {
			return levqor.Errorf(levqor.EUnsupportedMediaType, "Send the body as application/json.")
		}
		if errors.As(e, &mbe) {
			return levqor.Errorf(levqor.ETooLarge, "The request body is larger than %d bytes.", mbe.Limit)
		}
		out.Fields = append(out.Fields, fieldErrors(e)...)
	}
	if len(out.Fields) == 1 {
		out.Message = out.Fields[0].Detail
	}
	return out
}

// fieldErrors flattens one validator error into pointers and caller-safe details.
func fieldErrors(err error) []levqor.FieldError {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return []levqor.FieldError{{Pointer: "", Detail: "The request is invalid."}}
	}
	where := ""
	if re.Parameter != nil {
		where = re.Parameter.In + "." + re.Parameter.Name
	}
	var me openapi3.MultiError
	if errors.As(re.Err, &me) {
		var out []levqor.FieldError
		for _, e := range me {
			out = append(out, schemaFieldError(where, e))
		}
		return out
	}
	if re.Err != nil {
		return []levqor.FieldError{schemaFieldError(where, re.Err)}
	}
	return []levqor.FieldError{{Pointer: where, Detail: re.Reason}}
}

func schemaFieldError(where string, err error) levqor.FieldError {
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		ptr := "/" + strings.Join(se.JSONPointer(), "/")
		if m := unsupportedProperty.FindStringSubmatch(se.Reason); m != nil {
			ptr = strings.TrimSuffix(ptr, "/") + "/" + m[1]
		}
		if where != "" {
			ptr = where
		}
		return levqor.FieldError{Pointer: ptr, Detail: se.Reason}
	}
	var pe *openapi3filter.ParseError
	if errors.As(err, &pe) {
		if where == "" {
			return levqor.FieldError{Pointer: "", Detail: "The body is not well-formed JSON."}
		}
		return levqor.FieldError{Pointer: where, Detail: "Malformed value."}
	}
	switch {
	case errors.Is(err, openapi3filter.ErrInvalidRequired):
		if where == "" {
			return levqor.FieldError{Pointer: "", Detail: "A request body is required."}
		}
		return levqor.FieldError{Pointer: where, Detail: "This value is required."}
	case errors.Is(err, openapi3filter.ErrInvalidEmptyValue):
		return levqor.FieldError{Pointer: where, Detail: "This value must not be empty."}
	}
	return levqor.FieldError{Pointer: where, Detail: "Malformed value."}
}

// unsupportedProperty extracts the name kin-openapi reports for a property that
// additionalProperties: false refuses, so the pointer can name it.
var unsupportedProperty = regexp.MustCompile(`^property "([^"/~]{1,128})" is unsupported$`)

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
