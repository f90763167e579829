package notion

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/levqor/levqor/connectors"
)

// SearchOutput is what search returns.
type SearchOutput struct {
	Results    []SearchResult `json:"results"`
	NextCursor *string        `json:"next_cursor"`
	HasMore    bool           `json:"has_more"`
}

// SearchResult is one page or database that search found.
type SearchResult struct {
	ID             string `json:"id"`
	Object         string `json:"object"` // "page" or "database"
	Title          string `json:"title,omitempty"`
	URL            string `json:"url"`
	LastEditedTime string `json:"last_edited_time"`
}

// QueryOutput is what query_database returns.
type QueryOutput struct {
	Results    []Page  `json:"results"`
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

// Page is one database page that query_database found.
type Page struct {
	ID             string `json:"id"`
	URL            string `json:"url"`
	CreatedTime    string `json:"created_time"`
	LastEditedTime string `json:"last_edited_time"`
	// Properties is Notion's properties object, or null when it is over MaxPropertiesBytes.
	Properties          json.RawMessage `json:"properties"`
	PropertiesTruncated bool            `json:"properties_truncated,omitempty"`
}

// CreatedPage is what create_page returns.
type CreatedPage struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	CreatedTime string `json:"created_time"`
}

// object is the part of a Notion page or database the connector reads.
type object struct {
	Object         string          `json:"object"`
	ID             string          `json:"id"`
	URL            string          `json:"url"`
	CreatedTime    string          `json:"created_time"`
	LastEditedTime string          `json:"last_edited_time"`
	Title          []richText      `json:"title"` // a database's title
	Properties     json.RawMessage `json:"properties"`
}

type richText struct {
	PlainText string `json:"plain_text"`
}

// list is Notion's paginated list object.
type list struct {
	Object     string   `json:"object"`
	Results    []object `json:"results"`
	NextCursor *string  `json:"next_cursor"`
	HasMore    bool     `json:"has_more"`
}

type searchInput struct {
	Query       string  `json:"query"`
	Filter      string  `json:"filter"`
	PageSize    float64 `json:"page_size"` // float64: the schema's integer admits 1e2
	StartCursor string  `json:"start_cursor"`
	Connection  string  `json:"connection"`
}

type searchBody struct {
	Query       string        `json:"query,omitempty"`
	Filter      *objectFilter `json:"filter,omitempty"`
	PageSize    int           `json:"page_size,omitempty"`
	StartCursor string        `json:"start_cursor,omitempty"`
}

type objectFilter struct {
	Property string `json:"property"`
	Value    string `json:"value"`
}

func (c *Connector) search(ctx context.Context, input json.RawMessage) (any, error) {
	var in searchInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	body := searchBody{Query: in.Query, PageSize: int(in.PageSize), StartCursor: in.StartCursor}
	if in.Filter != "" {
		body.Filter = &objectFilter{Property: "object", Value: in.Filter}
	}
	var res list
	if err := c.call(ctx, in.Connection, http.MethodPost, "/v1/search", body, &res); err != nil {
		return nil, err
	}
	if res.Object != "list" {
		return nil, unexpected("a list")
	}
	out := SearchOutput{Results: make([]SearchResult, 0, len(res.Results)), NextCursor: res.NextCursor, HasMore: res.HasMore}
	for _, o := range res.Results {
		out.Results = append(out.Results, SearchResult{
			ID: o.ID, Object: o.Object, Title: o.title(), URL: o.URL, LastEditedTime: o.LastEditedTime,
		})
	}
	return out, nil
}

// title is a database's title, or the value of a page's title property.
func (o object) title() string {
	if o.Object == "database" {
		return plainText(o.Title)
	}
	var props map[string]struct {
		Type  string     `json:"type"`
		Title []richText `json:"title"`
	}
	if json.Unmarshal(o.Properties, &props) != nil {
		return ""
	}
	for _, p := range props {
		if p.Type == "title" {
			return plainText(p.Title)
		}
	}
	return ""
}

func plainText(rt []richText) string {
	var sb strings.Builder
	for _, t := range rt {
		sb.WriteString(t.PlainText)
	}
	return sb.String()
}

