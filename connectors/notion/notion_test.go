package notion_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/notion"
	"github.com/levqor/levqor/outbound"
)

const (
	owner     = "usr_01HZX4P6"
	testToken = "secret_9f2KqLw81ZcXvB7nTyR4uHs6EeD3aGm0PoJ5"
	workToken = "ntn_41177305761aBcDeFgHiJkLmNoPqRsTuVwXyZ0123"
)

type bundle struct {
	fake *fakeNotion
	reg  *connectors.Registry
	ctx  context.Context // carries the step
}

func setup(t testing.TB, opts ...func(*notion.Config)) *bundle {
	t.Helper()
	fake := newFakeNotion(t, testToken, workToken)
	creds := connectortest.NewCredentials()
	creds.Set(owner, notion.Name, "default", map[string]string{"token": testToken})
	creds.Set(owner, notion.Name, "work", map[string]string{"token": workToken})
	creds.Set(owner, notion.Name, "empty", map[string]string{"token": ""})
	cfg := notion.Config{BaseURL: fake.srv.URL, Credentials: creds}
	for _, o := range opts {
		o(&cfg)
	}
	conn, err := notion.New(cfg)
	if err != nil {
		t.Fatalf("notion.New: %v", err)
	}
	reg, err := connectors.NewRegistry(conn)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	ctx := connectors.WithStep(context.Background(), connectors.Step{JobID: "job_1", StepID: "notion", OwnerID: owner, Attempt: 1})
	return &bundle{fake: fake, reg: reg, ctx: ctx}
}

func (b *bundle) run(t testing.TB, action, input string, out any) error {
	t.Helper()
	raw, err := b.reg.Run(b.ctx, notion.Name, action, json.RawMessage(input))
	if err != nil {
		return err
	}
	if strings.Contains(string(raw), testToken) || strings.Contains(string(raw), workToken) {
		t.Fatalf("output holds a token: %s", raw)
	}
	connectortest.CheckOutput(t, b.reg, notion.Name, action, json.RawMessage(input), raw)
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("output %s does not decode: %v", raw, err)
	}
	return nil
}

func wantStepError(t *testing.T, err error, code string, retryable bool) *connectors.StepError {
	t.Helper()
	var se *connectors.StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T); want a *StepError %s", err, err, code)
	}
	if se.Code != code || se.Retryable != retryable {
		t.Fatalf("err = %v (retryable %v); want code %s, retryable %v", se, se.Retryable, code, retryable)
	}
	for _, secret := range []string{testToken, workToken} {
		if strings.Contains(se.Error(), secret) {
			t.Fatalf("error message holds a token: %s", se.Error())
		}
	}
	return se
}

func jsonEqual(t *testing.T, got any, want string) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(g, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("got %s\nwant %s", g, want)
	}
}

func TestSearch(t *testing.T) {
	b := setup(t)
	var out notion.SearchOutput
	if err := b.run(t, "search", `{"query": "kale", "page_size": 1}`, &out); err != nil {
		t.Fatal(err)
	}
	req := b.fake.last()
	if req.Method != "POST" || req.Path != "/v1/search" || req.Auth != "Bearer "+testToken {
		t.Fatalf("request = %+v", req)
	}
	jsonEqual(t, req.Body, `{"query": "kale", "page_size": 1}`)
	next := pageKale
	want := notion.SearchOutput{
		Results: []notion.SearchResult{{ID: pageRecipe, Object: "page", Title: "Tuscan kale recipes",
			URL: "https://www.notion.so/Tuscan-kale-recipes-954b67f93f8741db887423b92bbd31ee", LastEditedTime: "2022-07-06T20:25:00.000Z"}},
		NextCursor: &next, HasMore: true,
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("page 1 = %+v\nwant %+v", out, want)
	}

	// The next page, through the cursor; the last page's cursor is null.
	out = notion.SearchOutput{}
	if err := b.run(t, "search", `{"query": "kale", "start_cursor": "`+next+`"}`, &out); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, b.fake.last().Body, `{"query": "kale", "start_cursor": "`+next+`"}`)
	if len(out.Results) != 1 || out.Results[0].ID != pageKale || out.Results[0].Title != "Kale" || out.HasMore || out.NextCursor != nil {
		t.Fatalf("page 2 = %+v", out)
	}
}

