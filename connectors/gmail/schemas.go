package gmail

import (
	"encoding/json"
	"fmt"

	"github.com/levqor/levqor/connectors"
)

// Limits on what a step may send.
const (
	MaxRecipients   = 50      // addresses in each of to, cc and bcc
	MaxSubjectChars = 500     // keeps an unencoded Subject line within RFC 5322's 998
	MaxBodyChars    = 262_144 // text, and html, each
	MaxResults      = 100     // list_messages' max_results
)

const connectionProperty = `"connection": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$",
	"description": "The owner's connection to use; defaults to the one named default."}`

// addressSchema is loose on purpose: net/mail parses every address, and rejects it with
// a clear message, before anything is sent.
const addressSchema = `{"type": "string", "minLength": 3, "maxLength": 320}`

var (
	listLabelsSchema = `{
	"type": "object",
	"additionalProperties": false,
	"properties": {` + connectionProperty + `}
}`

	listMessagesSchema = fmt.Sprintf(`{
	"type": "object",
	"additionalProperties": false,
	"properties": {
		"query": {"type": "string", "maxLength": 1024, "description": "A Gmail search query, as in the search box, e.g. \"from:alice is:unread\"."},
		"max_results": {"type": "integer", "minimum": 1, "maximum": %d, "default": %d},
		"page_token": {"type": "string", "minLength": 1, "maxLength": 512, "description": "next_page_token from the previous page."},
		"label_ids": {"type": "array", "maxItems": 20, "uniqueItems": true,
			"items": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
			"description": "Only messages with all these labels, e.g. [\"INBOX\", \"UNREAD\"]."},
		%s
	}
}`, MaxResults, MaxResults, connectionProperty)

	sendEmailSchema = fmt.Sprintf(`{
	"type": "object",
	"additionalProperties": false,
	"required": ["to", "subject"],
	"properties": {
		"to": {"type": "array", "minItems": 1, "maxItems": %[1]d, "items": %[2]s,
			"description": "Addresses such as \"ada@example.com\" or \"Ada Lovelace <ada@example.com>\"."},
		"cc": {"type": "array", "maxItems": %[1]d, "items": %[2]s},
		"bcc": {"type": "array", "maxItems": %[1]d, "items": %[2]s},
		"reply_to": %[2]s,
		"subject": {"type": "string", "maxLength": %[3]d},
		"text": {"type": "string", "minLength": 1, "maxLength": %[4]d, "description": "The plain-text body."},
		"html": {"type": "string", "minLength": 1, "maxLength": %[4]d, "description": "The HTML body; with text, the message is multipart/alternative."},
		%[5]s
	},
	"anyOf": [{"required": ["text"]}, {"required": ["html"]}]
}`, MaxRecipients, addressSchema, MaxSubjectChars, MaxBodyChars, connectionProperty)
)

func actions() []connectors.Action {
	return []connectors.Action{
		{
			Name:        "list_labels",
			Description: "Lists the mailbox's labels: {labels: [{id, name, type}]}.",
			InputSchema: json.RawMessage(listLabelsSchema),
			OutputSchema: json.RawMessage(`{
				"type": "object", "additionalProperties": false, "required": ["labels"],
				"properties": {"labels": {"type": "array", "items": {
					"type": "object", "additionalProperties": false, "required": ["id", "name", "type"],
					"properties": {"id": {"type": "string"}, "name": {"type": "string"}, "type": {"enum": ["system", "user"]}}
				}}}
			}`),
		},
		{
			Name: "list_messages",
			Description: "Lists the ids of messages matching a query and labels, newest first: " +
				"{messages: [{id, thread_id}], next_page_token, result_size_estimate}.",
			InputSchema: json.RawMessage(listMessagesSchema),
			OutputSchema: json.RawMessage(`{
				"type": "object", "additionalProperties": false, "required": ["messages", "next_page_token", "result_size_estimate"],
				"properties": {
					"messages": {"type": "array", "items": {
						"type": "object", "additionalProperties": false, "required": ["id", "thread_id"],
						"properties": {"id": {"type": "string"}, "thread_id": {"type": "string"}}
					}},
					"next_page_token": {"type": ["string", "null"]},
					"result_size_estimate": {"type": "integer", "minimum": 0}
				}
			}`),
		},
		{
			Name: "send_email",
			Description: "Sends an email from the connected account and returns {id, thread_id, label_ids}. " +
				"Addresses, subject and headers are checked; line breaks in any of them are refused.",
			InputSchema: json.RawMessage(sendEmailSchema),
			OutputSchema: json.RawMessage(`{
				"type": "object", "additionalProperties": false, "required": ["id", "thread_id", "label_ids"],
				"properties": {"id": {"type": "string"}, "thread_id": {"type": "string"}, "label_ids": {"type": "array", "items": {"type": "string"}}}
			}`),
		},
	}
}
