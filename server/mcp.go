package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
)

// The MCP endpoint (docs/mcp.md, docs/adr/0016-mcp.md) lets AI agents drive
// Levqor as tools. It is one operation of the spec (POST /mcp), so it passes the
// same perimeter as every route — key, rate limit, body limits, the endpoint's
// own scope — and each tool then mirrors one REST operation: it checks that
// operation's x-levqor-scopes, validates its arguments against that operation's
// schemas and calls the same strict handler, hence the same service, with the
// caller's principal. There is no second security model to keep in step.

// mcpOperationID is the operation whose route serves MCP.
const mcpOperationID = "postMCP"

// mcpTool mirrors one REST operation. call decodes the (validated) arguments into
// the operation's request object, calls its handler and returns the body of its
// success response.
type mcpTool struct {
	name        string
	operationID string
	readOnly    bool
	call        func(ctx context.Context, h *handlers, args []byte) (any, error)
}

// mcpTools lists the tools. Tool arguments are the operation's parameters
// (header names in snake case: Idempotency-Key is idempotency_key) and the
// members of its JSON body, side by side.
func mcpTools() []mcpTool {
	return []mcpTool{
		{name: "list_connectors", operationID: "listConnectors", readOnly: true,
			call: func(ctx context.Context, h *handlers, _ []byte) (any, error) {
				return h.ListConnectors(ctx, api.ListConnectorsRequestObject{})
			}},
		{name: "list_workflows", operationID: "listWorkflows", readOnly: true,
			call: func(ctx context.Context, h *handlers, _ []byte) (any, error) {
				return h.ListWorkflows(ctx, api.ListWorkflowsRequestObject{})
			}},
		{name: "get_workflow", operationID: "getWorkflow", readOnly: true,
			call: func(ctx context.Context, h *handlers, args []byte) (any, error) {
				var in struct{ Name string }
				if err := json.Unmarshal(args, &in); err != nil {
					return nil, err
				}
				return h.GetWorkflow(ctx, api.GetWorkflowRequestObject{Name: in.Name})
			}},
		{name: "save_workflow", operationID: "putWorkflow",
			call: func(ctx context.Context, h *handlers, args []byte) (any, error) {
				var in struct{ Name string }
				var body api.WorkflowPut
				if err := errors.Join(json.Unmarshal(args, &in), json.Unmarshal(args, &body)); err != nil {
					return nil, err
				}
				return h.PutWorkflow(ctx, api.PutWorkflowRequestObject{Name: in.Name, Body: &body})
			}},
		{name: "run_workflow", operationID: "intakeJob",
			call: func(ctx context.Context, h *handlers, args []byte) (any, error) {
				var body api.JobIntake
				var params struct {
					IdempotencyKey *string `json:"idempotency_key"`
				}
				if err := errors.Join(json.Unmarshal(args, &body), json.Unmarshal(args, &params)); err != nil {
					return nil, err
				}
				ctx, err := withArgumentsBody(ctx, params.IdempotencyKey, body)
				if err != nil {
					return nil, err
				}
				resp, err := h.IntakeJob(ctx, api.IntakeJobRequestObject{Body: &body, Params: api.IntakeJobParams{IdempotencyKey: params.IdempotencyKey}})
				if err != nil {
					return nil, err
				}
				switch r := resp.(type) {
				case api.IntakeJob202JSONResponse:
					return r.Body, nil
				case api.IntakeJob200JSONResponse: // a dry run: with the rehearsed job
					return r.Body, nil
				}
				return nil, fmt.Errorf("intake answered %T", resp)
			}},
		{name: "get_job", operationID: "getJob", readOnly: true,
			call: func(ctx context.Context, h *handlers, args []byte) (any, error) {
				var in struct{ ID string }
				if err := json.Unmarshal(args, &in); err != nil {
					return nil, err
				}
				return h.GetJob(ctx, api.GetJobRequestObject{Id: in.ID})
			}},
		{name: "list_jobs", operationID: "listJobs", readOnly: true,
			call: func(ctx context.Context, h *handlers, args []byte) (any, error) {
				var params api.ListJobsParams
				if err := json.Unmarshal(args, &params); err != nil {
					return nil, err
				}
				return h.ListJobs(ctx, api.ListJobsRequestObject{Params: params})
			}},
		{name: "cancel_job", operationID: "cancelJob",
			call: func(ctx context.Context, h *handlers, args []byte) (any, error) {
				var in struct{ ID string }
				if err := json.Unmarshal(args, &in); err != nil {
					return nil, err
				}
				return h.CancelJob(ctx, api.CancelJobRequestObject{Id: in.ID})
			}},
		{name: "plan_workflow", operationID: "planWorkflow",
			call: func(ctx context.Context, h *handlers, args []byte) (any, error) {
				var body api.WorkflowPlanRequest
				if err := json.Unmarshal(args, &body); err != nil {
					return nil, err
				}
				return h.PlanWorkflow(ctx, api.PlanWorkflowRequestObject{Body: &body})
			}},
		{name: "replay_job", operationID: "replayJob",
			call: func(ctx context.Context, h *handlers, args []byte) (any, error) {
				var body api.JobReplay
				var params struct {
					ID             string  `json:"id"`
					IdempotencyKey *string `json:"idempotency_key"`
				}
				if err := errors.Join(json.Unmarshal(args, &body), json.Unmarshal(args, &params)); err != nil {
					return nil, err
				}
				ctx, err := withArgumentsBody(ctx, params.IdempotencyKey, body)
				if err != nil {
					return nil, err
				}
				resp, err := h.ReplayJob(ctx, api.ReplayJobRequestObject{Id: params.ID, Body: &body, Params: api.ReplayJobParams{IdempotencyKey: params.IdempotencyKey}})
				if err != nil {
					return nil, err
				}
				switch r := resp.(type) {
				case api.ReplayJob202JSONResponse:
					return r.Body, nil
				case api.ReplayJob200JSONResponse: // an idempotent repeat
					return r.Body, nil
				}
				return nil, fmt.Errorf("replay answered %T", resp)
			}},
		{name: "get_usage", operationID: "getUsage", readOnly: true,
			call: func(ctx context.Context, h *handlers, args []byte) (any, error) {
				var params api.GetUsageParams
				if err := json.Unmarshal(args, &params); err != nil {
					return nil, err
				}
				return h.GetUsage(ctx, api.GetUsageRequestObject{Params: params})
			}},
	}
}

