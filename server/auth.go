package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/keys"
)

// scopesExtension names the spec extension listing the scopes an operation needs.
const scopesExtension = "x-levqor-scopes"

// bearerScheme names the spec's security scheme for keys sent as Authorization:
// Bearer (the MCP endpoint's; MCP clients send keys that way).
const bearerScheme = "BearerAuth"

// queryKeyNames are query parameters in which callers sometimes put keys; a request
// carrying one is refused outright, since URLs end up in logs and browser histories.
var queryKeyNames = []string{"api_key", "apikey", "api-key", "key", "x-api-key", "x_api_key", "token", "access_token"}

// gate authenticates and authorises requests for the validator's AuthenticationFunc.
type gate struct {
	keys   *keys.Service
	limits *rateLimits
	scopes map[*openapi3.Operation][]string
}

func newGate(spec *openapi3.T, ks *keys.Service, limits *rateLimits) *gate {
	g := &gate{keys: ks, limits: limits, scopes: map[*openapi3.Operation][]string{}}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			g.scopes[op] = operationScopes(op)
		}
	}
	return g
}

// authenticate is the AuthenticationFunc for the ApiKeyAuth scheme: it refuses keys in
// the URL, checks the X-Api-Key header, applies the per-key rate limit and the
// operation's scopes, and records the principal for the handler. Failed attempts
// count against the caller's IP limit, so guessing keys is rate-limited too.
func (g *gate) authenticate(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	info := requestInfoFrom(r.Context())
	bearer := in.SecurityScheme != nil && in.SecurityScheme.Type == "http" && strings.EqualFold(in.SecurityScheme.Scheme, "bearer")
	if bearer && len(r.Header.Values("Authorization")) == 0 {
		// Nothing presented in this form: the operation's other scheme (X-Api-Key)
		// decides, and counts a failure against the IP limit once, not twice.
		return levqor.Errorf(levqor.EUnauthorized, "A valid API key is required, as Authorization: Bearer … or in the X-Api-Key header.")
	}
	if !bearer && len(r.Header.Values("X-Api-Key")) == 0 && len(r.Header.Values("Authorization")) > 0 && acceptsBearer(in.RequestValidationInput.Route.Operation) {
		// The key came as a bearer token, which that scheme has judged (and counted).
		return levqor.Errorf(levqor.EUnauthorized, "A valid API key is required, as Authorization: Bearer … or in the X-Api-Key header.")
	}
	p, err := g.principal(ctx, r, bearer)
	if err != nil && levqor.ErrorCode(err) == levqor.EInternal {
		// The key could not be checked (database down): not the caller's fault, and
		// validationError would otherwise answer it as a missing key (401), unlogged.
		return &levqor.Error{Code: levqor.EUnavailable, Message: "API keys cannot be checked right now; try again shortly.", Err: err}
	}
	if err != nil {
		if g.limits != nil && info != nil && levqor.ErrorCode(err) == levqor.EUnauthorized {
			if lerr := g.limits.take(ctx, info.header, quota{name: ipLimitKey(info.ip), lim: g.limits.ip}); lerr != nil {
				return lerr
			}
		}
		return err
	}
	if g.limits != nil && info != nil {
		limitKey := "key:" + p.KeyID
		if p.KeyID == "" {
			limitKey = "key:bootstrap"
		}
		if err := g.limits.take(ctx, info.header, quota{name: limitKey, lim: g.limits.key}); err != nil {
			return err
		}
	}
	for _, s := range g.scopes[in.RequestValidationInput.Route.Operation] {
		if !p.Can(s) {
			return levqor.Errorf(levqor.EForbidden, "This API key lacks the %q scope.", s)
		}
	}
	if info != nil {
		info.principal = &p
	}
	return nil
}

// acceptsBearer reports whether op lists the BearerAuth scheme.
func acceptsBearer(op *openapi3.Operation) bool {
	if op == nil || op.Security == nil {
		return false
	}
	for _, req := range *op.Security {
		if _, ok := req[bearerScheme]; ok {
			return true
		}
	}
	return false
}

// principal authenticates the key in X-Api-Key, or — for the BearerAuth scheme,
// which only the MCP endpoint accepts — in Authorization: Bearer.
func (g *gate) principal(ctx context.Context, r *http.Request, bearer bool) (keys.Principal, error) {
	q := r.URL.Query()
	for name := range q {
		for _, bad := range queryKeyNames {
			if strings.EqualFold(name, bad) {
				return keys.Principal{}, levqor.Errorf(levqor.EUnauthorized, "API keys are refused in the URL; send the key in the X-Api-Key header.")
			}
		}
	}
	if bearer {
		vals := r.Header.Values("Authorization")
		scheme, secret, _ := strings.Cut(strings.TrimSpace(strings.Join(vals, "")), " ")
		if len(vals) != 1 || !strings.EqualFold(scheme, "Bearer") {
			return keys.Principal{}, levqor.Errorf(levqor.EUnauthorized, "Send exactly one Authorization: Bearer header with the API key.")
		}
		return g.keys.Authenticate(ctx, strings.TrimSpace(secret))
	}
	vals := r.Header.Values("X-Api-Key")
	if len(vals) > 1 {
		return keys.Principal{}, levqor.Errorf(levqor.EUnauthorized, "Send exactly one X-Api-Key header.")
	}
	secret := ""
	if len(vals) == 1 {
		secret = vals[0]
	}
	return g.keys.Authenticate(ctx, secret)
}

// principalFrom returns the authenticated principal of the request ctx belongs to.
// Handlers of authenticated operations can rely on it: the validator ran the gate.
func principalFrom(ctx context.Context) keys.Principal {
	if info := requestInfoFrom(ctx); info != nil && info.principal != nil {
		return *info.principal
	}
	return keys.Principal{} // no scopes, no owner: sees nothing
}