func TestSearchFilterAndDatabaseTitle(t *testing.T) {
	b := setup(t)
	var out notion.SearchOutput
	if err := b.run(t, "search", `{"filter": "database"}`, &out); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, b.fake.last().Body, `{"filter": {"property": "object", "value": "database"}}`)
	want := []notion.SearchResult{{ID: dbTasks, Object: "database", Title: "Tasks",
		URL: "https://www.notion.so/d9824bdc84454327be8b5b47500af6ce", LastEditedTime: "2022-07-08T23:50:00.000Z"}}
	if !reflect.DeepEqual(out.Results, want) || out.HasMore || out.NextCursor != nil {
		t.Fatalf("out = %+v", out)
	}
}

func TestQueryDatabase(t *testing.T) {
	b := setup(t)
	input := `{
		"database_id": "D9824BDC84454327BE8B5B47500AF6CE",
		"filter": {"property": "Status", "select": {"equals": "Done"}},
		"sorts": [{"timestamp": "created_time", "direction": "descending"}],
		"page_size": 100
	}`
	var out notion.QueryOutput
	if err := b.run(t, "query_database", input, &out); err != nil {
		t.Fatal(err)
	}
	req := b.fake.last()
	if req.Path != "/v1/databases/"+dbTasks+"/query" {
		t.Fatalf("path = %s", req.Path)
	}
	jsonEqual(t, req.Body, `{"filter": {"property": "Status", "select": {"equals": "Done"}},
		"sorts": [{"timestamp": "created_time", "direction": "descending"}], "page_size": 100}`)
	if len(out.Results) != 2 || out.HasMore || out.NextCursor != nil {
		t.Fatalf("out = %+v", out)
	}
	p := out.Results[0]
	if p.ID != pageKale || p.URL != "https://www.notion.so/Kale-598337872cf94fdf8782e53db20768a5" ||
		p.CreatedTime != "2022-03-01T19:05:00.000Z" || p.LastEditedTime != "2022-07-06T20:25:00.000Z" || p.PropertiesTruncated {
		t.Fatalf("page = %+v", p)
	}
	wantProps, _ := json.Marshal(taskProperties("Kale", "Done"))
	jsonEqual(t, p.Properties, string(wantProps))
}

func TestQueryDatabaseCapsProperties(t *testing.T) {
	b := setup(t)
	big := taskProperties(strings.Repeat("x", notion.MaxPropertiesBytes), "Done")
	b.fake.setPages(dbTasks, []map[string]any{
		pageObject(pageKale, "Kale", taskProperties("Kale", "Done"), nil),
		pageObject("a1d8f0c3-6b4e-4c1f-9a7e-2f3b5c6d7e8f", "Chard", taskProperties("Chard", "Not started"), nil),
		pageObject("c0ffee00-0000-4000-8000-000000000001", "Big", big, nil),
	})
	var out notion.QueryOutput
	if err := b.run(t, "query_database", `{"database_id": "`+dbTasks+`"}`, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 3 {
		t.Fatalf("results = %d", len(out.Results))
	}
	if r := out.Results[2]; !r.PropertiesTruncated || string(r.Properties) != "null" || r.ID != "c0ffee00-0000-4000-8000-000000000001" {
		t.Fatalf("big page = %+v", r)
	}
	if r := out.Results[0]; r.PropertiesTruncated || len(r.Properties) < 10 {
		t.Fatalf("small page = %+v", r)
	}
}

func TestQueryDatabaseOutputTooLarge(t *testing.T) {
	b := setup(t)
	var pages []map[string]any
	for i := range 60 {
		id := strings.Replace("c0ffee00-0000-4000-8000-0000000000xx", "xx", string(rune('a'+i/26))+string(rune('a'+i%26)), 1)
		pages = append(pages, pageObject(id, "P", taskProperties(strings.Repeat("y", 10_000), "Done"), nil))
	}
	b.fake.setPages(dbTasks, pages)
	err := b.run(t, "query_database", `{"database_id": "`+dbTasks+`"}`, &notion.QueryOutput{})
	se := wantStepError(t, err, connectors.CodeResponseTooLarge, false)
	if !strings.Contains(se.Message, "page_size") {
		t.Fatalf("message = %q; want a hint at page_size", se.Message)
	}
}

func TestCreatePage(t *testing.T) {
	b := setup(t)
	var out notion.CreatedPage
	input := `{
		"database_id": "` + dbTasks + `",
		"properties": {"Name": {"title": [{"text": {"content": "Buy chard"}}]}, "Status": {"select": {"name": "Not started"}}},
		"children": [{"object": "block", "type": "paragraph", "paragraph": {"rich_text": [{"type": "text", "text": {"content": "Two bunches."}}]}}]
	}`
	if err := b.run(t, "create_page", input, &out); err != nil {
		t.Fatal(err)
	}
	req := b.fake.last()
	if req.Path != "/v1/pages" {
		t.Fatalf("path = %s", req.Path)
	}
	jsonEqual(t, req.Body, `{
		"parent": {"type": "database_id", "database_id": "`+dbTasks+`"},
		"properties": {"Name": {"title": [{"text": {"content": "Buy chard"}}]}, "Status": {"select": {"name": "Not started"}}},
		"children": [{"object": "block", "type": "paragraph", "paragraph": {"rich_text": [{"type": "text", "text": {"content": "Two bunches."}}]}}]
	}`)
	if !strings.HasPrefix(out.ID, "2b1f0c9e-") || out.CreatedTime != "2024-05-01T10:00:00.000Z" ||
		out.URL != "https://www.notion.so/New-page-"+strings.ReplaceAll(out.ID, "-", "") {
		t.Fatalf("out = %+v", out)
	}

	// Under a page, with its id without dashes.
	out = notion.CreatedPage{}
	input = `{"page_id": "954b67f93f8741db887423b92bbd31ee", "properties": {"title": {"title": [{"text": {"content": "Notes"}}]}}}`
	if err := b.run(t, "create_page", input, &out); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, b.fake.last().Body, `{"parent": {"type": "page_id", "page_id": "`+pageRecipe+`"},
		"properties": {"title": {"title": [{"text": {"content": "Notes"}}]}}}`)
	if out.ID == "" {
		t.Fatalf("out = %+v", out)
	}
}