// newMCPHandler builds the MCP server with every tool, its schemas derived from
// the spec, and its stateless Streamable HTTP handler answering in JSON.
func newMCPHandler(spec *openapi3.T, h *handlers, maxBody int64, log *slog.Logger) (http.Handler, error) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "levqor", Title: "Levqor", Version: levqor.Version}, &mcp.ServerOptions{
		Instructions: "Levqor runs AI automation jobs: list connectors and workflows, plan a workflow from a description, save it, run it, then follow the job. " +
			"A refused call returns the API's problem document (see its code).",
	})
	ops := operationsByID(spec)
	for _, t := range mcpTools() {
		def, err := newMCPToolDef(t, ops[strings.ToLower(t.operationID)])
		if err != nil {
			return nil, fmt.Errorf("mcp tool %s: %w", t.name, err)
		}
		srv.AddTool(def.tool, h.mcpToolHandler(t, def))
	}
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		Stateless:           true,
		JSONResponse:        true,
		Logger:              log,
		MaxRequestBodyBytes: maxBody,
		// The SDK refuses requests reaching a loopback address with a Host that is
		// not localhost (DNS rebinding). That is every request from a reverse proxy
		// on the same machine, and rebinding gains a page nothing here: every MCP
		// request needs an API key, which a browser does not add by itself.
		DisableLocalhostProtection: true,
	}), nil
}

// specOperation is an operation with the path item it sits in (for the
// parameters declared on the path).
type specOperation struct {
	path string
	item *openapi3.PathItem
	op   *openapi3.Operation
}

