// Package server wires Levqor's HTTP surface: the router generated from
// api/openapi.yaml, request validation, middleware, the strict handlers and the one
// mapping from errors to problem+json.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/gorilla/mux"
	validator "github.com/oapi-codegen/nethttp-middleware"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/store"
)

// Options are the server's dependencies and limits, built in main.
type Options struct {
	Store        store.Store
	Logger       *slog.Logger
	MaxBodyBytes int64
	Started      time.Time
}

// handlers implements the generated strict server; each method decodes nothing
// itself, calls a service and maps the result.
type handlers struct {
	store    store.Store
	started  time.Time
	specJSON *document
	specYAML *document
	docs     map[string]*document
}

var _ api.StrictServerInterface = (*handlers)(nil)

// New returns the whole HTTP handler: outer middleware, then the router, then
// per-route validation and the strict handlers.
func New(opts Options) (http.Handler, error) {
	spec, err := api.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	h := &handlers{store: opts.Store, started: opts.Started}
	if h.specJSON, h.specYAML, err = specDocuments(spec); err != nil {
		return nil, err
	}
	if h.docs, err = loadDocs(); err != nil {
		return nil, err
	}

	spec.Servers = nil // validate paths only, never the Host header
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, levqor.Errorf(levqor.ENotFound, "No such route: %s.", r.URL.Path))
	})
	r.MethodNotAllowedHandler = methodNotAllowed(r)
	r.Use(recordRoute)
	r.Use(validator.OapiRequestValidatorWithOptions(spec, &validator.Options{
		Options: openapi3filter.Options{
			MultiError:         true,
			AuthenticationFunc: authenticate,
		},
		DoNotValidateServers:  true,
		SilenceServersWarning: true,
		ErrorHandlerWithOpts: func(ctx context.Context, err error, w http.ResponseWriter, r *http.Request, _ validator.ErrorHandlerOpts) {
			writeProblem(w, r, validationError(err))
		},
	}))
	strict := api.NewStrictHandlerWithOptions(h, nil, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeProblem(w, r, &levqor.Error{Code: levqor.EInvalid, Message: "The body is not valid JSON for this operation.", Err: err})
		},
		ResponseErrorHandlerFunc: writeProblem,
	})
	api.HandlerWithOptions(strict, api.GorillaServerOptions{
		BaseRouter: r,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeProblem(w, r, &levqor.Error{Code: levqor.EInvalid, Message: "A parameter is malformed.", Err: err})
		},
	})

	var handler http.Handler = r
	handler = limitBody(opts.MaxBodyBytes, handler)
	handler = securityHeaders(handler)
	handler = observe(opts.Logger, handler)
	return handler, nil
}

// methodNotAllowed answers 405 with the Allow header listing the route's methods.
func methodNotAllowed(router *mux.Router) http.Handler {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			var match mux.RouteMatch
			if router.Match(probe, &match) && match.MatchErr == nil {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, r, levqor.Errorf(levqor.EMethodNotAllowed, "%s is not allowed on %s.", r.Method, r.URL.Path))
	})
}

// authenticate is the validator's AuthenticationFunc for the spec's security
// schemes. No operation needs a key yet, so every key is refused: closed by default.
func authenticate(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
	return levqor.Errorf(levqor.EUnauthorized, "A valid API key is required in the X-Api-Key header.")
}