func TestVendorErrors(t *testing.T) {
	tests := []struct {
		name          string
		token         string // the connection's token; "" means the valid one
		override      http.HandlerFunc
		action, input string
		timeout       time.Duration
		wantCode      string
		wantRetryable bool
		wantRetryIn   time.Duration
		wantMsg       string
	}{
		{name: "bad token", token: "secret_revoked0000000000000000000000000000", action: "search", input: `{}`,
			wantCode: notion.CodeAuthFailed, wantMsg: "notion: unauthorized"},
		{name: "database not found", action: "query_database", input: `{"database_id": "00000000-0000-4000-8000-000000000000"}`,
			wantCode: notion.CodeNotFound, wantMsg: "notion: object_not_found (Could not find database with ID: 00000000-0000-4000-8000-000000000000."},
		{name: "parent page not found", action: "create_page", input: `{"page_id": "00000000000040008000000000000000", "properties": {}}`,
			wantCode: notion.CodeNotFound, wantMsg: "notion: object_not_found"},
		{name: "validation error", action: "create_page", input: `{"database_id": "` + dbTasks + `", "properties": {"Owner": {}}}`,
			wantCode: notion.CodeBadRequest, wantMsg: "notion: validation_error (Owner is not a property that exists.)"},
		{name: "restricted", action: "search", input: `{}`,
			override: status(403, "restricted_resource", "API token does not have access to this resource."),
			wantCode: notion.CodeForbidden, wantMsg: "notion: restricted_resource"},
		{name: "rate limited", action: "search", input: `{}`,
			override: status(429, "rate_limited", "You have been rate limited. Please try again in a few minutes.", "Retry-After", "17"),
			wantCode: notion.CodeRateLimited, wantRetryable: true, wantRetryIn: 17 * time.Second, wantMsg: "notion: rate_limited"},
		{name: "rate limited without a hint", action: "search", input: `{}`,
			override: status(429, "rate_limited", "You have been rate limited."),
			wantCode: notion.CodeRateLimited, wantRetryable: true},
		{name: "conflict", action: "create_page", input: `{"page_id": "` + pageRecipe + `", "properties": {}}`,
			override: status(409, "conflict_error", "Conflict occurred while saving. Please try again."),
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "notion: conflict_error"},
		{name: "server error", action: "search", input: `{}`,
			override: status(503, "service_unavailable", "Notion is unavailable, please try again later."),
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "notion: service_unavailable"},
		{name: "gateway page", action: "search", input: `{}`,
			override: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
			},
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "Notion responded 502 Bad Gateway"},
		{name: "timeout", action: "search", input: `{}`, timeout: 100 * time.Millisecond, override: delay(5 * time.Second),
			wantCode: connectors.CodeTimeout, wantRetryable: true, wantMsg: "Notion did not answer within 100ms"},
		{name: "oversized, declared", action: "search", input: `{}`,
			override: raw(`{}`+strings.Repeat(" ", notion.MaxResponseBytes), "Content-Length", strconv.Itoa(2+notion.MaxResponseBytes)),
			wantCode: connectors.CodeResponseTooLarge},
		{name: "oversized, chunked", action: "search", input: `{}`,
			override: raw(`{"object": "list", "results": [` + strings.Repeat(`{"object": "page"},`, notion.MaxResponseBytes/19) + `{}]}`),
			wantCode: connectors.CodeResponseTooLarge},
		{name: "malformed JSON", action: "search", input: `{}`, override: raw(`{"object": "list", "results": [`),
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "could not be read"},
		{name: "not a list", action: "search", input: `{}`, override: raw(`{"object": "page", "id": "x"}`),
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not a list"},
		{name: "not a page", action: "create_page", input: `{"page_id": "` + pageRecipe + `", "properties": {}}`,
			override: raw(`{"object": "list", "results": []}`),
			wantCode: connectors.CodeUpstreamError, wantRetryable: true, wantMsg: "not a page"},
		{name: "vendor message quoting the token", action: "search", input: `{}`,
			override: status(400, "validation_error", "body failed validation: token "+testToken+" is wrong"),
			wantCode: notion.CodeBadRequest, wantMsg: "notion: validation_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, func(c *notion.Config) {
				c.Timeout = tt.timeout
				if tt.token != "" {
					creds := connectortest.NewCredentials()
					creds.Set(owner, notion.Name, "default", map[string]string{"token": tt.token})
					c.Credentials = creds
				}
			})
			b.fake.setOverride(tt.override)
			err := b.run(t, tt.action, tt.input, &map[string]any{})
			se := wantStepError(t, err, tt.wantCode, tt.wantRetryable)
			if se.RetryAfter != tt.wantRetryIn {
				t.Fatalf("RetryAfter = %v; want %v", se.RetryAfter, tt.wantRetryIn)
			}
			if !strings.Contains(se.Message, tt.wantMsg) {
				t.Fatalf("message = %q; want it to contain %q", se.Message, tt.wantMsg)
			}
			if tt.token != "" && strings.Contains(se.Error(), tt.token) {
				t.Fatalf("message holds the token: %q", se.Message)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	b := setup(t)
	// A named connection's token is the one sent.
	if err := b.run(t, "search", `{"connection": "work"}`, &notion.SearchOutput{}); err != nil {
		t.Fatal(err)
	}
	if got := b.fake.last().Auth; got != "Bearer "+workToken {
		t.Fatalf("Authorization = %q; want the work connection's token", got)
	}
	if err := b.run(t, "search", `{}`, &notion.SearchOutput{}); err != nil {
		t.Fatal(err)
	}
	if got := b.fake.last().Auth; got != "Bearer "+testToken {
		t.Fatalf("Authorization = %q; want the default connection's token", got)
	}
	sent := len(b.fake.seen())

	tests := []struct {
		name    string
		ctx     context.Context
		input   string
		wantMsg string
	}{
		{"no step", context.Background(), `{}`, "no owner"},
		{"owner without a connection", connectors.WithStep(context.Background(), connectors.Step{OwnerID: "usr_other"}), `{}`,
			"no Notion connection with a token"},
		{"unknown named connection", b.ctx, `{"connection": "home"}`, `no Notion connection named "home"`},
		{"connection without a token", b.ctx, `{"connection": "empty"}`, `no Notion connection named "empty"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.reg.Run(tt.ctx, notion.Name, "search", json.RawMessage(tt.input))
			se := wantStepError(t, err, connectors.CodeNoCredentials, false)
			if !strings.Contains(se.Message, tt.wantMsg) {
				t.Fatalf("message = %q; want %q", se.Message, tt.wantMsg)
			}
		})
	}
	if n := len(b.fake.seen()); n != sent {
		t.Fatalf("Notion received %d requests without credentials", n-sent)
	}
}

func TestCredentialsStoreFailureIsRetryable(t *testing.T) {
	creds := connectortest.NewCredentials()
	creds.Fail(errors.New("decrypt connection: cipher: message authentication failed"))
	b := setup(t, func(c *notion.Config) { c.Credentials = creds })
	err := b.run(t, "search", `{}`, &notion.SearchOutput{})
	se := wantStepError(t, err, connectors.CodeUpstreamError, true)
	if strings.Contains(se.Message, "cipher") {
		t.Fatalf("message leaks the store's error: %q", se.Message)
	}
	if len(b.fake.seen()) != 0 {
		t.Fatal("Notion was called without credentials")
	}
}

func TestSchemaRejectsBadInput(t *testing.T) {
	b := setup(t)
	tests := []struct{ name, action, input, wantMsg string }{
		{"unknown field", "search", `{"query": "x", "sort": {}}`, "additionalProperties"},
		{"page_size over 100", "search", `{"page_size": 101}`, "maximum"},
		{"page_size zero", "query_database", `{"database_id": "` + dbTasks + `", "page_size": 0}`, "minimum"},
		{"filter of another type", "search", `{"filter": "user"}`, "enum"},
		{"query too long", "search", `{"query": "` + strings.Repeat("q", 1001) + `"}`, "maxLength"},
		{"bad connection name", "search", `{"connection": "../work"}`, "pattern"},
		{"database_id a path", "query_database", `{"database_id": "../../v1/users"}`, "pattern"},
		{"database_id missing", "query_database", `{}`, "required"},
		{"filter not an object", "query_database", `{"database_id": "` + dbTasks + `", "filter": "Done"}`, "type"},
		{"too many sorts", "query_database", `{"database_id": "` + dbTasks + `", "sorts": [` + strings.Repeat(`{"timestamp": "created_time"},`, 100) + `{"timestamp": "created_time"}]}`, "maxItems"},
		{"two parents", "create_page", `{"database_id": "` + dbTasks + `", "page_id": "` + pageRecipe + `", "properties": {}}`, "oneOf"},
		{"no parent", "create_page", `{"properties": {}}`, "oneOf"},
		{"no properties", "create_page", `{"page_id": "` + pageRecipe + `"}`, "required"},
		{"too many children", "create_page", `{"page_id": "` + pageRecipe + `", "properties": {}, "children": [` + strings.Repeat(`{"type": "divider", "divider": {}},`, 100) + `{"type": "divider", "divider": {}}]}`, "maxItems"},
		{"not an object", "search", `["kale"]`, "type"},
		{"not JSON", "search", `{"query": `, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.reg.Run(b.ctx, notion.Name, tt.action, json.RawMessage(tt.input))
			se := wantStepError(t, err, connectors.CodeInvalidInput, false)
			if !strings.Contains(se.Message, tt.wantMsg) {
				t.Fatalf("message = %q; want %q", se.Message, tt.wantMsg)
			}
		})
	}
	if n := len(b.fake.seen()); n != 0 {
		t.Fatalf("Notion received %d requests for invalid input", n)
	}
}

func TestRequestOverNotionsLimit(t *testing.T) {
	b := setup(t)
	// 100 blocks of 5,000 characters: within the schema, over Notion's 500 KB.
	block := `{"type": "paragraph", "paragraph": {"rich_text": [{"text": {"content": "` + strings.Repeat("z", 5000) + `"}}]}}`
	input := `{"page_id": "` + pageRecipe + `", "properties": {}, "children": [` + strings.Repeat(block+",", 99) + block + `]}`
	err := b.run(t, "create_page", input, &notion.CreatedPage{})
	se := wantStepError(t, err, connectors.CodeInvalidInput, false)
	if !strings.Contains(se.Message, "at most 500000") {
		t.Fatalf("message = %q", se.Message)
	}
	if len(b.fake.seen()) != 0 {
		t.Fatal("the oversized request was sent")
	}
}

func TestStepDeadline(t *testing.T) {
	b := setup(t)
	b.fake.setOverride(delay(5 * time.Second))
	ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
	defer cancel()
	_, err := b.reg.Run(ctx, notion.Name, "search", json.RawMessage(`{}`))
	wantStepError(t, err, connectors.CodeTimeout, true)
}

func TestOutboundGuardRefuses(t *testing.T) {
	guard, err := outbound.NewGuard(nil) // allows nothing private: the fake on 127.0.0.1 is refused
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(c *notion.Config) { c.HTTPClient = guard.Client(time.Minute) })
	err = b.run(t, "search", `{}`, &notion.SearchOutput{})
	wantStepError(t, err, connectors.CodeRefused, false)
	if len(b.fake.seen()) != 0 {
		t.Fatal("the guard let the request through")
	}
}

func TestNew(t *testing.T) {
	creds := connectortest.NewCredentials()
	for _, cfg := range []notion.Config{
		{BaseURL: "ftp://api.notion.com", Credentials: creds},
		{BaseURL: "https://user:pass@api.notion.com", Credentials: creds},
		{BaseURL: "/v1", Credentials: creds},
		{BaseURL: "https://api.notion.com"},
		{Credentials: creds, Timeout: -time.Second},
	} {
		if _, err := notion.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	c, err := notion.New(notion.Config{Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CredentialFields(); !reflect.DeepEqual(got, []string{"token"}) {
		t.Fatalf("CredentialFields = %v", got)
	}
	reg, err := connectors.NewRegistry(c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range reg.Catalogue()[0].Actions {
		names = append(names, a.Name)
	}
	if !reflect.DeepEqual(names, []string{"create_page", "query_database", "search"}) {
		t.Fatalf("actions = %v", names)
	}
}
