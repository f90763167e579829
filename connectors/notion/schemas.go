package notion

import (
	"encoding/json"

	"github.com/levqor/levqor/connectors"
)

// Shared property schemas. An id is a UUID with or without dashes, as Notion accepts it.
const (
	connectionProperty = `"connection": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$",
		"description": "The owner's connection to use; defaults to the one named default."}`
	idSchema = `{"type": "string",
		"pattern": "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"}`
	pagingProperties = `
		"page_size": {"type": "integer", "minimum": 1, "maximum": 100, "default": 100},
		"start_cursor": {"type": "string", "minLength": 1, "maxLength": 256,
			"description": "next_cursor from the previous page."}`
)

const searchSchema = `{
	"type": "object",
	"additionalProperties": false,
	"properties": {
		"query": {"type": "string", "maxLength": 1000, "description": "Text in titles; empty lists everything shared with the integration."},
		"filter": {"enum": ["page", "database"], "description": "Only pages or only databases."},` +
	pagingProperties + `,
		` + connectionProperty + `
	}
}`

const queryDatabaseSchema = `{
	"type": "object",
	"additionalProperties": false,
	"required": ["database_id"],
	"properties": {
		"database_id": ` + idSchema + `,
		"filter": {"type": "object", "minProperties": 1, "description": "A Notion database filter object, sent as is."},
		"sorts": {"type": "array", "maxItems": 100, "items": {"type": "object", "minProperties": 1},
			"description": "Notion sort objects, sent as is."},` +
	pagingProperties + `,
		` + connectionProperty + `
	}
}`

const createPageSchema = `{
	"type": "object",
	"additionalProperties": false,
	"required": ["properties"],
	"properties": {
		"database_id": ` + idSchema + `,
		"page_id": ` + idSchema + `,
		"properties": {"type": "object", "maxProperties": 100,
			"description": "Notion property values keyed by property name or id; under a page, only title."},
		"children": {"type": "array", "maxItems": 100, "items": {"type": "object", "minProperties": 1},
			"description": "Notion block objects for the page's content."},
		` + connectionProperty + `
	},
	"oneOf": [{"required": ["database_id"]}, {"required": ["page_id"]}]
}`

func actions() []connectors.Action {
	return []connectors.Action{
		{
			Name: "search",
			Description: "Searches the pages and databases shared with the integration by title and returns " +
				"{results: [{id, object, title, url, last_edited_time}], next_cursor, has_more}.",
			InputSchema:  json.RawMessage(searchSchema),
			OutputSchema: listOutput(`"object": {"enum": ["page", "database"]}, "title": {"type": "string"}`, "object"),
		},
		{
			Name: "query_database",
			Description: "Queries a database's pages with an optional filter and sorts and returns " +
				"{results: [{id, url, created_time, last_edited_time, properties}], next_cursor, has_more}; " +
				"a page whose properties exceed 32 KiB has them left out and properties_truncated set.",
			InputSchema: json.RawMessage(queryDatabaseSchema),
			OutputSchema: listOutput(`"created_time": {"type": "string"},
				"properties": {"type": ["object", "null"], "description": "Notion's properties object; null when left out."},
				"properties_truncated": {"type": "boolean"}`, "created_time", "properties"),
		},
		{
			Name: "create_page",
			Description: "Creates a page in a database (database_id) or under a page (page_id) and returns " +
				"{id, url, created_time}.",
			InputSchema: json.RawMessage(createPageSchema),
			OutputSchema: json.RawMessage(`{
				"type": "object", "additionalProperties": false, "required": ["id", "url", "created_time"],
				"properties": {"id": {"type": "string"}, "url": {"type": "string"}, "created_time": {"type": "string"}}
			}`),
		},
	}
}

// listOutput is the output schema of a paginated list: results, each with an id, a
// url, a last_edited_time and the properties given (required ones named), a
// next_cursor and has_more.
func listOutput(properties string, required ...string) json.RawMessage {
	req, _ := json.Marshal(append([]string{"id", "url", "last_edited_time"}, required...))
	return json.RawMessage(`{
		"type": "object", "additionalProperties": false, "required": ["results", "next_cursor", "has_more"],
		"properties": {
			"results": {"type": "array", "items": {
				"type": "object", "additionalProperties": false, "required": ` + string(req) + `,
				"properties": {"id": {"type": "string"}, "url": {"type": "string"}, "last_edited_time": {"type": "string"}, ` + properties + `}
			}},
			"next_cursor": {"type": ["string", "null"]},
			"has_more": {"type": "boolean"}
		}
	}`)
}
