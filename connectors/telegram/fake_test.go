package telegram_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// seenCall is a Bot API call the fake received.
type seenCall struct {
	HTTPMethod, ContentType string
	Token, Method           string
	Params                  map[string]any // the JSON body, numbers as json.Number
}

type fakeChat struct {
	id       int64
	username string // without the @
	blocked  bool   // a private chat whose user blocked the bot
	obj      map[string]any
}

// fakeTelegram speaks the Bot API wire format: {base}/bot{token}/{method}, JSON bodies,
// {"ok": true, "result": …} or {"ok": false, "error_code": …, "description": …,
// "parameters": {"retry_after": N}}, with the status equal to error_code.
type fakeTelegram struct {
	srv *httptest.Server

	mu      sync.Mutex
	quiet   bool                      // set before use: keep no record of calls (benchmarks)
	tokens  map[string]map[string]any // token -> the bot's User object
	chats   []fakeChat
	updates []json.RawMessage
	seen    []seenCall
	script  map[string]http.HandlerFunc // by method: replaces the fake's answer
	nextID  int64
}

// tokenShape is what the Bot API can parse as a token; anything else is a 404.
var tokenShape = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]{35}$`)

func newFakeTelegram(t testing.TB) *fakeTelegram {
	f := &fakeTelegram{
		tokens: map[string]map[string]any{},
		script: map[string]http.HandlerFunc{},
		nextID: 100,
		chats: []fakeChat{
			{id: 123456789, username: "ada", obj: map[string]any{"id": 123456789, "first_name": "Ada", "last_name": "Lovelace", "username": "ada", "type": "private"}},
			{id: -1001234567890, username: "ops_alerts", obj: map[string]any{"id": int64(-1001234567890), "title": "Ops alerts", "username": "ops_alerts", "type": "channel"}},
			{id: 555000111, blocked: true, obj: map[string]any{"id": 555000111, "first_name": "Bob", "type": "private"}},
		},
		updates: []json.RawMessage{
			json.RawMessage(`{"update_id":871234001,"message":{"message_id":12,"from":{"id":123456789,"is_bot":false,"first_name":"Ada","last_name":"Lovelace","username":"ada","language_code":"en"},"chat":{"id":123456789,"first_name":"Ada","last_name":"Lovelace","username":"ada","type":"private"},"date":1732589000,"text":"/start","entities":[{"offset":0,"length":6,"type":"bot_command"}]}}`),
			json.RawMessage(`{"update_id":871234002,"my_chat_member":{"chat":{"id":-1001234567890,"title":"Ops alerts","type":"channel"},"from":{"id":123456789,"is_bot":false,"first_name":"Ada"},"date":1732589050,"old_chat_member":{"user":{"id":7123456789,"is_bot":true,"first_name":"Levqor Alerts","username":"levqor_alerts_bot"},"status":"left"},"new_chat_member":{"user":{"id":7123456789,"is_bot":true,"first_name":"Levqor Alerts","username":"levqor_alerts_bot"},"status":"administrator","can_post_messages":true}}}`),
			json.RawMessage(`{"update_id":871234003,"message":{"message_id":77,"from":{"id":987654321,"is_bot":false,"first_name":"Grace"},"chat":{"id":-1009876543210,"title":"Night shift","type":"supergroup"},"date":1732589100,"photo":[{"file_id":"AgACAgQAAxkBAAIBZ2dFq","file_unique_id":"AQADm7sxG","file_size":1523,"width":90,"height":67}],"caption":"load graph"}}`),
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTelegram) addBot(token string, id int64, username, firstName string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = map[string]any{"id": id, "is_bot": true, "first_name": firstName, "username": username,
		"can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
		"can_connect_to_business": false, "has_main_web_app": false}
}

func (f *fakeTelegram) on(method string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[method] = h
}

func (f *fakeTelegram) calls() []seenCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenCall(nil), f.seen...)
}

func reply(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func fail(w http.ResponseWriter, code int, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error_code": code, "description": description})
}

func (f *fakeTelegram) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || !tokenShape.MatchString(token) || strings.Contains(method, "/") {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	call := seenCall{HTTPMethod: r.Method, ContentType: r.Header.Get("Content-Type"), Token: token, Method: method, Params: map[string]any{}}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	if r.Method == http.MethodPost {
		if mt, _, _ := mime.ParseMediaType(call.ContentType); mt != "application/json" {
			fail(w, http.StatusBadRequest, "Bad Request: unsupported Content-Type")
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&call.Params); err != nil {
			fail(w, http.StatusBadRequest, "Bad Request: can't parse JSON object")
			return
		}
	}
	f.mu.Lock()
	if !f.quiet {
		f.seen = append(f.seen, call)
	}
	me, known := f.tokens[token]
	h := f.script[method]
	f.mu.Unlock()

	if h != nil {
		h(w, r)
		return
	}
	if !known {
		fail(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	switch method {
	case "getMe":
		reply(w, me)
	case "sendMessage":
		f.sendMessage(w, call.Params, me)
	case "getUpdates":
		f.getUpdates(w, r, call.Params)
	default:
		fail(w, http.StatusNotFound, "Not Found")
	}
}

var htmlTag = regexp.MustCompile(`</?(b|i|u|s|code|pre)>`)

func (f *fakeTelegram) sendMessage(w http.ResponseWriter, p map[string]any, me map[string]any) {
	var chat *fakeChat
	switch id := p["chat_id"].(type) {
	case nil:
		fail(w, http.StatusBadRequest, "Bad Request: chat_id is empty")
		return
	case json.Number:
		chat = f.chat(id.String(), "")
	case string:
		if name, ok := strings.CutPrefix(id, "@"); ok {
			chat = f.chat("", name)
		} else {
			chat = f.chat(id, "")
		}
	}
	text, _ := p["text"].(string)
	mode, _ := p["parse_mode"].(string)
	switch {
	case text == "":
		fail(w, http.StatusBadRequest, "Bad Request: message text is empty")
		return
	case utf8.RuneCountInString(text) > 4096:
		fail(w, http.StatusBadRequest, "Bad Request: message is too long")
		return
	case mode != "" && mode != "HTML" && mode != "MarkdownV2" && mode != "Markdown":
		fail(w, http.StatusBadRequest, "Bad Request: unsupported parse_mode")
		return
	case chat == nil:
		fail(w, http.StatusBadRequest, "Bad Request: chat not found")
		return
	case chat.blocked:
		fail(w, http.StatusForbidden, "Forbidden: bot was blocked by the user")
		return
	}
	if mode == "HTML" {
		if strings.Count(text, "<b>") != strings.Count(text, "</b>") {
			fail(w, http.StatusBadRequest, "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"")
			return
		}
		text = htmlTag.ReplaceAllString(text, "")
	}
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	f.mu.Unlock()
	reply(w, map[string]any{
		"message_id": id,
		"from":       map[string]any{"id": me["id"], "is_bot": true, "first_name": me["first_name"], "username": me["username"]},
		"chat":       chat.obj,
		"date":       1732590000,
		"text":       text,
	})
}

func (f *fakeTelegram) chat(id, username string) *fakeChat {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.chats {
		if id != "" && id == strconv.FormatInt(c.id, 10) || username != "" && strings.EqualFold(username, c.username) {
			return &f.chats[i]
		}
	}
	return nil
}

func (f *fakeTelegram) getUpdates(w http.ResponseWriter, r *http.Request, p map[string]any) {
	limit, offset, timeout := int64(100), int64(0), int64(0)
	for name, dst := range map[string]*int64{"limit": &limit, "offset": &offset, "timeout": &timeout} {
		if v, ok := p[name]; ok {
			num, _ := v.(json.Number)
			n, err := num.Int64()
			if err != nil {
				fail(w, http.StatusBadRequest, "Bad Request: invalid "+name+" specified")
				return
			}
			*dst = n
		}
	}
	limit = max(1, min(limit, 100))
	f.mu.Lock()
	var out []json.RawMessage
	for _, u := range f.updates {
		var head struct {
			UpdateID int64 `json:"update_id"`
		}
		_ = json.Unmarshal(u, &head)
		if head.UpdateID >= offset && int64(len(out)) < limit {
			out = append(out, u)
		}
	}
	f.mu.Unlock()
	if len(out) == 0 && timeout > 0 {
		select { // a long poll with nothing to deliver
		case <-time.After(time.Duration(timeout) * time.Second):
		case <-r.Context().Done():
			return
		}
	}
	if out == nil {
		out = []json.RawMessage{}
	}
	reply(w, out)
}
