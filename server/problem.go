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
	"github.com/levqor/levqor/store/fault"
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
	levqor.EStorageFull:          http.StatusInsufficientStorage,
	levqor.EGone:                 http.StatusGone,
	levqor.EInternal:             http.StatusInternalServerError,
}

// faultRetryAfter is the Retry-After (seconds) sent with a 503 or 507 that did not set
// its own: a database or limiter outage is usually over in seconds; a full disk
// needs an operator, so clients are asked to wait longer.
var faultRetryAfter = map[int]string{
	http.StatusServiceUnavailable:  "5",
	http.StatusInsufficientStorage: "60",
}

// problemFor turns any error into the problem document the client sees. Only
// *levqor.Error values contribute text; every other error becomes "Internal error.".
func problemFor(r *http.Request, err error) api.Problem {
	return problemOf(err, r.URL.Path, requestInfoFrom(r.Context()))
}

// problemOf is problemFor for a request's path and info (nil: no request id).
func problemOf(err error, path string, info *requestInfo) api.Problem {
	code := levqor.ErrorCode(err)
	if code == levqor.EInternal {
		// A database fault (down, busy, read-only, full) is not a bug: say so.
		if f := fault.Classify(err); f != nil {
			err, code = f, levqor.ErrorCode(f)
		}
	}
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
		Instance: ptr(path),
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
	if info != nil && info.id != "" {
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
		// "code" lets the log deduplicator (logdedupe) keep one line per outage cause.
		log.ErrorContext(r.Context(), "request failed", "code", string(p.Code), "request_id", deref(p.RequestId), "error", err.Error())
	}
	body, mErr := json.Marshal(p)
	if mErr != nil { // cannot happen for this fixed shape; keep the contract anyway
		body = []byte(`{"type":"` + problemBase + `internal","title":"Internal Server Error","status":500,"code":"internal"}`)
	}
	h := w.Header()
	if after, ok := faultRetryAfter[p.Status]; ok && h.Get("Retry-After") == "" {
		h.Set("Retry-After", after)
	}
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
	return []levqor.FieldError{{Pointer: where, Detail: "Malformed value."}} // re.Reason is the validator's wording
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
		return levqor.FieldError{Pointer: ptr, Detail: schemaMessage(se)}
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

// schemaMessage says in plain words what the value failed, from the schema keyword
// that failed and the spec's own limits. The validator's Reason is never shown: it
// names Go types ("cannot convert json.Number to float64") and dumps regexes.
func schemaMessage(se *openapi3.SchemaError) string {
	s := se.Schema
	if s == nil {
		return "Invalid value."
	}
	switch se.SchemaField {
	case "type":
		return "Must be " + typeNames(s) + "."
	case "nullable":
		return "Must not be null."
	case "enum":
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = fmt.Sprint(v)
		}
		return "Must be one of: " + strings.Join(vals, ", ") + "."
	case "minLength":
		return plural("Must be at least %d character%s long.", s.MinLength)
	case "maxLength":
		if s.MaxLength != nil {
			return plural("Must be at most %d character%s long.", *s.MaxLength)
		}
	case "pattern":
		return patternMessage(s)
	case "format":
		return formatMessage(s.Format)
	case "minimum":
		if s.Min != nil {
			return fmt.Sprintf("Must be at least %g.", *s.Min)
		}
	case "maximum":
		if s.Max != nil {
			return fmt.Sprintf("Must be at most %g.", *s.Max)
		}
	case "exclusiveMinimum":
		if s.Min != nil {
			return fmt.Sprintf("Must be more than %g.", *s.Min)
		}
	case "exclusiveMaximum":
		if s.Max != nil {
			return fmt.Sprintf("Must be less than %g.", *s.Max)
		}
	case "multipleOf":
		if s.MultipleOf != nil {
			return fmt.Sprintf("Must be a multiple of %g.", *s.MultipleOf)
		}
	case "minItems":
		return plural("Must have at least %d item%s.", s.MinItems)
	case "maxItems":
		if s.MaxItems != nil {
			return plural("Must have at most %d item%s.", *s.MaxItems)
		}
	case "uniqueItems":
		return "Must not list the same item twice."
	case "minProperties":
		return plural("Must have at least %d member%s.", s.MinProps)
	case "maxProperties":
		if s.MaxProps != nil {
			return plural("Must have at most %d member%s.", *s.MaxProps)
		}
	case "required":
		return "This field is required and missing."
	case "properties":
		return "This field is unsupported here."
	case "readOnly":
		return "This field is set by the server and cannot be sent."
	}
	return "Invalid value."
}

