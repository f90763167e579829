package notion_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeNotion is a local Notion API speaking version 2022-06-28: it checks every request
// as Notion does (method, path, bearer token, Notion-Version, JSON body with only the
// documented fields) and answers with Notion's objects and error bodies.
type fakeNotion struct {
	t      testing.TB
	srv    *httptest.Server
	tokens map[string]bool // integration tokens Notion accepts

	mu        sync.Mutex
	requests  []seenRequest
	objects   []map[string]any            // what search finds, in order
	databases map[string][]map[string]any // dashed id → its pages
	schemas   map[string]map[string]bool  // dashed id → its property names
	pages     map[string]bool             // dashed ids of pages a page may be created under
	override  http.HandlerFunc            // answers instead of the API once the request passed the checks
}

// seenRequest is a request that passed the checks.
type seenRequest struct {
	Method, Path, Auth string
	Body               map[string]any
}

const (
	dbTasks    = "d9824bdc-8445-4327-be8b-5b47500af6ce"
	pageRecipe = "954b67f9-3f87-41db-8874-23b92bbd31ee"
	pageKale   = "59833787-2cf9-4fdf-8782-e53db20768a5"
)

func newFakeNotion(t testing.TB, tokens ...string) *fakeNotion {
	f := &fakeNotion{t: t, tokens: map[string]bool{}, databases: map[string][]map[string]any{},
		schemas: map[string]map[string]bool{}, pages: map[string]bool{pageRecipe: true}}
	for _, tok := range tokens {
		f.tokens[tok] = true
	}
	f.objects = []map[string]any{
		pageObject(pageRecipe, "Tuscan kale recipes", map[string]any{"title": titleProperty("Tuscan kale recipes")}, nil),
		databaseObject(dbTasks, "Tasks"),
		pageObject(pageKale, "Kale", taskProperties("Kale", "Done"), map[string]any{"type": "database_id", "database_id": dbTasks}),
	}
	f.databases[dbTasks] = []map[string]any{
		pageObject(pageKale, "Kale", taskProperties("Kale", "Done"), map[string]any{"type": "database_id", "database_id": dbTasks}),
		pageObject("a1d8f0c3-6b4e-4c1f-9a7e-2f3b5c6d7e8f", "Chard", taskProperties("Chard", "Not started"), map[string]any{"type": "database_id", "database_id": dbTasks}),
	}
	f.schemas[dbTasks] = map[string]bool{"Name": true, "Status": true}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func richText(s string) []any {
	return []any{map[string]any{
		"type": "text",
		"text": map[string]any{"content": s, "link": nil},
		"annotations": map[string]any{"bold": false, "italic": false, "strikethrough": false,
			"underline": false, "code": false, "color": "default"},
		"plain_text": s,
		"href":       nil,
	}}
}

func titleProperty(s string) map[string]any {
	return map[string]any{"id": "title", "type": "title", "title": richText(s)}
}

func taskProperties(name, status string) map[string]any {
	return map[string]any{
		"Name": titleProperty(name),
		"Status": map[string]any{"id": "%5EOE%40", "type": "select",
			"select": map[string]any{"id": "1", "name": status, "color": "green"}},
	}
}

func user() map[string]any {
	return map[string]any{"object": "user", "id": "ee5f0f84-409a-440f-983a-a5315961c6e4"}
}

func pageObject(id, title string, props map[string]any, par map[string]any) map[string]any {
	if par == nil {
		par = map[string]any{"type": "workspace", "workspace": true}
	}
	return map[string]any{
		"object": "page", "id": id,
		"created_time": "2022-03-01T19:05:00.000Z", "last_edited_time": "2022-07-06T20:25:00.000Z",
		"created_by": user(), "last_edited_by": user(),
		"cover": nil, "icon": map[string]any{"type": "emoji", "emoji": "🥬"},
		"parent": par, "archived": false, "in_trash": false,
		"properties": props,
		"url":        "https://www.notion.so/" + strings.ReplaceAll(title, " ", "-") + "-" + strings.ReplaceAll(id, "-", ""),
		"public_url": nil,
	}
}

func databaseObject(id, title string) map[string]any {
	return map[string]any{
		"object": "database", "id": id,
		"created_time": "2021-07-08T23:50:00.000Z", "last_edited_time": "2022-07-08T23:50:00.000Z",
		"created_by": user(), "last_edited_by": user(),
		"icon": nil, "cover": nil,
		"title":       richText(title),
		"description": []any{},
		"is_inline":   false,
		"properties": map[string]any{
			"Name":   map[string]any{"id": "title", "name": "Name", "type": "title", "title": map[string]any{}},
			"Status": map[string]any{"id": "%5EOE%40", "name": "Status", "type": "select", "select": map[string]any{"options": []any{}}},
		},
		"parent":   map[string]any{"type": "page_id", "page_id": pageRecipe},
		"url":      "https://www.notion.so/" + strings.ReplaceAll(id, "-", ""),
		"archived": false, "in_trash": false,
	}
}

func notionError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "error", "status": status, "code": code, "message": msg,
		"request_id": "6e7a8b1c-2d3e-4f5a-9b8c-7d6e5f4a3b2c"})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// dashed normalises a Notion id as Notion does: dashes are optional in requests.