// operationsByID indexes the operations by lower-cased operationId: the embedded
// spec carries the ids as oapi-codegen capitalised them (ListConnectors).
func operationsByID(spec *openapi3.T) map[string]specOperation {
	out := map[string]specOperation{}
	for path, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			out[strings.ToLower(op.OperationID)] = specOperation{path: path, item: item, op: op}
		}
	}
	return out
}

// operationScopes reads an operation's x-levqor-scopes.
func operationScopes(op *openapi3.Operation) []string {
	var out []string
	raw, _ := op.Extensions[scopesExtension].([]any)
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// mcpToolDef is what start-up derives for one tool from its operation.
type mcpToolDef struct {
	tool   *mcp.Tool
	scopes []string
	input  *openapi3.Schema // the arguments, in the spec's terms: what the REST validator would check
}

func newMCPToolDef(t mcpTool, so specOperation) (mcpToolDef, error) {
	if so.op == nil {
		return mcpToolDef{}, fmt.Errorf("no operation %q in the spec", t.operationID)
	}
	scopes := operationScopes(so.op)
	if len(scopes) == 0 {
		return mcpToolDef{}, fmt.Errorf("operation %s declares no scopes", t.operationID)
	}

	// The arguments: path and query parameters, then the body's members.
	input := openapi3.NewObjectSchema().WithoutAdditionalProperties()
	input.Properties = openapi3.Schemas{}
	for _, pr := range slices.Concat(so.item.Parameters, so.op.Parameters) {
		p := pr.Value
		if p == nil || p.In == openapi3.ParameterInCookie {
			continue
		}
		if p.Schema == nil || p.Schema.Value == nil {
			return mcpToolDef{}, fmt.Errorf("parameter %s has no schema", p.Name)
		}
		s := *p.Schema.Value // a copy: the description is the parameter's
		if p.Description != "" {
			s.Description = p.Description
		}
		name := p.Name
		if p.In == openapi3.ParameterInHeader {
			name = strings.ToLower(strings.ReplaceAll(name, "-", "_"))
		}
		if _, clash := input.Properties[name]; clash {
			return mcpToolDef{}, fmt.Errorf("two parameters named %q", name)
		}
		input.Properties[name] = openapi3.NewSchemaRef("", &s)
		if p.Required {
			input.Required = append(input.Required, name)
		}
	}
	if rb := so.op.RequestBody; rb != nil && rb.Value != nil {
		media := rb.Value.Content.Get("application/json")
		if media == nil || media.Schema == nil || media.Schema.Value == nil || !media.Schema.Value.Type.Is(openapi3.TypeObject) {
			return mcpToolDef{}, errors.New("the request body is not a JSON object")
		}
		body := media.Schema.Value
		for name, ref := range body.Properties {
			if _, clash := input.Properties[name]; clash {
				return mcpToolDef{}, fmt.Errorf("body member %q has the name of a parameter", name)
			}
			input.Properties[name] = ref
		}
		input.Required = append(input.Required, body.Required...)
	}
	inSchema, err := toJSONSchema(input, true)
	if err != nil {
		return mcpToolDef{}, fmt.Errorf("input schema: %w", err)
	}
	inSchema["$schema"] = jsonSchemaDialect

	outSchema, err := successSchema(so.op)
	if err != nil {
		return mcpToolDef{}, fmt.Errorf("output schema: %w", err)
	}

	desc := so.op.Summary + "."
	if so.op.Description != "" {
		desc += "\n\n" + strings.TrimSpace(so.op.Description)
	}
	desc += fmt.Sprintf("\n\nMirrors %s %s; needs the %s scope.", strings.ToUpper(methodOf(so)), so.path, strings.Join(scopes, ", "))
	tool := &mcp.Tool{Name: t.name, Description: desc, InputSchema: inSchema, OutputSchema: outSchema,
		Annotations: &mcp.ToolAnnotations{Title: so.op.Summary, ReadOnlyHint: t.readOnly, OpenWorldHint: ptr(false)}}
	return mcpToolDef{tool: tool, scopes: scopes, input: input}, nil
}

// successSchema is the JSON Schema of an operation's JSON success responses: the
// one schema they share, or, when they differ (intake's 202 job accepted and its
// dry run's 200 job), an object that is any of them, in the order of their codes.
func successSchema(op *openapi3.Operation) (map[string]any, error) {
	codes := slices.Sorted(maps.Keys(op.Responses.Map()))
	var schemas []*openapi3.Schema
	for _, code := range codes {
		resp := op.Responses.Value(code)
		if !strings.HasPrefix(code, "2") || resp == nil || resp.Value == nil {
			continue
		}
		media := resp.Value.Content.Get("application/json")
		if media == nil || media.Schema == nil || media.Schema.Value == nil {
			continue
		}
		if !slices.Contains(schemas, media.Schema.Value) {
			schemas = append(schemas, media.Schema.Value)
		}
	}
	if len(schemas) == 0 {
		return nil, errors.New("no JSON success response")
	}
	out := map[string]any{"type": "object"}
	if len(schemas) == 1 {
		var err error
		if out, err = toJSONSchema(schemas[0], false); err != nil {
			return nil, err
		}
	} else {
		var alts []any
		for _, s := range schemas {
			alt, err := toJSONSchema(s, false)
			if err != nil {
				return nil, err
			}
			alts = append(alts, alt)
		}
		out["anyOf"] = alts
	}
	out["$schema"] = jsonSchemaDialect
	return out, nil
}

func methodOf(so specOperation) string {
	for method, op := range so.item.Operations() {
		if op == so.op {
			return method
		}
	}
	return ""
}

// mcpToolHandler runs one tool call as the REST route would run the operation:
// scope, validation, NUL rule, handler. Refusals become tool errors carrying the
// problem document; the JSON-RPC call itself succeeds.
func (h *handlers) mcpToolHandler(t mcpTool, def mcpToolDef) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		body, err := h.runMCPTool(ctx, t, def, req.Params.Arguments)
		if err != nil {
			return mcpToolError(ctx, err), nil
		}
		data, err := json.Marshal(body)
		if err != nil {
			return mcpToolError(ctx, fmt.Errorf("encode %s result: %w", t.name, err)), nil
		}
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: string(data)}},
			StructuredContent: json.RawMessage(data),
		}, nil
	}
}

