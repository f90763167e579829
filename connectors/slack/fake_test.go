package slack_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeChannel is a conversation of the fake workspace.
type fakeChannel struct {
	id, name               string
	private, archived, bot bool // bot: the bot is a member
	members                int
}

// seenRequest is what the fake received, as Slack would read it.
type seenRequest struct {
	Method, Path, ContentType string
	TokenIn                   string // "header" or "body"
	Token                     string
	Form                      url.Values // the form fields, token excluded
	Upload                    []byte     // the file bytes of a POST to an upload_url
}

type fakeUpload struct {
	filename string
	length   int
	data     []byte
	uploaded bool
}

// fakeSlack speaks Slack's Web API wire format: POST {base}/api/{method} with the token in
// an Authorization: Bearer header or a token POST parameter (never the query string),
// form-encoded arguments, HTTP 200 with {"ok": false, "error": code} for API errors, and
// 429 with Retry-After for rate limits. Upload URLs point back at the fake itself.
type fakeSlack struct {
	srv   *httptest.Server
	quiet bool // set before use: keep no record of requests (benchmarks)

	mu       sync.Mutex
	tokens   map[string]string // token -> team ID
	revoked  map[string]bool
	channels []fakeChannel
	uploads  map[string]*fakeUpload
	seen     []seenRequest
	script   map[string]http.HandlerFunc // by method name or "upload": replaces the fake's answer
	posted   int
}

