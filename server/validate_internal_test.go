package server

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/gorilla/mux"

	apispec "github.com/levqor/levqor/api/spec"
	"github.com/levqor/levqor/gen/api"
)

// TestOperationRoutesAgreeWithValidatorRouter: for every operation of the spec,
// the operation and path parameters the validator is given from gorilla's match
// are those kin-openapi's own router finds for the same request — parameters
// still escaped when the path has escaped characters.
func TestOperationRoutesAgreeWithValidatorRouter(t *testing.T) {
	spec, err := apispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	spec.Servers = nil
	ops, err := newOperationRoutes(spec)
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter().SkipClean(true)
	r.Use(recordRoute)
	checked := 0
	r.Use(func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			checked++
			got, gotParams, err := ops.find(req, routeKey(req))
			want, wantParams, werr := ops.fallback.FindRoute(req)
			if err != nil || werr != nil {
				t.Errorf("%s %s: find: %v; kin-openapi's router: %v", req.Method, req.URL.RequestURI(), err, werr)
				return
			}
			if got.Path != want.Path || got.Method != want.Method || got.Operation != want.Operation || !maps.Equal(gotParams, wantParams) {
				t.Errorf("%s %s: find = %s %s %v, kin-openapi's router = %s %s %v", req.Method, req.URL.RequestURI(),
					got.Method, got.Path, gotParams, want.Method, want.Path, wantParams)
			}
		})
	})
	api.HandlerWithOptions(api.NewStrictHandler(&handlers{}, nil), api.GorillaServerOptions{BaseRouter: r})
	if err := preferConcretePaths(r, spec); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	want := 0
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			for _, value := range []string{"p1", "a%20b"} {
				target := param.ReplaceAllString(path, value)
				if target == path && value != "p1" {
					continue
				}
				req := httptest.NewRequest(method, target, nil)
				info := &requestInfo{}
				req = req.WithContext(context.WithValue(req.Context(), requestInfoKey{}, info))
				before := checked
				r.ServeHTTP(httptest.NewRecorder(), req)
				want++
				if checked == before {
					t.Errorf("%s %s: the router did not route it", method, target)
				}
			}
		}
	}
	if checked != want || want < 100 {
		t.Errorf("checked %d requests, want %d (> 100)", checked, want)
	}
}