func (h *handlers) runMCPTool(ctx context.Context, t mcpTool, def mcpToolDef, args json.RawMessage) (any, error) {
	p := principalFrom(ctx)
	for _, s := range def.scopes {
		if !p.Can(s) {
			return nil, levqor.Errorf(levqor.EForbidden, "This API key lacks the %q scope.", s)
		}
	}
	if len(bytes.TrimSpace(args)) == 0 || bytes.Equal(bytes.TrimSpace(args), []byte("null")) {
		args = json.RawMessage("{}")
	}
	var doc any
	if err := json.Unmarshal(args, &doc); err != nil {
		return nil, &levqor.Error{Code: levqor.EInvalid, Message: "The arguments are not valid JSON.", Err: err}
	}
	if err := def.input.VisitJSON(doc, openapi3.MultiErrors(), openapi3.VisitAsRequest()); err != nil {
		return nil, argumentsError(err)
	}
	if bytes.Contains(args, []byte(`\u0000`)) {
		if ptrs := nulText(def.input, doc, ""); len(ptrs) > 0 {
			fields := make([]levqor.FieldError, len(ptrs))
			for i, p := range ptrs {
				fields[i] = levqor.FieldError{Pointer: p, Detail: nulDetail}
			}
			return nil, &levqor.Error{Code: levqor.EInvalid, Message: "Text must not contain the NUL character (U+0000).", Fields: fields}
		}
	}
	body, err := t.call(ctx, h, args)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typ) { // validated above, so only a value the Go type cannot hold
		return nil, &levqor.Error{Code: levqor.EInvalid, Message: "The arguments do not fit the operation.", Err: err}
	}
	return body, err
}