type queryInput struct {
	DatabaseID  string          `json:"database_id"`
	Filter      json.RawMessage `json:"filter"`
	Sorts       json.RawMessage `json:"sorts"`
	PageSize    float64         `json:"page_size"`
	StartCursor string          `json:"start_cursor"`
	Connection  string          `json:"connection"`
}

type queryBody struct {
	Filter      json.RawMessage `json:"filter,omitempty"`
	Sorts       json.RawMessage `json:"sorts,omitempty"`
	PageSize    int             `json:"page_size,omitempty"`
	StartCursor string          `json:"start_cursor,omitempty"`
}

func (c *Connector) queryDatabase(ctx context.Context, input json.RawMessage) (any, error) {
	var in queryInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	id, ok := canonicalID(in.DatabaseID)
	if !ok {
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "database_id is not a Notion id")
	}
	body := queryBody{Filter: in.Filter, Sorts: in.Sorts, PageSize: int(in.PageSize), StartCursor: in.StartCursor}
	var res list
	if err := c.call(ctx, in.Connection, http.MethodPost, "/v1/databases/"+id+"/query", body, &res); err != nil {
		return nil, err
	}
	if res.Object != "list" {
		return nil, unexpected("a list")
	}
	out := QueryOutput{Results: make([]Page, 0, len(res.Results)), NextCursor: res.NextCursor, HasMore: res.HasMore}
	for _, o := range res.Results {
		p := Page{ID: o.ID, URL: o.URL, CreatedTime: o.CreatedTime, LastEditedTime: o.LastEditedTime}
		var compact bytes.Buffer
		switch {
		case len(o.Properties) == 0 || json.Compact(&compact, o.Properties) != nil:
			p.Properties = json.RawMessage("null")
		case compact.Len() > MaxPropertiesBytes:
			p.Properties, p.PropertiesTruncated = json.RawMessage("null"), true
		default:
			p.Properties = compact.Bytes()
		}
		out.Results = append(out.Results, p)
	}
	return out, nil
}

type createInput struct {
	DatabaseID string          `json:"database_id"`
	PageID     string          `json:"page_id"`
	Properties json.RawMessage `json:"properties"`
	Children   json.RawMessage `json:"children"`
	Connection string          `json:"connection"`
}

type createBody struct {
	Parent     parent          `json:"parent"`
	Properties json.RawMessage `json:"properties"`
	Children   json.RawMessage `json:"children,omitempty"`
}

type parent struct {
	Type       string `json:"type"`
	DatabaseID string `json:"database_id,omitempty"`
	PageID     string `json:"page_id,omitempty"`
}

func (c *Connector) createPage(ctx context.Context, input json.RawMessage) (any, error) {
	var in createInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	var p parent
	switch {
	case (in.DatabaseID == "") == (in.PageID == ""):
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "send exactly one of database_id and page_id")
	case in.DatabaseID != "":
		id, ok := canonicalID(in.DatabaseID)
		if !ok {
			return nil, connectors.Errorf(connectors.CodeInvalidInput, "database_id is not a Notion id")
		}
		p = parent{Type: "database_id", DatabaseID: id}
	default:
		id, ok := canonicalID(in.PageID)
		if !ok {
			return nil, connectors.Errorf(connectors.CodeInvalidInput, "page_id is not a Notion id")
		}
		p = parent{Type: "page_id", PageID: id}
	}
	if len(in.Properties) == 0 {
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "properties is required")
	}
	var res object
	body := createBody{Parent: p, Properties: in.Properties, Children: in.Children}
	if err := c.call(ctx, in.Connection, http.MethodPost, "/v1/pages", body, &res); err != nil {
		return nil, err
	}
	if res.Object != "page" || res.ID == "" {
		return nil, unexpected("a page")
	}
	return CreatedPage{ID: res.ID, URL: res.URL, CreatedTime: res.CreatedTime}, nil
}

func decode(input json.RawMessage, v any) error {
	if err := json.Unmarshal(input, v); err != nil {
		return &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "input does not match the action's schema", Err: err}
	}
	return nil
}

// canonicalID returns a Notion id (32 hex digits, dashes anywhere) in its dashed,
// lower-case form, which is also safe to put in a URL path.
func canonicalID(s string) (string, bool) {
	h := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(h) != 32 {
		return "", false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

func unexpected(want string) error {
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Retryable: true,
		Message: "Notion's response is not " + want}
}
