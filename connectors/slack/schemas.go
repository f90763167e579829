package slack

import (
	"encoding/json"
	"fmt"

	"github.com/levqor/levqor/connectors"
)

// Limits on what a step may send; Slack's own limits where it documents one.
const (
	MaxTextChars     = 40000 // chat.postMessage truncates text beyond this
	MaxBlocks        = 50    // blocks per message
	MaxChannelsLimit = 1000  // conversations.list's largest page
)

// connectionProperty lets every action pick one of the owner's named connections.
const connectionProperty = `"connection": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$",
	"description": "The name of the owner's Slack connection to use; default \"default\"."}`

// channelProperty is a channel ID (C…, G…, D…) or a #name.
const channelProperty = `"channel": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^\\S+$",
	"description": "A channel ID such as C0123456789, or a channel name such as #general."}`

func actions() []connectors.Action {
	postMessage := fmt.Sprintf(`{
		"type": "object",
		"additionalProperties": false,
		"required": ["channel"],
		"anyOf": [{"required": ["text"]}, {"required": ["blocks"]}],
		"properties": {
			%s,
			"text": {"type": "string", "minLength": 1, "maxLength": %d,
				"description": "The message, in Slack mrkdwn; with blocks, the notification fallback."},
			"blocks": {"type": "array", "minItems": 1, "maxItems": %d,
				"items": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string", "minLength": 1, "maxLength": 64}}},
				"description": "Block Kit blocks, passed to Slack as they are."},
			"thread_ts": {"type": "string", "pattern": "^[0-9]{1,20}\\.[0-9]{1,20}$",
				"description": "The ts of the message to reply to in a thread."},
			%s
		}
	}`, channelProperty, MaxTextChars, MaxBlocks, connectionProperty)
	listChannels := fmt.Sprintf(`{
		"type": "object",
		"additionalProperties": false,
		"properties": {
			"limit": {"type": "integer", "minimum": 1, "maximum": %d, "default": 100},
			"cursor": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "^[A-Za-z0-9+/=_-]+$",
				"description": "next_cursor of the previous page."},
			"types": {"type": "array", "minItems": 1, "maxItems": 4, "uniqueItems": true,
				"items": {"enum": ["public_channel", "private_channel", "mpim", "im"]},
				"default": ["public_channel"]},
			%s
		}
	}`, MaxChannelsLimit, connectionProperty)
	uploadFile := fmt.Sprintf(`{
		"type": "object",
		"additionalProperties": false,
		"required": ["channel", "content", "filename"],
		"properties": {
			%s,
			"content": {"type": "string", "minLength": 1, "maxLength": %d,
				"description": "The file's content as text; at most 1 MiB once UTF-8 encoded."},
			"filename": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/\\\\\\p{Cc}]+$"},
			"title": {"type": "string", "minLength": 1, "maxLength": 255},
			"initial_comment": {"type": "string", "minLength": 1, "maxLength": %d},
			%s
		}
	}`, channelProperty, MaxUploadBytes, MaxTextChars, connectionProperty)

	return []connectors.Action{
		{
			Name:        "post_message",
			Description: "Posts a message (text and/or Block Kit blocks, optionally in a thread) to a channel; returns {channel, ts}.",
			InputSchema: compact(postMessage),
			OutputSchema: compact(`{
				"type": "object", "additionalProperties": false, "required": ["channel", "ts"],
				"properties": {"channel": {"type": "string", "description": "The channel's ID."}, "ts": {"type": "string", "description": "The message's timestamp, its ID in the channel."}}
			}`),
		},
		{
			Name: "list_channels",
			Description: "Lists one page of the workspace's conversations (public channels unless types says otherwise); " +
				"returns {channels: [{id, name, is_private, is_archived, num_members}], next_cursor}, next_cursor empty on the last page.",
			InputSchema: compact(listChannels),
			OutputSchema: compact(`{
				"type": "object", "additionalProperties": false, "required": ["channels", "next_cursor"],
				"properties": {
					"channels": {"type": "array", "items": {
						"type": "object", "additionalProperties": false, "required": ["id", "name", "is_private", "is_archived", "num_members"],
						"properties": {"id": {"type": "string"}, "name": {"type": "string"}, "is_private": {"type": "boolean"},
							"is_archived": {"type": "boolean"}, "num_members": {"type": "integer", "minimum": 0}}
					}},
					"next_cursor": {"type": "string", "description": "Empty on the last page."}
				}
			}`),
		},
		{
			Name: "upload_file",
			Description: "Uploads text content as a file and shares it in a channel through Slack's external upload flow " +
				"(files.getUploadURLExternal, the upload, files.completeUploadExternal); returns {file_id, title}.",
			InputSchema: compact(uploadFile),
			OutputSchema: compact(`{
				"type": "object", "additionalProperties": false, "required": ["file_id"],
				"properties": {"file_id": {"type": "string"}, "title": {"type": "string"}}
			}`),
		},
	}
}

// compact panics on a schema that is not JSON: they are constants, and the tests compile them.
func compact(s string) json.RawMessage {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(fmt.Sprintf("slack: action schema is not JSON: %v\n%s", err, s))
	}
	out, _ := json.Marshal(v)
	return out
}