// argumentsError turns schema violations into the 400 problem the REST route
// would answer, with a pointer per field (into the arguments object).
func argumentsError(err error) error {
	var me openapi3.MultiError
	if !errors.As(err, &me) {
		me = openapi3.MultiError{err}
	}
	out := &levqor.Error{Code: levqor.EInvalid, Message: "The arguments are invalid.", Err: err}
	for _, e := range me {
		out.Fields = append(out.Fields, schemaFieldError("", e))
	}
	if len(out.Fields) == 1 {
		out.Message = out.Fields[0].Detail
	}
	return out
}

// mcpToolError is a tool result with isError set: structuredContent is the
// problem document the REST route would have answered (its code, status and
// detail), and the text content is the same JSON for clients that read only text.
func mcpToolError(ctx context.Context, err error) *mcp.CallToolResult {
	r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil)
	p := problemFor(r, err)
	if p.Status >= 500 {
		log := slog.Default()
		if info := requestInfoFrom(ctx); info != nil {
			log = info.log
		}
		log.ErrorContext(ctx, "mcp tool failed", "request_id", deref(p.RequestId), "error", err.Error())
	}
	data, mErr := json.Marshal(p)
	if mErr != nil { // cannot happen for this fixed shape
		data = []byte(`{"type":"` + problemBase + `internal","title":"Internal Server Error","status":500,"code":"internal"}`)
	}
	return &mcp.CallToolResult{
		IsError:           true,
		Content:           []mcp.Content{&mcp.TextContent{Text: string(data)}},
		StructuredContent: json.RawMessage(data),
	}
}

// withRequestBody returns ctx for a request whose JSON body was body, as far as
// requestBodyHash is concerned; the rest of the request's record is shared.
func withRequestBody(ctx context.Context, body []byte) context.Context {
	info := requestInfoFrom(ctx)
	if info == nil {
		return ctx
	}
	copied := *info
	copied.body = body
	return context.WithValue(ctx, requestInfoKey{}, &copied)
}

// withArgumentsBody returns ctx for a tool call with an idempotency key whose
// operation's body is body: the key fingerprints the body, which here is that part
// of the arguments re-encoded (not the JSON-RPC envelope around them, whose id
// changes on every retry). Without a key, ctx is unchanged.
func withArgumentsBody(ctx context.Context, key *string, body any) (context.Context, error) {
	if key == nil {
		return ctx, nil
	}
	canonical, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return withRequestBody(ctx, canonical), nil
}

// mcpRequestKey carries the HTTP request of the MCP operation from the strict
// middleware to PostMCP: the SDK's handler serves the request itself (headers
// and body), which a strict handler does not otherwise see.
type mcpRequestKey struct{}

// withMCPRequest is the strict middleware that hands PostMCP its request, with
// the body the strict layer already decoded put back.
func withMCPRequest(f api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	if !strings.EqualFold(operationID, mcpOperationID) {
		return f
	}
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, request any) (any, error) {
		if r.GetBody != nil {
			body, err := r.GetBody()
			if err != nil {
				return nil, &levqor.Error{Code: levqor.EInvalid, Message: "The request body could not be read.", Err: err}
			}
			r.Body = body
		}
		return f(context.WithValue(ctx, mcpRequestKey{}, r), w, r, request)
	}
}

// mcpResponse serves the request through the MCP SDK's handler.
type mcpResponse struct {
	handler http.Handler
	r       *http.Request
}

func (resp mcpResponse) VisitPostMCPResponse(w http.ResponseWriter) error {
	resp.handler.ServeHTTP(w, resp.r)
	return nil
}

// PostMCP implements api.StrictServerInterface.
func (s *handlers) PostMCP(ctx context.Context, _ api.PostMCPRequestObject) (api.PostMCPResponseObject, error) {
	r, ok := ctx.Value(mcpRequestKey{}).(*http.Request)
	if !ok || s.mcp == nil {
		return nil, levqor.Errorf(levqor.EInternal, "the MCP endpoint is not wired")
	}
	handler, err := s.mcp()
	if err != nil {
		return nil, err
	}
	return mcpResponse{handler: handler, r: r}, nil
}
