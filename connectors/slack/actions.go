package slack

import (
	"context"
	"encoding/json"

	"github.com/slack-go/slack"

	"github.com/levqor/levqor/connectors"
)

type postMessageInput struct {
	Channel    string            `json:"channel"`
	Text       string            `json:"text"`
	Blocks     []json.RawMessage `json:"blocks"`
	ThreadTS   string            `json:"thread_ts"`
	Connection string            `json:"connection"`
}

// PostMessageOutput is what post_message returns.
type PostMessageOutput struct {
	Channel string `json:"channel"` // the channel's ID, even when the input named it #name
	TS      string `json:"ts"`      // the message's timestamp, its ID within the channel
}

func (c *Connector) postMessage(ctx context.Context, input json.RawMessage) (any, error) {
	var in postMessageInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	api, err := c.api(ctx, in.Connection)
	if err != nil {
		return nil, err
	}
	var opts []slack.MsgOption
	if in.Text != "" {
		opts = append(opts, slack.MsgOptionText(in.Text, false))
	}
	if len(in.Blocks) > 0 {
		blocks := make([]slack.Block, len(in.Blocks))
		for i, b := range in.Blocks {
			blocks[i] = rawBlock(b)
		}
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	if in.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(in.ThreadTS))
	}
	channel, ts, err := api.PostMessageContext(ctx, in.Channel, opts...)
	if err != nil {
		return nil, apiError(ctx, "post_message", err)
	}
	if channel == "" || ts == "" {
		return nil, invalidResponse(nil)
	}
	return PostMessageOutput{Channel: channel, TS: ts}, nil
}

// rawBlock passes a Block Kit block to Slack exactly as the step gave it, rather than
// through the SDK's block types, which would drop fields they do not know.
type rawBlock json.RawMessage

func (b rawBlock) BlockType() slack.MessageBlockType {
	var head struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(b, &head)
	return slack.MessageBlockType(head.Type)
}

func (rawBlock) ID() string { return "" }

func (b rawBlock) MarshalJSON() ([]byte, error) { return b, nil }

type listChannelsInput struct {
	Limit      float64  `json:"limit"` // float64: the schema's integer admits 1e2
	Cursor     string   `json:"cursor"`
	Types      []string `json:"types"`
	Connection string   `json:"connection"`
}

// Channel is one conversation in list_channels' output.
type Channel struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	IsPrivate  bool   `json:"is_private"`
	IsArchived bool   `json:"is_archived"`
	NumMembers int    `json:"num_members"`
}

// ListChannelsOutput is what list_channels returns.
type ListChannelsOutput struct {
	Channels   []Channel `json:"channels"`
	NextCursor string    `json:"next_cursor"` // empty on the last page
}

func (c *Connector) listChannels(ctx context.Context, input json.RawMessage) (any, error) {
	in := listChannelsInput{Limit: 100, Types: []string{"public_channel"}}
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	api, err := c.api(ctx, in.Connection)
	if err != nil {
		return nil, err
	}
	chans, next, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{
		Cursor: in.Cursor,
		Limit:  int(in.Limit),
		Types:  in.Types,
	})
	if err != nil {
		return nil, apiError(ctx, "list_channels", err)
	}
	out := ListChannelsOutput{Channels: make([]Channel, 0, len(chans)), NextCursor: next}
	for _, ch := range chans {
		if ch.ID == "" {
			return nil, invalidResponse(nil)
		}
		out.Channels = append(out.Channels, Channel{
			ID:         ch.ID,
			Name:       ch.Name,
			IsPrivate:  ch.IsPrivate,
			IsArchived: ch.IsArchived,
			NumMembers: ch.NumMembers,
		})
	}
	return out, nil
}

type uploadFileInput struct {
	Channel        string `json:"channel"`
	Content        string `json:"content"`
	Filename       string `json:"filename"`
	Title          string `json:"title"`
	InitialComment string `json:"initial_comment"`
	Connection     string `json:"connection"`
}

// UploadFileOutput is what upload_file returns.
type UploadFileOutput struct {
	FileID string `json:"file_id"`
	Title  string `json:"title,omitempty"`
}

func (c *Connector) uploadFile(ctx context.Context, input json.RawMessage) (any, error) {
	var in uploadFileInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	if len(in.Content) > MaxUploadBytes {
		// The schema bounds characters; a multi-byte text can still be over in bytes.
		return nil, connectors.Errorf(connectors.CodeInvalidInput, "content is %d bytes once UTF-8 encoded; the limit is %d", len(in.Content), MaxUploadBytes)
	}
	api, err := c.api(ctx, in.Connection)
	if err != nil {
		return nil, err
	}
	// The SDK posts the bytes to the upload_url Slack returns (files.slack.com) through the
	// same HTTP client as every API call, and only if that URL is Slack's or the API's own.
	file, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Content:        in.Content,
		FileSize:       len(in.Content),
		Filename:       in.Filename,
		Title:          in.Title,
		InitialComment: in.InitialComment,
		Channel:        in.Channel,
	})
	if err != nil {
		return nil, apiError(ctx, "upload_file", err)
	}
	if file.ID == "" {
		return nil, invalidResponse(nil)
	}
	return UploadFileOutput{FileID: file.ID, Title: file.Title}, nil
}

// decode reads an input the registry has already validated against the action's schema.
func decode(input json.RawMessage, v any) error {
	if err := json.Unmarshal(input, v); err != nil {
		return &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "input does not match the action's schema", Err: err}
	}
	return nil
}
