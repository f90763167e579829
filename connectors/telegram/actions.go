package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/levqor/levqor/connectors"
)

// Limits on what a step may send; the Bot API's own where it documents one.
const (
	MaxTextChars    = 4096 // sendMessage's text, after entity parsing
	MaxUpdatesLimit = 100  // getUpdates' largest batch
	MaxPollSeconds  = 50   // get_updates' longest long poll
)

// maxSafeInt is the largest integer a JSON number carries exactly (2^53 - 1); Telegram's
// chat IDs have at most 52 significant bits.
const maxSafeInt = 1<<53 - 1

// connectionProperty lets every action pick one of the owner's named connections.
const connectionProperty = `"connection": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$",
	"description": "The name of the owner's Telegram connection to use; default \"default\"."}`

func actions() []connectors.Action {
	sendMessage := fmt.Sprintf(`{
		"type": "object",
		"additionalProperties": false,
		"required": ["chat_id", "text"],
		"properties": {
			"chat_id": {
				"oneOf": [
					{"type": "integer", "minimum": -%[1]d, "maximum": %[1]d},
					{"type": "string", "pattern": "^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?[0-9]{1,16})$"}
				],
				"description": "A chat's numeric ID, or @username of a public channel or group."
			},
			"text": {"type": "string", "minLength": 1, "maxLength": %[2]d},
			"parse_mode": {"enum": ["MarkdownV2", "HTML", "Markdown"]},
			%[3]s
		}
	}`, maxSafeInt, MaxTextChars, connectionProperty)
	getMe := `{
		"type": "object",
		"additionalProperties": false,
		"properties": {` + connectionProperty + `}
	}`
	getUpdates := fmt.Sprintf(`{
		"type": "object",
		"additionalProperties": false,
		"properties": {
			"limit": {"type": "integer", "minimum": 1, "maximum": %[1]d, "default": %[1]d},
			"offset": {"type": "integer", "minimum": -%[2]d, "maximum": %[2]d,
				"description": "The first update_id to return: the last one seen plus one, which also confirms the earlier ones."},
			"timeout": {"type": "integer", "minimum": 0, "maximum": %[3]d, "default": 0,
				"description": "Seconds to long-poll for updates; 0 returns at once."},
			%[4]s
		}
	}`, MaxUpdatesLimit, maxSafeInt, MaxPollSeconds, connectionProperty)

	return []connectors.Action{
		{
			Name:        "send_message",
			Description: "Sends a text message to a chat; returns {message_id, chat_id, date} (date in Unix seconds).",
			InputSchema: compact(sendMessage),
			OutputSchema: compact(`{
				"type": "object", "additionalProperties": false, "required": ["message_id", "chat_id", "date"],
				"properties": {"message_id": {"type": "integer"}, "chat_id": {"type": "integer"}, "date": {"type": "integer"}}
			}`),
		},
		{
			Name:        "get_me",
			Description: "Returns the bot's identity: {id, username, first_name, can_join_groups}.",
			InputSchema: compact(getMe),
			OutputSchema: compact(`{
				"type": "object", "additionalProperties": false, "required": ["id", "username", "first_name"],
				"properties": {"id": {"type": "integer"}, "username": {"type": "string"}, "first_name": {"type": "string"},
					"can_join_groups": {"type": "boolean"}}
			}`),
		},
		{
			Name: "get_updates",
			Description: "Fetches pending updates (getUpdates; it fails while the bot has a webhook); returns " +
				"{updates: [{update_id, message: {message_id, chat_id, from_username, text, date}}]}, message only for message updates.",
			InputSchema: compact(getUpdates),
			OutputSchema: compact(`{
				"type": "object", "additionalProperties": false, "required": ["updates"],
				"properties": {"updates": {"type": "array", "items": {
					"type": "object", "additionalProperties": false, "required": ["update_id"],
					"properties": {"update_id": {"type": "integer"}, "message": {
						"type": "object", "additionalProperties": false, "required": ["message_id", "chat_id", "date"],
						"properties": {"message_id": {"type": "integer"}, "chat_id": {"type": "integer"}, "from_username": {"type": "string"},
							"text": {"type": "string"}, "date": {"type": "integer"}}
					}}
				}}}
			}`),
		},
	}
}

// compact panics on a schema that is not JSON: they are constants, and the tests compile them.
func compact(s string) json.RawMessage {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(fmt.Sprintf("telegram: action schema is not JSON: %v\n%s", err, s))
	}
	out, _ := json.Marshal(v)
	return out
}

// Bot API objects, reduced to the fields the outputs use.
type (
	apiUser struct {
		ID            int64  `json:"id"`
		IsBot         bool   `json:"is_bot"`
		FirstName     string `json:"first_name"`
		Username      string `json:"username"`
		CanJoinGroups *bool  `json:"can_join_groups"`
	}
	apiChat struct {
		ID int64 `json:"id"`
	}
	apiMessage struct {
		MessageID int64    `json:"message_id"`
		From      *apiUser `json:"from"`
		Chat      apiChat  `json:"chat"`
		Date      int64    `json:"date"`
		Text      string   `json:"text"`
	}
	apiUpdate struct {
		UpdateID int64       `json:"update_id"`
		Message  *apiMessage `json:"message"`
	}
)

type sendMessageInput struct {
	ChatID     json.RawMessage `json:"chat_id"`
	Text       string          `json:"text"`
	ParseMode  string          `json:"parse_mode"`
	Connection string          `json:"connection"`
}

