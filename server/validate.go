package server

import (
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/mux"
)

// validateRequests checks every request against the operation it was routed to
// (kin-openapi's openapi3filter: security through opts.AuthenticationFunc,
// parameters, body) and answers a failure as a problem (validationError). It runs
// inside the router and validates against the operation gorilla/mux matched, so a
// request is routed once, not a second time by the validator's own router. Only a
// path that gorilla and the validator read differently — one with escaped
// characters, whose parameters the validator sees still escaped — is routed again
// by kin-openapi's router, so such parameters are checked as before.
// Operations in skip ("METHOD /template") have nothing to validate.
func validateRequests(spec *openapi3.T, opts openapi3filter.Options, skip map[string]bool) (mux.MiddlewareFunc, error) {
	ops, err := newOperationRoutes(spec)
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := routeKey(r)
			if skip[key] {
				next.ServeHTTP(w, r)
				return
			}
			route, params, err := ops.find(r, key)
			if err != nil {
				writeProblem(w, r, validationError(err))
				return
			}
			err = openapi3filter.ValidateRequest(r.Context(), &openapi3filter.RequestValidationInput{
				Request: r, PathParams: params, Route: route, Options: &opts,
			})
			if err == nil {
				next.ServeHTTP(w, r)
				return
			}
			switch err.(type) {
			case openapi3.MultiError, *openapi3filter.RequestError, *openapi3filter.SecurityRequirementsError:
			default:
				err = fmt.Errorf("error validating route: %w", err)
			}
			writeProblem(w, r, validationError(err))
		})
	}, nil
}

// routeKey is "METHOD /template" of the route gorilla/mux matched for r
// (recordRoute), "" when it matched none.
func routeKey(r *http.Request) string {
	if info := requestInfoFrom(r.Context()); info != nil {
		return r.Method + " " + info.route
	}
	return ""
}

// operationRoutes finds the spec's operation for a request the router has matched.
type operationRoutes struct {
	routes   map[string]*routers.Route // "METHOD /template"; shared, read-only
	fallback routers.Router            // kin-openapi's own router
}

func newOperationRoutes(spec *openapi3.T) (*operationRoutes, error) {
	fallback, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("request validator: %w", err)
	}
	o := &operationRoutes{routes: map[string]*routers.Route{}, fallback: fallback}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			o.routes[method+" "+path] = &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: op}
		}
	}
	return o, nil
}

// find returns r's operation and path parameters: those of the route gorilla/mux
// matched, key ("METHOD /template", "" for none), or kin-openapi's router's answer
// when there is no such route or when the path has escaped characters (gorilla's
// parameters are then unescaped, the validator's are not).
func (o *operationRoutes) find(r *http.Request, key string) (*routers.Route, map[string]string, error) {
	if route := o.routes[key]; route != nil {
		params := mux.Vars(r)
		if len(params) == 0 || r.URL.EscapedPath() == r.URL.Path {
			return route, params, nil
		}
	}
	return o.fallback.FindRoute(r)
}