func dashed(id string) string {
	h := strings.ToLower(strings.ReplaceAll(id, "-", ""))
	if len(h) != 32 {
		return id
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (f *fakeNotion) setOverride(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override = h
}

// setPages replaces a database's pages.
func (f *fakeNotion) setPages(id string, pages []map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.databases[id] = pages
}

func (f *fakeNotion) seen() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.requests...)
}

func (f *fakeNotion) last() seenRequest {
	f.t.Helper()
	s := f.seen()
	if len(s) == 0 {
		f.t.Fatal("Notion received no request")
	}
	return s[len(s)-1]
}

// allowed lists each endpoint's documented body fields.
var allowed = map[string][]string{
	"search": {"query", "filter", "sort", "page_size", "start_cursor"},
	"query":  {"filter", "sorts", "page_size", "start_cursor", "filter_properties"},
	"pages":  {"parent", "properties", "children", "icon", "cover"},
}

func (f *fakeNotion) serve(w http.ResponseWriter, r *http.Request) {
	var endpoint, dbID string
	switch {
	case r.URL.Path == "/v1/search":
		endpoint = "search"
	case r.URL.Path == "/v1/pages":
		endpoint = "pages"
	case strings.HasPrefix(r.URL.Path, "/v1/databases/") && strings.HasSuffix(r.URL.Path, "/query"):
		endpoint, dbID = "query", strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/databases/"), "/query")
	}
	if endpoint == "" || r.Method != http.MethodPost || r.URL.RawQuery != "" {
		notionError(w, http.StatusBadRequest, "invalid_request_url", "Invalid request URL.")
		return
	}
	if v := r.Header.Get("Notion-Version"); v != "2022-06-28" {
		notionError(w, http.StatusBadRequest, "missing_version",
			"Notion-Version header failed validation: Notion-Version header should be defined, instead was `"+v+"`.")
		return
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || !f.tokens[strings.TrimPrefix(auth, "Bearer ")] {
		notionError(w, http.StatusUnauthorized, "unauthorized", "API token is invalid.")
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		notionError(w, http.StatusBadRequest, "invalid_json", "Error parsing JSON body.")
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		notionError(w, http.StatusBadRequest, "invalid_json", "Error parsing JSON body.")
		return
	}
	for k := range body {
		if !contains(allowed[endpoint], k) {
			notionError(w, http.StatusBadRequest, "validation_error", "body failed validation: body."+k+" should be not present.")
			return
		}
	}
	if ps, ok := body["page_size"]; ok {
		n, err := ps.(json.Number).Int64()
		if err != nil || n < 1 || n > 100 {
			notionError(w, http.StatusBadRequest, "validation_error", "body failed validation: body.page_size should be ≤ `100`.")
			return
		}
	}
	f.mu.Lock()
	f.requests = append(f.requests, seenRequest{Method: r.Method, Path: r.URL.Path, Auth: auth, Body: body})
	override := f.override
	f.mu.Unlock()
	if override != nil {
		override(w, r)
		return
	}
	switch endpoint {
	case "search":
		f.search(w, body)
	case "query":
		f.query(w, dbID, body)
	case "pages":
		f.createPage(w, body)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// paginate answers one page of objects as Notion's list object; cursors are the id of
// the next result, as Notion's are.
func paginate(w http.ResponseWriter, objs []map[string]any, body map[string]any, typ string) {
	size := 100
	if ps, ok := body["page_size"]; ok {
		n, _ := ps.(json.Number).Int64()
		size = int(n)
	}
	start := 0
	if c, ok := body["start_cursor"].(string); ok {
		start = -1
		for i, o := range objs {
			if o["id"] == c {
				start = i
			}
		}
		if start < 0 {
			notionError(w, http.StatusBadRequest, "validation_error", "The start_cursor provided is invalid: "+c)
			return
		}
	}
	end := min(start+size, len(objs))
	var next any
	if end < len(objs) {
		next = objs[end]["id"]
	}
	writeJSON(w, map[string]any{"object": "list", "results": objs[start:end], "next_cursor": next,
		"has_more": end < len(objs), "type": typ, typ: map[string]any{}, "request_id": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"})
}

func (f *fakeNotion) search(w http.ResponseWriter, body map[string]any) {
	if fl, ok := body["filter"]; ok {
		m, _ := fl.(map[string]any)
		if len(m) != 2 || m["property"] != "object" || (m["value"] != "page" && m["value"] != "database") {
			notionError(w, http.StatusBadRequest, "validation_error", "body failed validation: body.filter.value should be `\"page\"` or `\"database\"`.")
			return
		}
	}
	q, _ := body["query"].(string)
	var found []map[string]any
	f.mu.Lock()
	for _, o := range f.objects {
		if fl, ok := body["filter"].(map[string]any); ok && o["object"] != fl["value"] {
			continue
		}
		if !strings.Contains(strings.ToLower(titleOf(o)), strings.ToLower(q)) {
			continue
		}
		found = append(found, o)
	}
	f.mu.Unlock()
	paginate(w, found, body, "page_or_database")
}

// titleOf reads an object's title as Notion's search matches it.
func titleOf(o map[string]any) string {
	var rt []any
	if o["object"] == "database" {
		rt, _ = o["title"].([]any)
	} else {
		props, _ := o["properties"].(map[string]any)
		for _, p := range props {
			if pm, _ := p.(map[string]any); pm["type"] == "title" {
				rt, _ = pm["title"].([]any)
			}
		}
	}
	var sb strings.Builder
	for _, t := range rt {
		sb.WriteString(fmt.Sprint(t.(map[string]any)["plain_text"]))
	}
	return sb.String()
}

func (f *fakeNotion) query(w http.ResponseWriter, id string, body map[string]any) {
	f.mu.Lock()
	pages, ok := f.databases[dashed(id)]
	f.mu.Unlock()
	if !ok {
		notionError(w, http.StatusNotFound, "object_not_found",
			"Could not find database with ID: "+dashed(id)+". Make sure the relevant pages and databases are shared with your integration.")
		return
	}
	paginate(w, pages, body, "page")
}

func (f *fakeNotion) createPage(w http.ResponseWriter, body map[string]any) {
	par, _ := body["parent"].(map[string]any)
	props, ok := body["properties"].(map[string]any)
	if !ok {
		notionError(w, http.StatusBadRequest, "validation_error", "body failed validation: body.properties should be defined, instead was `undefined`.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var parentObj map[string]any
	switch {
	case par["type"] == "database_id" && par["database_id"] != nil && par["page_id"] == nil:
		id := dashed(fmt.Sprint(par["database_id"]))
		schema, ok := f.schemas[id]
		if !ok {
			notionError(w, http.StatusNotFound, "object_not_found",
				"Could not find database with ID: "+id+". Make sure the relevant pages and databases are shared with your integration.")
			return
		}
		for name := range props {
			if !schema[name] {
				notionError(w, http.StatusBadRequest, "validation_error", name+" is not a property that exists.")
				return
			}
		}
		parentObj = map[string]any{"type": "database_id", "database_id": id}
	case par["type"] == "page_id" && par["page_id"] != nil && par["database_id"] == nil:
		id := dashed(fmt.Sprint(par["page_id"]))
		if !f.pages[id] {
			notionError(w, http.StatusNotFound, "object_not_found",
				"Could not find page with ID: "+id+". Make sure the relevant pages and databases are shared with your integration.")
			return
		}
		for name := range props {
			if name != "title" {
				notionError(w, http.StatusBadRequest, "validation_error", "Invalid property identifier for parent page: "+name)
				return
			}
		}
		parentObj = map[string]any{"type": "page_id", "page_id": id}
	default:
		notionError(w, http.StatusBadRequest, "validation_error", "body failed validation: body.parent should be an object with database_id or page_id.")
		return
	}
	id := fmt.Sprintf("2b1f0c9e-%04x-4a5b-8c6d-7e8f9a0b1c2d", len(f.requests))
	page := pageObject(id, "New page", props, parentObj)
	page["created_time"] = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC).Format("2006-01-02T15:04:05.000Z")
	writeJSON(w, page)
}

// delay returns an override that answers after d, or when the client gives up.
func delay(d time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			writeJSON(w, map[string]any{"object": "list", "results": []any{}, "next_cursor": nil, "has_more": false})
		case <-r.Context().Done():
		}
	}
}

// status returns an override answering with Notion's error object.
func status(code int, errCode, msg string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		notionError(w, code, errCode, msg)
	}
}

// raw returns an override answering 200 with body as is.
func raw(body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, body)
	}
}
