// Package server wires Levqor's HTTP surface: the router generated from
// api/openapi.yaml, request validation, the perimeter (auth, rate limits, CORS,
// headers), the strict handlers and the one mapping from errors to problem+json.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/gorilla/mux"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/billing"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/newsletter"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/planner"
	"github.com/levqor/levqor/triggers"
	"github.com/levqor/levqor/users"
)

// unlimitedExtension marks public operations exempt from the per-IP and global
// limits: probes and static assets, which load balancers and browsers fetch often.
const unlimitedExtension = "x-levqor-unlimited"

// Database is what the readiness and status routes ask of the database.
type Database interface {
	Engine() string
	Ready(ctx context.Context) error
	QueueStats(ctx context.Context) (jobs.QueueStats, error)
}

// Options are the server's services and limits, all built in main: New builds no
// service itself and refuses to start without a required one.
type Options struct {
	Spec           *openapi3.T           // a fresh spec.Load() (api/spec) the server may keep and modify (required)
	Database       Database              // readiness and queue status (required)
	Keys           *keys.Service         // API keys and the authentication of every request (required)
	Users          *users.Service        // (required)
	Jobs           *jobs.Service         // required for the jobs, workflows, connectors and webhooks routes
	Hub            *jobs.Hub             // the same hub the worker and Jobs use (required)
	Budgets        *budget.Service       // (required)
	Notifications  *notifier.Preferences // the emails owners opted into (required)
	Finished       func() int64          // job attempts this process has finished, for /api/v1/admin/status (optional)
	Stopping       <-chan struct{}       // closed when the server shuts down: long-lived streams end
	Streams        StreamLimits          // job event streams: caps, lifetime, fallback poll
	Logger         *slog.Logger
	MaxBodyBytes   int64
	Started        time.Time
	Limits         *Limits // nil: no rate limiting
	TrustedProxies []netip.Prefix
	CORSOrigins    []string
	ReadyChecks    []ReadyCheck // what /ready checks besides the database (the engine, the limiter store)

	Credentials    *credentials.Service              // the connections routes; nil answers 503
	Triggers       *triggers.Service                 // schedules, inbound triggers and /hooks; nil answers 503
	Analytics      *analytics.Service                // metrics, marketing summary and dashboard; nil answers 503
	PublicURL      string                            // canonical site root for pages, sitemap and links
	DashboardToken string                            // opens /dashboard; empty: no dashboard
	UserCreated    func(context.Context, users.User) // called after a user is created (welcome email); must not block
	EmailDomain    string                            // security@ this domain is security.txt's contact; default levqor.ai
	// Observed, when set, sees every request once it is answered: its method, the
	// route template that matched ("" for none), the status, the problem code of an
	// error ("" otherwise) and the duration. It must be quick (metrics).
	Observed   func(method, route string, status int, errCode string, d time.Duration)
	Billing    *billing.Service    // the billing routes and Stripe's webhook; nil answers 503
	Newsletter *newsletter.Service // the newsletter routes; nil answers 503
	Planner    *planner.Planner    // POST /api/v1/plan (given the spec's workflow contract here); nil answers 503
	WebDir     string              // the marketing site's static export, served at /; "" for none
}

// handlers implements the generated strict server; each method decodes nothing
// itself, calls a service and maps the result.
type handlers struct {
	db            Database
	keys          *keys.Service
	users         *users.Service
	jobs          *jobs.Service
	hub           *jobs.Hub
	finished      func() int64
	stopping      <-chan struct{}
	streams       *streamSlots
	budgets       *budget.Service
	notifications *notifier.Preferences
	started       time.Time
	specJSON      func() (*document, error)
	specYAML      func() (*document, error)
	docs          func() (map[string]*document, error) // the docs UI's files, loaded on its first request

	credentials    *credentials.Service
	triggers       *triggers.Service
	limits         *rateLimits // nil: no rate limiting
	analytics      *analytics.Service
	publicURL      string
	dashboardToken string
	userCreated    func(context.Context, users.User)
	site           *site                        // public pages, security.txt, robots, sitemap, dashboard access
	mcp            func() (http.Handler, error) // the MCP endpoint's SDK handler (mcp.go), built on its first request
	planner        *planner.Planner
	ready          *readiness
	billing        *billing.Service
	planIntake     *planIntake // jobs per minute by plan; nil without billing or rate limits

	newsletter      *newsletter.Service
	newsletterPages *formPages
	approvalPages   *formPages
	web             *webSite // nil without LEVQOR_WEB_DIR
}