type sendMessageParams struct {
	ChatID    any    `json:"chat_id"` // int64, or a string: @username or a numeric ID as given
	Text      string `json:"text"`
	ParseMode string `json:"parse_mode,omitempty"`
}

// SendMessageOutput is what send_message returns.
type SendMessageOutput struct {
	MessageID int64 `json:"message_id"`
	ChatID    int64 `json:"chat_id"` // numeric even when the input named @username
	Date      int64 `json:"date"`    // Unix seconds
}

func (c *Connector) sendMessage(ctx context.Context, input json.RawMessage) (any, error) {
	var in sendMessageInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	params := sendMessageParams{Text: in.Text, ParseMode: in.ParseMode}
	if bytes.HasPrefix(in.ChatID, []byte(`"`)) {
		var s string
		if err := decode(in.ChatID, &s); err != nil {
			return nil, err
		}
		params.ChatID = s
	} else {
		id, err := integer(string(in.ChatID))
		if err != nil {
			return nil, err
		}
		params.ChatID = id
	}
	b, err := c.bot(ctx, in.Connection)
	if err != nil {
		return nil, err
	}
	var msg apiMessage
	if err := b.call(ctx, "sendMessage", params, &msg); err != nil {
		return nil, err
	}
	if msg.MessageID == 0 || msg.Chat.ID == 0 || msg.Date <= 0 {
		return nil, invalidResponse(nil)
	}
	return SendMessageOutput{MessageID: msg.MessageID, ChatID: msg.Chat.ID, Date: msg.Date}, nil
}

// GetMeOutput is what get_me returns.
type GetMeOutput struct {
	ID            int64  `json:"id"`
	Username      string `json:"username"`
	FirstName     string `json:"first_name"`
	CanJoinGroups *bool  `json:"can_join_groups,omitempty"`
}

func (c *Connector) getMe(ctx context.Context, input json.RawMessage) (any, error) {
	var in struct {
		Connection string `json:"connection"`
	}
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	b, err := c.bot(ctx, in.Connection)
	if err != nil {
		return nil, err
	}
	var me apiUser
	if err := b.call(ctx, "getMe", struct{}{}, &me); err != nil {
		return nil, err
	}
	if me.ID == 0 || !me.IsBot {
		return nil, invalidResponse(nil)
	}
	return GetMeOutput{ID: me.ID, Username: me.Username, FirstName: me.FirstName, CanJoinGroups: me.CanJoinGroups}, nil
}

type getUpdatesInput struct {
	Limit      float64     `json:"limit"`   // float64: the schema's integer admits 1e2
	Offset     json.Number `json:"offset"`  // kept as written, so that integer() reads it exactly
	Timeout    float64     `json:"timeout"` // seconds
	Connection string      `json:"connection"`
}

type getUpdatesParams struct {
	Offset  *int64 `json:"offset,omitempty"`
	Limit   int    `json:"limit"`
	Timeout int    `json:"timeout"`
}

// Update is one update in get_updates' output.
type Update struct {
	UpdateID int64          `json:"update_id"`
	Message  *UpdateMessage `json:"message,omitempty"` // only for a new incoming message
}

// UpdateMessage is the message of an Update.
type UpdateMessage struct {
	MessageID    int64  `json:"message_id"`
	ChatID       int64  `json:"chat_id"`
	FromUsername string `json:"from_username,omitempty"`
	Text         string `json:"text,omitempty"`
	Date         int64  `json:"date"`
}

// GetUpdatesOutput is what get_updates returns.
type GetUpdatesOutput struct {
	Updates []Update `json:"updates"`
}

func (c *Connector) getUpdates(ctx context.Context, input json.RawMessage) (any, error) {
	in := getUpdatesInput{Limit: MaxUpdatesLimit}
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	params := getUpdatesParams{Limit: int(in.Limit), Timeout: int(in.Timeout)}
	if in.Offset != "" {
		off, err := integer(in.Offset.String())
		if err != nil {
			return nil, err
		}
		params.Offset = &off
	}
	b, err := c.bot(ctx, in.Connection)
	if err != nil {
		return nil, err
	}
	var updates []apiUpdate
	if err := b.call(ctx, "getUpdates", params, &updates); err != nil {
		return nil, err
	}
	out := GetUpdatesOutput{Updates: make([]Update, 0, len(updates))}
	for _, u := range updates {
		if u.UpdateID == 0 {
			return nil, invalidResponse(nil)
		}
		upd := Update{UpdateID: u.UpdateID}
		if m := u.Message; m != nil {
			upd.Message = &UpdateMessage{MessageID: m.MessageID, ChatID: m.Chat.ID, Text: m.Text, Date: m.Date}
			if m.From != nil {
				upd.Message.FromUsername = m.From.Username
			}
		}
		out.Updates = append(out.Updates, upd)
	}
	return out, nil
}

// integer reads a JSON number the schema has checked to be an integer in the safe range;
// it may be written as 12, 12.0 or 1.2e1.
func integer(s string) (int64, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > maxSafeInt {
		return 0, connectors.Errorf(connectors.CodeInvalidInput, "a number in the input is not an integer Telegram accepts")
	}
	return int64(f), nil
}

// decode reads an input the registry has already validated against the action's schema.
func decode(input json.RawMessage, v any) error {
	if err := json.Unmarshal(input, v); err != nil {
		return &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "input does not match the action's schema", Err: err}
	}
	return nil
}