func newFakeSlack(t testing.TB) *fakeSlack {
	f := &fakeSlack{
		tokens:  map[string]string{},
		revoked: map[string]bool{},
		uploads: map[string]*fakeUpload{},
		script:  map[string]http.HandlerFunc{},
		channels: []fakeChannel{
			{id: "C0000000001", name: "general", bot: true, members: 42},
			{id: "C0000000002", name: "random", bot: true, members: 40},
			{id: "C0000000003", name: "old-launch", archived: true, members: 7},
			{id: "C0000000004", name: "announcements", members: 42},
			{id: "G0000000005", name: "ops-private", private: true, bot: true, members: 3},
			{id: "G0000000006", name: "hr-private", private: true, members: 2},
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// baseURL is what the connector's BaseURL is set to.
func (f *fakeSlack) baseURL() string { return f.srv.URL + "/api/" }

func (f *fakeSlack) addToken(token, team string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = team
}

func (f *fakeSlack) revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[token] = true
}

func (f *fakeSlack) on(method string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[method] = h
}

func (f *fakeSlack) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func slackErr(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/upload/v1/"); ok {
		f.serveUpload(w, r, id)
		return
	}
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok || r.Method != http.MethodPost {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	if r.URL.Query().Has("token") {
		// Slack stopped accepting tokens in the query string for new apps (Feb 2021).
		slackErr(w, "invalid_auth")
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		slackErr(w, "invalid_form_data")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		slackErr(w, "invalid_form_data")
		return
	}
	seen := seenRequest{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Form: form}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		seen.TokenIn, seen.Token = "header", bearer
	} else if form.Has("token") {
		seen.TokenIn, seen.Token = "body", form.Get("token")
	}
	form.Del("token")

	f.mu.Lock()
	if !f.quiet {
		f.seen = append(f.seen, seen)
	}
	team, known := f.tokens[seen.Token]
	revoked := f.revoked[seen.Token]
	h := f.script[method]
	f.mu.Unlock()

	if h != nil {
		h(w, r)
		return
	}
	switch {
	case seen.Token == "":
		slackErr(w, "not_authed")
		return
	case revoked:
		slackErr(w, "token_revoked")
		return
	case !known:
		slackErr(w, "invalid_auth")
		return
	}
	switch method {
	case "chat.postMessage":
		f.postMessage(w, form, team)
	case "conversations.list":
		f.conversationsList(w, form)
	case "files.getUploadURLExternal":
		f.getUploadURL(w, form)
	case "files.completeUploadExternal":
		f.completeUpload(w, form)
	default:
		slackErr(w, "unknown_method")
	}
}

// channel finds a channel by ID or #name, as chat.postMessage accepts both; on failure
// it writes Slack's error and returns false.
func (f *fakeSlack) channel(w http.ResponseWriter, ref string) (fakeChannel, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.channels {
		if c.private && !c.bot {
			continue // invisible to the bot
		}
		if c.id == ref || "#"+c.name == ref || c.name == ref {
			switch {
			case c.archived:
				slackErr(w, "is_archived")
				return c, false
			case !c.bot:
				slackErr(w, "not_in_channel")
				return c, false
			default:
				return c, true
			}
		}
	}
	slackErr(w, "channel_not_found")
	return fakeChannel{}, false
}

// knownBlockTypes are the Block Kit layout blocks a message may hold.
var knownBlockTypes = map[string]bool{"section": true, "divider": true, "header": true, "context": true,
	"actions": true, "image": true, "rich_text": true, "markdown": true, "input": true, "file": true, "video": true}

func (f *fakeSlack) postMessage(w http.ResponseWriter, form url.Values, team string) {
	ch, ok := f.channel(w, form.Get("channel"))
	if !ok {
		return
	}
	var blocks []map[string]any
	if form.Has("blocks") {
		if err := json.Unmarshal([]byte(form.Get("blocks")), &blocks); err != nil || len(blocks) == 0 {
			slackErr(w, "invalid_blocks_format")
			return
		}
		for i, b := range blocks {
			typ, _ := b["type"].(string)
			if !knownBlockTypes[typ] {
				slackErr(w, "invalid_blocks")
				return
			}
			if _, ok := b["block_id"]; !ok {
				b["block_id"] = fmt.Sprintf("blk%d", i)
			}
		}
	}
	text := form.Get("text")
	if text == "" && len(blocks) == 0 {
		slackErr(w, "no_text")
		return
	}
	if ts := form.Get("thread_ts"); ts != "" && !strings.Contains(ts, ".") {
		slackErr(w, "invalid_thread_ts")
		return
	}
	f.mu.Lock()
	f.posted++
	ts := fmt.Sprintf("1732590000.%06d", f.posted)
	f.mu.Unlock()
	msg := map[string]any{
		"user": "U07BOT0LEVQ", "type": "message", "ts": ts, "bot_id": "B07BOT0LEVQ", "app_id": "A07APP0LEVQ",
		"text": text, "team": team,
		"bot_profile": map[string]any{"id": "B07BOT0LEVQ", "deleted": false, "name": "Levqor", "updated": 1732500000,
			"app_id": "A07APP0LEVQ", "icons": map[string]any{"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"}, "team_id": team},
	}
	if blocks != nil {
		msg["blocks"] = blocks
	}
	if ts := form.Get("thread_ts"); ts != "" {
		msg["thread_ts"] = ts
		msg["parent_user_id"] = "U07BOT0LEVQ"
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": ch.id, "ts": ts, "message": msg})
}

func (f *fakeSlack) conversationsList(w http.ResponseWriter, form url.Values) {
	limit := 100
	if v := form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			slackErr(w, "invalid_limit")
			return
		}
		limit = min(n, 1000)
	}
	types := map[string]bool{"public_channel": true}
	if v := form.Get("types"); v != "" {
		types = map[string]bool{}
		for _, t := range strings.Split(v, ",") {
			switch t {
			case "public_channel", "private_channel", "mpim", "im":
				types[t] = true
			default:
				slackErr(w, "invalid_types")
				return
			}
		}
	}
	start := 0
	if c := form.Get("cursor"); c != "" {
		raw, err := base64.StdEncoding.DecodeString(c)
		id, ok := strings.CutPrefix(string(raw), "team:")
		if err != nil || !ok {
			slackErr(w, "invalid_cursor")
			return
		}
		start = -1
		f.mu.Lock()
		for i, ch := range f.channels {
			if ch.id == id {
				start = i
			}
		}
		f.mu.Unlock()
		if start < 0 {
			slackErr(w, "invalid_cursor")
			return
		}
	}
	f.mu.Lock()
	var page []map[string]any
	next := ""
	for i := start; i < len(f.channels); i++ {
		ch := f.channels[i]
		if ch.private && (!types["private_channel"] || !ch.bot) || !ch.private && !types["public_channel"] {
			continue
		}
		if len(page) == limit {
			next = base64.StdEncoding.EncodeToString([]byte("team:" + ch.id))
			break
		}
		page = append(page, channelJSON(ch))
	}
	f.mu.Unlock()
	if page == nil {
		page = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channels": page, "response_metadata": map[string]any{"next_cursor": next}})
}

// channelJSON renders a channel as conversations.list does.
func channelJSON(c fakeChannel) map[string]any {
	return map[string]any{
		"id": c.id, "name": c.name, "is_channel": !c.private, "is_group": c.private, "is_im": false, "is_mpim": false,
		"is_private": c.private, "created": 1449252889, "is_archived": c.archived, "is_general": c.name == "general",
		"unlinked": 0, "name_normalized": c.name, "is_shared": false, "is_org_shared": false, "is_pending_ext_shared": false,
		"pending_shared": []string{}, "context_team_id": "T0000000001", "updated": 1678229664302, "parent_conversation": nil,
		"creator": "U012A3CDE", "is_ext_shared": false, "shared_team_ids": []string{"T0000000001"}, "pending_connected_team_ids": []string{},
		"is_member":      c.bot,
		"topic":          map[string]any{"value": "Company-wide announcements and work-based matters", "creator": "", "last_set": 0},
		"purpose":        map[string]any{"value": "This channel is for team-wide communication and announcements.", "creator": "", "last_set": 0},
		"properties":     map[string]any{"posting_restricted_to": map[string]any{"type": []string{"admin"}}},
		"previous_names": []string{}, "num_members": c.members,
	}
}

func (f *fakeSlack) getUploadURL(w http.ResponseWriter, form url.Values) {
	length, err := strconv.Atoi(form.Get("length"))
	if form.Get("filename") == "" || err != nil || length < 1 {
		slackErr(w, "invalid_arguments")
		return
	}
	f.mu.Lock()
	id := fmt.Sprintf("F%010d", len(f.uploads)+1)
	f.uploads[id] = &fakeUpload{filename: form.Get("filename"), length: length}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "upload_url": f.srv.URL + "/upload/v1/" + id, "file_id": id})
}