var _ api.StrictServerInterface = (*handlers)(nil)

// New returns the whole HTTP handler: outer middleware, then the router, then
// per-route limits, validation (with authentication) and the strict handlers.
func New(opts Options) (http.Handler, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	spec := opts.Spec
	h := &handlers{db: opts.Database, keys: opts.Keys, users: opts.Users, jobs: opts.Jobs, hub: opts.Hub, finished: opts.Finished, stopping: opts.Stopping,
		budgets: opts.Budgets, notifications: opts.Notifications, started: opts.Started,
		credentials: opts.Credentials, analytics: opts.Analytics, publicURL: opts.PublicURL, dashboardToken: opts.DashboardToken, userCreated: opts.UserCreated,
		billing: opts.Billing}
	h.triggers = opts.Triggers
	h.streams = newStreamSlots(opts.Streams)
	h.ready = &readiness{checks: append([]ReadyCheck{{Name: "database", Check: func(ctx context.Context) error {
		if err := opts.Database.Ready(ctx); err != nil && levqor.ErrorCode(err) == levqor.EInternal {
			return &levqor.Error{Code: levqor.EUnavailable, Message: "The database is not ready.", Err: err}
		} else if err != nil {
			return err
		}
		return nil
	}}}, opts.ReadyChecks...)}
	// What only some requests need is built on the first of them, not at start-up:
	// the rendered spec, the docs UI's files and the MCP server's tools.
	h.specJSON, h.specYAML = specDocuments(spec)
	h.docs = sync.OnceValues(loadDocs)
	h.mcp = sync.OnceValues(func() (http.Handler, error) { return newMCPHandler(spec, h, opts.MaxBodyBytes, opts.Logger) })
	var err error
	if h.site, err = newSite(h.publicURL, opts.EmailDomain, h.dashboardToken); err != nil {
		return nil, err
	}
	h.newsletter = opts.Newsletter
	if h.newsletterPages, err = newNewsletterPages(h.site); err != nil {
		return nil, err
	}
	if h.approvalPages, err = newApprovalPages(h.site); err != nil {
		return nil, err
	}
	if opts.WebDir != "" {
		if h.web, err = loadWebSite(opts.WebDir); err != nil {
			return nil, err
		}
	}

	if opts.Planner != nil {
		contract, err := workflowContract(spec)
		if err != nil {
			return nil, fmt.Errorf("planner: %w", err)
		}
		if h.planner, err = opts.Planner.WithContract(contract); err != nil {
			return nil, err
		}
	}

	spec.Servers = nil // validate paths only, never the Host header
	limits := newRateLimits(opts.Limits, opts.Logger)
	h.limits = limits
	if opts.Billing != nil {
		h.planIntake = newPlanIntake(limits, opts.Limits)
	}
	g := newGate(spec, opts.Keys, limits)

	// SkipClean: a path with dot segments is answered (404 or 400 problem), never
	// redirected to a cleaned path that the caller did not ask for.
	r := mux.NewRouter().SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.web != nil && h.web.serveFile(w, r) { // the site's pages and assets
			return
		}
		err := levqor.Errorf(levqor.ENotFound, "No such route: %s.", r.URL.Path)
		if h.site.wantsPage(r) { // a browser outside /api/: the HTML 404 page
			h.site.writeError(w, r, err)
			return
		}
		writeProblem(w, r, err)
	})
	r.MethodNotAllowedHandler = methodNotAllowed(r)
	r.Use(recordRoute)
	if limits != nil {
		r.Use(limitAnonymous(spec, limits))
	}
	// Operations with nothing to validate (no parameters, no body, public) skip
	// the validator: liveness stays cheap.
	validate, err := validateRequests(spec, openapi3filter.Options{MultiError: true, AuthenticationFunc: g.authenticate}, trivialOperations(spec))
	if err != nil {
		return nil, err
	}
	r.Use(validate)
	r.Use(refuseNUL(spec))
	strict := api.NewStrictHandlerWithOptions(h, []api.StrictMiddlewareFunc{h.site.htmlErrors, withUserAgent, h.formPagesMiddleware, withMCPRequest}, api.StrictHTTPServerOptions{
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
	if err := preferConcretePaths(r, spec); err != nil {
		return nil, err
	}

	var handler http.Handler = h.web.serveRoot(r)
	handler = guardJSON(handler)
	handler = limitBody(opts.MaxBodyBytes, handler)
	handler = corsHeaders(opts.CORSOrigins, handler)
	handler = hsts(handler)
	handler = securityHeaders(handler)
	handler = observe(opts.Logger, opts.TrustedProxies, opts.Observed, handler)
	return handler, nil
}

// check names the required services that are missing.
func (o *Options) check() error {
	var missing []string
	for name, absent := range map[string]bool{
		"Spec": o.Spec == nil, "Database": o.Database == nil, "Keys": o.Keys == nil, "Users": o.Users == nil,
		"Hub": o.Hub == nil, "Budgets": o.Budgets == nil, "Notifications": o.Notifications == nil,
	} {
		if absent {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("server.New: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// trivialOperations lists ("METHOD /template") the public operations that declare
// no parameters and no request body: the validator has nothing to check on them.
func trivialOperations(spec *openapi3.T) map[string]bool {
	out := map[string]bool{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			public := op.Security != nil && len(*op.Security) == 0
			if public && len(item.Parameters) == 0 && len(op.Parameters) == 0 && op.RequestBody == nil {
				out[method+" "+path] = true
			}
		}
	}
	return out
}

// limitAnonymous applies the per-IP and global limits to public operations (those
// whose security is empty), except the ones the spec marks unlimited.
// Authenticated operations are limited per key by the gate instead.
func limitAnonymous(spec *openapi3.T, limits *rateLimits) mux.MiddlewareFunc {
	limited := map[string]bool{} // "METHOD /template"
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			public := op.Security != nil && len(*op.Security) == 0
			if unlimited, _ := op.Extensions[unlimitedExtension].(bool); public && !unlimited {
				limited[method+" "+path] = true
			}
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := requestInfoFrom(r.Context())
			if info != nil && limited[r.Method+" "+info.route] {
				if err := limits.takeAnonymous(r.Context(), w.Header(), info.ip); err != nil {
					writeProblem(w, r, err)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// preferConcretePaths keeps a templated route from matching a path the spec has
// as a concrete one — OpenAPI's rule, whereas gorilla takes the first route that
// matches: POST /api/v1/jobs/replay is not /api/v1/jobs/{id}, and GET on it is 405
// with Allow: POST rather than a lookup of the job "replay".
func preferConcretePaths(r *mux.Router, spec *openapi3.T) error {
	concrete := map[string]bool{}
	for path := range spec.Paths.Map() {
		if !strings.Contains(path, "{") {
			concrete[path] = true
		}
	}
	return r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if tpl, err := route.GetPathTemplate(); err == nil && strings.Contains(tpl, "{") {
			route.MatcherFunc(func(req *http.Request, m *mux.RouteMatch) bool {
				if !concrete[req.URL.Path] {
					return true
				}
				// The concrete route decides; when its method does not match either, the
				// answer is 405 (gorilla clears a mismatch when a later path matches).
				m.MatchErr = mux.ErrMethodMismatch
				return false
			})
		}
		return nil
	})
}

// methodNotAllowed answers 405 with the Allow header listing the route's methods.
func methodNotAllowed(router *mux.Router) http.Handler {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
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