func plural(format string, n uint64) string {
	s := "s"
	if n == 1 {
		s = ""
	}
	return fmt.Sprintf(format, n, s)
}

// typeNames is "a string", "an integer or null" … for the types schema s allows.
func typeNames(s *openapi3.Schema) string {
	names := map[string]string{
		openapi3.TypeString: "a string", openapi3.TypeInteger: "an integer", openapi3.TypeNumber: "a number",
		openapi3.TypeBoolean: "true or false", openapi3.TypeObject: "an object", openapi3.TypeArray: "an array",
		openapi3.TypeNull: "null",
	}
	var out []string
	if s.Type != nil {
		for _, t := range s.Type.Slice() {
			if n, ok := names[t]; ok {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return "a valid value"
	}
	if s.Nullable {
		out = append(out, "null")
	}
	return strings.Join(out, " or ")
}

// formatMessage names a string format by an example rather than by its grammar.
func formatMessage(format string) string {
	switch format {
	case "date-time":
		return "Must be a date-time as in RFC 3339, such as 2025-01-31T09:30:00Z."
	case "date":
		return "Must be a date such as 2025-01-31."
	case "email":
		return "Must be an email address."
	case "uri", "url":
		return "Must be an absolute URL."
	case "uuid":
		return "Must be a UUID."
	}
	return "Is not in the expected format."
}

// charClassPattern matches the one shape of spec pattern that reads well as a
// list of characters: a single character class repeated over the whole string.
var charClassPattern = regexp.MustCompile(`^\^\[([^\]^]+)\][+*]\$$`)

// patternMessage says what a value of a pattern-constrained schema must look like
// without quoting the pattern: the allowed characters when the pattern is one
// character class, else the schema's description, else a plain "not in the
// expected format".
func patternMessage(s *openapi3.Schema) string {
	if m := charClassPattern.FindStringSubmatch(s.Pattern); m != nil {
		if chars, ok := describeClass(m[1]); ok {
			return "May contain only " + chars + "."
		}
	}
	if d := strings.TrimSpace(s.Description); d != "" && !strings.Contains(d, "\n") {
		return "Must be " + strings.ToLower(d[:1]) + strings.TrimSuffix(d[1:], ".") + "."
	}
	return "Is not in the expected format."
}

// describeClass reads a regex character class body such as A-Za-z0-9._- as
// "letters, digits and the characters . _ -"; ok is false for anything else.
func describeClass(class string) (string, bool) {
	if class == `\x21-\x7e` {
		return "visible ASCII characters (no spaces)", true
	}
	var parts, singles []string
	for i := 0; i < len(class); i++ {
		if i+2 < len(class) && class[i+1] == '-' {
			switch class[i : i+3] {
			case "A-Z":
				parts = append(parts, "upper-case letters")
			case "a-z":
				parts = append(parts, "lower-case letters")
			case "0-9":
				parts = append(parts, "digits")
			default:
				return "", false
			}
			i += 2
			continue
		}
		c := class[i]
		if c == '\\' || c < 0x21 || c > 0x7e {
			return "", false
		}
		singles = append(singles, string(c))
	}
	if len(parts) >= 2 && parts[0] == "upper-case letters" && parts[1] == "lower-case letters" {
		parts = append([]string{"letters"}, parts[2:]...)
	}
	if len(singles) > 0 {
		parts = append(parts, "the characters "+strings.Join(singles, " "))
	}
	if len(parts) == 0 {
		return "", false
	}
	if len(parts) == 1 {
		return parts[0], true
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1], true
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