// serveUpload receives the bytes, raw or multipart-encoded, and answers as
// files.slack.com does: 200 with a short text body.
func (f *fakeSlack) serveUpload(w http.ResponseWriter, r *http.Request, id string) {
	seen := seenRequest{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type")}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		seen.TokenIn, seen.Token = "header", bearer
	}
	var data []byte
	mt, _, _ := mime.ParseMediaType(seen.ContentType)
	if mt == "multipart/form-data" {
		file, _, err := r.FormFile("file")
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		data, _ = io.ReadAll(file)
	} else {
		data, _ = io.ReadAll(r.Body)
	}
	seen.Upload = data
	f.mu.Lock()
	f.seen = append(f.seen, seen)
	up := f.uploads[id]
	h := f.script["upload"]
	if up != nil && r.Method == http.MethodPost && h == nil {
		up.data, up.uploaded = data, true
	}
	f.mu.Unlock()
	switch {
	case h != nil:
		h(w, r)
	case up == nil || r.Method != http.MethodPost:
		http.Error(w, "not found", http.StatusNotFound)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "OK - %d", len(data))
	}
}

func (f *fakeSlack) completeUpload(w http.ResponseWriter, form url.Values) {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(form.Get("files")), &files); err != nil || len(files) == 0 {
		slackErr(w, "invalid_arguments")
		return
	}
	if c := form.Get("channel_id"); c != "" {
		if _, ok := f.channel(w, c); !ok {
			return
		}
	}
	var out []map[string]any
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, file := range files {
		up := f.uploads[file.ID]
		switch {
		case up == nil:
			slackErr(w, "file_not_found")
			return
		case !up.uploaded || len(up.data) != up.length:
			slackErr(w, "file_upload_size_mismatch")
			return
		}
		title := file.Title
		if title == "" {
			title = up.filename
		}
		out = append(out, map[string]any{"id": file.ID, "title": title})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "files": out})
}
